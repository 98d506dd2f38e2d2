import Foundation
import Hummingbird

/// The contract's JSON (camelCase keys as declared, RFC 3339 UTC timestamps in whole
/// seconds, `/` unescaped), written straight into bytes as `encode(to:)` runs.
///
/// Why not Foundation's `JSONEncoder`: on Linux it builds a tree of boxed values and
/// dictionaries first, sorts keys and formats each date through a Gregorian calendar;
/// `perf` put it at a quarter of a feed page's CPU. This writer keeps no tree: containers
/// are written as they are opened and closed when the value that opened them returns (or
/// when their parent writes its next key), which is how synthesized and hand-written
/// `encode(to:)` methods use them (in order, one container at a time). Keys come out in
/// declaration order, the same for every response of a type. Every service's responses,
/// problems and events go through it (`responseEncoder`, `Response.json`).
public struct APIJSONEncoder: ResponseEncoder, Sendable {
    public init() {}

    /// The JSON text of `value`.
    public func encode(_ value: some Encodable) throws -> [UInt8] {
        let writer = JSONStreamWriter()
        try writer.writeValue(value)
        return writer.bytes
    }

    public func encode(_ value: some Encodable, from request: Request, context: some RequestContext) throws -> Response {
        try Response.json(value)
    }
}

/// The `Encoder` behind `APIJSONEncoder`: one per document.
final class JSONStreamWriter: Encoder {
    var bytes: [UInt8] = []
    /// Open containers, outermost first: the byte that closes each and how many entries it has.
    private var frames: [(closer: UInt8, count: Int)] = []
    /// `frames.count` when the value being encoded now started: containers above it are its own.
    private var valueBase = 0

    // Coding paths are not tracked (they would cost on every value); errors name the value.
    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init() {
        bytes.reserveCapacity(1024)
    }

    func writeValue<T: Encodable>(_ value: T) throws {
        // Types with a JSON form of their own, recognised by type (no dynamic cast for others).
        if T.self == Date.self { return writeDate(value as! Date) }
        if T.self == UUID.self { return writeString((value as! UUID).apiString) }
        if T.self == URL.self { return writeString((value as! URL).absoluteString) }
        if T.self == Data.self { return writeString((value as! Data).base64EncodedString()) }
        if T.self == Decimal.self { return bytes.append(contentsOf: (value as! Decimal).description.utf8) }
        let savedBase = valueBase
        valueBase = frames.count
        let start = bytes.count
        defer { valueBase = savedBase }
        try value.encode(to: self)
        close(downTo: valueBase)
        // A value that wrote nothing is an empty object, as Foundation writes it.
        if bytes.count == start { bytes.append(contentsOf: "{}".utf8) }
    }

    // MARK: containers

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        KeyedEncodingContainer(KeyedContainer<Key>(writer: self, frame: ownFrame(opener: UInt8(ascii: "{"), closer: UInt8(ascii: "}"))))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        UnkeyedContainer(writer: self, frame: ownFrame(opener: UInt8(ascii: "["), closer: UInt8(ascii: "]")))
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { SingleValueContainer(writer: self) }

    /// The current value's container: asked for twice (a subclass and its superclass), it is the same one.
    private func ownFrame(opener: UInt8, closer: UInt8) -> Int {
        if frames.count > valueBase { return valueBase }
        return open(opener: opener, closer: closer)
    }

    fileprivate func open(opener: UInt8, closer: UInt8) -> Int {
        bytes.append(opener)
        frames.append((closer, 0))
        return frames.count - 1
    }

    /// Closes the containers above `count` (a nested container its parent has moved past).
    private func close(downTo count: Int) {
        while frames.count > count {
            bytes.append(frames.removeLast().closer)
        }
    }

    /// Before an entry of `frame`: closes what is still open inside it, then the comma.
    fileprivate func startEntry(in frame: Int) {
        close(downTo: frame + 1)
        if frames[frame].count > 0 { bytes.append(UInt8(ascii: ",")) }
        frames[frame].count += 1
    }

    fileprivate func startEntry(in frame: Int, key: String) {
        startEntry(in: frame)
        writeString(key)
        bytes.append(UInt8(ascii: ":"))
    }

    fileprivate func count(of frame: Int) -> Int { frames.count > frame ? frames[frame].count : 0 }

    // MARK: scalars

    func writeNull() { bytes.append(contentsOf: "null".utf8) }

    func writeBool(_ value: Bool) { bytes.append(contentsOf: (value ? "true" : "false").utf8) }

