import Configuration
import Foundation
import Logging
import PostgresNIO

/// A per-user limit on one kind of costly write (uploads, posts): a token bucket per user
/// that holds at most `burst` and refills at `perHour`. Kept in the service's own database
/// (`user_rate_limits`), so every instance draws from the same bucket; one statement per
/// check, made before the request body is read. The gateway limits per client address; this
/// limits per account, whatever the address.
public struct UserRateLimit: Sendable {
    /// What is limited, e.g. `upload`; one bucket per user and action.
    public var action: String
    public var perHour: Int
    public var burst: Int

    public init(action: String, perHour: Int, burst: Int) {
        self.action = action
        self.perHour = perHour
        self.burst = burst
    }

    /// Reads `<PREFIX>_PER_HOUR` and `<PREFIX>_BURST` (e.g. `RECORDING_UPLOADS_PER_HOUR`):
    /// named in full by the caller, so each service's table of settings reads plainly.
    public init(action: String, reader: ConfigReader, perHour perHourVariable: String, burst burstVariable: String,
                defaultPerHour: Int, defaultBurst: Int) throws {
        self.action = action
        self.perHour = try reader.integer(perHourVariable, default: defaultPerHour, in: 1...100_000_000)
        self.burst = try reader.integer(burstVariable, default: defaultBurst, in: 1...100_000_000)
    }

    /// The table, in every service that limits a write (its migrations list it once).
    public static let migration: [String] = [
        """
        CREATE TABLE user_rate_limits (
            user_id uuid NOT NULL,
            action text NOT NULL,
            tokens double precision NOT NULL,
            updated_at timestamptz NOT NULL,
            PRIMARY KEY (user_id, action)
        )
        """,
    ]
}

/// A `UserRateLimit` applied on a service's database.
public struct UserRateLimiter: Sendable {
    public let limit: UserRateLimit
    let database: Database

    public init(_ limit: UserRateLimit, database: Database) {
        self.limit = limit
        self.database = database
    }

    /// Takes one token from the user's bucket, or throws `429 rate_limited` (with
    /// `Retry-After`) when it is empty. An empty bucket is left as it is.
    public func take(for userID: UUID, logger: Logger) async throws {
        let (action, perHour) = (limit.action, limit.perHour)
        let (burst, perSecond) = (Double(limit.burst), Double(perHour) / 3600)
        let taken = try await database.write(logger: logger) { connection in
            let rows = try await connection.query(
                """
                INSERT INTO user_rate_limits AS b (user_id, action, tokens, updated_at)
                VALUES (\(userID), \(action), \(burst) - 1, now())
                ON CONFLICT (user_id, action) DO UPDATE SET
                    tokens = LEAST(\(burst), b.tokens + EXTRACT(EPOCH FROM now() - b.updated_at)::float8 * \(perSecond)) - 1,
                    updated_at = now()
                WHERE LEAST(\(burst), b.tokens + EXTRACT(EPOCH FROM now() - b.updated_at)::float8 * \(perSecond)) >= 1
                RETURNING 1
                """, logger: logger)
            var taken = false
            for try await _ in rows { taken = true }
            return taken
        }
        guard taken else {
            // When one token will have refilled, at the latest.
            let seconds = Int((1 / perSecond).rounded(.up))
            logger.notice("per-user limit reached", metadata: ["userId": "\(userID)", "action": "\(action)"])
            throw APIError(
                .tooManyRequests, code: "rate_limited",
                detail: "Too many of these from your account (\(perHour) an hour). Try again later.",
                headers: [.retryAfter: "\(seconds)"])
        }
    }

    /// Forgets a deleted user's buckets (with the rest of their data).
    public func forget(userID: UUID, logger: Logger) async throws {
        try await database.write(logger: logger) { connection in
            try await connection.query("DELETE FROM user_rate_limits WHERE user_id = \(userID)", logger: logger).consume()
        }
    }
}
