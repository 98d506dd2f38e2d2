import Foundation
import NIOCore
import Shared

/// Where services keep file bytes (recordings, feed images): a flat namespace of keys,
/// each holding an immutable blob. Two backends: `FileSystemObjectStorage` (local
/// development) and `S3ObjectStorage` (SeaweedFS, MinIO, AWS S3). Choose one with
/// `ObjectStorageConfiguration`.
///
/// Contract every backend keeps:
/// - `put` streams: it never holds the whole object in memory. It either stores the
///   complete object under the key or nothing (a failed, cancelled or interrupted put
///   leaves no object behind the key; at most an abandoned upload that
///   `removeAbandonedUploads(olderThan:)` clears).
/// - A store that cannot be reached throws `APIError.unavailable` (a `503` for clients);
///   other failures throw `ObjectStorageError`.
public protocol ObjectStorage: Sendable {
    /// Stores the bytes of `body` under `key`, replacing any object there.
    /// - Parameter length: the exact number of bytes `body` yields, when known up front
    ///   (a mismatch fails the put); `nil` when it is not.
    @discardableResult
    func put<Body: AsyncSequence & Sendable>(
        _ key: ObjectKey, body: Body, length: Int64?
    ) async throws -> ObjectInfo where Body.Element == ByteBuffer

    /// Opens the object (or the `range` of it, both bounds inclusive and within the object)
    /// for reading. Throws `ObjectStorageError.notFound` / `.rangeNotSatisfiable`.
    func get(_ key: ObjectKey, range: ClosedRange<Int64>?) async throws -> ObjectContent

    /// The object's size and age, or nil when there is none.
    func head(_ key: ObjectKey) async throws -> ObjectInfo?

    /// Removes the object; removing a missing object is not an error.
    func delete(_ key: ObjectKey) async throws

    /// Up to `limit` objects whose keys start with `prefix`, in key order, after `startAfter`
    /// (pass the last key of one page to get the next; an empty page is the end).
    func list(prefix: String, startAfter: ObjectKey?, limit: Int) async throws -> [ObjectInfo]

    /// Clears uploads that were never completed (a crash mid-put) and began before `date`.
    /// Returns how many were removed.
    @discardableResult
    func removeAbandonedUploads(olderThan date: Date) async throws -> Int

    /// Makes the store usable (creates the root folder or the bucket when missing) and
    /// proves it answers: the readiness check.
    func prepare() async throws

    /// The gateway's internal URI (its `X-Accel-Redirect` target) from which the gateway
    /// reads `key` itself, or nil when downloads are not handed to it
    /// (`STORAGE_GATEWAY_PATH` unset): then the service streams the bytes. See
    /// `ObjectDownload` and the `/_store/` locations of deploy/nginx/gateway.conf.template.
    func gatewayTarget(for key: ObjectKey) -> String?
}

extension ObjectStorage {
    /// Whole object.
    public func get(_ key: ObjectKey) async throws -> ObjectContent {
        try await get(key, range: nil)
    }
}

/// An object's key: 1 to 512 bytes of `A-Z a-z 0-9 - _ . = +` in `/`-separated segments;
/// no empty segment and no segment starting with `.` (so no `.`/`..`, no hidden names).
/// Keys therefore map to paths that stay inside a filesystem root and need no escaping
/// anywhere. Build keys from identifiers the service generates (`recordings/<uuid>`),
/// never from user input.
public struct ObjectKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let rawValue: String

    public init(_ rawValue: String) throws(ObjectStorageError) {
        guard Self.isValid(rawValue) else { throw .invalidKey(rawValue) }
        self.rawValue = rawValue
    }

    public var description: String { rawValue }

    public static func < (lhs: ObjectKey, rhs: ObjectKey) -> Bool {
        lhs.rawValue.utf8.lexicographicallyPrecedes(rhs.rawValue.utf8)
    }

    static let maxLength = 512

    static func isValid(_ key: String) -> Bool {
        let bytes = Array(key.utf8)
        guard (1...maxLength).contains(bytes.count) else { return false }
        for segment in bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false) {
            guard let first = segment.first, first != UInt8(ascii: ".") else { return false }
            guard segment.allSatisfy(isKeyByte) else { return false }
        }
        return true
    }

    /// True when `prefix` could begin a valid key (used to validate `list` prefixes).
    static func isValidPrefix(_ prefix: String) -> Bool {
        prefix.isEmpty || isValid(prefix) || (prefix.hasSuffix("/") && isValid(String(prefix.dropLast())))
    }

    static func isKeyByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "="), UInt8(ascii: "+"):
            return true
        default:
            return false
        }
    }
}

/// What a store knows about one object.
public struct ObjectInfo: Sendable, Equatable {
    public var key: ObjectKey
    public var size: Int64
    public var lastModified: Date

    public init(key: ObjectKey, size: Int64, lastModified: Date) {
        self.key = key
        self.size = size
        self.lastModified = lastModified
    }
}

/// An opened object (or a range of it), read by streaming its bytes exactly once.
public struct ObjectContent: Sendable {
    /// The whole object.
    public let info: ObjectInfo
    /// The bytes this content carries; nil for the whole object.
    public let range: ClosedRange<Int64>?
    let stream: @Sendable (_ consume: (ByteBuffer) async throws -> Void) async throws -> Void

    public init(
        info: ObjectInfo, range: ClosedRange<Int64>?,
        stream: @escaping @Sendable (_ consume: (ByteBuffer) async throws -> Void) async throws -> Void
    ) {
        self.info = info
        self.range = range
        self.stream = stream
    }

    /// How many bytes `forEachChunk` delivers.
    public var length: Int64 {
        range.map { $0.upperBound - $0.lowerBound + 1 } ?? info.size
    }

    /// Hands the bytes to `body`, chunk by chunk, in order. Call once.
    public func forEachChunk(_ body: (ByteBuffer) async throws -> Void) async throws {
        try await stream(body)
    }

    /// All the bytes in one buffer; for small objects and tests. Throws when over `maxBytes`.
    public func collect(upTo maxBytes: Int) async throws -> ByteBuffer {
        var result = ByteBuffer()
        try await forEachChunk { chunk in
            guard result.readableBytes + chunk.readableBytes <= maxBytes else { throw ObjectStorageError.tooLarge }
            var chunk = chunk
            result.writeBuffer(&chunk)
        }
        return result
    }
}

public enum ObjectStorageError: Error, Equatable, CustomStringConvertible {
    /// Not a valid `ObjectKey`.
    case invalidKey(String)
    case notFound(ObjectKey)
    /// The range does not overlap the object.
    case rangeNotSatisfiable(size: Int64)
    /// The body yielded a different number of bytes than the `length` given to `put`.
    case lengthMismatch(expected: Int64, actual: Int64)
    /// `collect(upTo:)` met more bytes than allowed.
    case tooLarge
    /// The store answered, but refused the request (e.g. a wrong signature): a configuration
    /// or programming error, not an outage.
    case rejected(operation: String, status: Int, code: String)
    /// Misconfiguration found before any request was made.
    case misconfigured(String)

    public var description: String {
        switch self {
        case .invalidKey(let key): "invalid object key '\(key.prefix(80))'"
        case .notFound(let key): "no object at '\(key)'"
        case .rangeNotSatisfiable(let size): "range not satisfiable (object size \(size))"
        case .lengthMismatch(let expected, let actual): "body length \(actual) differs from the announced \(expected)"
        case .tooLarge: "object larger than allowed"
        case .rejected(let operation, let status, let code): "store refused \(operation): HTTP \(status) \(code)"
        case .misconfigured(let message): message
        }
    }
}
