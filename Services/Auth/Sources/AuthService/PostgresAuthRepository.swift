import Foundation
import Logging
import PostgresNIO
import Shared

struct PostgresAuthRepository: AuthRepository {
    let database: Database
    /// Services that must hear of user events; one delivery row each (each service ignores
    /// what it has no use for, e.g. vote a rename).
    let outboxTargets: [String]
    /// Auth's own revocations: its routes refuse revoked tokens like every other service's.
    let userEvents: UserEvents
    /// When a deletion is delivered a second time (see `deleteUser`).
    let deletionRedeliveryDelay: Duration
    /// Wakes the outbox dispatcher once an event is committed.
    let outboxWakeUp: WakeUp
    /// Wakes the mailer once a message is committed.
    let mailWakeUp: WakeUp

    func createUser(
        id: UUID, email: String, name: String, passwordHash: String, session: NewRefreshToken, verification: EmailProof, logger: Logger
    ) async throws -> UserRecord {
        do {
            return try await committing(logger: logger) { connection in
                let rows = try await connection.query(
                    """
                    INSERT INTO users (id, email, name, password_hash) VALUES (\(id), \(email), \(name), \(passwordHash))
                    RETURNING id, email, name, password_hash, created_at, email_verified
                    """, logger: logger)
                guard let user = try await Self.firstUser(rows) else { throw MissingRowError() }
                try await Self.insert(session, userID: id, on: connection, logger: logger)
                try await Self.insert(verification, for: user, on: connection, logger: logger)
                return (user, nil)
            }
        } catch let error as PSQLError where error.isUniqueViolation {
            throw AuthRepositoryError.emailTaken
        }
    }

    func sendVerification(_ verification: EmailProof, to user: UserRecord, logger: Logger) async throws {
        try await committing(logger: logger) { connection in
            try await Self.insert(verification, for: user, on: connection, logger: logger)
            return ((), nil)
        }
    }

    func requestEmailChange(_ proof: EmailProof, to address: String, for user: UserRecord, logger: Logger) async throws {
        try await committing(logger: logger) { connection in
            // Only the latest request can switch the address.
            try await connection.query(
                "UPDATE email_tokens SET used_at = now() WHERE user_id = \(user.id) AND purpose = 'change' AND used_at IS NULL",
                logger: logger
            ).consume()
            try await Self.insert(proof, for: user, address: address, purpose: "change", on: connection, logger: logger)
            return ((), nil)
        }
    }

    func verifyEmail(tokenHash: [UInt8], notice: [String: String], logger: Logger) async throws -> EmailVerification {
        do {
            return try await committing(logger: logger) { connection in
                let rows = try await connection.query(
                    """
                    UPDATE email_tokens SET used_at = now()
                    WHERE token_hash = \(Data(tokenHash)) AND purpose IN ('verify', 'change') AND used_at IS NULL AND expires_at > now()
                    RETURNING user_id, email, purpose
                    """, logger: logger)
                var spent: (UUID, String, String)?
                for try await row in rows.decode((UUID, String, String).self) { spent = row }
                guard let (userID, address, purpose) = spent else { return (.invalid, nil) }
                guard purpose == "change" else {
                    // A token for an address the account no longer has proves nothing.
                    let user = try await Self.firstUser(connection.query(
                        """
                        UPDATE users SET email_verified = true WHERE id = \(userID) AND email = \(address)
                        RETURNING id, email, name, password_hash, created_at, email_verified
                        """, logger: logger))
                    return (user.map(EmailVerification.verified) ?? .invalid, nil)
                }
                // The new address is proven: switch to it, and tell the old one.
                guard let before = try await Self.firstUser(connection.query(
                    "SELECT id, email, name, password_hash, created_at, email_verified FROM users WHERE id = \(userID) FOR UPDATE",
                    logger: logger))
                else { return (.invalid, nil) }
                let user = try await Self.firstUser(connection.query(
                    """
                    UPDATE users SET email = \(address), email_verified = true WHERE id = \(userID)
                    RETURNING id, email, name, password_hash, created_at, email_verified
                    """, logger: logger))
                guard let user else { return (.invalid, nil) }
                if before.email != address {
                    try await MailQueue.enqueue(
                        NewMail(
                            kind: .emailChanged, recipient: before.email,
                            values: notice.merging(["name": user.name, "email": before.email, "newEmail": address]) { $1 }),
                        on: connection, logger: logger)
                }
                return (.verified(user), nil)
            }
        } catch let error as PSQLError where error.isUniqueViolation {
            // Another account took the address meanwhile; the token stays unspent.
            return .emailTaken
        }
    }

