import Foundation
import HTTPTypes
import HummingbirdTesting
import Shared
import TestSupport
import Testing

@testable import VoteService

@Suite("Vote: internal user deletion")
struct InternalUsersTests {
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

            let service = try TestEnvironment.serviceToken(from: "auth")
            let response = try await client.send(.delete, "/internal/users/\(leaving.id)", token: service)
            #expect(response.status == .noContent)

            // The vote in another user's poll is gone and the count went down with it.
            let after = try await client.poll(othersPoll.id, as: leaving)
            #expect(after.counts == [1, 0])
            #expect(after.totalVotes == 1)
            #expect(after.myVote == nil)
            // The poll they created is gone, with the votes of others in it.
            #expect(try await client.send(.get, "/polls/\(ownPoll.id)").status == .notFound)
            let listed = try await client.send(.get, "/polls").decode(PollPageDTO.self)
            #expect(listed.items.map(\.id) == [othersPoll.id])

            // Again, and for a user the service never saw: still 204, nothing else changes.
            #expect(try await client.send(.delete, "/internal/users/\(leaving.id)", token: service).status == .noContent)
            #expect(try await client.send(.delete, "/internal/users/\(UUID())", token: service).status == .noContent)
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

            let service = try TestEnvironment.serviceToken(from: "auth")
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for user in users {
                    group.addTask { try await client.send(.delete, "/internal/users/\(user.id)", token: service).status }
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

    @Test func refusesUsersAndBadIDs() async throws {
        try await withVoteService { client, _ in
            let user = try TestUser()
            let asUser = try await client.send(.delete, "/internal/users/\(user.id)", token: user.token)
            #expect(asUser.status == .unauthorized)
            #expect(try asUser.problem.code == "invalid_service_credential")
            #expect(try await client.send(.delete, "/internal/users/\(user.id)").status == .unauthorized)
            let service = try TestEnvironment.serviceToken()
            let malformed = try await client.send(.delete, "/internal/users/not-a-uuid", token: service)
            #expect(malformed.status == .badRequest)
            #expect(try malformed.problem.errors?.first?.field == "userId")
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
                let service = try TestEnvironment.serviceToken(from: "auth")
                #expect(try await client.send(.delete, "/internal/users/\(leaving.id)", token: service).status == .noContent)
                _ = try await stream.waitForCounts([0, 0])
            }
        }
    }
}
