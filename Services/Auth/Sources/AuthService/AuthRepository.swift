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

/// A verification token about to be stored, and the values of its message (`link`,
/// `validFor`; the repository adds the user's name and address).
struct EmailProof: Sendable {
    var tokenHash: [UInt8]
    var validFor: Duration
    var values: [String: String]
}

/// What presenting a verification token led to.
enum EmailVerification: Sendable {
    case verified(UserRecord)
    /// Unknown, used, expired, or for an address the account no longer has.
    case invalid
    /// A change to an address that another account has taken since.
    case emailTaken
}

/// What a verified ID token led to (the contract's linking rules).
enum SocialSignInOutcome: Sendable {
    /// A known (provider, subject): `200`.
    case signedIn(UserRecord)
    /// Linked to the account with that e-mail, both sides verified: `200`.
    case linked(UserRecord)
    /// A new user: `201`.
    case created(UserRecord)
    /// An account has that e-mail, but one side never proved it: `409 account_exists`.
    case accountExists
    /// The token carries no usable e-mail, so no account can be made: `422`.
    case emailRequired
}

enum UnlinkOutcome: Sendable {
    case unlinked
    case notLinked
    /// It is the account's only way to sign in: `409 last_sign_in_method`.
    case lastSignInMethod
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
    /// Creates the user, its first session and its verification message together; throws
    /// `emailTaken` on a duplicate.
    func createUser(
        id: UUID, email: String, name: String, passwordHash: String, session: NewRefreshToken, verification: EmailProof, logger: Logger
    ) async throws -> UserRecord
    /// The account an e-mail names, if any, and that e-mail's recent login failures (one query).
    func loginCandidate(email: String, logger: Logger) async throws -> (UserRecord?, LoginFailures)
    /// Counts a failed login for the e-mail; the count restarts after `window` without one.
    func recordLoginFailure(email: String, window: Duration, logger: Logger) async throws
    func user(id: UUID, logger: Logger) async throws -> UserRecord?
    /// Stores a new session; `clearingLoginFailuresOf` forgets that e-mail's failed logins too.
    func createSession(userID: UUID, token: NewRefreshToken, clearingLoginFailuresOf email: String?, logger: Logger) async throws
    func rotate(tokenHash: [UInt8], replacement: [UInt8], expiresAt: Date, logger: Logger) async throws -> RefreshOutcome
    /// Ends the session of that token (`sessions.revoked`); unknown or revoked tokens are a no-op.
    func revoke(tokenHash: [UInt8], logger: Logger) async throws
    /// Changes name (`user.renamed`) and/or password hash; a new password ends every session
    /// but `keepSession` (`sessions.revoked`) and queues the "password changed" message
    /// (rendered with `notice`).
    func updateUser(
        id: UUID, name: String?, passwordHash: String?, keepSession: UUID, notice: [String: String], logger: Logger
    ) async throws -> UserRecord?

    // E-mail: single-use tokens (only their hash stored) and the messages that carry them,
    // queued in the same transaction (`MailQueue`).
    /// A new verification token for the user's address, and its message.
    func sendVerification(_ verification: EmailProof, to user: UserRecord, logger: Logger) async throws
    /// A token that switches the account to `address` once it is verified (the "change"
    /// purpose; an earlier request's token stops working), and its message to that address.
    func requestEmailChange(_ proof: EmailProof, to address: String, for user: UserRecord, logger: Logger) async throws
    /// Spends a verification token: verifies the address, or switches to the new one of a
    /// change (and queues "your address was changed", rendered with `notice`, to the old one).
    func verifyEmail(tokenHash: [UInt8], notice: [String: String], logger: Logger) async throws -> EmailVerification
    /// Spends a reset token: sets the password, verifies the address, ends every session
    /// (`sessions.revoked`), starts `session`, queues the "password changed" message. Nil
    /// for a bad, used or expired token.
    func resetPassword(
        tokenHash: [UInt8], passwordHash: String, session: NewRefreshToken, notice: [String: String], logger: Logger
    ) async throws -> UserRecord?
    /// Deletes the user and records `user.deleted` in the same transaction.
    func deleteUser(id: UUID, logger: Logger) async throws -> Bool
    func names(ids: [UUID], logger: Logger) async throws -> [UserName]

    // Social sign-in: identities (provider, subject) -> user.
    /// Signs in, links or creates per the contract, with `session`; a link queues the
    /// "new sign-in method" message (rendered with `notice`).
    func socialSignIn(
        provider: String, claims: IDTokenClaims, name: String, session: NewRefreshToken, notice: [String: String], logger: Logger
    ) async throws -> SocialSignInOutcome
    func identities(userID: UUID, logger: Logger) async throws -> [IdentityRecord]
    func identityOwner(provider: String, subject: String, logger: Logger) async throws -> UUID?
    /// Never removes the last way to sign in.
    func unlink(userID: UUID, provider: String, logger: Logger) async throws -> UnlinkOutcome

    // The outbox: deliveries of events to the services that must hear of them.
    /// Claims up to `limit` due deliveries for `lease` (`SKIP LOCKED`: other instances claim
    /// others); a claimed delivery not settled within the lease falls due again.
    func claimDueDeliveries(limit: Int, lease: Duration, logger: Logger) async throws -> [OutboxDelivery]
    func markDelivered(_ delivery: OutboxDelivery, logger: Logger) async throws
    func scheduleRetry(_ delivery: OutboxDelivery, after delay: Duration, error: String, logger: Logger) async throws
}