    func resetPassword(
        tokenHash: [UInt8], passwordHash: String, session: NewRefreshToken, notice: [String: String], logger: Logger
    ) async throws -> UserRecord? {
        try await committing(logger: logger) { connection in
            guard let (userID, email) = try await Self.useToken(tokenHash, purpose: "reset", on: connection, logger: logger) else {
                return (nil, nil)
            }
            // The link reached the owner of the address: that verifies it too.
            guard let user = try await Self.firstUser(connection.query(
                """
                UPDATE users SET password_hash = \(passwordHash), email_verified = true, updated_at = clock_timestamp()
                WHERE id = \(userID) AND email = \(email)
                RETURNING id, email, name, password_hash, created_at, email_verified
                """, logger: logger))
            else { return (nil, nil) }
            // Every other reset link of the account is spent, and every session ends.
            try await connection.query(
                "UPDATE email_tokens SET used_at = now() WHERE user_id = \(userID) AND purpose = 'reset' AND used_at IS NULL",
                logger: logger
            ).consume()
            let sessions = try await liveSessions(of: userID, except: nil, on: connection, logger: logger)
            try await connection.query(
                "UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = \(userID) AND revoked_at IS NULL", logger: logger
            ).consume()
            try await connection.query("DELETE FROM login_failures WHERE email = \(email)", logger: logger).consume()
            try await Self.insert(session, userID: userID, on: connection, logger: logger)
            try await MailQueue.enqueue(
                NewMail(kind: .passwordChanged, recipient: user.email, values: notice.merging(["name": user.name]) { $1 }),
                on: connection, logger: logger)
            let pending = try await record(
                UserEvent(type: .sessionsRevoked, userId: userID, sessionIds: sessions), on: connection, logger: logger)
            return (user, pending)
        }
    }

    func loginCandidate(email: String, logger: Logger) async throws -> (UserRecord?, LoginFailures) {
        try await database.read(logger: logger) { connection in
            let rows = try await connection.query(
                """
                SELECT u.id, u.email, u.name, u.password_hash, u.created_at, u.email_verified, f.failures, f.last_failed_at, now()
                FROM (SELECT \(email)::text AS email) AS attempt
                LEFT JOIN users u ON u.email = attempt.email
                LEFT JOIN login_failures f ON f.email = attempt.email
                """, logger: logger)
            typealias Row = (UUID?, String?, String?, String?, Date?, Bool?, Int32?, Date?, Date)
            for try await (id, email, name, hash, createdAt, verified, failures, lastFailure, now) in rows.decode(Row.self) {
                var user: UserRecord?
                if let id, let email, let name, let createdAt, let verified {
                    user = UserRecord(id: id, email: email, name: name, passwordHash: hash, createdAt: createdAt, emailVerified: verified)
                }
                let recent = failures.map { LoginFailures(count: Int($0), last: lastFailure ?? now, now: now) }
                return (user, recent ?? .none(now: now))
            }
            throw MissingRowError()
        }
    }

    func recordLoginFailure(email: String, window: Duration, logger: Logger) async throws {
        let seconds = window.timeInterval
        try await database.write(logger: logger) { connection in
            // Rows past the window mean nothing any more: each failure sweeps some away, so
            // the table holds only the e-mails that failed recently.
            try await connection.query(
                """
                WITH stale AS (
                    DELETE FROM login_failures
                    WHERE last_failed_at < now() - make_interval(secs => \(seconds)) AND email <> \(email)
                )
                INSERT INTO login_failures AS f (email, failures, last_failed_at) VALUES (\(email), 1, now())
                ON CONFLICT (email) DO UPDATE SET
                    failures = CASE WHEN f.last_failed_at < now() - make_interval(secs => \(seconds)) THEN 1
                                    ELSE f.failures + 1 END,
                    last_failed_at = now()
                """, logger: logger
            ).consume()
        }
    }

