#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Configuration
import Logging

/// One JSON object per line on stdout, so logs can be shipped and queried as they are.
/// Messages and metadata never carry bodies or credentials: handlers log ids, not payloads.
///
/// Every request logs a line, so the line is written by hand: `ts`, `level`, `logger`,
/// `msg`, then the metadata keys sorted, in one `write(2)` (atomic on an `O_APPEND` file
/// or a pipe, so lines from several threads never interleave). JSONSerialization with
/// sorted keys cost a third of a request's CPU (locale-aware key sorting, bridging).
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    let label: String

    public init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line = Self.line(event: event, label: label, metadata: metadata)
        line.withUTF8 { bytes in Self.writeAll(bytes) }
    }

    /// The JSON line (with its newline) for `event`; event metadata wins over the handler's.
    static func line(event: LogEvent, label: String, metadata: Logger.Metadata, now: timespec = Self.now()) -> String {
        var merged = metadata
        if let extra = event.metadata, !extra.isEmpty { merged.merge(extra) { $1 } }
        var out = JSONLineWriter()
        out.field("ts", raw: Self.timestamp(now))
        out.field("level", event.level.rawValue)
        out.field("logger", label)
        out.field("msg", event.message.description)
        for key in merged.keys.sorted() {
            out.key(key)
            out.value(merged[key]!)
        }
        if event.level >= .error {
            out.field("source", "\(event.file.split(separator: "/").last ?? ""):\(event.line)")
        }
        return out.finish()
    }

    static func now() -> timespec {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return now
    }

    /// `"2026-11-23T19:23:33.041Z"`: ISO 8601, UTC, milliseconds, quoted.
    static func timestamp(_ time: timespec) -> String {
        var seconds = time_t(time.tv_sec)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        let millis = Int32(time.tv_nsec / 1_000_000)
        return "\"\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))"
            + "T\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(millis, 3))Z\""
    }

    private static func writeAll(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard var base = bytes.baseAddress else { return }
        var remaining = bytes.count
        while remaining > 0 {
            let written = write(STDOUT_FILENO, base, remaining)
            if written < 0 {
                if errno == EINTR { continue }
                return  // Nowhere to report a failing log; drop the line.
            }
            base += written
            remaining -= written
        }
    }
}

/// A JSON object on one line, built by appending; strings escaped per RFC 8259.
struct JSONLineWriter {
    private var text = "{"
    private var first = true

    mutating func field(_ name: String, _ value: String) {
        key(name)
        string(value)
    }

    mutating func field(_ name: String, raw value: String) {
        key(name)
        text += value
    }

    mutating func key(_ name: String) {
        if !first { text += "," }
        first = false
        string(name)
        text += ":"
    }

    mutating func value(_ value: Logger.Metadata.Value) {
        switch value {
        case .string(let string):
            self.string(string)
        case .stringConvertible(let convertible):
            string(convertible.description)
        case .array(let values):
            text += "["
            for (index, element) in values.enumerated() {
                if index > 0 { text += "," }
                self.value(element)
            }
            text += "]"
        case .dictionary(let values):
            text += "{"
            for (index, key) in values.keys.sorted().enumerated() {
                if index > 0 { text += "," }
                string(key)
                text += ":"
                self.value(values[key]!)
            }
            text += "}"
        }
    }

    mutating func string(_ value: String) {
        text += "\""
        // Fast path: nothing to escape, append as is.
        if !value.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            text += value
        } else {
            for scalar in value.unicodeScalars {
                switch scalar {
                case "\"": text += "\\\""
                case "\\": text += "\\\\"
                case "\n": text += "\\n"
                case "\r": text += "\\r"
                case "\t": text += "\\t"
                case _ where scalar.value < 0x20:
                    let hex = String(scalar.value, radix: 16)
                    text += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                default:
                    text.unicodeScalars.append(scalar)
                }
            }
        }
        text += "\""
    }

    mutating func finish() -> String {
        text += "}\n"
        return text
    }
}

public enum ServiceLogging {
    /// Call once, first thing in a service's entry point: JSON lines at `LOG_LEVEL` (`info`),
    /// read as the configuration reads it. A bad value logs at `info` only until the
    /// configuration is read: that stops the service with a message naming LOG_LEVEL.
    public static func bootstrap(reader: ConfigReader) {
        let level = (try? CommonConfiguration.readLogLevel(reader)) ?? .info
        LoggingSystem.bootstrap { label in JSONLogHandler(label: label, level: level) }
    }
}
