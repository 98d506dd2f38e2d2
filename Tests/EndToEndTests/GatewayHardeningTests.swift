import AsyncHTTPClient
import Dispatch
import Foundation
import NIOCore
import NIOHTTP1
import Shared
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The gateway's own answers, sent over raw sockets where a client library would refuse or
/// rewrite the request (malformed request lines, huge header lines, dot segments), and the
/// per-address limits, each from a source address of its own (127.0.0.8x) so that they never
/// touch the rest of the suite (which runs from 127.0.0.1).
@Suite("End to end: gateway hardening")
struct GatewayHardeningTests {
    /// Checks what every error the gateway produces itself has: problem+json of the shared
    /// shape with the request id, nosniff and no-store.
    static func expectGatewayProblem(
        _ reply: RawReply, status: Int, code: String, _ what: String, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(reply.status == status, "\(what): \(reply.head)", sourceLocation: sourceLocation)
        #expect(reply.header("Content-Type") == "application/problem+json", "\(what)", sourceLocation: sourceLocation)
        #expect(reply.header("X-Content-Type-Options") == "nosniff", "\(what)", sourceLocation: sourceLocation)
        #expect(reply.header("Cache-Control") == "no-store", "\(what)", sourceLocation: sourceLocation)
        guard let problem = try? reply.json else {
            Issue.record("\(what): not a JSON object: \(String(decoding: reply.body.prefix(300), as: UTF8.self))", sourceLocation: sourceLocation)
            return
        }
        #expect(problem["status"] == .number(Double(status)), "\(what)", sourceLocation: sourceLocation)
        #expect(problem["code"] == .string(code), "\(what)", sourceLocation: sourceLocation)
        #expect(problem["type"] != nil && problem["title"] != nil && problem["detail"] != nil, "\(what)", sourceLocation: sourceLocation)
        let id = reply.header("X-Request-ID")
        #expect(id != nil && problem["requestId"] == .string(id ?? ""), "\(what)", sourceLocation: sourceLocation)
    }

    @Test func nginxOwnErrorsAreProblemJSON() async throws {
        _ = try GatewayClient()
        let cases: [(String, [UInt8], Int, String)] = [
            ("a malformed request line", Array("GARBAGE\r\n\r\n".utf8), 400, "bad_request"),
            ("a malformed header", Array("GET /feeds HTTP/1.1\r\nHost: gateway\r\nno colon here\r\n\r\n".utf8), 400, "bad_request"),
            ("no Host header", Array("GET /feeds HTTP/1.1\r\n\r\n".utf8), 400, "bad_request"),
            ("a 1 MB header line", Array("GET /feeds HTTP/1.1\r\nHost: gateway\r\nX-Big: \(String(repeating: "a", count: 1 << 20))\r\n\r\n".utf8),
             431, "headers_too_large"),
            ("a 20 kB request line", Array("GET /feeds/\(String(repeating: "a", count: 20_000)) HTTP/1.1\r\nHost: gateway\r\n\r\n".utf8),
             414, "uri_too_long"),
            ("TRACE", Array("TRACE /feeds HTTP/1.1\r\nHost: gateway\r\n\r\n".utf8), 405, "method_not_allowed"),
            ("an unknown Transfer-Encoding", Array("POST /feeds HTTP/1.1\r\nHost: gateway\r\nTransfer-Encoding: gzip\r\n\r\n".utf8),
             501, "not_implemented"),
            ("HTTP/3.0 on HTTP/1", Array("GET /feeds HTTP/3.0\r\nHost: gateway\r\n\r\n".utf8), 505, "http_version_not_supported"),
        ]
        for (what, request, status, code) in cases {
            let reply = try await RawHTTP.exchange(request)
            Self.expectGatewayProblem(reply, status: status, code: code, what)
        }
        // A client's plain request id is echoed in these too, when the header was read.
        let withID = try await RawHTTP.exchange(Array("TRACE /feeds HTTP/1.1\r\nHost: gateway\r\nX-Request-ID: e2e-trace-id\r\n\r\n".utf8))
        #expect(try withID.json["requestId"] == .string("e2e-trace-id"))
        // The existing gateway errors carry the same headers.
        let notFound = try await RawHTTP.exchange(Array("GET /nowhere HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n".utf8))
        Self.expectGatewayProblem(notFound, status: 404, code: "not_found", "an unknown route")
        // The error pages' own locations are not reachable from outside.
        let internalPage = try await RawHTTP.exchange(Array("GET /_gateway/error/500 HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n".utf8))
        Self.expectGatewayProblem(internalPage, status: 404, code: "not_found", "an error page's location")
    }