    func user(id: UUID, logger: Logger) async throws -> UserRecord? {
        try await database.read(logger: logger) { connection in
            try await Self.firstUser(connection.query(
                "SELECT id, email, name, password_hash, created_at, email_verified FROM users WHERE id = \(id)", logger: logger))
        }
    }

    func createSession(userID: UUID, token: NewRefreshToken, clearingLoginFailuresOf email: String?, logger: Logger) async throws {
        guard let email else {
            return try await database.write(logger: logger) { connection in
                try await Self.insert(token, userID: userID, on: connection, logger: logger)
            }
        }
        try await database.transaction(logger: logger) { connection in
            try await Self.insert(token, userID: userID, on: connection, logger: logger)
            try await connection.query("DELETE FROM login_failures WHERE email = \(email)", logger: logger).consume()
        }
    }

    func rotate(tokenHash: [UInt8], replacement: [UInt8], expiresAt: Date, logger: Logger) async throws -> RefreshOutcome {
        let hash = Data(tokenHash)
        // FOR UPDATE serialises two presentations of one token: the second sees it rotated.
        return try await committing(logger: logger) { connection in
            let rows = try await connection.query(
                """
                SELECT user_id, session_id, expires_at, rotated_at, revoked_at
                FROM refresh_tokens WHERE token_hash = \(hash) FOR UPDATE
                """, logger: logger)
            var found: (UUID, UUID, Date, Date?, Date?)?
            for try await row in rows.decode((UUID, UUID, Date, Date?, Date?).self) { found = row }
            guard let (userID, sessionID, tokenExpiry, rotatedAt, revokedAt) = found else { return (.invalid, nil) }
            if rotatedAt != nil {
                // Theft detection: every session of the user ends, access tokens included.
                let sessions = try await liveSessions(of: userID, except: nil, on: connection, logger: logger)
                try await connection.query(
                    "UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = \(userID) AND revoked_at IS NULL",
                    logger: logger
                ).consume()
                let pending = try await record(
                    UserEvent(type: .sessionsRevoked, userId: userID, sessionIds: sessions), on: connection, logger: logger)
                return (.reused(userID: userID), pending)
            }
            guard revokedAt == nil, tokenExpiry > Date() else { return (.invalid, nil) }
            try await connection.query(
                "UPDATE refresh_tokens SET rotated_at = now(), revoked_at = now() WHERE token_hash = \(hash)",
                logger: logger
            ).consume()
            try await Self.insert(
                NewRefreshToken(hash: replacement, sessionID: sessionID, expiresAt: expiresAt), userID: userID,
                on: connection, logger: logger)
            guard let user = try await Self.firstUser(connection.query(
                "SELECT id, email, name, password_hash, created_at, email_verified FROM users WHERE id = \(userID)", logger: logger))
            else { return (.invalid, nil) }
            return (.rotated(user, sessionID: sessionID), nil)
        }
    }

    func revoke(tokenHash: [UInt8], logger: Logger) async throws {
        try await committing(logger: logger) { connection in
            // The live token's session ends: its access tokens too.
            let rows = try await connection.query(
                """
                UPDATE refresh_tokens SET revoked_at = now() WHERE token_hash = \(Data(tokenHash)) AND revoked_at IS NULL
                RETURNING user_id, session_id
                """, logger: logger)
            var ended: (UUID, UUID)?
            for try await row in rows.decode((UUID, UUID).self) { ended = row }
            guard let (userID, sessionID) = ended else { return ((), nil) }
            let pending = try await record(
                UserEvent(type: .sessionsRevoked, userId: userID, sessionIds: [sessionID]), on: connection, logger: logger)
            return ((), pending)
        }
    }

