import Foundation

/// A change to a user that other services must act on, sent by auth through its outbox to
/// every service's `POST /internal/events` (see `UserEventsController`).
public struct UserEvent: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        /// The account is gone: its tokens stop working, its data goes.
        case userDeleted = "user.deleted"
        /// The account has a new name (`name`, ordered by `version`).
        case userRenamed = "user.renamed"
        /// The sessions in `sessionIds` ended: their access tokens stop working.
        case sessionsRevoked = "sessions.revoked"
    }

    /// Auth's id for the event (its outbox row): the same on every redelivery.
    public var id: Int64
    public var type: Kind
    public var userId: UUID
    public var occurredAt: Date
    /// `user.renamed`: the new name.
    public var name: String?
    /// `user.renamed`: microseconds since 1970 of the rename; a higher version is newer. A
    /// name taken from an access token has version `iat` × 10⁶, so a token issued before a
    /// rename never brings the old name back.
    public var version: Int64?
    /// `sessions.revoked`: the sessions (the tokens' `sid`) that ended.
    public var sessionIds: [UUID]?

    public init(
        id: Int64 = 0, type: Kind, userId: UUID, occurredAt: Date = Date(), name: String? = nil, version: Int64? = nil,
        sessionIds: [UUID]? = nil
    ) {
        self.id = id
        self.type = type
        self.userId = userId
        self.occurredAt = occurredAt
        self.name = name
        self.version = version
        self.sessionIds = sessionIds
    }

    /// The version of a name read from an access token issued at `iat` (seconds).
    public static func nameVersion(issuedAt iat: Int) -> Int64 { Int64(iat) * 1_000_000 }

    /// The version of a rename made at `date`.
    public static func nameVersion(of date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1_000_000).rounded(.down)) }
}
