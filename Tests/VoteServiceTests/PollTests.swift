import Foundation
import HTTPTypes
import HummingbirdTesting
import Shared
import TestSupport
import Testing

@testable import VoteService

@Suite("Vote: polls")
struct PollTests {
    @Test func createReturnsThePollWithLocationAndTrimmedNames() async throws {
        try await withVoteService { client, _ in
            let ada = try TestUser(name: "Ada")
            let closesAt = Date.now.addingTimeInterval(3600)
            let response = try await client.send(
                .post, "/polls",
                json: pollJSON(title: "  Best language?  ", candidates: [" Swift ", "Rust", "Go\n"], closesAt: closesAt.ISO8601Format()),
                token: ada.token)
            #expect(response.status == .created)
            let poll = try response.decode(PollDTO.self)
            #expect(response.headers[.location] == "/polls/\(poll.id.apiString)")
            #expect(poll.title == "Best language?")
            #expect(poll.candidates.map(\.name) == ["Swift", "Rust", "Go"])
            #expect(poll.counts == [0, 0, 0])
            #expect(poll.totalVotes == 0)
            #expect(poll.createdBy == ada.id)
            #expect(poll.myVote == nil)
            #expect(abs((poll.closesAt ?? .distantPast).timeIntervalSince(closesAt)) < 1)
            #expect(abs(poll.createdAt.timeIntervalSinceNow) < 60)
            // Explicit nulls, as the contract lists them.
            let object = try response.json
            #expect(object["myVote"] == .null)

            let fetched = try await client.poll(poll.id)
            #expect(fetched.candidates == poll.candidates)
            #expect(fetched.title == poll.title)
        }
    }

    @Test func closesAtIsOptionalAndAcceptsFractionalSeconds() async throws {
        try await withVoteService { client, _ in
            let user = try TestUser()
            let open = try await client.createPoll(user)
            #expect(open.closesAt == nil)
            let created = try await client.send(.get, "/polls/\(open.id)")
            #expect(try created.json["closesAt"] == .null)

            let fractional = Date.ISO8601FormatStyle(includingFractionalSeconds: true).format(Date.now.addingTimeInterval(600))
            #expect(fractional.contains("."))
            let poll = try await client.createPoll(user, closesAt: fractional)
            #expect(poll.closesAt != nil)
        }
    }

    @Test func invalidPollsAreValidationProblems() async throws {
        try await withVoteService { client, _ in
            let user = try TestUser()
            func problemFields(_ json: String) async throws -> [String] {
                let response = try await client.send(.post, "/polls", json: json, token: user.token)
                #expect(response.status == .badRequest, "\(json)")
                #expect(response.headers[.contentType] == "application/problem+json")
                let problem = try response.problem
                #expect(problem.code == "validation_failed")
                return problem.errors?.map(\.field) ?? []
            }
            #expect(try await problemFields(pollJSON(title: "   ", candidates: ["a", "b"])) == ["title"])
            #expect(try await problemFields(pollJSON(title: String(repeating: "t", count: 201), candidates: ["a", "b"])) == ["title"])
            #expect(try await problemFields(pollJSON(title: "One", candidates: ["only"])) == ["candidates"])
            #expect(try await problemFields(pollJSON(title: "None", candidates: [])) == ["candidates"])
            let fiftyOne = (0...50).map { "c\($0)" }
            #expect(try await problemFields(pollJSON(title: "Many", candidates: fiftyOne)) == ["candidates"])
            #expect(try await problemFields(pollJSON(title: "Blank", candidates: ["a", "  ", "b"])) == ["candidates.1"])
            #expect(try await problemFields(pollJSON(title: "Long", candidates: ["a", String(repeating: "n", count: 101)])) == ["candidates.1"])
            #expect(try await problemFields(pollJSON(title: "Dupes", candidates: ["Yes", "no", " YES "])) == ["candidates"])
            let past = Date.now.addingTimeInterval(-60).ISO8601Format()
            #expect(try await problemFields(pollJSON(title: "Past", candidates: ["a", "b"], closesAt: past)) == ["closesAt"])
            #expect(try await problemFields(pollJSON(title: "Bad date", candidates: ["a", "b"], closesAt: "tomorrow")) == ["closesAt"])
            #expect(try await problemFields(#"{"candidates": ["a", "b"]}"#) == ["title"])
            #expect(try await problemFields(#"{"title": "x", "candidates": "a,b"}"#) == ["candidates"])
        }
    }

