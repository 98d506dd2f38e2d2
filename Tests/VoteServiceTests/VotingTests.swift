import Foundation
import HTTPTypes
import HummingbirdTesting
import Shared
import TestSupport
import Testing

@testable import VoteService

@Suite("Vote: voting")
struct VotingTests {
    @Test func voteCountsOnceAndCanBeChangedByRetracting() async throws {
        try await withVoteService { client, _ in
            let owner = try TestUser()
            let voter = try TestUser()
            let poll = try await client.createPoll(owner)
            let (pizza, sushi) = (poll.candidates[0].id, poll.candidates[1].id)

            let cast = try await client.vote(voter, poll: poll.id, candidate: pizza)
            #expect(cast.status == .created)
            struct Vote: Decodable { var pollId: UUID; var candidateId: UUID; var createdAt: Date }
            let vote = try cast.decode(Vote.self)
            #expect(vote.pollId == poll.id)
            #expect(vote.candidateId == pizza)
            #expect(abs(vote.createdAt.timeIntervalSinceNow) < 60)
            #expect(try await client.poll(poll.id, as: voter).counts == [1, 0, 0])

            let twice = try await client.vote(voter, poll: poll.id, candidate: sushi)
            #expect(twice.status == .conflict)
            #expect(try twice.problem.code == "already_voted")
            #expect(try await client.poll(poll.id).counts == [1, 0, 0])

            #expect(try await client.retract(voter, poll: poll.id).status == .noContent)
            let afterRetract = try await client.poll(poll.id, as: voter)
            #expect(afterRetract.counts == [0, 0, 0])
            #expect(afterRetract.myVote == nil)

            #expect(try await client.vote(voter, poll: poll.id, candidate: sushi).status == .created)
            let changed = try await client.poll(poll.id, as: voter)
            #expect(changed.counts == [0, 1, 0])
            #expect(changed.myVote == sushi)
            #expect(changed.totalVotes == 1)
        }
    }

    @Test func retractingWithoutAVoteIs404() async throws {
        try await withVoteService { client, _ in
            let user = try TestUser()
            let poll = try await client.createPoll(user)
            let response = try await client.retract(user, poll: poll.id)
            #expect(response.status == .notFound)
            #expect(try response.problem.code == "vote_not_found")
            let unknownPoll = try await client.retract(user, poll: UUID())
            #expect(unknownPoll.status == .notFound)
            #expect(try unknownPoll.problem.code == "poll_not_found")
        }
    }

    @Test func unknownPollAndForeignCandidateAre404() async throws {
        try await withVoteService { client, _ in
            let user = try TestUser()
            let poll = try await client.createPoll(user)
            let other = try await client.createPoll(user, title: "Other")

            let unknownPoll = try await client.vote(user, poll: UUID(), candidate: poll.candidates[0].id)
            #expect(unknownPoll.status == .notFound)
            #expect(try unknownPoll.problem.code == "poll_not_found")

            let foreign = try await client.vote(user, poll: poll.id, candidate: other.candidates[0].id)
            #expect(foreign.status == .notFound)
            #expect(try foreign.problem.code == "candidate_not_found")
            let unknown = try await client.vote(user, poll: poll.id, candidate: UUID())
            #expect(try unknown.problem.code == "candidate_not_found")
            #expect(try await client.poll(poll.id).totalVotes == 0)
            #expect(try await client.poll(other.id).totalVotes == 0)
        }
    }

