import Foundation
import PostgresNIO

/// A `timestamptz` to the microsecond, exactly as Postgres stores it.
///
/// `Date` goes through a `Double` and postgres-nio truncates when it binds one, so a
/// timestamp read as a `Date` and bound again can come back one microsecond off. Keyset
/// cursors compare timestamps for equality, so they carry this type instead.
public struct PostgresTimestamp: Sendable, Hashable, Comparable {
    /// Microseconds since 2000-01-01T00:00:00Z, Postgres' own representation.
    public var microsecondsSince2000: Int64

    static let postgresEpoch = Date(timeIntervalSince1970: 946_684_800)

    public init(microsecondsSince2000: Int64) {
        self.microsecondsSince2000 = microsecondsSince2000
    }

    /// The nearest microsecond to `date`.
    public init(_ date: Date) {
        self.microsecondsSince2000 = Int64((date.timeIntervalSince(Self.postgresEpoch) * 1_000_000).rounded())
    }

    public var date: Date {
        Date(timeInterval: Double(microsecondsSince2000) / 1_000_000, since: Self.postgresEpoch)
    }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        lhs.microsecondsSince2000 < rhs.microsecondsSince2000
    }
}

extension PostgresTimestamp: PostgresNonThrowingEncodable {
    public static var psqlType: PostgresDataType { .timestamptz }
    public static var psqlFormat: PostgresFormat { .binary }

    public func encode<JSONEncoder: PostgresJSONEncoder>(into byteBuffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) {
        byteBuffer.writeInteger(microsecondsSince2000)
    }
}

extension PostgresTimestamp: PostgresDecodable {
    public init<JSONDecoder: PostgresJSONDecoder>(
        from buffer: inout ByteBuffer, type: PostgresDataType, format: PostgresFormat,
        context: PostgresDecodingContext<JSONDecoder>
    ) throws {
        guard type == .timestamptz || type == .timestamp, format == .binary, buffer.readableBytes == 8,
            let microseconds = buffer.readInteger(as: Int64.self)
        else { throw PostgresDecodingError.Code.typeMismatch }
        self.microsecondsSince2000 = microseconds
    }
}
