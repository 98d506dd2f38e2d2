import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// Where and how to reach the SMTP server, from `SMTP_URL`:
/// `smtp://user:pass@host:587?tls=starttls` (the default: STARTTLS required),
/// `?tls=opportunistic` (STARTTLS when offered), `?tls=none` (plain), or
/// `smtps://user:pass@host:465` (TLS from the first byte).
struct SMTPSettings: Sendable {
    enum Security: String, Sendable {
        case starttls, opportunistic, none, implicit
    }

    var host: String
    var port: Int
    var security: Security
    var username: String?
    var password: String?
    /// Trust these certificates (PEM) instead of the system's (`SMTP_CA_FILE`).
    var caFile: String?
    /// Deadline of every step: connecting, each reply, the TLS handshake, the message.
    var timeout: Duration
    /// The name this client greets with (EHLO).
    var heloName: String

    init(url text: String, caFile: String?, timeout: Duration, heloName: String = "localhost") throws {
        guard let url = URLComponents(string: text), let scheme = url.scheme, ["smtp", "smtps"].contains(scheme),
              let host = url.host, !host.isEmpty
        else {
            throw SMTPSettingsError("SMTP_URL must look like smtp://user:pass@host:587?tls=starttls or smtps://host:465.")
        }
        self.host = host
        self.username = url.user?.removingPercentEncoding
        self.password = url.password?.removingPercentEncoding
        self.caFile = caFile
        self.timeout = timeout
        self.heloName = heloName
        let tls = url.queryItems?.first(where: { $0.name == "tls" })?.value
        if scheme == "smtps" {
            guard tls == nil || tls == "implicit" else { throw SMTPSettingsError("smtps:// is TLS from the start; drop ?tls=.") }
            self.security = .implicit
            self.port = url.port ?? 465
        } else {
            guard let security = Security(rawValue: tls ?? "starttls"), security != .implicit else {
                throw SMTPSettingsError("SMTP_URL's tls= is starttls, opportunistic or none, not '\(tls ?? "")'.")
            }
            self.security = security
            self.port = url.port ?? (security == .none ? 25 : 587)
        }
        if username != nil && password == nil { throw SMTPSettingsError("SMTP_URL has a user but no password.") }
    }

    /// The URL without its password, for logs.
    var redacted: String {
        let scheme = security == .implicit ? "smtps" : "smtp"
        let user = username.map { "\($0):***@" } ?? ""
        return "\(scheme)://\(user)\(host):\(port)" + (security == .implicit ? "" : "?tls=\(security.rawValue)")
    }
}

struct SMTPSettingsError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Why a message was not sent: `transient` (4xx, a connection that failed or timed out) is
/// tried again later; `permanent` (5xx) is final.
enum SMTPError: Error, CustomStringConvertible, Equatable {
    case transient(String)
    case permanent(String)

    var isPermanent: Bool { if case .permanent = self { true } else { false } }
    var description: String {
        switch self {
        case .transient(let text): "temporary: \(text)"
        case .permanent(let text): "permanent: \(text)"
        }
    }
}

/// One reply: a three-digit code and its text lines (RFC 5321 §4.2, multi-line with `-`).
struct SMTPReply: Sendable, Equatable {
    var code: Int
    var lines: [String]

    var text: String { "\(code) \(lines.joined(separator: " / "))" }

    /// An error of the kind the code says (`4xx` transient, `5xx` permanent).
    func error(during step: String) -> SMTPError {
        code >= 500 ? .permanent("\(step): \(text)") : .transient("\(step): \(text)")
    }
}

/// Reads replies out of the bytes a server sends. Lines end with CRLF; a reply is the lines
/// `ddd-text` up to the first `ddd text` (or `ddd`).
struct SMTPReplyParser {
    private var buffer: [UInt8] = []
    private var lines: [String] = []
    /// A reply line longer than this is not SMTP (RFC 5321 allows 512).
    static let maxLine = 4096

