import Foundation
import Hummingbird

/// `?limit=` and `?cursor=` of a list route (the contract: limit 1...100, default 20;
/// the cursor is opaque and comes from the previous page). Bad values are `400`.
public struct PageRequest: Sendable, Equatable {
    public static let defaultLimit = 20
    public static let limits = 1...100

    public var limit: Int
    /// Where the previous page ended; nil for the first page.
    public var cursor: KeysetCursor?

    public init(limit: Int = PageRequest.defaultLimit, cursor: KeysetCursor? = nil) {
        self.limit = limit
        self.cursor = cursor
    }

    /// Reads `limit` and `cursor` from the request's query string.
    public init(request: Request) throws(APIError) {
        let query = request.uri.queryParameters
        try self.init(limit: query["limit"].map(String.init), cursor: query["cursor"].map(String.init))
    }

    /// From the raw `limit` and `cursor` values; `400 validation_failed` naming each bad field.
    public init(limit: String?, cursor: String?) throws(APIError) {
        var errors: [FieldError] = []
        self.init()
        if let raw = limit {
            if let limit = Int(raw), Self.limits.contains(limit) {
                self.limit = limit
            } else {
                errors.append(FieldError(field: "limit", message: "must be an integer from \(Self.limits.lowerBound) to \(Self.limits.upperBound)"))
            }
        }
        if let raw = cursor {
            if let cursor = KeysetCursor(encoded: raw) {
                self.cursor = cursor
            } else {
                errors.append(FieldError(field: "cursor", message: "is not a cursor from a previous page"))
            }
        }
        guard errors.isEmpty else { throw APIError.validation(errors, detail: "The list parameters are not valid.") }
    }
}

/// A position in a newest-first list ordered by `(timestamp DESC, id DESC)`: the last item
/// of a page. Keyset pagination, so inserts between pages neither repeat nor skip items.
///
/// The timestamp is kept as exact integer microseconds (Postgres' precision; a `Date` would
/// round). With Postgres, select `(extract(epoch FROM created_at) * 1000000)::bigint` for it
/// and page with
/// `WHERE (created_at, id) < (to_timestamp(0) + \(cursor.microseconds) * interval '1 microsecond', \(cursor.id))`.
///
/// Encoded as base64url of a version byte, the microseconds (8 bytes, big-endian) and the
/// UUID (16 bytes): opaque to clients, and anything else fails to decode.
public struct KeysetCursor: Sendable, Equatable {
    static let version: UInt8 = 1
    public var microseconds: Int64
    public var id: UUID

    public init(microseconds: Int64, id: UUID) {
        self.microseconds = microseconds
        self.id = id
    }

    public var encoded: String {
        var bytes: [UInt8] = [Self.version]
        withUnsafeBytes(of: microseconds.bigEndian) { bytes.append(contentsOf: $0) }
        withUnsafeBytes(of: id.uuid) { bytes.append(contentsOf: $0) }
        return Base64URL.encode(bytes)
    }

    public init?(encoded: String) {
        guard encoded.utf8.count == 34, let bytes = Base64URL.decode(encoded), bytes.count == 25, bytes[0] == Self.version else {
            return nil
        }
        var micros: Int64 = 0
        for byte in bytes[1..<9] { micros = micros << 8 | Int64(byte) }
        let u = Array(bytes[9..<25])
        self.microseconds = micros
        self.id = UUID(uuid: (u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]))
    }
}

/// The contract's list body: `{"items": [...], "nextCursor": "..." | null}` (`null` is written out).
public struct Page<Item: Encodable & Sendable>: Encodable, Sendable {
    public var items: [Item]
    public var nextCursor: String?

    public init(items: [Item], nextCursor: String?) {
        self.items = items
        self.nextCursor = nextCursor
    }

    /// From `limit + 1` rows fetched in list order: the first `limit` are the page, and the
    /// extra one only says that another page follows.
    public init<Row>(rows: [Row], limit: Int, item: (Row) -> Item, cursor: (Row) -> KeysetCursor) {
        let pageRows = rows.prefix(limit)
        self.items = pageRows.map(item)
        self.nextCursor = rows.count > limit ? pageRows.last.map { cursor($0).encoded } : nil
    }

    enum CodingKeys: String, CodingKey {
        case items, nextCursor
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(items, forKey: .items)
        try container.encode(nextCursor, forKey: .nextCursor)
    }
}
