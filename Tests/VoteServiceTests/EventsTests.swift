import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOHTTP1
import PostgresNIO
import Shared
import TestSupport
import Testing

@testable import VoteService

@Suite("Vote: live counts (Server-Sent Events)")
struct EventsTests {
    @Test func streamStartsWithTheCountsThenFollowsVotes() async throws {
        try await withVoteService(live: true) { client, _ in
            try await client.waitUntilReady()
            let owner = try TestUser()
            let poll = try await client.createPoll(owner, candidates: ["A", "B"])
            #expect(try await client.vote(try TestUser(), poll: poll.id, candidate: poll.candidates[1].id).status == .created)

            try await withEventStream(port: client.port, poll: poll.id) { stream in
                #expect(stream.status == .ok)
                #expect(stream.headers.first(name: "Content-Type")?.hasPrefix("text/event-stream") == true)
                #expect(stream.headers.first(name: "Cache-Control") == "no-cache")

                let initial = try await stream.nextCounts()
                #expect(initial.pollId == poll.id)
                #expect(initial.candidates.map(\.id) == poll.candidates.map(\.id))
                #expect(initial.counts == [0, 1])
                #expect(initial.totalVotes == 1)

                let voter = try TestUser()
                #expect(try await client.vote(voter, poll: poll.id, candidate: poll.candidates[0].id).status == .created)
                let afterVote = try await stream.waitForCounts([1, 1])
                #expect(afterVote.totalVotes == 2)

                #expect(try await client.retract(voter, poll: poll.id).status == .noContent)
                _ = try await stream.waitForCounts([0, 1])
            }
        }
    }

    @Test func aVoteThroughOneInstanceReachesListenersOfAnother() async throws {
        let databaseURL = try await TestDatabase.create()
        try await withVoteService(live: true, databaseURL: databaseURL) { instanceA, _ in
            try await withVoteService(live: true, databaseURL: databaseURL) { instanceB, _ in
                try await instanceA.waitUntilReady()
                try await instanceB.waitUntilReady()
                #expect(instanceA.port != instanceB.port)
                let owner = try TestUser()
                let poll = try await instanceA.createPoll(owner, candidates: ["Red", "Blue"])

                try await withEventStream(port: instanceB.port, poll: poll.id) { onB in
                    try await withEventStream(port: instanceA.port, poll: poll.id) { onA in
                        #expect(try await onB.nextCounts().counts == [0, 0])
                        #expect(try await onA.nextCounts().counts == [0, 0])

                        // Taken by A, seen by the listener on B (and on A).
                        #expect(try await instanceA.vote(try TestUser(), poll: poll.id, candidate: poll.candidates[1].id).status == .created)
                        _ = try await onB.waitForCounts([0, 1])
                        _ = try await onA.waitForCounts([0, 1])

                        // And the other way round.
                        #expect(try await instanceB.vote(try TestUser(), poll: poll.id, candidate: poll.candidates[0].id).status == .created)
                        _ = try await onA.waitForCounts([1, 1])
                        _ = try await onB.waitForCounts([1, 1])
                    }
                }
            }
        }
    }

