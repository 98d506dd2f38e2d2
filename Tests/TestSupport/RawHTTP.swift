import Foundation
import Shared

#if canImport(Glibc)
import Glibc
#endif

/// One HTTP/1.1 response as read off a socket.
public struct RawReply: Sendable {
    public var head: String
    public var status: Int
    public var headers: [(String, String)]
    public var body: Data

    public func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    public var json: [String: JSONValue] {
        get throws {
            guard case .object(let object) = try JSONDecoder().decode(JSONValue.self, from: body) else { throw RawSocketError(description: "the body is not a JSON object") }
            return object
        }
    }
}

public struct RawSocketError: Error, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}

/// One blocking TCP connection, with timeouts: for tests that must send what no HTTP client
/// would (a stalled or truncated body, a 1 MB header line) or from a chosen source address.
public final class RawConnection: @unchecked Sendable {
    private let fd: Int32
    private var buffer: [UInt8] = []
    private var closed = false

    public init(host: String, port: Int, source: String? = nil, timeoutSeconds: Int = 10) throws {
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw RawSocketError(description: "socket: \(errno)") }
        self.fd = fd
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        if let source {
            var local = try Self.address(source, port: 0)
            let rc = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard rc == 0 else {
                Self.closeSocket(fd)
                throw RawSocketError(description: "bind \(source): \(errno)")
            }
        }
        var remote = try Self.address(host, port: port)
        let rc = withUnsafePointer(to: &remote) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            Self.closeSocket(fd)
            throw RawSocketError(description: "connect \(host):\(port): \(errno)")
        }
    }

    deinit { close() }

    private static func address(_ host: String, port: Int) throws -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { throw RawSocketError(description: "not an IPv4 address: \(host)") }
        return address
    }

    /// Writes what it can: the gateway may answer and close before it has read everything
    /// (a 1 MB header line), which is not an error here.
    public func write(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { return }
            offset += sent
        }
    }

    /// Reads more into the buffer; false at the end of the stream (or on an error).
    private func fill() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count <= 0 { return false }
        buffer += chunk[0..<count]
        return true
    }

    /// The response's head, and its body unless `untilHeadOnly` (an event stream) or `head`
    /// (the answer to a HEAD request has none).
    public func readReply(untilHeadOnly: Bool = false, head: Bool = false) throws -> RawReply {
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        var end: Int?
        while end == nil {
            if let range = buffer.firstRange(of: separator) {
                end = range.lowerBound
                break
            }
            guard fill() else { throw RawSocketError(description: "no response head: \(String(decoding: buffer.prefix(200), as: UTF8.self))") }
        }
        let headText = String(decoding: buffer[..<end!], as: UTF8.self)
        buffer.removeSubrange(..<(end! + separator.count))
        let lines = headText.components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ", omittingEmptySubsequences: false)
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else { throw RawSocketError(description: "bad status line: \(lines[0])") }
        let headers = lines.dropFirst().compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        var reply = RawReply(head: lines[0], status: status, headers: headers, body: Data())
        if untilHeadOnly || head { return reply }
        reply = try readReply(continuing: reply)
        return reply
    }

    /// The body of a reply whose head was read: Content-Length bytes, or up to the end.
    public func readReply(continuing reply: RawReply) throws -> RawReply {
        var reply = reply
        if let length = reply.header("Content-Length").flatMap(Int.init) {
            while buffer.count < length { guard fill() else { break } }
            reply.body = Data(buffer.prefix(length))
            buffer.removeFirst(min(length, buffer.count))
        } else {
            while fill() {}
            reply.body = Data(buffer)
            buffer.removeAll()
        }
        return reply
    }

    /// Ends the sending side (a client that leaves mid-body but still reads the answer).
    public func shutdownWrite() {
        _ = shutdown(fd, Int32(SHUT_WR))
    }

    /// Everything the peer sends until it closes the connection; nil when it is still open
    /// when the timeout ends.
    public func readUntilClosed() -> [UInt8]? {
        while true {
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                buffer += chunk[0..<count]
                continue
            }
            if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return nil }
            defer { buffer.removeAll() }
            return buffer
        }
    }

    public func close() {
        guard !closed else { return }
        closed = true
        Self.closeSocket(fd)
    }

    private static func closeSocket(_ fd: Int32) {
        #if canImport(Glibc)
        _ = Glibc.close(fd)
        #else
        _ = Darwin.close(fd)
        #endif
    }
}

public enum RawHTTP {
    /// Runs blocking socket work off Swift's cooperative threads.
    public static func onBlockingThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
        }
    }
}
