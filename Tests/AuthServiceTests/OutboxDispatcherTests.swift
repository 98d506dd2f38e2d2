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
    /// A dispatcher on an empty outbox whose ticker fires every `pollInterval`.
    private func withIdleDispatcher(
        pollInterval: Duration, _ body: @escaping @Sendable (OutboxDispatcher) async throws -> Void
    ) async throws {
        try await withAuthService { _, databaseURL in
            try await TestDatabase.withClient(databaseURL) { postgres in
                let http = ServiceHTTPClient()
                let credentials = try ServiceCredentials(secret: TestEnvironment.serviceTokenSecret, serviceName: "auth")
                let target = ServiceClient(
                    serviceName: "vote", baseURL: "http://127.0.0.1:9", http: http.client, credentials: credentials, timeout: .seconds(1))
                let dispatcher = OutboxDispatcher(
                    repository: PostgresAuthRepository(database: Database(client: postgres, connectionWait: .seconds(5), queryTimeout: .seconds(5)), outboxTargets: ["vote"]), targets: [target],
                    logger: TestEnvironment.logger, pollInterval: pollInterval)
                let running = Task { try await dispatcher.run() }
                do {
                    try await body(dispatcher)
                } catch {
                    running.cancel()
                    try await http.client.shutdown()
                    throw error
                }
                running.cancel()
                _ = try? await running.value
                try await http.client.shutdown()
            }
        }
    }

    /// With a ticker that cannot fire within the test, only the wake-up can start a round.
    @Test func aLocalEventWakesItAtOnce() async throws {
        try await withIdleDispatcher(pollInterval: .seconds(3600)) { dispatcher in
            #expect(await dispatcher.rounds == 0)
            // The dispatcher may not listen yet when the first wake-up is sent: send until one lands.
            try await eventually {
                dispatcher.notifyNewEvent()
                return await dispatcher.rounds > 0
            }
        }
    }

    /// It polls on its interval (picking up other instances' events and due retries), and
    /// never faster: a loop that stopped waiting would run thousands of rounds.
    @Test func pollsOncePerInterval() async throws {
        let interval = Duration.milliseconds(100)
        try await withIdleDispatcher(pollInterval: interval) { dispatcher in
            let start = ContinuousClock.now
            try await eventually { await dispatcher.rounds >= 3 }
            let rounds = await dispatcher.rounds
            let elapsed = ContinuousClock.now - start
            // At most one round per interval that has passed (load only makes it fewer).
            #expect(rounds <= Int(elapsed / interval) + 1, "\(rounds) rounds in \(elapsed)")
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
