import Foundation
import HTTPTypes
import HummingbirdTesting
import Shared
import TestSupport
import Testing

@testable import VoteService

@Suite("Vote: user events")
struct VoteUserEventsTests {
    @Test func removesTheUsersVotesAndPollsIdempotently() async throws {
        try await withVoteService { client, _ in
            let leaving = try TestUser()
            let staying = try TestUser()
            let othersPoll = try await client.createPoll(staying, candidates: ["A", "B"])
            let ownPoll = try await client.createPoll(leaving, title: "Mine")
            #expect(try await client.vote(leaving, poll: othersPoll.id, candidate: othersPoll.candidates[0].id).status == .created)
            #expect(try await client.vote(staying, poll: othersPoll.id, candidate: othersPoll.candidates[0].id).status == .created)
            #expect(try await client.vote(staying, poll: ownPoll.id, candidate: ownPoll.candidates[0].id).status == .created)
            #expect(try await client.poll(othersPoll.id).counts == [2, 0])

            let response = try await client.deliver(.deleted(leaving.id), to: "vote")
            #expect(response.status == .noContent)

            // The vote in another user's poll is gone and the count went down with it.
            let after = try await client.poll(othersPoll.id)
            #expect(after.counts == [1, 0])
            #expect(after.totalVotes == 1)
            // The poll they created is gone, with the votes of others in it.
            #expect(try await client.send(.get, "/polls/\(ownPoll.id)").status == .notFound)
            let listed = try await client.send(.get, "/polls").decode(PollPageDTO.self)
            #expect(listed.items.map(\.id) == [othersPoll.id])

            // Their token no longer counts here.
            #expect(try await client.send(.post, "/polls/\(othersPoll.id)/votes", json: #"{"candidateId":"\#(othersPoll.candidates[1].id)"}"#,
                                          token: leaving.token).status == .unauthorized)
            // Again, and for a user the service never saw: still 204, nothing else changes.
            #expect(try await client.deliver(.deleted(leaving.id), to: "vote").status == .noContent)
            #expect(try await client.deliver(.deleted(UUID()), to: "vote").status == .noContent)
            #expect(try await client.poll(othersPoll.id).counts == [1, 0])
        }
    }

    /// Many accounts closed at once, each with votes spread over the same candidates (and
    /// each a creator of a poll the others voted in): every deletion succeeds, none waits on
    /// a deadlock, and the counts of what is left are exact.
    @Test func concurrentDeletionsOfOverlappingVotersDoNotDeadlock() async throws {
        try await withVoteService { client, _ in
            let users = try (0..<12).map { _ in try TestUser() }
            let stayer = try TestUser()
            var polls: [PollDTO] = []
            for user in users.prefix(4) { polls.append(try await client.createPoll(user, candidates: ["A", "B", "C"])) }
            polls.append(try await client.createPoll(stayer, candidates: ["A", "B", "C"]))
            for (index, user) in users.enumerated() {
                for (offset, poll) in polls.enumerated() {
                    let candidate = poll.candidates[(index + offset) % 3].id
                    #expect(try await client.vote(user, poll: poll.id, candidate: candidate).status == .created)
                }
            }
            #expect(try await client.vote(stayer, poll: polls[4].id, candidate: polls[4].candidates[0].id).status == .created)

            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for user in users {
                    group.addTask { try await client.deliver(.deleted(user.id), to: "vote").status }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses == Array(repeating: .noContent, count: users.count))
            // The stayer's poll is left with the stayer's vote only; the deleted creators' polls are gone.
            let left = try await client.poll(polls[4].id)
            #expect(left.counts == [1, 0, 0])
            for poll in polls.prefix(4) {
                #expect(try await client.send(.get, "/polls/\(poll.id)").status == .notFound)
            }
        }
    }

    /// Only auth sends events, and only with a credential minted for vote.
    @Test func refusesUsersOtherServicesAndMalformedEvents() async throws {
        try await withVoteService { client, _ in
            let user = try TestUser()
            let event = try TestEnvironment.userEventJSON(.deleted(user.id))
            let asUser = try await client.send(.post, "/internal/events", json: event, token: user.token)
            #expect(asUser.status == .unauthorized)
            #expect(try asUser.problem.code == "invalid_service_credential")
            #expect(try await client.send(.post, "/internal/events", json: event).status == .unauthorized)
            // Auth's credential for another service does not open vote.
            let forFeed = try TestEnvironment.serviceToken(from: "auth", to: "feed")
            #expect(try await client.send(.post, "/internal/events", json: event, token: forFeed).status == .unauthorized)
            // Feed may not send user events.
            let fromFeed = try await client.deliver(.deleted(user.id), to: "vote", from: "feed")
            #expect(fromFeed.status == .forbidden)
            #expect(try fromFeed.problem.code == "caller_not_allowed")
            let service = try TestEnvironment.serviceToken(from: "auth", to: "vote")
            for malformed in [#"{"id":1,"type":"user.exploded","userId":"\#(user.id)","occurredAt":"2026-11-30T00:00:00Z"}"#,
                              #"{"id":1,"type":"user.deleted","userId":"nope","occurredAt":"2026-11-30T00:00:00Z"}"#, "{"] {
                #expect(try await client.send(.post, "/internal/events", json: malformed, token: service).status == .badRequest, "\(malformed)")
            }
            // Nothing was applied: the user's token still works.
            #expect(try await client.send(.post, "/polls", json: #"{"title":"Still here","candidates":["A","B"]}"#, token: user.token).status == .created)
        }
    }

    /// Revoking one session ends exactly that session's tokens; revoking twice is once.
    @Test func revokedSessionsAreRefusedAndOthersAreNot() async throws {
        try await withVoteService { client, _ in
            let userID = UUID()
            let (ended, kept) = (UUID(), UUID())
            let endedToken = try TestEnvironment.accessToken(userID: userID, sessionID: ended)
            let keptToken = try TestEnvironment.accessToken(userID: userID, sessionID: kept)
            let create = #"{"title":"Session","candidates":["A","B"]}"#
            #expect(try await client.send(.post, "/polls", json: create, token: endedToken).status == .created)
            let event = UserEvent(id: 7, type: .sessionsRevoked, userId: userID, sessionIds: [ended])
            #expect(try await client.deliver(event, to: "vote").status == .noContent)
            #expect(try await client.deliver(event, to: "vote").status == .noContent)
            let refused = try await client.send(.post, "/polls", json: create, token: endedToken)
            #expect(refused.status == .unauthorized)
            #expect(refused.headers[.wwwAuthenticate] == #"Bearer error="invalid_token""#)
            #expect(try await client.send(.get, "/polls", token: endedToken).status == .unauthorized)
            #expect(try await client.send(.post, "/polls", json: create, token: keptToken).status == .created)
        }
    }

    @Test func listenersSeeTheCountsGoDown() async throws {
        try await withVoteService(live: true) { client, _ in
            try await client.waitUntilReady()
            let leaving = try TestUser()
            let poll = try await client.createPoll(try TestUser(), candidates: ["A", "B"])
            #expect(try await client.vote(leaving, poll: poll.id, candidate: poll.candidates[1].id).status == .created)
            try await withEventStream(port: client.port, poll: poll.id) { stream in
                #expect(try await stream.nextCounts().counts == [0, 1])
                #expect(try await client.deliver(.deleted(leaving.id), to: "vote").status == .noContent)
                _ = try await stream.waitForCounts([0, 0])
            }
        }
    }

    /// Two instances on one database: an event delivered to one is refused by the other at
    /// once (NOTIFY), also after the other's LISTEN connection was cut (it reloads), and an
    /// instance that starts later refuses it from its first request (loaded before traffic).
    @Test func anEventAppliedByOneInstanceReachesTheOthers() async throws {
        try await withVoteService { first, databaseURL in
            try await withVoteService(databaseURL: databaseURL) { second, _ in
                try await eventually { try await second.send(.get, "/ready").status == .ok }
                let (userA, userB) = (try TestUser(), try TestUser())
                let create = #"{"title":"Two instances","candidates":["A","B"]}"#
                #expect(try await first.deliver(.deleted(userA.id), to: "vote").status == .noContent)
                try await eventually(timeout: .seconds(5)) {
                    try await second.send(.post, "/polls", json: create, token: userA.token).status == .unauthorized
                }

                // Cut the user-event LISTEN connections (both instances'; both reconnect): the
                // event sent meanwhile is found by the reload after reconnecting.
                try await TestDatabase.withClient(databaseURL) { database in
                    try await database.query(
                        """
                        SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                        WHERE datname = current_database() AND pid <> pg_backend_pid() AND query ILIKE 'LISTEN%user_events%'
                        """
                    ).consume()
                }
                #expect(try await first.deliver(.deleted(userB.id, id: 2), to: "vote").status == .noContent)
                try await eventually {
                    try await second.send(.post, "/polls", json: create, token: userB.token).status == .unauthorized
                }
            }
            // A third instance, started after the events: refuses both tokens from the start.
            try await withVoteService(databaseURL: databaseURL) { third, _ in
                let someoneElse = try TestEnvironment.accessToken(userID: UUID())
                #expect(try await third.send(.post, "/polls", json: #"{"title":"x","candidates":["A","B"]}"#, token: someoneElse).status == .created)
                let revoked = try await TestDatabase.withClient(databaseURL) { database in
                    var ids: [UUID] = []
                    for try await id in try await database.query("SELECT id FROM revoked_tokens WHERE kind = 'user'").decode(UUID.self) { ids.append(id) }
                    return ids
                }
                #expect(revoked.count == 2)
                for id in revoked {
                    let token = try TestEnvironment.accessToken(userID: id)
                    #expect(try await third.send(.post, "/polls", json: #"{"title":"x","candidates":["A","B"]}"#, token: token).status == .unauthorized)
                }
            }
        }
    }
}
