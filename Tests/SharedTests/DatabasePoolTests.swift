import Foundation
import PostgresNIO
@testable import Shared
import TestSupport
import Testing

@Suite("Database: a busy pool is not a dead one")
struct DatabasePoolTests {
    /// Every connection held by slow calls makes the next calls wait in vain, as a database
    /// that is down does; but the database answers, so replacing the pool would only open more
    /// connections to it. The supervisor keeps the pool; the waiting calls get a quick 503
    /// (nothing written), and the pool serves again once the slow calls end.
    @Test func aPoolWhoseConnectionsAreAllBusyIsKeptAndServesAgain() async throws {
        let databaseURL = try await TestDatabase.create()
        let database = try CommonConfiguration(
            reader: TestEnvironment.reader(
                databaseURL: databaseURL,
                extra: [
                    "DATABASE_MAX_CONNECTIONS": "2", "DATABASE_CONNECTION_WAIT_MS": "2000",
                    "DATABASE_QUERY_TIMEOUT_MS": "30000",
                ]),
            serviceName: "test", defaultPort: 0, logger: TestEnvironment.logger
        ).makeDatabase(logger: TestEnvironment.logger)
        let logger = TestEnvironment.logger
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await database.pool.run() }
            let release = AsyncStream<Void>.makeStream()
            // On a machine loaded by the whole suite a connection can take longer to open than
            // the 2 s wait: the set-up steps try again until they have theirs.
            try await eventually { try await succeeds { try await database.write(logger: logger) { connection in
                try await connection.query("CREATE TABLE IF NOT EXISTS gate (id int PRIMARY KEY)", logger: logger).consume()
            } } }
            // Two calls hold both connections until released: one takes a lock, then the other
            // waits for it (started only once the lock is taken, else it could finish first).
            func locksOnGate() async throws -> Int {
                try await TestDatabase.withClient(databaseURL) { client in
                    let rows = try await client.query(
                        "SELECT count(*)::int FROM pg_locks WHERE relation = 'gate'::regclass", logger: logger)
                    return try await rows.collect().first?.decode(Int.self) ?? 0
                }
            }
            let holder = Task {
                try await eventually { try await succeeds { try await database.transaction(logger: logger) { connection in
                    try await connection.query("LOCK TABLE gate IN ACCESS EXCLUSIVE MODE", logger: logger).consume()
                    for await _ in release.stream { break }
                } } }
            }
            try await eventually { try await locksOnGate() == 1 }
            let waiter = Task {
                try await eventually { try await succeeds { try await database.read(logger: logger) { connection in
                    try await connection.query("SELECT count(*) FROM gate", logger: logger).consume()
                } } }
            }
            try await eventually { try await locksOnGate() == 2 }
            // (A loaded machine can make the set-up's waits fail while no connection was held
            // yet: the pool may have been replaced then. Only what happens from here counts.)
            let replacements = database.pool.replacements
            let keptBusy = database.pool.keptBusy
            // Further calls are refused after their wait (2 s), as nothing was written.
            try await eventually {
                do {
                    try await database.read(logger: logger) { connection in
                        try await connection.query("SELECT 1", logger: logger).consume()
                    }
                    return false
                } catch let error as DatabaseUnavailableError {
                    #expect(!error.mayHaveWritten)
                    return true
                }
            }
            // The supervisor (every 500 ms) sees calls failing, and connections held: it keeps the pool.
            try await eventually { database.pool.keptBusy >= keptBusy + 2 }
            #expect(database.pool.replacements == replacements)

            release.continuation.finish()
            try await holder.value
            try await waiter.value
            try await eventually { try await succeeds { try await database.read(logger: logger) { connection in
                try await connection.query("SELECT 1", logger: logger).consume()
            } } }
            #expect(database.pool.replacements == replacements)
            group.cancelAll()
        }
    }
}

/// Whether `body` got through, false when the database was unavailable to it (other errors fail the test).
private func succeeds(_ body: () async throws -> Void) async throws -> Bool {
    do {
        try await body()
        return true
    } catch is DatabaseUnavailableError {
        return false
    }
}