    func updateUser(
        id: UUID, name: String?, passwordHash: String?, keepSession: UUID, notice: [String: String], logger: Logger
    ) async throws -> UserRecord? {
        try await committing(logger: logger) { connection in
            // The version of a rename is the database's clock once the row is locked, so two
            // renames of one user are ordered as they committed, whichever auth instance ran them.
            let rows = try await connection.query(
                """
                UPDATE users SET name = coalesce(\(name), name), password_hash = coalesce(\(passwordHash), password_hash),
                    updated_at = clock_timestamp()
                WHERE id = \(id)
                RETURNING id, email, name, password_hash, created_at, email_verified, (extract(epoch FROM updated_at) * 1000000)::bigint
                """, logger: logger)
            var found: (UserRecord, Int64)?
            for try await (id, email, name, hash, createdAt, verified, version) in rows.decode((UUID, String, String, String?, Date, Bool, Int64).self) {
                found = (UserRecord(id: id, email: email, name: name, passwordHash: hash, createdAt: createdAt, emailVerified: verified), version)
            }
            guard let (user, version) = found else { return (nil, nil) }
            if name != nil {
                _ = try await record(
                    UserEvent(type: .userRenamed, userId: id, name: user.name, version: version), on: connection, logger: logger)
            }
            var pending: UserEvents.PendingRevocation?
            if passwordHash != nil {
                let sessions = try await liveSessions(of: id, except: keepSession, on: connection, logger: logger)
                try await connection.query(
                    """
                    UPDATE refresh_tokens SET revoked_at = now()
                    WHERE user_id = \(id) AND revoked_at IS NULL AND session_id <> \(keepSession)
                    """, logger: logger
                ).consume()
                pending = try await record(
                    UserEvent(type: .sessionsRevoked, userId: id, sessionIds: sessions), on: connection, logger: logger)
                try await MailQueue.enqueue(
                    NewMail(kind: .passwordChanged, recipient: user.email, values: notice.merging(["name": user.name]) { $1 }),
                    on: connection, logger: logger)
            }
            return (user, pending)
        }
    }

    /// The deletion goes out twice: now, and once more after `deletionRedeliveryDelay`. A
    /// write that passed its token check just before a service applied the deletion may
    /// commit just after it; every write ends within the services' request deadlines, far
    /// below that delay, so the second application removes whatever such a write left.
    func deleteUser(id: UUID, logger: Logger) async throws -> Bool {
        try await committing(logger: logger) { connection in
            var deleted = false
            for try await _ in try await connection.query("DELETE FROM users WHERE id = \(id) RETURNING id", logger: logger) {
                deleted = true
            }
            guard deleted else { return (false, nil) }
            let pending = try await record(
                UserEvent(type: .userDeleted, userId: id), due: [.zero, deletionRedeliveryDelay], on: connection, logger: logger)
            return (true, pending)
        }
    }

    func names(ids: [UUID], logger: Logger) async throws -> [UserName] {
        try await database.read(logger: logger) { connection in
            var names: [UserName] = []
            let rows = try await connection.query("SELECT id, name FROM users WHERE id = ANY(\(ids))", logger: logger)
            for try await (id, name) in rows.decode((UUID, String).self) {
                names.append(UserName(id: id.apiString, name: name))
            }
            return names
        }
    }

