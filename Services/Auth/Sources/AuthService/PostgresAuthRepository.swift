import Foundation
import Logging
import PostgresNIO
import Shared

/// `INSERT … RETURNING` came back empty, which Postgres does not do; a bug if ever seen.
struct MissingRowError: Error {}

struct PostgresAuthRepository: AuthRepository {
    let client: PostgresClient
    /// Services that must hear of a deleted user; one delivery row each.
    let outboxTargets: [String]

    func createUser(id: UUID, email: String, name: String, passwordHash: String, session: NewRefreshToken, logger: Logger) async throws -> UserRecord {
        do {
            return try await client.withTransaction(logger: logger) { connection in
                let rows = try await connection.query(
                    """
                    INSERT INTO users (id, email, name, password_hash) VALUES (\(id), \(email), \(name), \(passwordHash))
                    RETURNING id, email, name, password_hash, created_at
                    """, logger: logger)
                guard let user = try await Self.firstUser(rows) else { throw MissingRowError() }
                try await Self.insert(session, userID: id, on: connection, logger: logger)
                return user
            }
        } catch let error as PostgresTransactionError {
            if let psql = error.closureError as? PSQLError, psql.isUniqueViolation { throw AuthRepositoryError.emailTaken }
            throw error
        }
    }

    func user(email: String, logger: Logger) async throws -> UserRecord? {
        try await Self.firstUser(client.query(
            "SELECT id, email, name, password_hash, created_at FROM users WHERE email = \(email)", logger: logger))
    }

    func user(id: UUID, logger: Logger) async throws -> UserRecord? {
        try await Self.firstUser(client.query(
            "SELECT id, email, name, password_hash, created_at FROM users WHERE id = \(id)", logger: logger))
    }

    func createSession(userID: UUID, token: NewRefreshToken, logger: Logger) async throws {
        try await client.withConnection { connection in
            try await Self.insert(token, userID: userID, on: connection, logger: logger)
        }
    }

    func rotate(tokenHash: [UInt8], replacement: [UInt8], expiresAt: Date, logger: Logger) async throws -> RefreshOutcome {
        let hash = Data(tokenHash)
        // FOR UPDATE serialises two presentations of one token: the second sees it rotated.
        return try await client.withTransaction(logger: logger) { connection in
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
                return .reused
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
        try await client.query(
            "UPDATE refresh_tokens SET revoked_at = now() WHERE token_hash = \(Data(tokenHash)) AND revoked_at IS NULL",
            logger: logger
        ).consume()
    }

    func updateUser(id: UUID, name: String?, passwordHash: String?, keepSession: UUID?, logger: Logger) async throws -> UserRecord? {
        try await client.withTransaction(logger: logger) { connection in
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
        try await client.withTransaction(logger: logger) { connection in
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
        var names: [UserName] = []
        let rows = try await client.query("SELECT id, name FROM users WHERE id = ANY(\(ids))", logger: logger)
        for try await (id, name) in rows.decode((UUID, String).self) {
            names.append(UserName(id: id.apiString, name: name))
        }
        return names
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
