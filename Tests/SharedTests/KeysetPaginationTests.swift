import Foundation
import Hummingbird
import Shared
import Testing

@Suite("HTTP: keyset pagination, ranges, content disposition")
struct KeysetPaginationTests {
    @Test func cursorRoundTripsAndRejectsForeignValues() throws {
        let cursor = KeysetCursor(microseconds: 1_795_000_000_123_456, id: UUID())
        #expect(KeysetCursor(encoded: cursor.encoded) == cursor)
        let negative = KeysetCursor(microseconds: -42, id: UUID())
        #expect(KeysetCursor(encoded: negative.encoded) == negative)
        for bad in ["", "abc", String(repeating: "A", count: 34), cursor.encoded + "A", String(cursor.encoded.dropLast()) + "=",
                    Base64URL.encode([2] + [UInt8](repeating: 0, count: 24))] {
            #expect(KeysetCursor(encoded: bad) == nil, "accepted \(bad)")
        }
    }

    @Test func pageRequestValidatesLimitAndCursor() throws {
        #expect(try PageRequest(limit: nil, cursor: nil) == PageRequest(limit: 20, cursor: nil))
        #expect(try PageRequest(limit: "1", cursor: nil).limit == 1)
        #expect(try PageRequest(limit: "100", cursor: nil).limit == 100)
        let cursor = KeysetCursor(microseconds: 5, id: UUID())
        #expect(try PageRequest(limit: nil, cursor: cursor.encoded).cursor == cursor)
        for (limit, bad) in [("0", nil), ("101", nil), ("x", nil), ("", nil), ("-1", nil), (nil, "nope"), ("5", "\u{0}")] as [(String?, String?)] {
            #expect(throws: APIError.self, "\(String(describing: limit)) \(String(describing: bad))") { try PageRequest(limit: limit, cursor: bad) }
        }
        // Untyped, so the catch below is an ordinary cast.
        func page(_ limit: String?, _ cursor: String?) throws -> PageRequest { try PageRequest(limit: limit, cursor: cursor) }
        do {
            _ = try page("0", "bad")
            Issue.record("no error")
        } catch let error as APIError {
            #expect(error.status == .badRequest)
            #expect(Set(error.errors.map(\.field)) == ["limit", "cursor"])
        }
    }

    @Test func pageEncodesNullCursorAndTakesLimitRows() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let empty = String(decoding: try encoder.encode(Page<Int>(items: [], nextCursor: nil)), as: UTF8.self)
        #expect(empty == #"{"items":[],"nextCursor":null}"#)
        let ids = (0..<3).map { _ in UUID() }
        let page = Page(rows: Array(ids.enumerated()), limit: 2, item: { $0.offset }, cursor: { KeysetCursor(microseconds: Int64($0.offset), id: $0.element) })
        #expect(page.items == [0, 1])
        #expect(page.nextCursor == KeysetCursor(microseconds: 1, id: ids[1]).encoded)
        let last = Page(rows: Array(ids.enumerated()), limit: 3, item: { $0.offset }, cursor: { KeysetCursor(microseconds: Int64($0.offset), id: $0.element) })
        #expect(last.nextCursor == nil)
    }

    @Test func byteRanges() {
        let size: Int64 = 100
        #expect(ByteRangeRequest("bytes=0-0", size: size) == .satisfiable(0...0))
        #expect(ByteRangeRequest("bytes=0-99", size: size) == .satisfiable(0...99))
        #expect(ByteRangeRequest("bytes=0-1000", size: size) == .satisfiable(0...99))
        #expect(ByteRangeRequest("bytes=99-", size: size) == .satisfiable(99...99))
        #expect(ByteRangeRequest("bytes=-1", size: size) == .satisfiable(99...99))
        #expect(ByteRangeRequest("bytes=-100", size: size) == .satisfiable(0...99))
        #expect(ByteRangeRequest("bytes=-500", size: size) == .satisfiable(0...99))
        #expect(ByteRangeRequest("bytes=100-", size: size) == .unsatisfiable)
        #expect(ByteRangeRequest("bytes=100-200", size: size) == .unsatisfiable)
        #expect(ByteRangeRequest("bytes=-0", size: size) == .unsatisfiable)
        #expect(ByteRangeRequest("bytes=0-", size: 0) == .unsatisfiable)
        #expect(ByteRangeRequest("bytes=99999999999999999999-", size: size) == .unsatisfiable)
        for ignored in ["bytes=5-2", "bytes=0-1,5-6", "items=0-1", "bytes=a-b", "bytes=", "bytes=-", "0-1", "bytes=1--2"] {
            #expect(ByteRangeRequest(ignored, size: size) == .ignore, "\(ignored)")
        }
    }

    @Test func contentDispositionHasASafeFallbackAndTheExactName() {
        #expect(ContentDisposition.attachment(fileName: "song.mp3") == #"attachment; filename="song.mp3"; filename*=UTF-8''song.mp3"#)
        #expect(ContentDisposition.attachment(fileName: "Ünïcode \"q\".mp3")
            == #"attachment; filename="_n_code _q_.mp3"; filename*=UTF-8''%C3%9Cn%C3%AFcode%20%22q%22.mp3"#)
    }
}