    func writeInteger(_ value: some FixedWidthInteger) {
        if value == 0 { return bytes.append(UInt8(ascii: "0")) }
        var magnitude = value.magnitude
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: enough for 20 digits
        let count = withUnsafeMutableBytes(of: &digits) { buffer in
            var index = buffer.count
            while magnitude > 0 {
                index -= 1
                buffer[index] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            }
            return buffer.count - index
        }
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        withUnsafeBytes(of: &digits) { bytes.append(contentsOf: $0.suffix(count)) }
    }

    func writeDouble(_ value: Double) throws {
        guard value.isFinite else {
            throw EncodingError.invalidValue(value, .init(codingPath: [], debugDescription: "\(value) has no JSON form"))
        }
        // Whole numbers as integers (Foundation writes 3, not 3.0); others in Swift's shortest form.
        if value == value.rounded(.towardZero), abs(value) < 1e15 {
            writeInteger(Int64(value))
        } else {
            bytes.append(contentsOf: value.description.utf8)
        }
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    func writeString(_ value: String) {
        bytes.append(UInt8(ascii: "\""))
        var value = value
        value.withUTF8 { utf8 in
            var clean = 0  // start of the run that needs no escape
            for index in utf8.indices {
                let byte = utf8[index]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[clean..<index]))
                clean = index + 1
                switch byte {
                case UInt8(ascii: "\""): bytes.append(contentsOf: "\\\"".utf8)
                case UInt8(ascii: "\\"): bytes.append(contentsOf: "\\\\".utf8)
                case 0x0A: bytes.append(contentsOf: "\\n".utf8)
                case 0x0D: bytes.append(contentsOf: "\\r".utf8)
                case 0x09: bytes.append(contentsOf: "\\t".utf8)
                case 0x08: bytes.append(contentsOf: "\\b".utf8)
                case 0x0C: bytes.append(contentsOf: "\\f".utf8)
                default:
                    bytes.append(contentsOf: "\\u00".utf8)
                    bytes.append(Self.hex[Int(byte >> 4)])
                    bytes.append(Self.hex[Int(byte & 0x0F)])
                }
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[clean...]))
        }
        bytes.append(UInt8(ascii: "\""))
    }

    /// `2026-12-01T01:50:27Z`: UTC, whole seconds (the fraction is dropped, as Foundation's
    /// `.iso8601` strategy does). Civil date from days since 1970 (Howard Hinnant's
    /// `civil_from_days`), without a calendar.
    func writeDate(_ date: Date) {
        let seconds = Int64(date.timeIntervalSince1970.rounded(.down))
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        guard (0...9999).contains(year) else {
            // Outside four-digit years: the long way (never in practice).
            return writeString(date.formatted(.iso8601))
        }
        func two(_ value: Int64) {
            bytes.append(UInt8(ascii: "0") + UInt8(value / 10))
            bytes.append(UInt8(ascii: "0") + UInt8(value % 10))
        }
        bytes.append(UInt8(ascii: "\""))
        two(year / 100)
        two(year % 100)
        bytes.append(UInt8(ascii: "-"))
        two(month)
        bytes.append(UInt8(ascii: "-"))
        two(day)
        bytes.append(UInt8(ascii: "T"))
        two(secondOfDay / 3600)
        bytes.append(UInt8(ascii: ":"))
        two(secondOfDay / 60 % 60)
        bytes.append(UInt8(ascii: ":"))
        two(secondOfDay % 60)
        bytes.append(contentsOf: "Z\"".utf8)
    }
}

// MARK: the three containers