    @Test func dotSegmentsAndEncodedSlashesAreRefusedBeforeRouting() async throws {
        _ = try GatewayClient()
        let targets = [
            "/feeds/..%2f..%2finternal/x", "/feeds/..%2F..%2Finternal/x", "/feeds/../internal/x", "/feeds/../../internal/x",
            "/feeds/./x", "/feeds/%2e%2e/internal/x", "/feeds/%2E%2E/x", "/feeds/.%2e/x", "/feeds/%2e/x", "/feeds/..",
            "/feeds/x/..?limit=1", "/feeds/a%2Fb", "/feeds/a%2fb/images/c", "/polls/x%2Fy/events", "/recordings/%2e%2e%2finternal",
            "/auth/./login", "/internal/../feeds", "/%2e%2e/internal/users",
        ]
        for target in targets {
            let reply = try await RawHTTP.exchange(
                Array("GET \(target) HTTP/1.1\r\nHost: gateway\r\nX-Request-ID: e2e-target\r\nConnection: close\r\n\r\n".utf8))
            Self.expectGatewayProblem(reply, status: 400, code: "bad_request_target", target)
            // nginx refuses a target that climbs above the root ("/feeds/../../x") before it
            // reads the headers, so those carry the gateway's own id; the others echo ours.
            if !["/feeds/..%2f..%2finternal/x", "/feeds/..%2F..%2Finternal/x", "/feeds/../../internal/x", "/%2e%2e/internal/users"].contains(target) {
                #expect(try reply.json["requestId"] == .string("e2e-target"), "\(target)")
            }
        }
        // Whatever the method: a POST is refused the same way, a HEAD without a body.
        let post = try await RawHTTP.exchange(
            Array("POST /auth/..%2Flogin HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}".utf8))
        Self.expectGatewayProblem(post, status: 400, code: "bad_request_target", "POST /auth/..%2Flogin")
        let head = try await RawHTTP.exchange(Array("HEAD /feeds/%2e%2e/x HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n".utf8), head: true)
        #expect(head.status == 400)
        #expect(head.body.isEmpty)

        // Dots inside a segment and anything in the query are the services' business.
        for target in ["/feeds?cursor=a%2Fb/../..", "/feeds/.well-known", "/feeds/a..b", "/feeds?author=%2e%2e"] {
            let reply = try await RawHTTP.exchange(Array("GET \(target) HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n".utf8))
            #expect((try? reply.json["code"]) != .string("bad_request_target"), "\(target): \(reply.head)")
            #expect(reply.status != 502 && reply.status < 500, "\(target): \(reply.head)")
        }
    }

    /// Sends `request` from `address` in concurrent waves until the gateway answers 429 (at
    /// most `attempts` requests); every other answer must be one of `allowed`. Waves, not one
    /// request after another: on a loaded machine a slow route (bcrypt) may otherwise never
    /// outrun the limit's refill rate.
    /// A keep-alive connection that the gateway closed as a request went out on it fails that
    /// request with `remoteConnectionClosed` and no answer (ci20, under a wave of 25): the
    /// attempt is sent again, as a client would; an answer of any status is kept as it is.
    static func resendingOnClosedConnection(_ send: @Sendable () async throws -> Reply) async throws -> Reply {
        for _ in 0..<2 {
            do {
                return try await send()
            } catch let error as HTTPClientError where error == .remoteConnectionClosed {
                continue
            }
        }
        return try await send()
    }

