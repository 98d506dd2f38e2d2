import Foundation
import Logging
import PostgresNIO

/// One ordered, versioned schema step. Versions never change once released; add a new one.
public struct Migration: Sendable {
    public var version: Int
    public var name: String
    public var statements: [String]

    public init(version: Int, name: String, statements: [String]) {
        self.version = version
        self.name = name
        self.statements = statements
    }
}

/// Applies pending migrations, each in its own transaction, under a session advisory lock
/// so replicas starting together apply every step exactly once.
public struct MigrationRunner: Sendable {
    let migrations: [Migration]
    /// Arbitrary but fixed: every service uses its own database, so one key is enough.
    static let lockKey: Int64 = 0x6D69_6772_6174_65

    public init(migrations: [Migration]) {
        precondition(Set(migrations.map(\.version)).count == migrations.count, "migration versions must be unique")
        self.migrations = migrations.sorted { $0.version < $1.version }
    }

    /// Returns the versions this call applied.
    @discardableResult
    public func run(on client: PostgresClient, logger: Logger) async throws -> [Int] {
        try await client.withConnection { connection in
            // Migrations (an index on a large table, waiting for another replica's lock) may
            // take longer than the statement timeout every other connection has.
            try await connection.query("SET statement_timeout = 0", logger: logger).consume()
            try await connection.query("SELECT pg_advisory_lock(\(Self.lockKey))", logger: logger).consume()
            do {
                let applied = try await self.applyPending(on: connection, logger: logger)
                try await connection.query("SELECT pg_advisory_unlock(\(Self.lockKey))", logger: logger).consume()
                try await connection.query("RESET statement_timeout", logger: logger).consume()
                return applied
            } catch {
                try? await connection.query("SELECT pg_advisory_unlock(\(Self.lockKey))", logger: logger).consume()
                try? await connection.query("RESET statement_timeout", logger: logger).consume()
                throw error
            }
        }
    }

    private func applyPending(on connection: PostgresConnection, logger: Logger) async throws -> [Int] {
        try await connection.query(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY,
                name text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """, logger: logger
        ).consume()
        var done = Set<Int>()
        for try await version in try await connection.query("SELECT version FROM schema_migrations", logger: logger).decode(Int.self) {
            done.insert(version)
        }
        var applied: [Int] = []
        for migration in migrations where !done.contains(migration.version) {
            try await connection.withTransaction(logger: logger) { connection in
                for statement in migration.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger).consume()
                }
                try await connection.query(
                    "INSERT INTO schema_migrations (version, name) VALUES (\(migration.version), \(migration.name))",
                    logger: logger
                ).consume()
            }
            logger.info("applied migration", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
            applied.append(migration.version)
        }
        return applied
    }
}
