import Foundation
import PostgresNIO
import Shared
import Synchronization
import TestSupport
import Testing

@testable import VoteService

@Suite("Vote: changed polls announced in batches")
struct PollChangeAnnouncerTests {
    /// Payloads received on `poll_votes`, in order.
    final class Received: Sendable {
        let payloads = Mutex<[String]>([])
        let connected = Mutex(false)
    }

    /// Runs `body` with a database and a LISTEN connection on the vote channel, then returns
    /// the payloads that arrived before a closing marker (notifications are delivered in
    /// commit order, so everything sent before the marker has arrived with it).
    func announcements(_ body: @escaping @Sendable (Database) async throws -> Void) async throws -> [String] {
        let databaseURL = try await TestDatabase.create()
        return try await TestDatabase.withClient(databaseURL) { client in
            let database = Database(client: client, connectionWait: .seconds(10), queryTimeout: .seconds(30))
            let received = Received()
            let listener = Task {
                await database.listen(
                    on: VoteMigrations.notificationChannel, logger: TestEnvironment.logger,
                    connected: { received.connected.withLock { $0 = true } },
                    notification: { payload in received.payloads.withLock { $0.append(payload) } },
                    disconnected: {})
            }
            defer { listener.cancel() }
            try await eventually(timeout: .seconds(10)) { received.connected.withLock { $0 } }
            try await body(database)
            try await client.query("SELECT pg_notify(\(VoteMigrations.notificationChannel), 'end')").consume()
            try await eventually(timeout: .seconds(10)) { received.payloads.withLock { $0.last == "end" } }
            return received.payloads.withLock { Array($0.dropLast()) }
        }
    }

    @Test func changesBeforeAFlushGoOutAsOneNotification() async throws {
        let (a, b) = (UUID(), UUID())
        let announcer = PollChangeAnnouncer()
        let payloads = try await announcements { database in
            announcer.changed([a])
            announcer.changed([b, a])
            await announcer.flush(database: database, logger: TestEnvironment.logger)
            // Nothing pending: nothing sent.
            await announcer.flush(database: database, logger: TestEnvironment.logger)
        }
        #expect(payloads.count == 1)
        #expect(Set(payloads.flatMap(PollChangeAnnouncer.pollIDs(in:))) == [a, b])
        #expect(payloads.flatMap(PollChangeAnnouncer.pollIDs(in:)).count == 2)
    }

    @Test func manyPollsAreSplitUnderThePayloadLimit() async throws {
        let polls = (0..<450).map { _ in UUID() }
        let announcer = PollChangeAnnouncer()
        let payloads = try await announcements { database in
            announcer.changed(polls)
            await announcer.flush(database: database, logger: TestEnvironment.logger)
        }
        #expect(payloads.count == 3)
        #expect(payloads.allSatisfy { $0.utf8.count < 8000 })
        #expect(Set(payloads.flatMap(PollChangeAnnouncer.pollIDs(in:))) == Set(polls))
    }

    /// A vote written past the service (so never announced) still reaches the subscribers,
    /// at the hub's periodic refresh.
    @Test func anUnannouncedChangeArrivesAtTheRefresh() async throws {
        try await withVoteService(live: true, extra: ["VOTE_EVENTS_HEARTBEAT_SECONDS": "1"]) { client, databaseURL in
            try await client.waitUntilReady()
            let poll = try await client.createPoll(try TestUser(), candidates: ["A", "B"])
            try await withEventStream(port: client.port, poll: poll.id) { stream in
                #expect(try await stream.nextCounts().counts == [0, 0])
                try await runSQL(
                    "INSERT INTO votes (poll_id, user_id, candidate_id) VALUES ('\(poll.id)', '\(UUID())', '\(poll.candidates[1].id)')",
                    on: databaseURL)
                _ = try await stream.waitForCounts([0, 1], timeout: .seconds(15))
            }
        }
    }
}
