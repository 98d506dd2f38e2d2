import Foundation
import Logging
import PostgresNIO
import Shared

/// A message waiting in `mail_outbox`: a template and its values, or a password-reset
/// request that the mailer turns into a message (see `MailQueue.resetRequest`).
struct QueuedMail: Sendable {
    var id: UUID
    var kind: String
    var recipient: String
    var values: [String: String]
    /// Attempts so far, this one included.
    var attempts: Int
    var createdAt: Date
}

/// A message to queue in the caller's transaction.
struct NewMail: Sendable {
    var kind: MailKind
    var recipient: String
    var values: [String: String]
}

/// The durable mail queue in auth's database. A message is queued in the same transaction
/// as the change that causes it; the mailer claims due rows for a lease under `SKIP LOCKED`
/// (two instances never hold one row), and a sent or finally failed row loses its values
/// (its links carry single-use tokens).
struct MailQueue: Sendable {
    /// The kind of a `POST /auth/password/forgot` before the mailer has looked the address up.
    static let resetRequest = "reset-request"

    let database: Database

    static func enqueue(_ mail: NewMail, on connection: PostgresConnection, logger: Logger) async throws {
        let values = String(decoding: try JSONEncoder().encode(mail.values), as: UTF8.self)
        try await connection.query(
            """
            INSERT INTO mail_outbox (id, kind, recipient, "values") VALUES (\(UUID.random()), \(mail.kind.rawValue), \(mail.recipient), \(values)::jsonb)
            """, logger: logger
        ).consume()
    }

    /// What `forgot` writes, the same one row whether or not the address has an account: the
    /// answer neither waits for nor depends on the lookup, which the mailer makes later.
    func enqueueResetRequest(email: String, logger: Logger) async throws {
        try await database.write(logger: logger) { connection in
            try await connection.query(
                "INSERT INTO mail_outbox (id, kind, recipient) VALUES (\(UUID.random()), \(Self.resetRequest), \(email))", logger: logger
            ).consume()
        }
    }

    func claimDue(limit: Int, lease: Duration, logger: Logger) async throws -> [QueuedMail] {
        try await database.write(logger: logger) { connection in
            let rows = try await connection.query(
                """
                UPDATE mail_outbox m SET next_attempt_at = now() + make_interval(secs => \(lease.timeInterval)), attempts = m.attempts + 1
                FROM (
                    SELECT id FROM mail_outbox
                    WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= now()
                    ORDER BY next_attempt_at LIMIT \(limit) FOR UPDATE SKIP LOCKED
                ) due
                WHERE m.id = due.id
                RETURNING m.id, m.kind, m.recipient, coalesce(m."values"::text, '{}'), m.attempts, m.created_at
                """, logger: logger)
            var claimed: [QueuedMail] = []
            for try await (id, kind, recipient, values, attempts, createdAt) in rows.decode((UUID, String, String, String, Int, Date).self) {
                let decoded = (try? JSONDecoder().decode([String: String].self, from: Data(values.utf8))) ?? [:]
                claimed.append(QueuedMail(id: id, kind: kind, recipient: recipient, values: decoded, attempts: attempts, createdAt: createdAt))
            }
            return claimed
        }
    }

    /// Turns a reset request into a reset message with a new token, or into nothing when no
    /// account has that address; the request row goes either way. One transaction, so a
    /// retry after a failure makes one token and one message, not two.
    func prepareReset(_ request: QueuedMail, tokenHash: [UInt8], validFor: Duration, values: [String: String], logger: Logger) async throws -> Bool {
        let extra = String(decoding: try JSONEncoder().encode(values), as: UTF8.self)
        return try await database.transaction(logger: logger) { connection in
            let rows = try await connection.query(
                """
                WITH account AS (SELECT id, name, email FROM users WHERE email = \(request.recipient)),
                token AS (
                    INSERT INTO email_tokens (token_hash, user_id, purpose, email, expires_at)
                    SELECT \(Data(tokenHash)), id, 'reset', email, now() + make_interval(secs => \(validFor.timeInterval)) FROM account
                    RETURNING user_id
                )
                INSERT INTO mail_outbox (id, kind, recipient, "values")
                SELECT \(UUID.random()), \(MailKind.reset.rawValue), account.email, jsonb_build_object('name', account.name) || \(extra)::jsonb
                FROM account, token
                RETURNING id
                """, logger: logger)
            var prepared = false
            for try await _ in rows { prepared = true }
            try await connection.query("DELETE FROM mail_outbox WHERE id = \(request.id)", logger: logger).consume()
            return prepared
        }
    }

    func markSent(_ mail: QueuedMail, logger: Logger) async throws {
        try await database.write(logger: logger) { connection in
            try await connection.query(
                #"UPDATE mail_outbox SET sent_at = now(), "values" = NULL, last_error = NULL WHERE id = \#(mail.id)"#, logger: logger
            ).consume()
        }
    }

    func markFailed(_ mail: QueuedMail, error: String, logger: Logger) async throws {
        try await database.write(logger: logger) { connection in
            try await connection.query(
                #"UPDATE mail_outbox SET failed_at = now(), "values" = NULL, last_error = \#(error) WHERE id = \#(mail.id)"#, logger: logger
            ).consume()
        }
    }

    func scheduleRetry(_ mail: QueuedMail, after delay: Duration, error: String, logger: Logger) async throws {
        try await database.write(logger: logger) { connection in
            try await connection.query(
                """
                UPDATE mail_outbox SET next_attempt_at = now() + make_interval(secs => \(delay.timeInterval)), last_error = \(error)
                WHERE id = \(mail.id)
                """, logger: logger
            ).consume()
        }
    }
}
