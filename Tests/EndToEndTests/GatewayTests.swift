import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Shared
import TestSupport
import Testing

@Suite("End to end: gateway", .enabled(if: Stack.isRunning, "needs the stack from `make test`"))
struct GatewayTests {
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

        // A request that crosses services: the feed list asks auth for the author's name
        // (a fresh author, so not cached), forwarding the id; both services log it.
        let author = try await client.signup(name: "Traced")
        #expect(try await client.send(.POST, "/feeds", json: #"{"title":"t","content":"c"}"#, token: author.accessToken).status == 201)
        try await Task.sleep(for: .milliseconds(1500))  // past the test stack's 1 s author-name cache
        let crossing = "e2e-\(UUID().apiString)"
        let page = try await client.send(.GET, "/feeds?author=\(author.user.id)", headers: [("X-Request-ID", crossing)])
        #expect(page.status == 200)
        try await eventually { try logLines(of: "feed").contains { $0.contains(crossing) } }
        try await eventually { try logLines(of: "auth").contains { $0.contains(crossing) } }
    }

    @Test func corsPreflightOnEveryPublicRoute() async throws {
        let client = try GatewayClient()
        let routes = [("auth", "POST", "/auth/login"), ("auth", "GET", "/auth/me"), ("auth", "PATCH", "/auth/me"), ("vote", "GET", "/polls"),
                      ("recording", "POST", "/recordings"), ("feed", "DELETE", "/feeds/\(UUID())")]
        // Routes of services this checkout does not have yet answer 502.
        for (service, method, path) in routes where Stack.has(service) {
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
        // A source address of its own, so the limit does not touch the rest of the suite.
        var configuration = HTTPClient.Configuration()
        configuration.localAddress = "127.0.0.77"
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let client = try GatewayClient(http: http)
        var limited: Reply?
        do {
            for _ in 0..<300 {
                let reply = try await client.send(.POST, "/auth/login", json: #"{"email":"rate@example.com","password":"whatever1"}"#)
                if reply.status == 429 { limited = reply; break }
                #expect(reply.status == 401)
            }
        } catch {
            try await http.shutdown()
            throw error
        }
        try await http.shutdown()
        let reply = try #require(limited, "no 429 after 300 logins")
        #expect(reply.headers.first(name: "Retry-After") != nil)
        #expect(try reply.json["code"] == .string("rate_limited"))
        // Other clients are not affected.
        let other = try await GatewayClient().send(.POST, "/auth/login", json: #"{"email":"rate@example.com","password":"whatever1"}"#)
        #expect(other.status == 401)
    }
}
