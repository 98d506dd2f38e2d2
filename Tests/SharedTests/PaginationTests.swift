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
        // 4097 µs past a second: a value Date cannot carry exactly through a round trip.
        let second = try Date("2026-11-23T15:04:05Z", strategy: .iso8601)
        let wholeSeconds = Int64(second.timeIntervalSince(Date(timeIntervalSince1970: 946_684_800)))
        let expected = PostgresTimestamp(microsecondsSince2000: wholeSeconds * 1_000_000 + 4097)
        let url = try await TestDatabase.create()
        let (read, echoed, bound) = try await TestDatabase.withClient(url) { client in
            // Read: the value Postgres stores for the literal, decoded.
            var read: PostgresTimestamp?
            for try await value in try await client.query("SELECT '2026-11-23T15:04:05.004097Z'::timestamptz").decode(PostgresTimestamp.self) {
                read = value
            }
            let readValue = try #require(read)
            // Write: that value bound as a parameter compares equal to the literal in SQL ...
            var echoed: Bool?
            for try await equal in try await client.query("SELECT \(readValue) = '2026-11-23T15:04:05.004097Z'::timestamptz").decode(Bool.self) {
                echoed = equal
            }
            // ... and a value made in Swift, bound, is the literal's text in Postgres.
            var bound: String?
            for try await text in try await client.query(
                "SELECT to_char(\(expected) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US')"
            ).decode(String.self) {
                bound = text
            }
            return (readValue, echoed, bound)
        }
        #expect(read == expected)
        #expect(echoed == true)
        #expect(bound == "2026-11-23T15:04:05.004097")
        let date = read.date
        #expect(abs(date.timeIntervalSince(second) - 0.004097) < 1e-6)
        #expect(PostgresTimestamp(date) == read)
    }

    /// A cursor made from a row, through its token and back into a keyset query, continues
    /// right after that row: nothing skipped, nothing repeated, with timestamps one
    /// microsecond apart and rows tied on the timestamp.
    @Test func cursorsContinueAKeysetQueryExactlyAfterTheirRow() async throws {
        let url = try await TestDatabase.create()
        let rows: [UUID] = try await TestDatabase.withClient(url) { client in
            try await client.query("CREATE TABLE items (id uuid PRIMARY KEY, created_at timestamptz NOT NULL)").consume()
            // Two rows on one microsecond, two on the next, one on the one after: ties and
            // neighbours a microsecond apart, where a cursor off by one skips or repeats rows.
            for (id, at) in [(UUID(), "2026-11-23T15:04:05.000005Z"), (UUID(), "2026-11-23T15:04:05.000005Z"),
                             (UUID(), "2026-11-23T15:04:05.000006Z"), (UUID(), "2026-11-23T15:04:05.000006Z"),
                             (UUID(), "2026-11-23T15:04:05.000007Z")] {
                try await client.query("INSERT INTO items (id, created_at) VALUES (\(id), \(at)::timestamptz)").consume()
            }
            var all: [UUID] = []
            for try await id in try await client.query("SELECT id FROM items ORDER BY created_at DESC, id DESC").decode(UUID.self) {
                all.append(id)
            }
            return all
        }
        #expect(rows.count == 5)
        // Page through two at a time, as the services do: fetch limit + 1, cursor from the last kept row.
        var seen: [UUID] = []
        var token: String?
        var pages = 0
        repeat {
            let request: PageRequest
            if let token {
                request = try PageRequest(query: ["limit": "2", "cursor": Substring(token)])
            } else {
                request = try PageRequest(query: ["limit": "2"])
            }
            let cursor = request.cursor ?? .aboveAll
            let fetched: [(UUID, PostgresTimestamp)] = try await TestDatabase.withClient(url) { client in
                var fetched: [(UUID, PostgresTimestamp)] = []
                for try await row in try await client.query(
                    """
                    SELECT id, created_at FROM items WHERE (created_at, id) < (\(cursor.createdAt), \(cursor.id))
                    ORDER BY created_at DESC, id DESC LIMIT \(request.fetchLimit)
                    """
                ).decode((UUID, PostgresTimestamp).self) {
                    fetched.append(row)
                }
                return fetched
            }
            let page = Page(rows: fetched, request: request, cursor: { PageCursor(createdAt: $0.1, id: $0.0) }, item: { $0.0 })
            seen += page.items
            token = page.nextCursor
            pages += 1
        } while token != nil && pages < 10
        #expect(seen == rows)
        #expect(pages == 3)
    }
}