    @Test func badVoteBodies() async throws {
        try await withVoteService { client, _ in
            let user = try TestUser()
            let poll = try await client.createPoll(user)
            for body in [#"{"candidateId": "nope"}"#, "{}", #"{"candidateId": 5}"#, "not json"] {
                let response = try await client.send(.post, "/polls/\(poll.id)/votes", json: body, token: user.token)
                #expect(response.status == .badRequest, "\(body)")
                #expect(try response.problem.code == "validation_failed")
            }
            let anonymous = try await client.send(.post, "/polls/\(poll.id)/votes", json: #"{"candidateId": "\#(poll.candidates[0].id)"}"#)
            #expect(anonymous.status == .unauthorized)
            #expect(try await client.send(.delete, "/polls/\(poll.id)/votes/me").status == .unauthorized)
        }
    }

    @Test func closedPollsRefuseVotesAndRetractions() async throws {
        try await withVoteService { client, databaseURL in
            let user = try TestUser()
            let voter = try TestUser()
            let poll = try await client.createPoll(user, closesAt: Date.now.addingTimeInterval(3600).ISO8601Format())
            #expect(try await client.vote(voter, poll: poll.id, candidate: poll.candidates[0].id).status == .created)
            // Time passes: the poll's closing time is now behind us.
            try await runSQL("UPDATE polls SET closes_at = now() - interval '1 second' WHERE id = '\(poll.id)'", on: databaseURL)

            let vote = try await client.vote(user, poll: poll.id, candidate: poll.candidates[1].id)
            #expect(vote.status == .unprocessableContent)
            #expect(try vote.problem.code == "poll_closed")
            let retract = try await client.retract(voter, poll: poll.id)
            #expect(retract.status == .unprocessableContent)
            #expect(try retract.problem.code == "poll_closed")
            // Without a vote it is still the closed poll that answers.
            #expect(try await client.retract(user, poll: poll.id).status == .unprocessableContent)
            let final = try await client.poll(poll.id, as: voter)
            #expect(final.counts == [1, 0, 0])
            #expect(final.myVote == poll.candidates[0].id)
        }
    }
}

@Suite("Vote: counts under concurrency")
struct ConcurrencyTests {
    @Test func manyUsersVotingAtOnceAreAllCounted() async throws {
        try await withVoteService { client, databaseURL in
            let owner = try TestUser()
            let poll = try await client.createPoll(owner, candidates: ["A", "B"])
            let voters = 60
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for index in 0..<voters {
                    group.addTask {
                        let user = try TestUser()
                        return try await client.vote(user, poll: poll.id, candidate: poll.candidates[index % 2].id).status
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.allSatisfy { $0 == .created })
            let result = try await client.poll(poll.id)
            #expect(result.counts == [voters / 2, voters / 2])
            #expect(result.totalVotes == voters)
            // The maintained counts agree with the rows themselves.
            let rows = try await TestDatabase.withClient(databaseURL) { database in
                var count = 0
                for try await value in try await database.query("SELECT count(*)::int FROM votes").decode(Int.self) { count = value }
                return count
            }
            #expect(rows == voters)
        }
    }

    @Test func oneUserFiringManyVotesGetsExactlyOne() async throws {
        try await withVoteService { client, _ in
            let owner = try TestUser()
            let voter = try TestUser()
            let poll = try await client.createPoll(owner, candidates: ["A", "B", "C"])
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for index in 0..<30 {
                    group.addTask {
                        try await client.vote(voter, poll: poll.id, candidate: poll.candidates[index % 3].id).status
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == .created }.count == 1)
            #expect(statuses.filter { $0 == .conflict }.count == 29)
            let result = try await client.poll(poll.id, as: voter)
            #expect(result.totalVotes == 1)
            #expect(result.counts.reduce(0, +) == 1)
            #expect(result.myVote != nil)
            #expect(result.candidates.first { $0.id == result.myVote }?.voteCount == 1)
        }
    }

    @Test func concurrentRetractAndVoteNeverLeaveMinusOneOrTwo() async throws {
        try await withVoteService { client, _ in
            let owner = try TestUser()
            let voter = try TestUser()
            let poll = try await client.createPoll(owner, candidates: ["A", "B"])
            let candidate = poll.candidates[0].id
            #expect(try await client.vote(voter, poll: poll.id, candidate: candidate).status == .created)
            for _ in 0..<15 {
                // Each round: several retractions and votes of the same user race.
                let statuses = try await withThrowingTaskGroup(of: (String, HTTPResponse.Status).self) { group in
                    for index in 0..<6 {
                        group.addTask {
                            if index.isMultiple(of: 2) {
                                return ("retract", try await client.retract(voter, poll: poll.id).status)
                            } else {
                                return ("vote", try await client.vote(voter, poll: poll.id, candidate: candidate).status)
                            }
                        }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                let expected: Set<HTTPResponse.Status> = [.created, .noContent, .conflict, .notFound]
                #expect(statuses.allSatisfy { expected.contains($0.1) }, "\(statuses)")
                let state = try await client.poll(poll.id, as: voter)
                #expect(state.totalVotes == 0 || state.totalVotes == 1, "\(state.counts)")
                #expect(state.counts[0] == (state.myVote == nil ? 0 : 1), "count \(state.counts[0]) vs vote \(String(describing: state.myVote))")
                #expect(state.counts[1] == 0)
            }
        }
    }
}
