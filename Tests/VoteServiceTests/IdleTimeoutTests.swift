import Foundation
import HummingbirdTesting
import Shared
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

@testable import VoteService

/// A client that stops sending mid-request must not hold a connection for ever.
@Suite("Service: idle timeout")
struct IdleTimeoutTests {
    @Test func aStalledRequestBodyIsClosedAfterTheIdleTimeout() async throws {
        try await withVoteService(live: true, extra: ["HTTP_IDLE_TIMEOUT_SECONDS": "1"]) { client, _ in
            let port = try #require(client.port)
            // Headers announce 100 bytes; 10 arrive, then nothing.
            let outcome = try await Task.detached { try StalledClient.run(port: port, waitAtMost: 20) }.value
            #expect(outcome == .closedByServer)
        }
    }
}

/// A blocking socket on a detached task (a test's own thread; nothing else runs on it).
enum StalledClient {
    enum Outcome: Equatable { case closedByServer, stillOpen }

    static func run(port: Int, waitAtMost seconds: Int) throws -> Outcome {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
        let request = "POST /polls HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"title\":"
        _ = request.withCString { send(fd, $0, strlen($0), 0) }
        // Wait for the server to end the connection (a read returning 0 or an error after any reply).
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count == 0 { return .closedByServer }
            if count < 0 { return errno == EAGAIN || errno == EWOULDBLOCK ? .stillOpen : .closedByServer }
        }
    }
}
