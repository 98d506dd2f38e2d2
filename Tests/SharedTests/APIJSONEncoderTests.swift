import Foundation
import Shared
import Testing

/// `APIJSONEncoder` writes what Foundation's `JSONEncoder` (ISO 8601 dates, slashes
/// unescaped) writes, up to key order: compared as parsed JSON on values of every shape
/// the services send, and byte for byte where the text itself matters.
@Suite("API JSON encoder")
struct APIJSONEncoderTests {
    struct Image: Encodable { var id: String; var url: String; var sizeBytes: Int64 }
    struct Author: Encodable {
        var id: String
        var name: String?
        enum CodingKeys: String, CodingKey { case id, name }
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id, forKey: .id)
            try container.encode(name, forKey: .name)  // null written out
        }
    }
    struct Post: Encodable {
        var id: String
        var title: String
        var author: Author
        var images: [Image]
        var tags: [String]
        var createdAt: Date
        var editedAt: Date?  // omitted when nil
        var score: Double
        var flags: [String: Bool]
        var matrix: [[Int]]
        var empty: [Int]
    }
    struct Nothing: Encodable {}
    struct Nested: Encodable {
        enum CodingKeys: String, CodingKey { case before, inner, list, after }
        enum InnerKeys: String, CodingKey { case a, b }
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(1, forKey: .before)
            var inner = container.nestedContainer(keyedBy: InnerKeys.self, forKey: .inner)
            try inner.encode("x", forKey: .a)
            var list = container.nestedUnkeyedContainer(forKey: .list)
            try list.encode(true)
            var deeper = list.nestedContainer(keyedBy: InnerKeys.self)
            try deeper.encode(2.5, forKey: .b)
            try list.encodeNil()
            // The parent goes on after its nested containers: they are closed first.
            try container.encode("end", forKey: .after)
        }
    }
    class Base: Encodable {
        var base = "b"
        enum CodingKeys: String, CodingKey { case base }
    }
    final class Derived: Base, @unchecked Sendable {
        var extra = 7
        enum DerivedKeys: String, CodingKey { case extra }
        override func encode(to encoder: any Encoder) throws {
            try super.encode(to: encoder)  // the same container, asked for again
            var container = encoder.container(keyedBy: DerivedKeys.self)
            try container.encode(extra, forKey: .extra)
        }
    }

    static func foundation(_ value: some Encodable) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return Array(try encoder.encode(value))
    }

    static func parsed(_ bytes: [UInt8]) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: Data(bytes))
    }

    static func expectSame(_ value: some Encodable, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let ours = try APIJSONEncoder().encode(value)
        #expect(try parsed(ours) == parsed(foundation(value)), "\(String(decoding: ours, as: UTF8.self))", sourceLocation: sourceLocation)
    }

    @Test func writesWhatFoundationWrites() throws {
        let post = Post(
            id: "p1", title: "Quote \" backslash \\ slash / tab \t newline \n bell \u{7} é 한글 🎙️ \u{2028}",
            author: Author(id: "a1", name: nil),
            images: [Image(id: "i1", url: "/feeds/p1/images/1", sizeBytes: 10_485_760), Image(id: "i2", url: "", sizeBytes: 0)],
            tags: ["", "a", "\u{0}"], createdAt: Date(timeIntervalSince1970: 1_764_553_827), editedAt: nil, score: 1.5,
            flags: ["on": true, "off": false], matrix: [[1, -2], [], [Int.max, Int.min]], empty: [])
        try Self.expectSame(post)
        try Self.expectSame([post, post])
        try Self.expectSame(Nothing())
        try Self.expectSame(Nested())
        try Self.expectSame(Derived())
        try Self.expectSame([Date?.none, Date(timeIntervalSince1970: 0)])
        try Self.expectSame(["key \"quoted\"": [1.25, -0.5, 3, 1e300, 2.5e-300]])
        try Self.expectSame(Optional<Int>.none)
        try Self.expectSame("top-level string")
        try Self.expectSame(Data([0, 1, 2, 250]))
        try Self.expectSame(URL(string: "https://example.com/a?b=c")!)
    }

    @Test func textIsExactWhereItMatters() throws {
        func text(_ value: some Encodable) throws -> String { String(decoding: try APIJSONEncoder().encode(value), as: UTF8.self) }
        #expect(try text(Author(id: "a", name: nil)) == #"{"id":"a","name":null}"#)
        #expect(try text(["a/b"]) == #"["a/b"]"#)
        #expect(try text("\u{1}\u{1f}\"\\\r\u{8}\u{c}") == #""\u0001\u001f\"\\\r\b\f""#)
        #expect(try text([UInt64.max]) == "[18446744073709551615]")
        #expect(try text([Int64.min]) == "[-9223372036854775808]")
        #expect(try text([3.0, 0.1, -7.0]) == "[3,0.1,-7]")
        // UUIDs in the contract's lower case (Foundation writes upper case).
        #expect(try text(UUID(uuidString: "E621E1F8-C36C-495A-93FC-0C247A3E6E5F")!) == #""e621e1f8-c36c-495a-93fc-0c247a3e6e5f""#)
        #expect(throws: EncodingError.self) { try text([Double.nan]) }
    }

    /// Dates: the same text as Foundation's `.iso8601`, across centuries, leap days and
    /// fractions (from 1600: before the Gregorian reform Foundation's calendar is Julian,
    /// RFC 3339's proleptic Gregorian is what this writes).
    @Test func datesMatchFoundationToTheSecond() throws {
        let instants: [TimeInterval] = [
            0, -1, -86_400, -86_401, 951_782_400 /* 2000-02-29 */, 1_709_164_800 /* 2024-02-29 */, 1_764_553_827.999_999,
            1_764_553_827.000_001, -0.5, 4_102_444_799 /* 2099-12-31T23:59:59 */, 253_402_300_799 /* 9999-12-31T23:59:59 */,
            -11_676_096_000 /* 1600-01-01 */, 1_234_567_890.5,
        ]
        for instant in instants {
            let date = Date(timeIntervalSince1970: instant)
            let ours = String(decoding: try APIJSONEncoder().encode([date]), as: UTF8.self)
            let theirs = String(decoding: try Self.foundation([date]), as: UTF8.self)
            #expect(ours == theirs, "\(instant)")
        }
        // Every day of a few years around the epoch and today.
        for day in Array(-800...800) + Array(20_000...20_800) {
            let date = Date(timeIntervalSince1970: TimeInterval(day) * 86_400 + 45_296)
            #expect(try APIJSONEncoder().encode([date]) == Self.foundation([date]), "day \(day)")
        }
    }
}