private struct KeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let writer: JSONStreamWriter
    let frame: Int
    var codingPath: [any CodingKey] { [] }

    private func key(_ key: Key) { writer.startEntry(in: frame, key: key.stringValue) }

    mutating func encodeNil(forKey key: Key) throws { self.key(key); writer.writeNull() }
    mutating func encode(_ value: Bool, forKey key: Key) throws { self.key(key); writer.writeBool(value) }
    mutating func encode(_ value: String, forKey key: Key) throws { self.key(key); writer.writeString(value) }
    mutating func encode(_ value: Double, forKey key: Key) throws { self.key(key); try writer.writeDouble(value) }
    mutating func encode(_ value: Float, forKey key: Key) throws { self.key(key); try writer.writeDouble(Double(value)) }
    mutating func encode(_ value: Int, forKey key: Key) throws { self.key(key); writer.writeInteger(value) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { self.key(key); writer.writeInteger(value) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { self.key(key); writer.writeInteger(value) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { self.key(key); writer.writeInteger(value) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { self.key(key); writer.writeInteger(value) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { self.key(key); writer.writeInteger(value) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { self.key(key); writer.writeInteger(value) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { self.key(key); writer.writeInteger(value) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { self.key(key); writer.writeInteger(value) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { self.key(key); writer.writeInteger(value) }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws { self.key(key); try writer.writeValue(value) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        self.key(key)
        return KeyedEncodingContainer(KeyedContainer<NestedKey>(writer: writer, frame: writer.open(opener: UInt8(ascii: "{"), closer: UInt8(ascii: "}"))))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        self.key(key)
        return UnkeyedContainer(writer: writer, frame: writer.open(opener: UInt8(ascii: "["), closer: UInt8(ascii: "]")))
    }

    mutating func superEncoder() -> any Encoder { writer.startEntry(in: frame, key: "super"); return writer }
    mutating func superEncoder(forKey key: Key) -> any Encoder { self.key(key); return writer }
}

private struct UnkeyedContainer: UnkeyedEncodingContainer {
    let writer: JSONStreamWriter
    let frame: Int
    var codingPath: [any CodingKey] { [] }
    var count: Int { writer.count(of: frame) }

    mutating func encodeNil() throws { writer.startEntry(in: frame); writer.writeNull() }
    mutating func encode(_ value: Bool) throws { writer.startEntry(in: frame); writer.writeBool(value) }
    mutating func encode(_ value: String) throws { writer.startEntry(in: frame); writer.writeString(value) }
    mutating func encode(_ value: Double) throws { writer.startEntry(in: frame); try writer.writeDouble(value) }
    mutating func encode(_ value: Float) throws { writer.startEntry(in: frame); try writer.writeDouble(Double(value)) }
    mutating func encode(_ value: Int) throws { writer.startEntry(in: frame); writer.writeInteger(value) }
    mutating func encode(_ value: Int8) throws { writer.startEntry(in: frame); writer.writeInteger(value) }
    mutating func encode(_ value: Int16) throws { writer.startEntry(in: frame); writer.writeInteger(value) }
    mutating func encode(_ value: Int32) throws { writer.startEntry(in: frame); writer.writeInteger(value) }
    mutating func encode(_ value: Int64) throws { writer.startEntry(in: frame); writer.writeInteger(value) }
    mutating func encode(_ value: UInt) throws { writer.startEntry(in: frame); writer.writeInteger(value) }
    mutating func encode(_ value: UInt8) throws { writer.startEntry(in: frame); writer.writeInteger(value) }
    mutating func encode(_ value: UInt16) throws { writer.startEntry(in: frame); writer.writeInteger(value) }
    mutating func encode(_ value: UInt32) throws { writer.startEntry(in: frame); writer.writeInteger(value) }
    mutating func encode(_ value: UInt64) throws { writer.startEntry(in: frame); writer.writeInteger(value) }
    mutating func encode<T: Encodable>(_ value: T) throws { writer.startEntry(in: frame); try writer.writeValue(value) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        writer.startEntry(in: frame)
        return KeyedEncodingContainer(KeyedContainer<NestedKey>(writer: writer, frame: writer.open(opener: UInt8(ascii: "{"), closer: UInt8(ascii: "}"))))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        writer.startEntry(in: frame)
        return UnkeyedContainer(writer: writer, frame: writer.open(opener: UInt8(ascii: "["), closer: UInt8(ascii: "]")))
    }

    mutating func superEncoder() -> any Encoder { writer.startEntry(in: frame); return writer }
}

private struct SingleValueContainer: SingleValueEncodingContainer {
    let writer: JSONStreamWriter
    var codingPath: [any CodingKey] { [] }

    mutating func encodeNil() throws { writer.writeNull() }
    mutating func encode(_ value: Bool) throws { writer.writeBool(value) }
    mutating func encode(_ value: String) throws { writer.writeString(value) }
    mutating func encode(_ value: Double) throws { try writer.writeDouble(value) }
    mutating func encode(_ value: Float) throws { try writer.writeDouble(Double(value)) }
    mutating func encode(_ value: Int) throws { writer.writeInteger(value) }
    mutating func encode(_ value: Int8) throws { writer.writeInteger(value) }
    mutating func encode(_ value: Int16) throws { writer.writeInteger(value) }
    mutating func encode(_ value: Int32) throws { writer.writeInteger(value) }
    mutating func encode(_ value: Int64) throws { writer.writeInteger(value) }
    mutating func encode(_ value: UInt) throws { writer.writeInteger(value) }
    mutating func encode(_ value: UInt8) throws { writer.writeInteger(value) }
    mutating func encode(_ value: UInt16) throws { writer.writeInteger(value) }
    mutating func encode(_ value: UInt32) throws { writer.writeInteger(value) }
    mutating func encode(_ value: UInt64) throws { writer.writeInteger(value) }
    mutating func encode<T: Encodable>(_ value: T) throws { try writer.writeValue(value) }
}