    @Test func limitsAtTheEdgesAreAccepted() async throws {
        try await withVoteService { client, _ in
            let user = try TestUser()
            let fifty = (1...50).map { "Candidate \($0)" }
            let poll = try await client.createPoll(user, title: String(repeating: "t", count: 200), candidates: fifty)
            #expect(poll.candidates.map(\.name) == fifty)  // order kept
            let names = [String(repeating: "a", count: 100), "b"]
            #expect(try await client.createPoll(user, title: "x", candidates: names).candidates.map(\.name) == names)
        }
    }

    @Test func creatingNeedsAValidToken() async throws {
        try await withVoteService { client, _ in
            let json = pollJSON(title: "x", candidates: ["a", "b"])
            let anonymous = try await client.send(.post, "/polls", json: json)
            #expect(anonymous.status == .unauthorized)
            #expect(anonymous.headers[.wwwAuthenticate] == "Bearer")
            let forged = try await client.send(.post, "/polls", json: json, token: "not.a.token")
            #expect(forged.status == .unauthorized)
            #expect(try forged.problem.code == "invalid_token")
            let service = try await client.send(.post, "/polls", json: json, token: try TestEnvironment.serviceToken(to: "vote"))
            #expect(service.status == .unauthorized)
            let form = try await client.send(
                .post, "/polls", json: "title=x", token: try TestUser().token,
                headers: [.contentType: "application/x-www-form-urlencoded"])
            #expect(form.status == .unsupportedMediaType)
        }
    }

    @Test func getShowsMyVoteOnlyWithAToken() async throws {
        try await withVoteService { client, _ in
            let owner = try TestUser()
            let voter = try TestUser()
            let poll = try await client.createPoll(owner)
            #expect(try await client.vote(voter, poll: poll.id, candidate: poll.candidates[1].id).status == .created)

            #expect(try await client.poll(poll.id, as: voter).myVote == poll.candidates[1].id)
            #expect(try await client.poll(poll.id, as: owner).myVote == nil)
            let anonymous = try await client.poll(poll.id)
            #expect(anonymous.myVote == nil)
            #expect(anonymous.counts == [0, 1, 0])
            #expect(anonymous.totalVotes == 1)
            // A token that is sent must be valid, even where it is optional.
            let bad = try await client.send(.get, "/polls/\(poll.id)", token: "garbage")
            #expect(bad.status == .unauthorized)
            #expect(bad.headers[.wwwAuthenticate] == #"Bearer error="invalid_token""#)
        }
    }

    @Test func unknownAndMalformedPollIDs() async throws {
        try await withVoteService { client, _ in
            let user = try TestUser()
            let unknown = try await client.send(.get, "/polls/\(UUID())")
            #expect(unknown.status == .notFound)
            #expect(try unknown.problem.code == "poll_not_found")
            // A malformed id names no poll either: the same 404 on every route.
            let malformed = try await client.send(.get, "/polls/not-a-uuid", headers: [.requestID: "bad-id-1"])
            #expect(malformed.status == .notFound)
            let problem = try malformed.problem
            #expect(problem.code == "poll_not_found")
            #expect(problem.requestId == "bad-id-1")
            for (method, path) in [(HTTPRequest.Method.delete, "/polls/x"), (.post, "/polls/x/votes"), (.delete, "/polls/x/votes/me"), (.get, "/polls/x/events")] {
                let response = try await client.send(method, path, json: method == .post ? #"{"candidateId": "\#(UUID())"}"# : nil, token: user.token)
                #expect(response.status == .notFound, "\(method) \(path)")
            }
        }
    }

    @Test func deleteIsForTheCreatorOnly() async throws {
        try await withVoteService { client, _ in
            let owner = try TestUser()
            let other = try TestUser()
            let poll = try await client.createPoll(owner)
            #expect(try await client.vote(other, poll: poll.id, candidate: poll.candidates[0].id).status == .created)

            let forbidden = try await client.send(.delete, "/polls/\(poll.id)", token: other.token)
            #expect(forbidden.status == .forbidden)
            #expect(try forbidden.problem.code == "forbidden")
            #expect(try await client.send(.delete, "/polls/\(poll.id)").status == .unauthorized)

            let deleted = try await client.send(.delete, "/polls/\(poll.id)", token: owner.token)
            #expect(deleted.status == .noContent)
            #expect(deleted.body.readableBytes == 0)
            #expect(try await client.send(.get, "/polls/\(poll.id)").status == .notFound)
            let again = try await client.send(.delete, "/polls/\(poll.id)", token: owner.token)
            #expect(again.status == .notFound)
            #expect(try again.problem.code == "poll_not_found")
            // Its votes went with it: voting there now is a 404 too.
            #expect(try await client.vote(other, poll: poll.id, candidate: poll.candidates[0].id).status == .notFound)
        }
    }
}

@Suite("Vote: listing polls")
struct PollListTests {
    @Test func newestFirstWithKeysetPages() async throws {
        try await withVoteService { client, _ in
            let user = try TestUser()
            var created: [UUID] = []
            for index in 0..<5 {
                created.append(try await client.createPoll(user, title: "Poll \(index)").id)
            }
            let newestFirst = Array(created.reversed())

            let first = try await client.send(.get, "/polls?limit=2")
            #expect(first.status == .ok)
            let page1 = try first.decode(PollPageDTO.self)
            #expect(page1.items.map(\.id) == Array(newestFirst[0..<2]))
            let cursor1 = try #require(page1.nextCursor)

            // A poll created now is newer than the cursor and does not disturb the next pages.
            _ = try await client.createPoll(user, title: "Late")

            let page2 = try await client.send(.get, "/polls?limit=2&cursor=\(cursor1)").decode(PollPageDTO.self)
            #expect(page2.items.map(\.id) == Array(newestFirst[2..<4]))
            let cursor2 = try #require(page2.nextCursor)
            let last = try await client.send(.get, "/polls?limit=2&cursor=\(cursor2)")
            let page3 = try last.decode(PollPageDTO.self)
            #expect(page3.items.map(\.id) == [newestFirst[4]])
            #expect(page3.nextCursor == nil)
            #expect(try last.json["nextCursor"] == .null)

            let everything = try await client.send(.get, "/polls").decode(PollPageDTO.self)
            #expect(everything.items.count == 6)
            #expect(everything.items.first?.title == "Late")
            #expect(everything.nextCursor == nil)
        }
    }

