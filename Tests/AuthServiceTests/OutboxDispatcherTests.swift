import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Shared
import TestSupport
import Testing

@testable import AuthService

/// Stands in for the services that hold user data: records the deletions it is told of,
/// and answers 503 while marked down.
private actor FakeServices {
    var down: Set<String> = []
    var deletions: [String: [String]] = [:]

    func setDown(_ service: String, _ isDown: Bool) {
        if isDown { down.insert(service) } else { down.remove(service) }
    }

    func record(_ service: String, _ userID: String, callerService: String) -> Bool {
        guard !down.contains(service), callerService == "auth" else { return false }
        deletions[service, default: []].append(userID)
        return true
    }

    func calls(_ service: String) -> [String] { deletions[service] ?? [] }
}

@Suite("Auth: account deletion reaches every service")
struct OutboxDispatcherTests {
    @Test func deletionsAreDeliveredAndRetriedUntilAcknowledged() async throws {
        let fakes = FakeServices()
        await fakes.setDown("recording", true)
        let router = Router(context: AppRequestContext.self)
        router.add(middleware: ProblemMiddleware())
        let credentials = try ServiceCredentials(secret: TestEnvironment.serviceTokenSecret, serviceName: "test")
        for service in ["vote", "recording", "feed"] {
            router.group("\(service)/internal")
                .add(middleware: ServiceAuthMiddleware(credentials: credentials))
                .group(context: ServiceContext.self)
                .delete("users/{id}") { _, context -> HTTPResponse.Status in
                    let id = try context.parameters.require("id")
                    return await fakes.record(service, id, callerService: context.callingService) ? .noContent : .serviceUnavailable
                }
        }
        let fakeApp = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: TestEnvironment.logger)
        try await fakeApp.test(.live) { fake in
            let base = "http://127.0.0.1:\(fake.port!)"
            let targets = ["vote", "recording", "feed"].map { "\($0)=\(base)/\($0)" }.joined(separator: ",")
            try await withAuthService(extra: ["OUTBOX_TARGETS": targets]) { client, databaseURL in
                let keep = try await client.signup()
                let gone = try await client.signup()
                #expect(try await client.send(.delete, "/auth/me", token: gone.accessToken).status == .noContent)
                let id = gone.user.id.apiString

                // The services that are up hear of it at once; the one that is down is retried.
                try await eventually {
                    let (vote, feed) = (await fakes.calls("vote"), await fakes.calls("feed"))
                    return vote == [id] && feed == [id]
                }
                try await eventually {
                    try await attempts(databaseURL, target: "recording") >= 2
                }
                #expect(await fakes.calls("recording").isEmpty)

                await fakes.setDown("recording", false)
                try await eventually(timeout: .seconds(15)) { await fakes.calls("recording") == [id] }
                try await eventually { try await undelivered(databaseURL) == 0 }
                // Each service was told once, and never about the user who stayed.
                #expect(await fakes.calls("vote") == [id])
                #expect(await !fakes.calls("feed").contains(keep.user.id.apiString))
            }
        }
    }
}

@Suite("Auth: outbox dispatcher at rest")
struct OutboxDispatcherIdleTests {
    /// With nothing to deliver it polls once per interval, and a local event wakes it at once.
    @Test func pollsOncePerIntervalAndWakesOnEvents() async throws {
        try await withAuthService { _, databaseURL in
            try await TestDatabase.withClient(databaseURL) { postgres in
                let http = ServiceHTTPClient()
                let credentials = try ServiceCredentials(secret: TestEnvironment.serviceTokenSecret, serviceName: "auth")
                let target = ServiceClient(
                    serviceName: "vote", baseURL: "http://127.0.0.1:9", http: http.client, credentials: credentials, timeout: .seconds(1))
                let dispatcher = OutboxDispatcher(
                    postgres: postgres, targets: [target], logger: TestEnvironment.logger, pollInterval: .milliseconds(200))
                let running = Task { try await dispatcher.run() }
                try await Task.sleep(for: .seconds(1.1))
                let idleRounds = await dispatcher.rounds
                // About five (fewer on a loaded machine); a loop that stopped waiting runs thousands.
                #expect(idleRounds <= 8, "rounds in 1.1 s at a 200 ms interval: \(idleRounds)")
                dispatcher.notifyNewEvent()
                try await eventually { await dispatcher.rounds > idleRounds }
                running.cancel()
                _ = try? await running.value
                try await http.client.shutdown()
            }
        }
    }
}

private func attempts(_ databaseURL: String, target: String) async throws -> Int {
    try await TestDatabase.withClient(databaseURL) { client in
        var attempts = 0
        for try await value in try await client.query("SELECT attempts FROM outbox_deliveries WHERE target = \(target)").decode(Int.self) {
            attempts = value
        }
        return attempts
    }
}

private func undelivered(_ databaseURL: String) async throws -> Int {
    try await TestDatabase.withClient(databaseURL) { client in
        var count = -1
        for try await value in try await client.query("SELECT count(*)::int FROM outbox_deliveries WHERE delivered_at IS NULL").decode(Int.self) {
            count = value
        }
        return count
    }
}
