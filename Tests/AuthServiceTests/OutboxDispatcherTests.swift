import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Shared
import TestSupport
import Testing

@testable import AuthService

/// Stands in for the services that receive user events: records what each is told, and
/// answers 503 while marked down.
private actor FakeServices {
    var down: Set<String> = []
    var events: [String: [UserEvent]] = [:]

    func setDown(_ service: String, _ isDown: Bool) {
        if isDown { down.insert(service) } else { down.remove(service) }
    }

    func record(_ service: String, _ event: UserEvent) -> Bool {
        guard !down.contains(service) else { return false }
        events[service, default: []].append(event)
        return true
    }

    func received(_ service: String) -> [UserEvent] { events[service] ?? [] }
}

@Suite("Auth: user events reach every service")
struct OutboxDispatcherTests {
    /// A rename, a logout and a deletion each reach every service (the deletion twice, the
    /// second after USER_DELETION_REDELIVERY_SECONDS), with a credential minted for that
    /// service; a service that is down gets them once it is back.
    @Test func eventsAreDeliveredAndRetriedUntilAcknowledged() async throws {
        let fakes = FakeServices()
        await fakes.setDown("recording", true)
        let router = Router(context: AppRequestContext.self)
        router.add(middleware: ProblemMiddleware())
        for service in ["vote", "recording", "feed"] {
            // Each fake accepts only credentials minted for it, and only auth as the caller.
            let credentials = try ServiceCredentials(secret: TestEnvironment.serviceTokenSecret, serviceName: service)
            router.group("\(service)/internal")
                .add(middleware: ServiceAuthMiddleware(credentials: credentials))
                .group(context: ServiceContext.self)
                .post("events") { request, context -> HTTPResponse.Status in
                    try context.requireCaller("auth")
                    let event = try await request.decodeJSON(as: UserEvent.self, context: context)
                    return await fakes.record(service, event) ? .noContent : .serviceUnavailable
                }
        }
        // An instance that is down for good: vote's other instance takes every event.
        router.post("broken/internal/events") { _, _ -> HTTPResponse.Status in .serviceUnavailable }
        let fakeApp = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: TestEnvironment.logger)
        try await fakeApp.test(.live) { fake in
            let base = "http://127.0.0.1:\(fake.port!)"
            let targets = "vote=\(base)/broken|\(base)/vote,recording=\(base)/recording,feed=\(base)/feed"
            try await withAuthService(extra: ["OUTBOX_TARGETS": targets, "USER_DELETION_REDELIVERY_SECONDS": "1"]) { client, databaseURL in
                let keep = try await client.signup()
                let gone = try await client.signup(password: "old password")
                let second = try await client.login(email: gone.user.email, password: "old password").decode(Session.self)
                #expect(try await client.send(.patch, "/auth/me", json: #"{"name":"Gone Soon"}"#, token: gone.accessToken).status == .ok)
                #expect(try await client.send(.post, "/auth/logout", json: #"{"refreshToken":"\#(second.refreshToken)"}"#).status == .noContent)
                #expect(try await client.send(
                    .delete, "/auth/me", json: #"{"currentPassword":"old password"}"#, token: gone.accessToken).status == .noContent)
                func kinds(_ events: [UserEvent]) -> [String] { events.map(\.type.rawValue).sorted() }
                let expected = ["sessions.revoked", "user.deleted", "user.deleted", "user.renamed"]

                // The services that are up hear of each at once (the deletion again a second later).
                try await eventually {
                    let (vote, feed) = (await fakes.received("vote"), await fakes.received("feed"))
                    return kinds(vote) == expected && kinds(feed) == expected
                }
                let feed = await fakes.received("feed")
                #expect(feed.allSatisfy { $0.userId == gone.user.id })
                #expect(feed.first { $0.type == .userRenamed }?.name == "Gone Soon")
                #expect(feed.first { $0.type == .sessionsRevoked }?.sessionIds?.count == 1)
                // Each delivery is an event of its own (the two deletions too); every service gets the same ids.
                #expect(Set(feed.map(\.id)).count == 4)
                #expect(Set(feed.map(\.id)) == Set(await fakes.received("vote").map(\.id)))

                // The one that is down is retried, and gets everything once it is back.
                try await eventually { try await attempts(databaseURL, target: "recording") >= 2 }
                #expect(await fakes.received("recording").isEmpty)
                await fakes.setDown("recording", false)
                try await eventually(timeout: .seconds(15)) { kinds(await fakes.received("recording")) == expected }
                try await eventually { try await undelivered(databaseURL) == 0 }
                #expect(await !fakes.received("vote").contains { $0.userId == keep.user.id })
            }
        }
    }
}

@Suite("Auth: outbox dispatcher at rest")
struct OutboxDispatcherIdleTests {
    /// The dispatcher of a running auth service, on an empty outbox, whose ticker fires every
    /// `pollInterval`; its one target never answers.
    private func withIdleDispatcher(
        pollInterval: Duration, _ body: @escaping @Sendable (OutboxDispatcher, WakeUp) async throws -> Void
    ) async throws {
        try await withAuthService(extra: ["OUTBOX_TARGETS": "vote=http://127.0.0.1:9"], outboxPollInterval: pollInterval) { _, dependencies, _ in
            try await body(dependencies.outboxDispatcher, dependencies.outboxWakeUp)
        }
    }

    /// With a ticker that cannot fire within the test, only the wake-up can start a round.
    @Test func aLocalEventWakesItAtOnce() async throws {
        try await withIdleDispatcher(pollInterval: .seconds(3600)) { dispatcher, wakeUp in
            #expect(await dispatcher.rounds == 0)
            // The dispatcher may not listen yet when the first wake-up is sent: send until one lands.
            try await eventually {
                wakeUp.signal()
                return await dispatcher.rounds > 0
            }
        }
    }

    /// It polls on its interval (picking up other instances' events and due retries), and
    /// never faster: a loop that stopped waiting would run thousands of rounds.
    @Test func pollsOncePerInterval() async throws {
        let interval = Duration.milliseconds(100)
        try await withIdleDispatcher(pollInterval: interval) { dispatcher, _ in
            // The dispatcher runs from the service's start: rounds it ran during the
            // migrations, before `start`, are not counted.
            let start = ContinuousClock.now
            let before = await dispatcher.rounds
            try await eventually { await dispatcher.rounds >= before + 3 }
            let rounds = await dispatcher.rounds - before
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