    func claimDueDeliveries(limit: Int, lease: Duration, logger: Logger) async throws -> [OutboxDelivery] {
        try await database.write(logger: logger) { connection in
            let rows = try await connection.query(
                """
                UPDATE outbox_deliveries d SET next_attempt_at = now() + make_interval(secs => \(lease.timeInterval)), attempts = d.attempts + 1
                FROM (
                    SELECT event_id, target FROM outbox_deliveries
                    WHERE delivered_at IS NULL AND next_attempt_at <= now()
                    ORDER BY next_attempt_at LIMIT \(limit) FOR UPDATE SKIP LOCKED
                ) due, outbox_events e
                WHERE d.event_id = due.event_id AND d.target = due.target AND e.id = d.event_id
                RETURNING d.event_id, d.target, d.attempts, e.event_type, e.aggregate_id, e.created_at, e.payload::text
                """, logger: logger)
            var deliveries: [OutboxDelivery] = []
            for try await (eventID, target, attempts, type, userID, createdAt, payload) in rows.decode(
                (Int64, String, Int, String, UUID, Date, String).self)
            {
                // Unreadable: logged, and left to come due again (never guessed at).
                guard var event = Self.event(type: type, userID: userID, createdAt: createdAt, payload: payload, logger: logger)
                else { continue }
                event.id = eventID
                deliveries.append(OutboxDelivery(target: target, attempts: attempts, event: event))
            }
            return deliveries
        }
    }

    func markDelivered(_ delivery: OutboxDelivery, logger: Logger) async throws {
        try await database.write(logger: logger) { connection in
            try await connection.query(
                """
                UPDATE outbox_deliveries SET delivered_at = now(), last_error = NULL
                WHERE event_id = \(delivery.event.id) AND target = \(delivery.target)
                """, logger: logger
            ).consume()
        }
    }

    func scheduleRetry(_ delivery: OutboxDelivery, after delay: Duration, error: String, logger: Logger) async throws {
        try await database.write(logger: logger) { connection in
            try await connection.query(
                """
                UPDATE outbox_deliveries SET next_attempt_at = now() + make_interval(secs => \(delay.timeInterval)), last_error = \(error)
                WHERE event_id = \(delivery.event.id) AND target = \(delivery.target)
                """, logger: logger
            ).consume()
        }
    }

    // MARK: social sign-in

    func socialSignIn(
        provider: String, claims: IDTokenClaims, name: String, session: NewRefreshToken, notice: [String: String], logger: Logger
    ) async throws -> SocialSignInOutcome {
        do {
            return try await socialSignInOnce(provider: provider, claims: claims, name: name, session: session, notice: notice, logger: logger)
        } catch let error as PSQLError where error.isUniqueViolation {
            // Two first sign-ins of one person at once: the other made the user or the link;
            // this one now finds it.
            return try await socialSignInOnce(provider: provider, claims: claims, name: name, session: session, notice: notice, logger: logger)
        }
    }

    private func socialSignInOnce(
        provider: String, claims: IDTokenClaims, name: String, session: NewRefreshToken, notice: [String: String], logger: Logger
    ) async throws -> SocialSignInOutcome {
        try await committing(logger: logger) { connection in
            // A known identity signs in to its user.
            if let user = try await Self.firstUser(connection.query(
                """
                SELECT u.id, u.email, u.name, u.password_hash, u.created_at, u.email_verified
                FROM identities i JOIN users u ON u.id = i.user_id WHERE i.provider = \(provider) AND i.subject = \(claims.subject)
                """, logger: logger))
            {
                try await Self.insert(session, userID: user.id, on: connection, logger: logger)
                return (.signedIn(user), nil)
            }
            guard let email = claims.email, AuthRules.emailError(email) == nil else { return (.emailRequired, nil) }
            if let existing = try await Self.firstUser(connection.query(
                "SELECT id, email, name, password_hash, created_at, email_verified FROM users WHERE email = \(email) FOR UPDATE",
                logger: logger))
            {
                // Only when both sides proved the address: otherwise whoever registered it first
                // (perhaps an attacker, before the owner arrives) would get the owner's account.
                guard claims.emailVerified, existing.emailVerified else { return (.accountExists, nil) }
                try await Self.link(provider: provider, claims: claims, userID: existing.id, on: connection, logger: logger)
                try await Self.insert(session, userID: existing.id, on: connection, logger: logger)
                try await MailQueue.enqueue(
                    NewMail(kind: .identityLinked, recipient: existing.email, values: notice.merging(["name": existing.name, "provider": provider]) { $1 }),
                    on: connection, logger: logger)
                return (.linked(existing), nil)
            }
            let rows = try await connection.query(
                """
                INSERT INTO users (id, email, name, password_hash, email_verified) VALUES (\(UUID.random()), \(email), \(name), NULL, \(claims.emailVerified))
                RETURNING id, email, name, password_hash, created_at, email_verified
                """, logger: logger)
            guard let user = try await Self.firstUser(rows) else { throw MissingRowError() }
            try await Self.link(provider: provider, claims: claims, userID: user.id, on: connection, logger: logger)
            try await Self.insert(session, userID: user.id, on: connection, logger: logger)
            return (.created(user), nil)
        }
    }