    mutating func append(_ bytes: some Sequence<UInt8>) { buffer += bytes }

    /// The next complete reply, if the bytes so far hold one.
    mutating func next() throws -> SMTPReply? {
        while let end = buffer.firstIndex(of: UInt8(ascii: "\n")) {
            var line = Array(buffer[..<end])
            buffer.removeFirst(end + 1)
            if line.last == UInt8(ascii: "\r") { line.removeLast() }
            guard line.count >= 3, let code = Int(String(decoding: line[0..<3], as: UTF8.self)), (200...599).contains(code) else {
                throw SMTPError.transient("malformed reply line: \(String(decoding: line.prefix(80), as: UTF8.self))")
            }
            let separator = line.count > 3 ? line[3] : UInt8(ascii: " ")
            lines.append(line.count > 4 ? String(decoding: line[4...], as: UTF8.self) : "")
            if separator == UInt8(ascii: "-") { continue }
            defer { lines = [] }
            return SMTPReply(code: code, lines: lines)
        }
        if buffer.count > Self.maxLine { throw SMTPError.transient("reply line too long") }
        return nil
    }
}

/// What the server offered in its EHLO reply.
struct SMTPExtensions: Sendable, Equatable {
    var startTLS = false
    var smtpUTF8 = false
    var authMechanisms: Set<String> = []
    /// `SIZE n`: the largest message it takes (0: no limit stated).
    var maxSize: Int?

    init(ehlo reply: SMTPReply) {
        for line in reply.lines.dropFirst() {
            let words = line.uppercased().split(separator: " ")
            switch words.first {
            case "STARTTLS": startTLS = true
            case "SMTPUTF8": smtpUTF8 = true
            case "AUTH": authMechanisms = Set(words.dropFirst().map(String.init))
            case "SIZE": maxSize = words.count > 1 ? Int(words[1]) : 0
            default: break
            }
        }
    }
}

/// A small SMTP client (RFC 5321) on SwiftNIO: EHLO, STARTTLS or implicit TLS
/// (swift-nio-ssl), AUTH PLAIN or LOGIN, SIZE, SMTPUTF8 and dot-stuffing, with a deadline on
/// every step. One session sends a batch of messages over one connection.
enum SMTPClient {
    /// Connects, greets, secures and authenticates, runs `body` with the session, then QUITs.
    /// Errors of the connection itself are `SMTPError.transient`.
    static func withSession<Result: Sendable>(
        _ settings: SMTPSettings, logger: Logger, _ body: (SMTPSession) async throws -> Result
    ) async throws -> Result {
        let tlsContext = try settings.security == .none ? nil : makeTLSContext(settings)
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(TimeAmount(settings.timeout))
                .connect(host: settings.host, port: settings.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if settings.security == .implicit, let tlsContext {
                            try channel.pipeline.syncOperations.addHandler(try tlsHandler(tlsContext, host: settings.host))
                        }
                        return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw SMTPError.transient("connect to \(settings.host):\(settings.port): \(error)")
        }
        return try await channel.executeThenClose { inbound, outbound in
            let session = SMTPSession(settings: settings, channel: channel.channel, inbound: inbound, outbound: outbound, logger: logger)
            do {
                try await session.open(tlsContext: tlsContext)
                let result = try await body(session)
                await session.quit()
                return result
            } catch let error as SMTPError {
                throw error
            } catch {
                throw SMTPError.transient("\(error)")
            }
        }
    }

    static func makeTLSContext(_ settings: SMTPSettings) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        if let caFile = settings.caFile {
            configuration.trustRoots = .file(caFile)
        }
        return try NIOSSLContext(configuration: configuration)
    }

    /// SNI and the certificate check use the host name; an IP address is checked against the
    /// certificate's IP entries instead (SNI carries no addresses).
    static func tlsHandler(_ context: NIOSSLContext, host: String) throws -> NIOSSLClientHandler {
        let isAddress = (try? SocketAddress(ipAddress: host, port: 0)) != nil
        return try NIOSSLClientHandler(context: context, serverHostname: isAddress ? nil : host)
    }
}