    @Test func burstsOfVotesAreCoalesced() async throws {
        // One reload per window, however many votes: a burst of N votes gives fewer than N
        // events, each a consistent snapshot, the last one carrying the final counts.
        let votes = 30
        try await withVoteService(live: true, extra: ["VOTE_EVENTS_COALESCE_MS": "1000"]) { client, _ in
            try await client.waitUntilReady()
            let poll = try await client.createPoll(try TestUser(), candidates: ["A", "B"])
            try await withEventStream(port: client.port, poll: poll.id) { stream in
                #expect(try await stream.nextCounts().totalVotes == 0)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for index in 0..<votes {
                        group.addTask {
                            let status = try await client.vote(try TestUser(), poll: poll.id, candidate: poll.candidates[index % 2].id).status
                            #expect(status == .created)
                        }
                    }
                    try await group.waitForAll()
                }
                var events: [CountsDTO] = []
                while events.last?.totalVotes ?? 0 < votes {
                    let counts = try await stream.nextCounts(timeout: .seconds(15))
                    #expect(counts.totalVotes <= votes, "more votes than were cast: \(counts.counts)")
                    #expect(counts.counts.reduce(0, +) == counts.totalVotes, "an inconsistent snapshot: \(counts)")
                    events.append(counts)
                }
                #expect(events.last?.counts == [votes / 2, votes / 2])
                // Snapshots never go back in time (latest wins, never an older one after a newer).
                let totals = events.map(\.totalVotes)
                #expect(totals == totals.sorted(), "totals went backwards: \(totals)")
                #expect(events.count < votes, "every vote produced its own event: \(totals)")
            }
        }
    }

    @Test func keepaliveCommentsWhileIdle() async throws {
        try await withVoteService(live: true, extra: ["VOTE_EVENTS_HEARTBEAT_SECONDS": "1"]) { client, _ in
            let poll = try await client.createPoll(try TestUser())
            try await withEventStream(port: client.port, poll: poll.id) { stream in
                _ = try await stream.nextCounts()
                let frame = await stream.nextFrame(timeout: .seconds(10))
                #expect(frame == .comment("keepalive"))
            }
        }
    }

    @Test func deletingThePollEndsItsStreams() async throws {
        try await withVoteService(live: true) { client, _ in
            try await client.waitUntilReady()
            let owner = try TestUser()
            let poll = try await client.createPoll(owner)
            try await withEventStream(port: client.port, poll: poll.id) { stream in
                _ = try await stream.nextCounts()
                #expect(try await client.send(.delete, "/polls/\(poll.id)", token: owner.token).status == .noContent)
                // The stream ends (the server closes it), with no event for a poll that is gone;
                // running into the deadline instead fails.
                let ending = await stream.waitForEnd(timeout: .seconds(10))
                #expect(ending == .ended, "the stream did not end: \(ending)")
            }
        }
    }

    @Test func unknownPollsAndBadTokensAreProblemsNotStreams() async throws {
        try await withVoteService(live: true) { client, _ in
            let unknown = try await client.send(.get, "/polls/\(UUID())/events")
            #expect(unknown.status == .notFound)
            #expect(try unknown.problem.code == "poll_not_found")
            let poll = try await client.createPoll(try TestUser())
            let badToken = try await client.send(.get, "/polls/\(poll.id)/events", token: "nope")
            #expect(badToken.status == .unauthorized)
            // A valid token is fine (optional auth).
            let token = try TestUser().token
            try await withEventStream(port: client.port, poll: poll.id, token: token) { stream in
                #expect(stream.status == .ok)
                let counts = try await stream.nextCounts()
                #expect(counts.pollId == poll.id)
            }
        }
    }

    @Test func clientsThatGoAwayAreUnsubscribed() async throws {
        let databaseURL = try await TestDatabase.create()
        let reader = TestEnvironment.reader(databaseURL: databaseURL, extra: ["VOTE_EVENTS_COALESCE_MS": "20"])
        let configuration = try VoteConfiguration(reader: reader, logger: TestEnvironment.logger)
        let dependencies = try VoteDependencies(configuration: configuration, logger: TestEnvironment.logger)
        let hub = dependencies.hub
        let app = try buildApplication(dependencies)
        try await app.test(.live) { client in
            let poll = try await client.createPoll(try TestUser())
            let streams = try await withThrowingTaskGroup(of: EventStreamClient.self) { group in
                for _ in 0..<3 {
                    group.addTask { try await EventStreamClient.open(port: try #require(client.port), path: "/polls/\(poll.id)/events") }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            for stream in streams { _ = try await stream.nextCounts() }
            #expect(await hub.subscriberCount == 3)
            // Exported for operators. Every hub of the process records into this one gauge, so
            // its value is whichever parallel test recorded last: only that it is exported, as a
            // number, is this test's to check (the count itself is checked on the hub above).
            let metrics = try await client.send(.get, "/metrics")
            let sample = String(buffer: metrics.body).split(separator: "\n").first { $0.hasPrefix("vote_event_subscribers ") }
            let value = try #require(sample.flatMap { $0.split(separator: " ").last }.flatMap { Double($0) }, "no vote_event_subscribers sample")
            #expect(value >= 0)
            for stream in streams { await stream.close() }
            // The server notices the closed connections without waiting for a heartbeat (1 h here).
            try await eventually { await hub.subscriberCount == 0 }
        }
    }

    @Test func listenerReconnectsAfterItsConnectionIsKilled() async throws {
        try await withVoteService(live: true) { client, databaseURL in
            try await client.waitUntilReady()
            let poll = try await client.createPoll(try TestUser(), candidates: ["A", "B"])
            try await withEventStream(port: client.port, poll: poll.id) { stream in
                _ = try await stream.nextCounts()
                // Kill the LISTEN connection from outside, as a database restart or a network cut would.
                let killed = try await TestDatabase.withClient(databaseURL) { database in
                    var killed: [Int32] = []
                    for try await (pid, done) in try await database.query(
                        """
                        SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity
                        WHERE datname = current_database() AND pid <> pg_backend_pid() AND query ILIKE 'LISTEN%poll_votes%'
                        """
                    ).decode((Int32, Bool).self) where done {
                        killed.append(pid)
                    }
                    return killed
                }
                #expect(killed.count == 1)
                // A new LISTEN connection replaces the killed one (not the old one lingering).
                try await eventually(timeout: .seconds(20)) {
                    try await TestDatabase.withClient(databaseURL) { database in
                        var listeners: [Int32] = []
                        for try await pid in try await database.query(
                            """
                            SELECT pid FROM pg_stat_activity
                            WHERE datname = current_database() AND pid <> pg_backend_pid() AND query ILIKE 'LISTEN%poll_votes%'
                            """
                        ).decode(Int32.self) {
                            listeners.append(pid)
                        }
                        return listeners.count == 1 && !killed.contains(listeners[0])
                    }
                }
                try await client.waitUntilReady()
                #expect(try await client.vote(try TestUser(), poll: poll.id, candidate: poll.candidates[0].id).status == .created)
                _ = try await stream.waitForCounts([1, 0])
            }
        }
    }
}