    private static func link(provider: String, claims: IDTokenClaims, userID: UUID, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query(
            "INSERT INTO identities (provider, subject, user_id, email) VALUES (\(provider), \(claims.subject), \(userID), \(claims.email))",
            logger: logger
        ).consume()
    }

    func identities(userID: UUID, logger: Logger) async throws -> [IdentityRecord] {
        try await database.read(logger: logger) { connection in
            let rows = try await connection.query(
                "SELECT provider, email, linked_at FROM identities WHERE user_id = \(userID) ORDER BY linked_at, provider", logger: logger)
            var found: [IdentityRecord] = []
            for try await (provider, email, linkedAt) in rows.decode((String, String?, Date).self) {
                found.append(IdentityRecord(provider: provider, email: email, linkedAt: linkedAt))
            }
            return found
        }
    }

    func identityOwner(provider: String, subject: String, logger: Logger) async throws -> UUID? {
        try await database.read(logger: logger) { connection in
            let rows = try await connection.query(
                "SELECT user_id FROM identities WHERE provider = \(provider) AND subject = \(subject)", logger: logger)
            for try await owner in rows.decode(UUID.self) { return owner }
            return nil
        }
    }

    func unlink(userID: UUID, provider: String, logger: Logger) async throws -> UnlinkOutcome {
        try await committing(logger: logger) { connection in
            // The user's row is locked, so two unlinks at once cannot both leave it without a way in.
            let rows = try await connection.query(
                """
                SELECT u.password_hash IS NOT NULL, (SELECT count(*) FROM identities WHERE user_id = u.id)::int,
                       EXISTS (SELECT 1 FROM identities WHERE user_id = u.id AND provider = \(provider))
                FROM users u WHERE u.id = \(userID) FOR UPDATE
                """, logger: logger)
            var state: (Bool, Int, Bool)?
            for try await row in rows.decode((Bool, Int, Bool).self) { state = row }
            guard let (hasPassword, count, linked) = state, linked else { return (.notLinked, nil) }
            guard hasPassword || count > 1 else { return (.lastSignInMethod, nil) }
            try await connection.query(
                "DELETE FROM identities WHERE user_id = \(userID) AND provider = \(provider)", logger: logger
            ).consume()
            return (.unlinked, nil)
        }
    }

    // MARK: events

    /// Runs `body` in a transaction; once it has committed, applies the revocation it recorded
    /// here and wakes the outbox.
    private func committing<Result: Sendable>(
        logger: Logger, _ body: @escaping @Sendable (PostgresConnection) async throws -> (Result, UserEvents.PendingRevocation?)
    ) async throws -> Result {
        let (result, pending) = try await database.transaction(logger: logger, body)
        userEvents.noteCommitted(pending)
        outboxWakeUp.signal()
        mailWakeUp.signal()
        return result
    }

    /// Writes `event` to the outbox, one delivery per target due after each of `due`, and
    /// revokes what it revokes in auth's own table, all in the caller's transaction.
    private func record(
        _ event: UserEvent, due delays: [Duration] = [.zero], on connection: PostgresConnection, logger: Logger
    ) async throws -> UserEvents.PendingRevocation? {
        let payload = String(decoding: try APIJSONEncoder().encode(event), as: UTF8.self)
        for delay in delays {
            try await connection.query(
                """
                WITH event AS (
                    INSERT INTO outbox_events (event_type, aggregate_id, payload)
                    VALUES (\(event.type.rawValue), \(event.userId), \(payload)::jsonb)
                    RETURNING id
                )
                INSERT INTO outbox_deliveries (event_id, target, next_attempt_at)
                SELECT event.id, target, now() + make_interval(secs => \(delay.timeInterval))
                FROM event, unnest(\(outboxTargets)::text[]) AS target
                """, logger: logger
            ).consume()
        }
        return try await userEvents.revoke(event, on: connection, logger: logger)
    }