/// One connection to the server. Used by one task at a time (not `Sendable`).
final class SMTPSession {
    let settings: SMTPSettings
    let channel: any Channel
    let logger: Logger
    private var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    private var parser = SMTPReplyParser()
    private(set) var extensions: SMTPExtensions?

    init(settings: SMTPSettings, channel: any Channel, inbound: NIOAsyncChannelInboundStream<ByteBuffer>,
         outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>, logger: Logger) {
        self.settings = settings
        self.channel = channel
        self.iterator = inbound.makeAsyncIterator()
        self.outbound = outbound
        self.logger = logger
    }

    /// Greeting, EHLO, STARTTLS (then EHLO again), AUTH.
    func open(tlsContext: NIOSSLContext?) async throws {
        try expect(await reply(step: "greeting"), 220, step: "greeting")
        var offered = try await ehlo()
        let secure = settings.security == .implicit
        if !secure, settings.security != .none, let tlsContext {
            if offered.startTLS {
                try expect(await command("STARTTLS", step: "STARTTLS"), 220, step: "STARTTLS")
                // Nothing more arrives in plain text: the server waits for our handshake.
                let (channel, host) = (self.channel, settings.host)
                try await within("TLS handshake") {
                    try await channel.eventLoop.submit {
                        try channel.pipeline.syncOperations.addHandler(try SMTPClient.tlsHandler(tlsContext, host: host), position: .first)
                    }.get()
                }
                offered = try await ehlo()
            } else if settings.security == .starttls {
                throw SMTPError.transient("the server does not offer STARTTLS, which SMTP_URL requires (tls=starttls)")
            }
        }
        extensions = offered
        if let username = settings.username, let password = settings.password {
            try await authenticate(username: username, password: password, offered: offered.authMechanisms)
        }
    }

    private func ehlo() async throws -> SMTPExtensions {
        let reply = try await command("EHLO \(settings.heloName)", step: "EHLO")
        try expect(reply, 250, step: "EHLO")
        return SMTPExtensions(ehlo: reply)
    }

    private func authenticate(username: String, password: String, offered: Set<String>) async throws {
        if offered.contains("PLAIN") {
            let credentials = Data(([0] + Array(username.utf8) + [0] + Array(password.utf8))).base64EncodedString()
            try expect(await command("AUTH PLAIN \(credentials)", step: "AUTH PLAIN", secret: true), 235, step: "AUTH PLAIN")
        } else if offered.contains("LOGIN") {
            try expect(await command("AUTH LOGIN", step: "AUTH LOGIN"), 334, step: "AUTH LOGIN")
            try expect(await command(Data(username.utf8).base64EncodedString(), step: "AUTH LOGIN user", secret: true), 334, step: "AUTH LOGIN user")
            try expect(await command(Data(password.utf8).base64EncodedString(), step: "AUTH LOGIN password", secret: true), 235, step: "AUTH LOGIN password")
        } else {
            throw SMTPError.permanent("the server offers no AUTH mechanism this client has (PLAIN, LOGIN): \(offered.sorted())")
        }
    }

