import Foundation
import Logging
import PostgresNIO
import Shared

struct PostgresAuthRepository: AuthRepository {
    let database: Database
    /// Services that must hear of a deleted user; one delivery row each.
    let outboxTargets: [String]

    func createUser(id: UUID, email: String, name: String, passwordHash: String, session: NewRefreshToken, logger: Logger) async throws -> UserRecord {
        do {
            return try await database.transaction(logger: logger) { connection in
                let rows = try await connection.query(
                    """
                    INSERT INTO users (id, email, name, password_hash) VALUES (\(id), \(email), \(name), \(passwordHash))
                    RETURNING id, email, name, password_hash, created_at
                    """, logger: logger)
                guard let user = try await Self.firstUser(rows) else { throw MissingRowError() }
                try await Self.insert(session, userID: id, on: connection, logger: logger)
                return user
            }
        } catch let error as PSQLError where error.isUniqueViolation {
            throw AuthRepositoryError.emailTaken
        }
    }

    func user(email: String, logger: Logger) async throws -> UserRecord? {
        try await database.read(logger: logger) { connection in
            try await Self.firstUser(connection.query(
                "SELECT id, email, name, password_hash, created_at FROM users WHERE email = \(email)", logger: logger))
        }
    }

    func user(id: UUID, logger: Logger) async throws -> UserRecord? {
        try await database.read(logger: logger) { connection in
            try await Self.firstUser(connection.query(
                "SELECT id, email, name, password_hash, created_at FROM users WHERE id = \(id)", logger: logger))
        }
    }

    func createSession(userID: UUID, token: NewRefreshToken, logger: Logger) async throws {
        try await database.write(logger: logger) { connection in
            try await Self.insert(token, userID: userID, on: connection, logger: logger)
        }
    }

    func rotate(tokenHash: [UInt8], replacement: [UInt8], expiresAt: Date, logger: Logger) async throws -> RefreshOutcome {
        let hash = Data(tokenHash)
        // FOR UPDATE serialises two presentations of one token: the second sees it rotated.
        return try await database.transaction(logger: logger) { connection in
            let rows = try await connection.query(
                """
                SELECT user_id, session_id, expires_at, rotated_at, revoked_at
                FROM refresh_tokens WHERE token_hash = \(hash) FOR UPDATE
                """, logger: logger)
            var found: (UUID, UUID, Date, Date?, Date?)?
            for try await row in rows.decode((UUID, UUID, Date, Date?, Date?).self) { found = row }
            guard let (userID, sessionID, tokenExpiry, rotatedAt, revokedAt) = found else { return .invalid }
            if rotatedAt != nil {
                try await connection.query(
                    "UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = \(userID) AND revoked_at IS NULL",
                    logger: logger
                ).consume()
                return .reused(userID: userID)
            }
            guard revokedAt == nil, tokenExpiry > Date() else { return .invalid }
            try await connection.query(
                "UPDATE refresh_tokens SET rotated_at = now(), revoked_at = now() WHERE token_hash = \(hash)",
                logger: logger
            ).consume()
            try await Self.insert(
                NewRefreshToken(hash: replacement, sessionID: sessionID, expiresAt: expiresAt), userID: userID,
                on: connection, logger: logger)
            guard let user = try await Self.firstUser(connection.query(
                "SELECT id, email, name, password_hash, created_at FROM users WHERE id = \(userID)", logger: logger))
            else { return .invalid }
            return .rotated(user, sessionID: sessionID)
        }
    }

    func revoke(tokenHash: [UInt8], logger: Logger) async throws {
        try await database.write(logger: logger) { connection in
            try await connection.query(
                "UPDATE refresh_tokens SET revoked_at = now() WHERE token_hash = \(Data(tokenHash)) AND revoked_at IS NULL",
                logger: logger
            ).consume()
        }
    }

    func updateUser(id: UUID, name: String?, passwordHash: String?, keepSession: UUID?, logger: Logger) async throws -> UserRecord? {
        try await database.transaction(logger: logger) { connection in
            let rows = try await connection.query(
                """
                UPDATE users SET name = coalesce(\(name), name), password_hash = coalesce(\(passwordHash), password_hash),
                    updated_at = now()
                WHERE id = \(id)
                RETURNING id, email, name, password_hash, created_at
                """, logger: logger)
            guard let user = try await Self.firstUser(rows) else { return nil }
            if passwordHash != nil {
                try await connection.query(
                    """
                    UPDATE refresh_tokens SET revoked_at = now()
                    WHERE user_id = \(id) AND revoked_at IS NULL AND session_id IS DISTINCT FROM \(keepSession)
                    """, logger: logger
                ).consume()
            }
            return user
        }
    }

    func deleteUser(id: UUID, logger: Logger) async throws -> Bool {
        try await database.transaction(logger: logger) { connection in
            var deleted = false
            for try await _ in try await connection.query("DELETE FROM users WHERE id = \(id) RETURNING id", logger: logger) {
                deleted = true
            }
            guard deleted else { return false }
            let payload = #"{"userId":"\#(id.apiString)"}"#
            try await connection.query(
                """
                WITH event AS (
                    INSERT INTO outbox_events (event_type, aggregate_id, payload) VALUES ('user_deleted', \(id), \(payload)::jsonb)
                    RETURNING id
                )
                INSERT INTO outbox_deliveries (event_id, target) SELECT event.id, target FROM event, unnest(\(outboxTargets)::text[]) AS target
                """, logger: logger
            ).consume()
            return true
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
                RETURNING d.event_id, d.target, d.attempts, e.aggregate_id
                """, logger: logger)
            var deliveries: [OutboxDelivery] = []
            for try await (eventID, target, attempts, userID) in rows.decode((Int64, String, Int, UUID).self) {
                deliveries.append(OutboxDelivery(eventID: eventID, target: target, attempts: attempts, userID: userID))
            }
            return deliveries
        }
    }

    func markDelivered(_ delivery: OutboxDelivery, logger: Logger) async throws {
        try await database.write(logger: logger) { connection in
            try await connection.query(
                """
                UPDATE outbox_deliveries SET delivered_at = now(), last_error = NULL
                WHERE event_id = \(delivery.eventID) AND target = \(delivery.target)
                """, logger: logger
            ).consume()
        }
    }

    func scheduleRetry(_ delivery: OutboxDelivery, after delay: Duration, error: String, logger: Logger) async throws {
        try await database.write(logger: logger) { connection in
            try await connection.query(
                """
                UPDATE outbox_deliveries SET next_attempt_at = now() + make_interval(secs => \(delay.timeInterval)), last_error = \(error)
                WHERE event_id = \(delivery.eventID) AND target = \(delivery.target)
                """, logger: logger
            ).consume()
        }
    }

    private static func insert(_ token: NewRefreshToken, userID: UUID, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query(
            """
            INSERT INTO refresh_tokens (token_hash, user_id, session_id, expires_at)
            VALUES (\(Data(token.hash)), \(userID), \(token.sessionID), \(token.expiresAt))
            """, logger: logger
        ).consume()
    }

    private static func firstUser(_ rows: PostgresRowSequence) async throws -> UserRecord? {
        var user: UserRecord?
        for try await (id, email, name, hash, createdAt) in rows.decode((UUID, String, String, String, Date).self) {
            user = UserRecord(id: id, email: email, name: name, passwordHash: hash, createdAt: createdAt)
        }
        return user
    }
}
