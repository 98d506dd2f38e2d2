import Foundation
import Shared

/// Just enough XML for S3's flat answers (`ListObjectsV2`, `InitiateMultipartUpload`,
/// `ListMultipartUploads`, errors): element text by name, blocks by name, entity
/// (un)escaping. Not a general XML parser, and it does not need to be.
enum S3XML {
    /// The contents of every `<name>…</name>` (or `<name attr…>…</name>`; `<name/>` is empty), in order.
    static func blocks(_ name: String, in xml: Substring) -> [Substring] {
        var results: [Substring] = []
        var rest = xml[...]
        let open = "<\(name)"
        let close = "</\(name)>"
        while let start = rest.range(of: open) {
            let afterName = start.upperBound
            guard afterName < rest.endIndex else { break }
            let next = rest[afterName]
            // `<KeyCount>` must not match `<Key`.
            guard next == ">" || next == "/" || next == " " || next == "\t" || next == "\n" || next == "\r" else {
                rest = rest[afterName...]
                continue
            }
            guard let tagEnd = rest[afterName...].firstIndex(of: ">") else { break }
            if rest[rest.index(before: tagEnd)] == "/" {
                results.append(rest[tagEnd..<tagEnd])
                rest = rest[rest.index(after: tagEnd)...]
                continue
            }
            let contentStart = rest.index(after: tagEnd)
            guard let end = rest[contentStart...].range(of: close) else { break }
            results.append(rest[contentStart..<end.lowerBound])
            rest = rest[end.upperBound...]
        }
        return results
    }

    /// The unescaped text of the first `<name>` element.
    static func value(_ name: String, in xml: Substring) -> String? {
        blocks(name, in: xml).first.map { unescape($0) }
    }

    static func unescape(_ text: Substring) -> String {
        guard text.contains("&") else { return String(text) }
        var out = ""
        var rest = text[...]
        while let amp = rest.firstIndex(of: "&") {
            out += rest[..<amp]
            guard let semicolon = rest[amp...].firstIndex(of: ";") else {
                out += rest[amp...]
                return out
            }
            let entity = rest[rest.index(after: amp)..<semicolon]
            switch entity {
            case "amp": out += "&"
            case "lt": out += "<"
            case "gt": out += ">"
            case "quot": out += "\""
            case "apos": out += "'"
            default:
                var scalar: Unicode.Scalar?
                if entity.hasPrefix("#x") || entity.hasPrefix("#X") {
                    scalar = UInt32(entity.dropFirst(2), radix: 16).flatMap(Unicode.Scalar.init)
                } else if entity.hasPrefix("#") {
                    scalar = UInt32(entity.dropFirst(), radix: 10).flatMap(Unicode.Scalar.init)
                }
                if let scalar { out.unicodeScalars.append(scalar) } else { out += rest[amp...semicolon] }
            }
            rest = rest[rest.index(after: semicolon)...]
        }
        return out + rest
    }

    static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(character)
            }
        }
        return out
    }

    /// S3 timestamps: `2026-11-23T15:04:05.000Z` (fractional seconds optional).
    static func date(_ text: String) -> Date? {
        if let date = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) { return date }
        return try? Date(text, strategy: Date.ISO8601FormatStyle())
    }
}

/// `Last-Modified` and friends: `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110 IMF-fixdate).
enum HTTPDate {
    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func parse(_ text: String) -> Date? {
        let parts = text.split(separator: " ")
        guard parts.count == 6, parts[5] == "GMT", let day = Int(parts[1]), let year = Int(parts[3]),
            let month = months.firstIndex(of: String(parts[2]))
        else { return nil }
        let time = parts[4].split(separator: ":").compactMap { Int($0) }
        guard time.count == 3 else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar.date(from: DateComponents(year: year, month: month + 1, day: day, hour: time[0], minute: time[1], second: time[2]))
    }
}
