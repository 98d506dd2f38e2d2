import Foundation
import Testing

@testable import Shared

/// The hand-written parsers on the request path agree with Foundation's, and are at least
/// as strict.
@Suite("Shared: JSON text and UUID parsing")
struct FastParsingTests {
    // MARK: JSON

    func parse(_ text: String) -> JSONValue? {
        JSONValue.parse(Array(text.utf8))
    }

    @Test func parsesEveryKindOfValue() throws {
        let value = try #require(parse(#" {"a": [1, -2.5, 3e2, 0, -0, true, false, null], "b": {"c": "d"}, "e": ""} "#))
        #expect(value == .object([
            "a": .array([.number(1), .number(-2.5), .number(300), .number(0), .number(-0.0), .bool(true), .bool(false), .null]),
            "b": .object(["c": .string("d")]),
            "e": .string(""),
        ]))
    }

    @Test func unescapesStrings() throws {
        let value = try #require(parse(#"["\"\\\/\b\f\n\r\t", "\u00e9\u20AC", "\ud83c\udf99", "é🎙"]"#))
        #expect(value == .array([.string("\"\\/\u{08}\u{0C}\n\r\t"), .string("é€"), .string("🎙"), .string("é🎙")]))
    }

    @Test func numbersMatchFoundation() throws {
        for text in ["1300819380", "9007199254740993", "123456789012345678901234567890", "0.1", "1.5e-7", "-1E+2", "2.2250738585072014e-308"] {
            let expected = try #require(JSONSerialization.jsonObject(with: Data(text.utf8), options: .fragmentsAllowed) as? NSNumber)
            #expect(parse(text) == .number(expected.doubleValue), "\(text)")
        }
    }

    @Test func rejectsWhatRFC8259Forbids() {
        let invalid = [
            "", " ", "{", "}", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "['a']", "01", "1.", ".5", "-", "1e", "+1",
            "NaN", "Infinity", "1e400", "tru", "nul", "\"unterminated", "\"bad \\x escape\"", "\"\\u12\"", "\"\\ud800\"",
            "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"raw\ncontrol\"", "[1] [2]", "{\"a\":1}x", "/* c */ 1",
            "{\"dup\":1,\"dup\":2}",
        ]
        for text in invalid {
            #expect(parse(text) == nil, "\(text.debugDescription)")
        }
        // Invalid UTF-8 inside a string.
        #expect(JSONValue.parse([0x22, 0xC3, 0x28, 0x22]) == nil)
        #expect(JSONValue.parse([0x22, 0xFF, 0x22]) == nil)
    }

    @Test func limitsNesting() {
        #expect(parse(String(repeating: "[", count: 32) + String(repeating: "]", count: 32)) != nil)
        #expect(parse(String(repeating: "[", count: 33) + String(repeating: "]", count: 33)) == nil)
        #expect(parse(String(repeating: "[", count: 100_000)) == nil)
    }

    @Test func agreesWithFoundationOnRandomDocuments() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            let object = randomObject(depth: 0, using: &generator)
            let data = try JSONSerialization.data(withJSONObject: object)
            let parsed = try #require(JSONValue.parse(Array(data)), "\(String(decoding: data, as: UTF8.self))")
            let reference = try JSONDecoder().decode(JSONValue.self, from: data)
            #expect(parsed == reference)
        }
    }

    func randomObject(depth: Int, using generator: inout SystemRandomNumberGenerator) -> [String: Any] {
        var object: [String: Any] = [:]
        for index in 0..<Int.random(in: 0...5, using: &generator) {
            let key = "k\(index)" + String((0..<Int.random(in: 0...3, using: &generator)).map { _ in randomCharacter(using: &generator) })
            switch Int.random(in: 0...6, using: &generator) {
            case 0: object[key] = Int.random(in: -1_000_000_000_000...1_000_000_000_000, using: &generator)
            case 1: object[key] = Double.random(in: -1e6...1e6, using: &generator)
            case 2: object[key] = Bool.random(using: &generator)
            case 3: object[key] = NSNull()
            case 4 where depth < 3: object[key] = randomObject(depth: depth + 1, using: &generator)
            case 5 where depth < 3: object[key] = [randomObject(depth: depth + 1, using: &generator), "x", 1]
            default: object[key] = String((0..<Int.random(in: 0...12, using: &generator)).map { _ in randomCharacter(using: &generator) })
            }
        }
        return object
    }

    func randomCharacter(using generator: inout SystemRandomNumberGenerator) -> Character {
        let pool: [Character] = ["a", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "\u{01}", "é", "€", "🎙", "\u{2028}"]
        return pool.randomElement(using: &generator)!
    }

    // MARK: UUID

    @Test func uuidStringsRoundTripLikeFoundation() throws {
        for _ in 0..<1_000 {
            let id = UUID()
            #expect(id.apiString == id.uuidString.lowercased())
            #expect(UUID(apiString: id.apiString) == id)
            #expect(UUID(apiString: id.uuidString) == id)
            #expect(UUID(apiString: Substring(id.apiString)) == id)
        }
    }

    @Test func rejectsWhatFoundationRejects() {
        let valid = "6f1c2d9e-0000-4000-8000-00000000000a"
        let invalid = [
            "", valid.uppercased() + "0", String(valid.dropLast()), valid.replacingOccurrences(of: "-", with: ""),
            "6f1c2d9e-0000-4000-8000-00000000000g", "6f1c2d9e+0000-4000-8000-00000000000a",
            " 6f1c2d9e-0000-4000-8000-00000000000a", "{6f1c2d9e-0000-4000-8000-00000000000a}",
            "6f1c2d9e0-000-4000-8000-00000000000a", "é\(valid.dropFirst(2))",
        ]
        #expect(UUID(apiString: valid) != nil)
        for text in invalid {
            #expect(UUID(apiString: text) == nil, "\(text)")
            #expect(UUID(uuidString: text) == nil, "Foundation also refuses \(text)")
        }
    }
}