    @Test func pagesSplitPollsCreatedInTheSameMicrosecond() async throws {
        try await withVoteService { client, databaseURL in
            let user = try TestUser()
            for index in 0..<4 { _ = try await client.createPoll(user, title: "Same \(index)") }
            // Equal timestamps: the id breaks the tie, so no poll is skipped or repeated.
            try await runSQL("UPDATE polls SET created_at = '2026-01-01T00:00:00.123456Z'", on: databaseURL)
            var seen: [UUID] = []
            var cursor: String?
            repeat {
                let path = "/polls?limit=1" + (cursor.map { "&cursor=\($0)" } ?? "")
                let page = try await client.send(.get, path).decode(PollPageDTO.self)
                seen += page.items.map(\.id)
                cursor = page.nextCursor
            } while cursor != nil && seen.count < 10
            #expect(seen.count == 4)
            #expect(Set(seen).count == 4)
            #expect(seen == seen.sorted { $0.uuidString.lowercased() > $1.uuidString.lowercased() })
        }
    }

    @Test func listShowsCountsAndMyVote() async throws {
        try await withVoteService { client, _ in
            let owner = try TestUser()
            let voter = try TestUser()
            let poll = try await client.createPoll(owner)
            _ = try await client.createPoll(owner, title: "Other")
            #expect(try await client.vote(voter, poll: poll.id, candidate: poll.candidates[2].id).status == .created)

            let mine = try await client.send(.get, "/polls", token: voter.token).decode(PollPageDTO.self)
            let listed = try #require(mine.items.first { $0.id == poll.id })
            #expect(listed.myVote == poll.candidates[2].id)
            #expect(listed.counts == [0, 0, 1])
            #expect(listed.totalVotes == 1)
            #expect(mine.items.first { $0.id != poll.id }?.myVote == nil)
            let anonymous = try await client.send(.get, "/polls").decode(PollPageDTO.self)
            #expect(anonymous.items.allSatisfy { $0.myVote == nil })
        }
    }

    @Test func badLimitsAndCursorsAre400() async throws {
        try await withVoteService { client, _ in
            for query in ["limit=0", "limit=101", "limit=-1", "limit=ten", "limit="] {
                let response = try await client.send(.get, "/polls?\(query)")
                #expect(response.status == .badRequest, "\(query)")
                #expect(try response.problem.errors?.map(\.field) == ["limit"], "\(query)")
            }
            // Not base64url, wrong length, another version, another service's idea of a cursor.
            let wrongVersion = Base64URL.encode([2] + [UInt8](repeating: 0, count: 24))
            for cursor in ["nope!", "AAAA", wrongVersion, Base64URL.encode("2026-01-01T00:00:00Z")] {
                let response = try await client.send(.get, "/polls?cursor=\(cursor)")
                #expect(response.status == .badRequest, "\(cursor)")
                #expect(try response.problem.errors?.map(\.field) == ["cursor"])
            }
            #expect(try await client.send(.get, "/polls?limit=1").status == .ok)
            #expect(try await client.send(.get, "/polls?limit=100").status == .ok)
        }
    }
}
