import AsyncHTTPClient
import Foundation
import PostgresNIO
import NIOCore
import NIOHTTP1
import Shared
import TestSupport
import Testing

@Suite("End to end: gateway")
struct GatewayTests {
    /// The stack runs every service: one that is missing (its binary not built, its URL not
    /// exported) fails here, by name, instead of its tests being skipped.
    @Test func theStackRunsEveryService() async throws {
        _ = try Stack.gateway
        _ = try Stack.logDirectory
        let urls = try Stack.services.map { ($0, try Stack.require($0)) }
        for (service, url) in urls {
            let ready = try await GatewayClient(base: url).send(.GET, "/ready")
            #expect(ready.status == 200, "\(service) at \(url) is not ready: \(ready.status)")
        }
    }

    @Test func unknownAndInternalRoutesAreProblemJSON() async throws {
        let client = try GatewayClient()
        for path in ["/nowhere", "/internal/users?ids=\(UUID())", "/internal", "/health"] {
            let reply = try await client.send(.GET, path, headers: [("X-Request-ID", "e2e-404-check")])
            #expect(reply.status == 404, "\(path)")
            #expect(reply.headers.first(name: "Content-Type") == "application/problem+json")
            let problem = try reply.json
            #expect(problem["code"] == .string("not_found"))
            #expect(problem["requestId"] == .string("e2e-404-check"))
            #expect(reply.headers.first(name: "X-Request-ID") == "e2e-404-check")
        }
        let head = try await client.send(.HEAD, "/nowhere")
        #expect(head.status == 404)
        #expect(head.body.isEmpty)
    }

    @Test func oversizedJSONBodiesAreRefusedByTheGateway() async throws {
        let client = try GatewayClient()
        let reply = try await client.send(.POST, "/auth/login", json: String(repeating: " ", count: 2 << 20))
        #expect(reply.status == 413)
        #expect(try reply.json["code"] == .string("payload_too_large"))
    }

    @Test func requestIDsAreSetPassedOnAndLogged() async throws {
        let client = try GatewayClient()
        let generated = try await client.send(.POST, "/auth/login", json: #"{"email":"nobody@example.com","password":"whatever1"}"#)
        #expect(generated.status == 401)
        let generatedID = try #require(generated.headers.first(name: "X-Request-ID"))
        #expect(try generated.json["requestId"] == .string(generatedID))

        let id = "e2e-\(UUID().apiString)"
        let session = try await client.signup()
        let me = try await client.send(.GET, "/auth/me", token: session.accessToken, headers: [("X-Request-ID", id)])
        #expect(me.status == 200)
        #expect(me.headers.first(name: "X-Request-ID") == id)
        try await eventually { try logLines(of: "auth").contains { $0.contains(id) } }
        try await eventually { try logLines(of: "gateway").contains { $0.contains("rid=\(id)") } }

        // Vote and recording log the id of the requests they serve, too.
        let voteID = "e2e-\(UUID().apiString)"
        let polls = try await client.send(.GET, "/polls", token: session.accessToken, headers: [("X-Request-ID", voteID)])
        #expect(polls.status == 200)
        #expect(polls.headers.first(name: "X-Request-ID") == voteID)
        let recordingID = "e2e-\(UUID().apiString)"
        let recordings = try await client.send(.GET, "/recordings", token: session.accessToken, headers: [("X-Request-ID", recordingID)])
        #expect(recordings.status == 200)
        #expect(recordings.headers.first(name: "X-Request-ID") == recordingID)
        try await eventually { try logLines(of: "vote").contains { $0.contains(voteID) } }
        try await eventually { try logLines(of: "recording").contains { $0.contains(recordingID) } }
        try await eventually { try logLines(of: "gateway").contains { $0.contains("rid=\(voteID)") } }
        try await eventually { try logLines(of: "gateway").contains { $0.contains("rid=\(recordingID)") } }

        // A request that crosses services: feed asks auth for the name of an author it has
        // never seen (a post written before feed kept names: here straight into its
        // database), forwarding the id; both services log it.
        let author = try await client.signup(name: "Traced")
        try await TestDatabase.withClient(try Stack.databaseURL("feed")) { feed in
            try await feed.query("INSERT INTO feeds (id, author_id, title, content) VALUES (\(UUID()), \(UUID(uuidString: author.user.id)!), 't', 'c')").consume()
        }
        let crossing = "e2e-\(UUID().apiString)"
        let page = try await client.send(.GET, "/feeds?author=\(author.user.id)", headers: [("X-Request-ID", crossing)])
        #expect(page.status == 200)
        #expect(try page.json["items"]?.arrayValue?.first?.objectValue?["author"]?.objectValue?["name"] == .string("Traced"))
        try await eventually { try logLines(of: "auth").contains { $0.contains(crossing) } }
        try await eventually { try logLines(of: "feed").contains { $0.contains(crossing) } }
    }

    @Test func corsPreflightOnEveryPublicRoute() async throws {
        let client = try GatewayClient()
        let routes = [("auth", "POST", "/auth/login"), ("auth", "GET", "/auth/me"), ("auth", "PATCH", "/auth/me"), ("vote", "GET", "/polls"),
                      ("recording", "POST", "/recordings"), ("feed", "DELETE", "/feeds/\(UUID())")]
        for (service, method, path) in routes {
            _ = try Stack.require(service)
            let reply = try await client.send(.OPTIONS, path, headers: [
                ("Origin", "https://app.example"), ("Access-Control-Request-Method", method),
                ("Access-Control-Request-Headers", "authorization, content-type"),
            ])
            #expect(reply.status == 204, "\(method) \(path)")
            #expect(reply.headers.first(name: "Access-Control-Allow-Origin") != nil, "\(method) \(path)")
            #expect(reply.headers.first(name: "Access-Control-Allow-Methods")?.contains(method) == true, "\(method) \(path)")
        }
    }

    @Test func loginIsRateLimitedPerClientAddress() async throws {
        // A source address of its own, so the limit does not touch the rest of the suite; an
        // e-mail per attempt, so that auth's per-account throttle is not what answers; no
        // password, so each attempt is a quick 400 (the gateway counts every attempt alike).
        let limited = try await GatewayHardeningTests.untilLimited(from: "127.0.0.77", allowed: [400]) { client in
            try await client.send(.POST, "/auth/login", json: #"{"email":"rate-\#(UUID())@example.com"}"#)
        }
        try GatewayHardeningTests.expectRateLimited(limited, "POST /auth/login")
        // Other clients are not affected.
        let other = try await GatewayClient().send(.POST, "/auth/login", json: #"{"email":"rate-\#(UUID())@example.com","password":"whatever1"}"#)
        #expect(other.status == 401)
    }
}
