import Foundation
import Testing

/// The real SMTP server of the test run (`scripts/with-test-smtp.sh`: aiosmtpd with STARTTLS,
/// implicit TLS and AUTH), and the messages it stored.
public enum TestMail {
    static func variable(_ name: String) throws -> String {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else {
            throw MissingSMTP(variable: name)
        }
        return value
    }

    public struct MissingSMTP: Error, CustomStringConvertible {
        var variable: String
        public var description: String { "\(variable) is not set: run the tests through scripts/with-test-smtp.sh (make test does)" }
    }

    /// `SMTP_URL` with STARTTLS and AUTH.
    public static var url: String { get throws { try variable("TEST_SMTP_URL") } }
    /// `smtps://` (TLS from the first byte) with AUTH.
    public static var implicitTLSURL: String { get throws { try variable("TEST_SMTPS_URL") } }
    /// The server's self-signed certificate, for `SMTP_CA_FILE`.
    public static var caFile: String { get throws { try variable("TEST_SMTP_CA_FILE") } }

    /// What an auth service under test needs to send through the test server, with retries
    /// and polls fast enough for a test.
    public static func variables(url: String? = nil) throws -> [String: String] {
        [
            "SMTP_URL": try url ?? self.url, "SMTP_CA_FILE": try caFile, "SMTP_TIMEOUT_SECONDS": "10",
            "MAIL_FROM": "Voice Memos <no-reply@memos.example>", "PUBLIC_BASE_URL": "https://memos.example",
            "MAIL_RETRY_BASE_SECONDS": "0.05", "MAIL_RETRY_MAX_SECONDS": "0.5", "MAIL_POLL_INTERVAL_SECONDS": "0.1",
        ]
    }

    /// One stored message: its envelope and where its bytes are.
    public struct Stored: Sendable {
        public var path: String
        public var mailFrom: String
        public var rcptTos: [String]
        public var tls: Bool
        public var authUser: String?
    }

    /// Every message the server accepted for `recipient`, oldest first.
    public static func messages(to recipient: String) throws -> [Stored] {
        let directory = try variable("TEST_SMTP_DIR")
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".json") }.sorted()
        var found: [Stored] = []
        for name in names {
            guard let data = FileManager.default.contents(atPath: "\(directory)/\(name)"),
                  let json = try JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let rcptTos = json["rcptTos"] as? [String], rcptTos.contains(where: { $0.lowercased() == recipient.lowercased() })
            else { continue }
            found.append(Stored(
                path: "\(directory)/\(name.dropLast(".json".count)).eml", mailFrom: json["mailFrom"] as? String ?? "",
                rcptTos: rcptTos, tls: json["tls"] as? Bool ?? false, authUser: json["authUser"] as? String))
        }
        return found
    }

    /// Waits until `count` messages for `recipient` are there; returns them.
    public static func waitForMessages(
        to recipient: String, count: Int = 1, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> [Stored] {
        try await eventually(every: .milliseconds(100), { try messages(to: recipient).count >= count }, sourceLocation: sourceLocation)
        return try messages(to: recipient)
    }

    /// A message as Python's `email` package reads it (scripts/lib/mail_to_json.py).
    public struct Parsed: Decodable, Sendable {
        public struct Part: Decodable, Sendable {
            public var contentType: String
            public var charset: String?
            public var transferEncoding: String?
            public var text: String
        }
        public var from: String
        public var to: String
        public var subject: String
        public var date: String?
        public var messageId: String?
        public var mimeVersion: String?
        public var contentType: String
        public var parts: [Part]
        public var defects: [String]
        public var longestLine: Int
        public var bareLF: Bool

        public func part(_ type: String) -> String? { parts.first { $0.contentType == type }?.text }

        /// The `token=` of the first link into the web app (`/#/<route>?token=...`).
        public func token(route: String) -> String? {
            guard let text = part("text/plain"), let range = text.range(of: "/#/\(route)?token=") else { return nil }
            return String(text[range.upperBound...].prefix { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })
        }
    }

    public static func parse(_ stored: Stored) async throws -> Parsed {
        let command = try variable("TEST_MAIL_TO_JSON").split(separator: " ").map(String.init)
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("mail-\(UUID().uuidString).json").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        let child = try ChildProcess(command + [stored.path], outputPath: output)
        let status = await child.exitCode()
        let data = FileManager.default.contents(atPath: output) ?? Data()
        guard status == 0 else {
            throw ParseFailed(description: "mail_to_json.py exited \(status): \(String(decoding: data, as: UTF8.self))")
        }
        return try JSONDecoder().decode(Parsed.self, from: data)
    }

    public struct ParseFailed: Error, CustomStringConvertible {
        public var description: String
    }
}