    static func untilLimited(
        from address: String, attempts: Int = 300, wave: Int = 25, allowed: Set<Int>,
        sourceLocation: SourceLocation = #_sourceLocation,
        _ request: @escaping @Sendable (GatewayClient) async throws -> Reply
    ) async throws -> Reply? {
        var configuration = HTTPClient.Configuration()
        configuration.localAddress = address
        // A wave really at once: the default pool sends 8 at a time, and on a loaded machine
        // 8 slow requests at a time can stay under the limit's rate for all the attempts.
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: wave)
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        do {
            let client = try GatewayClient(http: http)
            for _ in 0..<(attempts / wave) {
                let replies = try await withThrowingTaskGroup(of: Reply.self) { group in
                    for _ in 0..<wave { group.addTask { try await resendingOnClosedConnection { try await request(client) } } }
                    return try await group.reduce(into: [Reply]()) { $0.append($1) }
                }
                for reply in replies where reply.status != 429 {
                    #expect(allowed.contains(reply.status), "unexpected \(reply.status) before the limit", sourceLocation: sourceLocation)
                }
                if let limited = replies.first(where: { $0.status == 429 }) {
                    try await http.shutdown()
                    return limited
                }
            }
        } catch {
            try await http.shutdown()
            throw error
        }
        try await http.shutdown()
        return nil
    }

    static func expectRateLimited(_ reply: Reply?, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let reply = try #require(reply, "\(what): no 429 after 300 requests", sourceLocation: sourceLocation)
        #expect(reply.headers.first(name: "Content-Type") == "application/problem+json", sourceLocation: sourceLocation)
        #expect(reply.headers.first(name: "Retry-After") != nil, "\(what)", sourceLocation: sourceLocation)
        #expect(reply.headers.first(name: "X-Content-Type-Options") == "nosniff", "\(what)", sourceLocation: sourceLocation)
        #expect(reply.headers.first(name: "Cache-Control") == "no-store", "\(what)", sourceLocation: sourceLocation)
        #expect(try reply.json["code"] == .string("rate_limited"), "\(what)", sourceLocation: sourceLocation)
        #expect(try reply.json["requestId"] == .string(reply.headers.first(name: "X-Request-ID") ?? "-"), "\(what)", sourceLocation: sourceLocation)
    }

    /// A client that stops sending its header or its body is cut off after
    /// GATEWAY_CLIENT_TIMEOUT (5 s in the test stack): nginx logs 408 and closes, and no
    /// nginx page goes out.
    @Test(arguments: [
        "GET /polls HTTP/1.1\r\nHost: gateway\r\n",
        "POST /polls HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"title\":",
    ])
    func aStalledRequestIsClosed(partial: String) async throws {
        let received = try await RawHTTP.onBlockingThread {
            let connection = try RawConnection(source: nil, timeoutSeconds: 60)
            defer { connection.close() }
            connection.write(Array(partial.utf8))
            return connection.readUntilClosed()
        }
        let bytes = try #require(received, "the gateway kept a stalled request open for 60 s")
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(!text.lowercased().contains("<html"), "\(text)")
        if !bytes.isEmpty { #expect(text.contains("application/problem+json"), "\(text)") }
    }

    @Test func tokenRefreshIsRateLimitedPerClientAddress() async throws {
        let limited = try await Self.untilLimited(from: "127.0.0.80", allowed: [401]) { client in
            try await client.send(.POST, "/auth/refresh", json: #"{"refreshToken":"not-a-refresh-token"}"#)
        }
        try Self.expectRateLimited(limited, "POST /auth/refresh")
        // Other clients are not affected.
        let other = try await GatewayClient().send(.POST, "/auth/refresh", json: #"{"refreshToken":"not-a-refresh-token"}"#)
        #expect(other.status == 401)
    }

    @Test func profileChangesAreRateLimitedPerClientAddressButReadsAreNot() async throws {
        let limited = try await Self.untilLimited(from: "127.0.0.81", allowed: [401]) { client in
            try await client.send(.PATCH, "/auth/me", json: #"{"name":"Limited"}"#)
        }
        try Self.expectRateLimited(limited, "PATCH /auth/me")
        // GET /auth/me from the same address is not counted.
        var configuration = HTTPClient.Configuration()
        configuration.localAddress = "127.0.0.81"
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let read: Reply
        do { read = try await GatewayClient(http: http).send(.GET, "/auth/me") } catch {
            try await http.shutdown()
            throw error
        }
        try await http.shutdown()
        #expect(read.status == 401)
    }

    @Test func passwordForgotAndResetAreRateLimitedPerClientAddress() async throws {
        // The routes may not exist in auth yet (404); the gateway limits them all the same.
        let limited = try await Self.untilLimited(from: "127.0.0.82", allowed: [202, 400, 404]) { client in
            try await client.send(.POST, "/auth/password/reset", json: #"{"token":"not-a-reset-token","password":"new password 1"}"#)
        }
        try Self.expectRateLimited(limited, "POST /auth/password/reset")
        let forgot = try await Self.untilLimited(from: "127.0.0.84", allowed: [202, 400, 404]) { client in
            try await client.send(.POST, "/auth/password/forgot", json: #"{"email":"limited@example.com"}"#)
        }
        try Self.expectRateLimited(forgot, "POST /auth/password/forgot")
    }

    @Test func concurrentEventStreamsAreCappedPerClientAddress() async throws {
        let client = try GatewayClient()
        let owner = try await client.signup(name: "Stream Owner")
        let created = try await client.send(.POST, "/polls", json: #"{"title":"Streams","candidates":["A","B"]}"#, token: owner.accessToken)
        #expect(created.status == 201)
        let pollID = try #require(try created.json["id"]?.stringValue)
        let request = Array("GET /polls/\(pollID)/events HTTP/1.1\r\nHost: gateway\r\nAccept: text/event-stream\r\n\r\n".utf8)

        let (opened, refused, other) = try await RawHTTP.onBlockingThread { () throws -> (Int, RawReply?, RawReply) in
            var streams: [RawConnection] = []
            defer { for stream in streams { stream.close() } }
            var refused: RawReply?
            for _ in 0..<200 {
                let connection = try RawConnection(source: "127.0.0.83")
                connection.write(request)
                let reply = try connection.readReply(untilHeadOnly: true)
                if reply.status != 200 {
                    refused = try connection.readReply(continuing: reply)
                    connection.close()
                    break
                }
                streams.append(connection)
            }
            // While this address is at its cap, another one still gets a stream.
            let elsewhere = try RawConnection(source: nil)
            defer { elsewhere.close() }
            elsewhere.write(request)
            return (streams.count, refused, try elsewhere.readReply(untilHeadOnly: true))
        }
        let reply = try #require(refused, "no refusal after 200 open streams")
        #expect(opened >= 1)
        Self.expectGatewayProblem(reply, status: 429, code: "rate_limited", "stream \(opened + 1)")
        #expect(reply.header("Retry-After") != nil)
        #expect(other.status == 200)
    }
}

extension RawConnection {
    /// A connection to the stack's gateway, from `source` when given (its own rate-limit budget).
    convenience init(source: String?, timeoutSeconds: Int = 10) throws {
        let gateway = try Stack.gateway
        guard let url = URL(string: gateway), let host = url.host, let port = url.port else {
            throw RawSocketError(description: "no host:port in E2E_GATEWAY_URL: \(gateway)")
        }
        try self.init(host: host, port: port, source: source, timeoutSeconds: timeoutSeconds)
    }
}

extension RawHTTP {
    /// Sends `request` on a new connection to the gateway and reads one reply.
    static func exchange(_ request: [UInt8], from source: String? = nil, head: Bool = false) async throws -> RawReply {
        try await onBlockingThread {
            let connection = try RawConnection(source: source)
            defer { connection.close() }
            connection.write(request)
            return try connection.readReply(head: head)
        }
    }
}