    /// Sends one message. A refusal of this message (`SMTPError`) leaves the session usable
    /// for the next one (RSET); a broken connection throws too and ends the session.
    func send(from: String, to: String, data: [UInt8]) async throws {
        let offered = extensions ?? SMTPExtensions(ehlo: SMTPReply(code: 250, lines: []))
        let needsUTF8 = !(from + to).unicodeScalars.allSatisfy(\.isASCII)
        if needsUTF8 && !offered.smtpUTF8 {
            throw SMTPError.permanent("the address needs SMTPUTF8, which the server does not offer")
        }
        if let limit = offered.maxSize, limit > 0, data.count > limit {
            throw SMTPError.permanent("the message (\(data.count) bytes) is over the server's SIZE \(limit)")
        }
        var parameters = offered.maxSize != nil ? " SIZE=\(data.count)" : ""
        if needsUTF8 { parameters += " SMTPUTF8" }
        do {
            try expect(await command("MAIL FROM:<\(from)>\(parameters)", step: "MAIL FROM"), 250, step: "MAIL FROM")
            let recipient = try await command("RCPT TO:<\(to)>", step: "RCPT TO")
            guard recipient.code == 250 || recipient.code == 251 else { throw recipient.error(during: "RCPT TO") }
            try expect(await command("DATA", step: "DATA"), 354, step: "DATA")
            try await write(Self.dotStuffed(data), step: "message")
            try expect(await reply(step: "end of data"), 250, step: "end of data")
        } catch let error as SMTPError where channel.isActive {
            // The message was refused; the connection is fine: ready it for the next one.
            _ = try? await command("RSET", step: "RSET")
            throw error
        }
    }

    /// Whether the connection is still up (a refused message leaves it so; a broken one not).
    var isOpen: Bool { channel.isActive }

    /// Says goodbye; a server that does not answer is no failure here.
    func quit() async {
        _ = try? await command("QUIT", step: "QUIT")
    }

    /// The message for DATA: CRLF line ends, a leading "." doubled (RFC 5321 §4.5.2), and
    /// the ending `CRLF . CRLF`.
    static func dotStuffed(_ data: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(data.count + data.count / 50 + 5)
        var atLineStart = true
        var previous: UInt8 = 0
        for byte in data {
            if byte == UInt8(ascii: "\n") && previous != UInt8(ascii: "\r") { output.append(UInt8(ascii: "\r")) }
            if atLineStart && byte == UInt8(ascii: ".") { output.append(UInt8(ascii: ".")) }
            output.append(byte)
            atLineStart = byte == UInt8(ascii: "\n")
            previous = byte
        }
        if !atLineStart { output += [UInt8(ascii: "\r"), UInt8(ascii: "\n")] }
        output += Array(".\r\n".utf8)
        return output
    }

    private func expect(_ reply: SMTPReply, _ code: Int, step: String) throws {
        guard reply.code == code else { throw reply.error(during: step) }
    }

    private func command(_ line: String, step: String, secret: Bool = false) async throws -> SMTPReply {
        logger.trace("smtp >", metadata: ["line": "\(secret ? "\(line.prefix(10))***" : line)"])
        try await write(Array((line + "\r\n").utf8), step: step)
        return try await reply(step: step)
    }

    private func write(_ bytes: [UInt8], step: String) async throws {
        try await within(step) { try await self.outbound.write(ByteBuffer(bytes: bytes)) }
    }

    private func reply(step: String) async throws -> SMTPReply {
        try await within(step) {
            while true {
                if let reply = try self.parser.next() {
                    self.logger.trace("smtp <", metadata: ["reply": "\(reply.text)"])
                    return reply
                }
                guard let chunk = try await self.iterator.next() else {
                    throw SMTPError.transient("\(step): the server closed the connection")
                }
                self.parser.append(chunk.readableBytesView)
            }
        }
    }

    /// Runs `work`, closing the connection if it takes longer than the step's deadline (which
    /// ends any read or write in progress).
    private func within<T>(_ step: String, _ work: () async throws -> T) async throws -> T {
        let expired = Flag()
        let timer = channel.eventLoop.scheduleTask(in: TimeAmount(settings.timeout)) { [channel] in
            expired.set()
            channel.close(promise: nil)
        }
        defer { timer.cancel() }
        do {
            return try await work()
        } catch {
            if expired.isSet { throw SMTPError.transient("\(step): no answer within \(settings.timeout)") }
            throw error
        }
    }

    private final class Flag: Sendable {
        private let value = Atomic<Bool>(false)
        func set() { value.store(true, ordering: .relaxed) }
        var isSet: Bool { value.load(ordering: .relaxed) }
    }
}
