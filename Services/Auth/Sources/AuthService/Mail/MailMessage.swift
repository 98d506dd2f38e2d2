import Foundation

/// An e-mail address with an optional display name.
struct MailAddress: Sendable, Equatable {
    var name: String?
    var address: String

    /// `Name <a@b>` or `a@b`, as in `MAIL_FROM`.
    init?(parsing text: String) {
        let text = text.trimmingCharacters(in: .whitespaces)
        if let open = text.lastIndex(of: "<"), text.hasSuffix(">") {
            let address = String(text[text.index(after: open)..<text.index(before: text.endIndex)])
            let name = text[..<open].trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            self.init(name: name.isEmpty ? nil : name, address: address)
        } else {
            self.init(name: nil, address: text)
        }
        guard Self.isPlausible(address) else { return nil }
    }

    init(name: String? = nil, address: String) {
        self.name = name
        self.address = address
    }

    /// One `@`, something on both sides, no spaces, controls or angle brackets.
    static func isPlausible(_ address: String) -> Bool {
        let parts = address.split(separator: "@", omittingEmptySubsequences: false)
        return parts.count == 2 && !parts[0].isEmpty && !parts[1].isEmpty
            && !address.unicodeScalars.contains { $0.value <= 0x20 || $0.value == 0x7F || "<>()[],;:\\\"".unicodeScalars.contains($0) }
    }

    /// The header form: the name as a quoted string, or as encoded-words when not ASCII.
    var headerValue: String {
        guard let name, !name.isEmpty else { return address }
        if name.unicodeScalars.allSatisfy({ $0.isASCII && $0.value >= 0x20 && $0.value != 0x7F }) {
            let quoted = name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            return "\"\(quoted)\" <\(address)>"
        }
        return "\(MIMEEncoding.encodedWords(name).joined(separator: " ")) <\(address)>"
    }

    /// The domain, for `Message-ID`.
    var domain: String { address.split(separator: "@").last.map(String.init) ?? "localhost" }
}

/// One message as it goes out: RFC 5322 headers and a `multipart/alternative` body with a
/// plain-text and an HTML part, each UTF-8 in quoted-printable; CRLF line ends, every line
/// at most 78 characters (RFC 5322 §2.1.1).
struct MailMessage: Sendable, Equatable {
    var from: MailAddress
    var to: MailAddress
    var subject: String
    var text: String
    var html: String
    var date: Date
    var messageID: String
    /// The boundary between the parts; random per message.
    var boundary: String

    init(from: MailAddress, to: MailAddress, subject: String, text: String, html: String, date: Date = Date(), id: UUID = UUID.random()) {
        self.from = from
        self.to = to
        self.subject = subject
        self.text = text
        self.html = html
        self.date = date
        self.messageID = "<\(id.uuidString.lowercased())@\(from.domain)>"
        // Quoted-printable output never contains "=_" followed by this, so it cannot clash.
        self.boundary = "=_part_\(id.uuidString.lowercased())"
    }

    /// The whole message, ready for DATA (before dot-stuffing).
    var bytes: [UInt8] {
        var lines: [String] = []
        lines += MIMEEncoding.header("From", from.headerValue)
        lines += MIMEEncoding.header("To", to.headerValue)
        lines += MIMEEncoding.header("Subject", MIMEEncoding.encodedWords(subject).joined(separator: " "))
        lines += MIMEEncoding.header("Date", MIMEEncoding.rfc5322Date(date))
        lines += MIMEEncoding.header("Message-ID", messageID)
        lines.append("MIME-Version: 1.0")
        lines.append("Content-Type: multipart/alternative;")
        lines.append(" boundary=\"\(boundary)\"")
        lines.append("")
        for (type, body) in [("text/plain", text), ("text/html", html)] {
            lines.append("--\(boundary)")
            lines.append("Content-Type: \(type); charset=utf-8")
            lines.append("Content-Transfer-Encoding: quoted-printable")
            lines.append("")
            lines.append(MIMEEncoding.quotedPrintable(body))
        }
        lines.append("--\(boundary)--")
        lines.append("")
        return Array(lines.joined(separator: "\r\n").utf8)
    }
}

/// The encodings a message needs (RFC 2045, RFC 2047, RFC 5322).
enum MIMEEncoding {
    /// `Name: value`, folded at spaces so that no line passes 78 characters.
    static func header(_ name: String, _ value: String) -> [String] {
        var lines: [String] = []
        var current = "\(name):"
        for word in value.split(separator: " ", omittingEmptySubsequences: false) {
            if current.utf8.count + 1 + word.utf8.count > 78, current.utf8.count > name.utf8.count + 1 {
                lines.append(current)
                current = ""
            }
            current += " " + word
        }
        lines.append(current)
        return lines
    }

    /// The text as it is when plain printable ASCII; otherwise RFC 2047 `=?utf-8?B?...?=`
    /// words, each at most 75 characters and never splitting a character.
    static func encodedWords(_ text: String) -> [String] {
        if text.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value < 0x7F }) && !text.contains("=?") {
            return [text]
        }
        // 75 - "=?utf-8?B?".count - "?=".count = 63 base64 characters: 45 bytes of text.
        var words: [String] = []
        var chunk: [UInt8] = []
        for character in text {
            let bytes = Array(String(character).utf8)
            if chunk.count + bytes.count > 45 {
                words.append("=?utf-8?B?\(Data(chunk).base64EncodedString())?=")
                chunk = []
            }
            chunk += bytes
        }
        if !chunk.isEmpty { words.append("=?utf-8?B?\(Data(chunk).base64EncodedString())?=") }
        return words
    }

    /// RFC 2045 §6.7 quoted-printable of the UTF-8 text, lines of at most 76 characters,
    /// CRLF line breaks kept as hard breaks.
    static func quotedPrintable(_ text: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var output: [String] = []
        let normalized = text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
        for line in normalized.split(separator: "\n", omittingEmptySubsequences: false) {
            let bytes = Array(line.utf8)
            var encoded: [[UInt8]] = []
            for (index, byte) in bytes.enumerated() {
                let isLast = index == bytes.count - 1
                let literal = (byte >= 33 && byte <= 126 && byte != UInt8(ascii: "="))
                    || ((byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")) && !isLast)
                // A line-initial "." is encoded too: no dot-stuffing needed, and no "From ".
                if literal && !(index == 0 && byte == UInt8(ascii: ".")) {
                    encoded.append([byte])
                } else {
                    encoded.append([UInt8(ascii: "="), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
                }
            }
            // Soft line breaks: at most 75 characters plus "=".
            var current: [UInt8] = []
            for token in encoded {
                if current.count + token.count > 75 {
                    output.append(String(decoding: current + [UInt8(ascii: "=")], as: UTF8.self))
                    current = []
                }
                current += token
            }
            output.append(String(decoding: current, as: UTF8.self))
        }
        return output.joined(separator: "\r\n")
    }

    /// `Mon, 30 Nov 2026 22:49:12 +0000` (RFC 5322 §3.3), always in UTC.
    static func rfc5322Date(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday], from: date)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ value: Int?) -> String { String(format: "%02d", value ?? 0) }
        return "\(days[(parts.weekday ?? 1) - 1]), \(parts.day ?? 1) \(months[(parts.month ?? 1) - 1]) \(parts.year ?? 1970) "
            + "\(two(parts.hour)):\(two(parts.minute)):\(two(parts.second)) +0000"
    }
}
