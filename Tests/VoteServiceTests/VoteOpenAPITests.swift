import Foundation
import HTTPTypes
import HummingbirdTesting
import Shared
import TestSupport
import Testing

@testable import VoteService

/// The served OpenAPI document against the running service: every documented operation
/// is exercised, and every response (success and error) matches its documented schema,
/// including the `data` of the live-counts events.
@Suite("Vote: OpenAPI document")
struct VoteOpenAPITests {
    @Test func documentMatchesTheRunningService() async throws {
        try await withVoteService(live: true) { client, databaseURL in
            try await client.waitUntilReady()
            let check = try await ContractCheck(client: client)
            let owner = try TestUser()
            let voter = try TestUser()

            let created = try await check.call(.post, "/polls", json: pollJSON(title: "Doc", candidates: ["A", "B"]), token: owner.token)
            let poll = try created.decode(PollDTO.self)
            let closing = try await check.call(
                .post, "/polls", json: pollJSON(title: "Closing", candidates: ["A", "B"], closesAt: Date.now.addingTimeInterval(60).ISO8601Format()),
                token: owner.token
            ).decode(PollDTO.self)
            _ = try await check.call(.post, "/polls", json: pollJSON(title: "", candidates: ["A"]), token: owner.token)
            _ = try await check.call(.post, "/polls", json: pollJSON(title: "x", candidates: ["A", "B"]))
            _ = try await check.call(.get, "/polls")
            let page = try await check.call(.get, "/polls?limit=1", token: voter.token).decode(PollPageDTO.self)
            _ = try await check.call(.get, "/polls?limit=1&cursor=\(try #require(page.nextCursor))")
            _ = try await check.call(.get, "/polls?limit=500")
            _ = try await check.call(.get, "/polls", token: "bad")

            _ = try await check.call(.post, "/polls/\(poll.id)/votes", json: #"{"candidateId": "\#(poll.candidates[0].id)"}"#, token: voter.token)
            _ = try await check.call(.post, "/polls/\(poll.id)/votes", json: #"{"candidateId": "\#(poll.candidates[1].id)"}"#, token: voter.token)
            _ = try await check.call(.post, "/polls/\(poll.id)/votes", json: #"{"candidateId": "\#(UUID())"}"#, token: owner.token)
            _ = try await check.call(.post, "/polls/\(poll.id)/votes", json: #"{"candidateId": "x"}"#, token: owner.token)
            _ = try await check.call(.post, "/polls/\(poll.id)/votes", json: #"{"candidateId": "\#(poll.candidates[0].id)"}"#)
            _ = try await check.call(.get, "/polls/\(poll.id)", token: voter.token)
            _ = try await check.call(.get, "/polls/\(poll.id)")
            _ = try await check.call(.get, "/polls/\(UUID())")
            _ = try await check.call(.get, "/polls/nope")
            _ = try await check.call(.get, "/polls/\(poll.id)", token: "bad")

            // The event stream: its head against the document, its first event's data against PollCounts.
            try await withEventStream(port: client.port, poll: poll.id) { stream in
                check.record(check.contract.validate(
                    method: "GET", path: "/polls/\(poll.id)/events", status: Int(stream.status.code),
                    contentType: stream.headers.first(name: "Content-Type"), body: Data()))
                let frame = await stream.nextFrame()
                guard case .event(_, let data)? = frame else {
                    Issue.record("the stream did not start with an event")
                    return
                }
                check.record(check.contract.validate(json: Data(data.utf8), againstSchema: "PollCounts"))
            }
            _ = try await check.call(.get, "/polls/\(UUID())/events")
            _ = try await check.call(.get, "/polls/nope/events")
            _ = try await check.call(.get, "/polls/\(poll.id)/events", token: "bad")

            _ = try await check.call(.delete, "/polls/\(poll.id)/votes/me", token: voter.token)
            _ = try await check.call(.delete, "/polls/\(poll.id)/votes/me", token: voter.token)
            _ = try await check.call(.delete, "/polls/nope/votes/me", token: voter.token)
            _ = try await check.call(.delete, "/polls/\(poll.id)/votes/me")
            try await runSQL("UPDATE polls SET closes_at = now() - interval '1 second' WHERE id = '\(closing.id)'", on: databaseURL)
            _ = try await check.call(.post, "/polls/\(closing.id)/votes", json: #"{"candidateId": "\#(closing.candidates[0].id)"}"#, token: voter.token)
            _ = try await check.call(.delete, "/polls/\(closing.id)/votes/me", token: voter.token)

            _ = try await check.call(.delete, "/polls/\(poll.id)", token: voter.token)
            _ = try await check.call(.delete, "/polls/\(poll.id)")
            _ = try await check.call(.delete, "/polls/nope", token: owner.token)
            _ = try await check.call(.delete, "/polls/\(poll.id)", token: owner.token)
            _ = try await check.call(.delete, "/polls/\(poll.id)", token: owner.token)

            try await check.callUserEvents(of: "vote", deleting: voter.id, userToken: voter.token)
            _ = try await check.call(.get, "/health")
            _ = try await check.call(.get, "/ready")
            _ = try await check.call(.get, "/metrics")

            #expect(check.problems == [])
            #expect(check.untestedOperations.isEmpty, "documented but not exercised: \(check.untestedOperations.sorted())")
        }
    }
}
