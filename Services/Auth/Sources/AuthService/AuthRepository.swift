import Foundation
import Logging
import Shared

/// A refresh token about to be stored: only its hash is ever persisted.
struct NewRefreshToken: Sendable {
    var hash: [UInt8]
    var sessionID: UUID
    var expiresAt: Date
}

/// What presenting a refresh token led to.
enum RefreshOutcome: Sendable {
    /// The token was live and has been replaced by the new one.
    case rotated(UserRecord, sessionID: UUID)
    /// The token had already been rotated: every refresh token of its user is now revoked.
    case reused(userID: UUID)
    /// Unknown, expired, logged out or revoked.
    case invalid
}

/// One pending delivery of an outbox event to one service.
struct OutboxDelivery: Sendable {
    var target: String
    /// Attempts so far, this one included.
    var attempts: Int
    /// What to send (its `id` is the outbox row's).
    var event: UserEvent
}

enum AuthRepositoryError: Error {
    case emailTaken
}

/// Storage of users, sessions and the outbox. `Sendable` so handlers share one instance.
///
/// Every change that other services must hear of (a deletion, a rename, sessions that end)
/// writes its user event to the outbox in the same transaction, and revokes the tokens in
/// auth's own `revoked_tokens` at once.
protocol AuthRepository: Sendable {
    /// Creates the user and its first session together; throws `emailTaken` on a duplicate.
    func createUser(id: UUID, email: String, name: String, passwordHash: String, session: NewRefreshToken, logger: Logger) async throws -> UserRecord
    func user(email: String, logger: Logger) async throws -> UserRecord?
    func user(id: UUID, logger: Logger) async throws -> UserRecord?
    func createSession(userID: UUID, token: NewRefreshToken, logger: Logger) async throws
    func rotate(tokenHash: [UInt8], replacement: [UInt8], expiresAt: Date, logger: Logger) async throws -> RefreshOutcome
    /// Ends the session of that token (`sessions.revoked`); unknown or revoked tokens are a no-op.
    func revoke(tokenHash: [UInt8], logger: Logger) async throws
    /// Changes name (`user.renamed`) and/or password hash; a new password ends every session
    /// but `keepSession` (`sessions.revoked`).
    func updateUser(id: UUID, name: String?, passwordHash: String?, keepSession: UUID, logger: Logger) async throws -> UserRecord?
    /// Deletes the user and records `user.deleted` in the same transaction.
    func deleteUser(id: UUID, logger: Logger) async throws -> Bool
    func names(ids: [UUID], logger: Logger) async throws -> [UserName]

    // The outbox: deliveries of events to the services that must hear of them.
    /// Claims up to `limit` due deliveries for `lease` (`SKIP LOCKED`: other instances claim
    /// others); a claimed delivery not settled within the lease falls due again.
    func claimDueDeliveries(limit: Int, lease: Duration, logger: Logger) async throws -> [OutboxDelivery]
    func markDelivered(_ delivery: OutboxDelivery, logger: Logger) async throws
    func scheduleRetry(_ delivery: OutboxDelivery, after delay: Duration, error: String, logger: Logger) async throws
}
