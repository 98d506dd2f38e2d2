import Foundation
import Hummingbird

/// The position after the last item of a page, for lists ordered newest first by
/// `(created_at DESC, id DESC)`. Clients see it only as an opaque base64url token.
public struct PageCursor: Sendable, Hashable {
    public var createdAt: PostgresTimestamp
    public var id: UUID

    /// Format version; a token with another one is not ours.
    static let version: UInt8 = 1
    /// version (1) + microseconds (8, big-endian) + uuid (16).
    static let byteCount = 25

    public init(createdAt: PostgresTimestamp, id: UUID) {
        self.createdAt = createdAt
        self.id = id
    }

    /// A position above every row (`'infinity'`, the largest uuid): the first page of a
    /// keyset query as one statement, `WHERE (created_at, id) < (cursor)`.
    public static let aboveAll = PageCursor(
        createdAt: PostgresTimestamp(microsecondsSince2000: .max),
        id: UUID(uuid: (0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF)))

    /// The opaque token handed to clients as `nextCursor`.
    public var token: String {
        var bytes: [UInt8] = [Self.version]
        withUnsafeBytes(of: createdAt.microsecondsSince2000.bigEndian) { bytes.append(contentsOf: $0) }
        withUnsafeBytes(of: id.uuid) { bytes.append(contentsOf: $0) }
        return Base64URL.encode(bytes)
    }

    /// Reads a token made by `token`; `nil` for anything else.
    public init?(token: some StringProtocol) {
        guard token.utf8.count <= 64, let bytes = Base64URL.decode(token), bytes.count == Self.byteCount,
            bytes[0] == Self.version
        else { return nil }
        let microseconds = bytes[1..<9].reduce(Int64(0)) { $0 << 8 | Int64($1) }
        let uuid = Array(bytes[9..<25])
        self.createdAt = PostgresTimestamp(microsecondsSince2000: microseconds)
        self.id = UUID(uuid: (
            uuid[0], uuid[1], uuid[2], uuid[3], uuid[4], uuid[5], uuid[6], uuid[7],
            uuid[8], uuid[9], uuid[10], uuid[11], uuid[12], uuid[13], uuid[14], uuid[15]))
    }
}

/// `?limit=` (1...100, default 20) and `?cursor=` of a list request, checked: anything
/// else is a `400` naming the parameter.
public struct PageRequest: Sendable, Equatable {
    public static let defaultLimit = 20
    public static let limits = 1...100

    public var limit: Int
    public var cursor: PageCursor?

    public init(limit: Int = PageRequest.defaultLimit, cursor: PageCursor? = nil) {
        self.limit = limit
        self.cursor = cursor
    }

    /// From the query parameters of a request.
    public init(query parameters: Parameters) throws {
        var errors: [FieldError] = []
        self.limit = Self.defaultLimit
        if let raw = parameters.get("limit") {
            if let limit = Int(raw), Self.limits.contains(limit) {
                self.limit = limit
            } else {
                errors.append(FieldError(field: "limit", message: "must be an integer from \(Self.limits.lowerBound) to \(Self.limits.upperBound)"))
            }
        }
        self.cursor = nil
        if let raw = parameters.get("cursor") {
            if let cursor = PageCursor(token: raw) {
                self.cursor = cursor
            } else {
                errors.append(FieldError(field: "cursor", message: "is not a cursor from this list"))
            }
        }
        guard errors.isEmpty else { throw APIError.validation(errors, detail: "The list parameters are not valid.") }
    }

    public init(request: Request) throws {
        try self.init(query: request.uri.queryParameters)
    }

    /// How many rows to fetch: one more than the page, to learn whether another page follows.
    public var fetchLimit: Int { limit + 1 }
}

/// One page of a list: `{"items": [...], "nextCursor": "..." | null}`.
public struct Page<Item: Encodable & Sendable>: Encodable, Sendable {
    public var items: [Item]
    public var nextCursor: String?

    public init(items: [Item], nextCursor: String?) {
        self.items = items
        self.nextCursor = nextCursor
    }

    /// Builds the page from rows fetched with `request.fetchLimit`: the extra row, if
    /// any, only tells that another page follows, whose cursor is the last kept row's.
    public init<Row>(rows: [Row], request: PageRequest, cursor: (Row) -> PageCursor, item: (Row) throws -> Item) rethrows {
        let kept = rows.prefix(request.limit)
        self.items = try kept.map(item)
        self.nextCursor = rows.count > request.limit ? kept.last.map { cursor($0).token } : nil
    }

    enum CodingKeys: String, CodingKey {
        case items, nextCursor
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(items, forKey: .items)
        // Always present: `null` on the last page.
        try container.encode(nextCursor, forKey: .nextCursor)
    }
}
