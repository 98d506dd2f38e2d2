import Foundation
import Hummingbird
import PostgresNIO
import Shared
import TestSupport
import Testing

@Suite("Pagination")
struct PaginationTests {
    @Test func cursorTokensRoundTripExactly() throws {
        let cursor = PageCursor(createdAt: PostgresTimestamp(microsecondsSince2000: 846_115_200_123_457), id: UUID())
        let token = cursor.token
        #expect(token.count == 34)
        #expect(token.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })
        #expect(PageCursor(token: token) == cursor)
        // Before 2000 (negative microseconds) too.
        let old = PageCursor(createdAt: PostgresTimestamp(microsecondsSince2000: -1), id: UUID())
        #expect(PageCursor(token: old.token) == old)
    }

    @Test func foreignTokensAreNotCursors() {
        let valid = PageCursor(createdAt: PostgresTimestamp(microsecondsSince2000: 1), id: UUID()).token
        #expect(PageCursor(token: "") == nil)
        #expect(PageCursor(token: "not base64!") == nil)
        #expect(PageCursor(token: String(valid.dropLast())) == nil)
        #expect(PageCursor(token: valid + "AA") == nil)
        #expect(PageCursor(token: Base64URL.encode([9] + [UInt8](repeating: 0, count: 24))) == nil)
        #expect(PageCursor(token: String(repeating: "A", count: 1000)) == nil)
    }

    @Test func pageRequestChecksLimitAndCursor() throws {
        #expect(try PageRequest(query: [:]) == PageRequest(limit: 20, cursor: nil))
        #expect(try PageRequest(query: ["limit": "1"]).limit == 1)
        #expect(try PageRequest(query: ["limit": "100"]).fetchLimit == 101)
        let cursor = PageCursor(createdAt: PostgresTimestamp(microsecondsSince2000: 42), id: UUID())
        #expect(try PageRequest(query: ["cursor": Substring(cursor.token)]).cursor == cursor)
        for limit in ["0", "101", "abc", "", "1.5"] {
            #expect(throws: APIError.self, "limit=\(limit)") { try PageRequest(query: ["limit": Substring(limit)]) }
        }
        do {
            _ = try PageRequest(query: ["limit": "0", "cursor": "zzz"])
            Issue.record("expected a validation error")
        } catch let error as APIError {
            #expect(error.status == .badRequest)
            #expect(error.code == "validation_failed")
            #expect(error.errors.map(\.field) == ["limit", "cursor"])
        }
    }

    @Test func pagesKeepTheLimitAndPointPastTheLastItem() throws {
        struct Row { var id: UUID; var at: Int64 }
        let rows = (0..<3).map { Row(id: UUID(), at: Int64(100 - $0)) }
        let request = PageRequest(limit: 2)
        let page = Page(rows: rows, request: request, cursor: { PageCursor(createdAt: .init(microsecondsSince2000: $0.at), id: $0.id) }, item: { $0.id })
        #expect(page.items == [rows[0].id, rows[1].id])
        #expect(page.nextCursor.flatMap(PageCursor.init(token:))?.id == rows[1].id)
        let last = Page(rows: Array(rows.prefix(2)), request: request, cursor: { PageCursor(createdAt: .init(microsecondsSince2000: $0.at), id: $0.id) }, item: { $0.id })
        #expect(last.nextCursor == nil)
        // `nextCursor` is always present, null on the last page.
        let json = try #require(String(data: try JSONEncoder().encode(last), encoding: .utf8))
        #expect(json.contains(#""nextCursor":null"#))
    }

    @Test func timestampsSurviveTheDatabaseToTheMicrosecond() async throws {
        let url = try await TestDatabase.create()
        let stored: [(PostgresTimestamp, Bool)] = try await TestDatabase.withClient(url) { client in
            // 4097 µs past a second: a value Date cannot carry exactly through a round trip.
            var results: [(PostgresTimestamp, Bool)] = []
            let rows = try await client.query(
                "SELECT t, t = '2026-11-23T15:04:05.004097Z'::timestamptz FROM (SELECT '2026-11-23T15:04:05.004097Z'::timestamptz AS t) s")
            for try await (timestamp, equal) in rows.decode((PostgresTimestamp, Bool).self) { results.append((timestamp, equal)) }
            let echoed = try await client.query(
                "SELECT \(results[0].0) = '2026-11-23T15:04:05.004097Z'::timestamptz")
            for try await equal in echoed.decode(Bool.self) { results.append((results[0].0, equal)) }
            return results
        }
        #expect(stored.count == 2)
        #expect(stored.allSatisfy { $0.1 })
        let date = stored[0].0.date
        let second = try Date("2026-11-23T15:04:05Z", strategy: .iso8601)
        #expect(abs(date.timeIntervalSince(second) - 0.004097) < 1e-6)
        #expect(PostgresTimestamp(date) == stored[0].0)
    }
}