    /// Sessions of the user that may still have a live access token: every access token is
    /// issued together with a refresh token of its session, so those created within a token's
    /// lifetime (plus leeway) name them all.
    private func liveSessions(of userID: UUID, except kept: UUID?, on connection: PostgresConnection, logger: Logger) async throws -> [UUID] {
        let rows = try await connection.query(
            """
            SELECT DISTINCT session_id FROM refresh_tokens
            WHERE user_id = \(userID) AND created_at > now() - make_interval(secs => \(userEvents.retention.timeInterval))
              AND session_id IS DISTINCT FROM \(kept)
            """, logger: logger)
        var sessions: [UUID] = []
        for try await session in rows.decode(UUID.self) { sessions.append(session) }
        return sessions
    }

    /// The event of an outbox row. Rows written before events had payloads of their own
    /// (`user_deleted` with `{userId}`) are read as `user.deleted`.
    static func event(type: String, userID: UUID, createdAt: Date, payload: String, logger: Logger) -> UserEvent? {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        if let event = try? decoder.decode(UserEvent.self, from: Data(payload.utf8)) { return event }
        if type == "user_deleted" { return UserEvent(type: .userDeleted, userId: userID, occurredAt: createdAt) }
        logger.error("unreadable outbox event; not delivered", metadata: ["type": "\(type)", "userId": "\(userID)"])
        return nil
    }

    private static func insert(_ token: NewRefreshToken, userID: UUID, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query(
            """
            INSERT INTO refresh_tokens (token_hash, user_id, session_id, expires_at)
            VALUES (\(Data(token.hash)), \(userID), \(token.sessionID), \(token.expiresAt))
            """, logger: logger
        ).consume()
    }

    /// Stores a verification token for `address` (the user's own, or the one they want to
    /// change to: `purpose` "change") and queues its message to that address.
    private static func insert(
        _ proof: EmailProof, for user: UserRecord, address: String? = nil, purpose: String = "verify",
        on connection: PostgresConnection, logger: Logger
    ) async throws {
        let address = address ?? user.email
        try await connection.query(
            """
            INSERT INTO email_tokens (token_hash, user_id, purpose, email, expires_at)
            VALUES (\(Data(proof.tokenHash)), \(user.id), \(purpose), \(address), now() + make_interval(secs => \(proof.validFor.timeInterval)))
            """, logger: logger
        ).consume()
        try await MailQueue.enqueue(
            NewMail(kind: .verify, recipient: address, values: proof.values.merging(["name": user.name, "email": address]) { $1 }),
            on: connection, logger: logger)
    }

    /// Spends a live token of `purpose`: its user and the address it was sent to, or nil
    /// when it is unknown, used or expired.
    private static func useToken(
        _ tokenHash: [UInt8], purpose: String, on connection: PostgresConnection, logger: Logger
    ) async throws -> (UUID, String)? {
        let rows = try await connection.query(
            """
            UPDATE email_tokens SET used_at = now()
            WHERE token_hash = \(Data(tokenHash)) AND purpose = \(purpose) AND used_at IS NULL AND expires_at > now()
            RETURNING user_id, email
            """, logger: logger)
        for try await row in rows.decode((UUID, String).self) { return row }
        return nil
    }

    private static func firstUser(_ rows: PostgresRowSequence) async throws -> UserRecord? {
        var user: UserRecord?
        for try await (id, email, name, hash, createdAt, verified) in rows.decode((UUID, String, String, String?, Date, Bool).self) {
            user = UserRecord(id: id, email: email, name: name, passwordHash: hash, createdAt: createdAt, emailVerified: verified)
        }
        return user
    }
}
