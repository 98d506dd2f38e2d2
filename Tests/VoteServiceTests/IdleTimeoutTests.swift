import Foundation
import HummingbirdTesting
import Shared
import TestSupport
import Testing

@testable import VoteService

/// A client that stops sending mid-request must not hold a connection for ever, and one that
/// leaves mid-body is its own fault (`400`), never the `500` path.
@Suite("Service: idle timeout and truncated bodies")
struct IdleTimeoutTests {
    static let partialPoll = "POST /polls HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"title\":"

    @Test func aStalledRequestBodyIsClosedAfterTheIdleTimeout() async throws {
        try await withVoteService(live: true, extra: ["HTTP_IDLE_TIMEOUT_SECONDS": "1"]) { client, _ in
            let port = try #require(client.port)
            // Headers announce 100 bytes; 10 arrive, then nothing.
            let closed = try await RawHTTP.onBlockingThread {
                let connection = try RawConnection(host: "127.0.0.1", port: port, timeoutSeconds: 20)
                defer { connection.close() }
                connection.write(Array(Self.partialPoll.utf8))
                return connection.readUntilClosed() != nil
            }
            #expect(closed)
        }
    }

    @Test func aBodyCutShortIsABadRequest() async throws {
        try await withVoteService(live: true) { client, _ in
            let port = try #require(client.port)
            let token = try TestUser().token
            let reply = try await RawHTTP.onBlockingThread {
                let connection = try RawConnection(host: "127.0.0.1", port: port)
                defer { connection.close() }
                let request = Self.partialPoll.replacingOccurrences(of: "Host: test\r\n", with: "Host: test\r\nAuthorization: Bearer \(token)\r\n")
                connection.write(Array(request.utf8))
                connection.shutdownWrite()
                return try connection.readReply()
            }
            #expect(reply.status == 400)
            #expect(reply.header("Content-Type") == "application/problem+json")
            #expect(try reply.json["code"] == .string("incomplete_body"))
        }
    }
}
