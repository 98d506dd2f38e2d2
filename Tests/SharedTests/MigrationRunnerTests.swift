import Configuration
import Foundation
import Logging
import PostgresNIO
import Shared
import TestSupport
import Testing

@Suite("Migrations")
struct MigrationRunnerTests {
    static let migrations = [
        Migration(version: 1, name: "widgets", statements: ["CREATE TABLE widgets (id int PRIMARY KEY)"]),
        // Not idempotent on purpose: applying it twice would fail.
        Migration(version: 2, name: "seed", statements: ["INSERT INTO widgets VALUES (1)"]),
        Migration(version: 3, name: "column", statements: ["ALTER TABLE widgets ADD COLUMN label text"]),
    ]

    @Test func concurrentRunnersApplyEachStepOnce() async throws {
        let url = try await TestDatabase.create()
        let runner = MigrationRunner(migrations: Self.migrations)
        let applied = try await TestDatabase.withClient(url) { _ in
            try await withThrowingTaskGroup(of: [Int].self) { group in
                for _ in 0..<5 {
                    // Separate clients, as separate replicas would have.
                    group.addTask { try await TestDatabase.withClient(url) { try await runner.run(on: $0, logger: TestEnvironment.logger) } }
                }
                return try await group.reduce(into: [Int]()) { $0 += $1 }
            }
        }
        #expect(applied.sorted() == [1, 2, 3])
        let (versions, widgets) = try await TestDatabase.withClient(url) { client in
            var versions: [Int] = []
            for try await version in try await client.query("SELECT version FROM schema_migrations ORDER BY version").decode(Int.self) {
                versions.append(version)
            }
            var widgets = 0
            for try await count in try await client.query("SELECT count(*)::int FROM widgets").decode(Int.self) { widgets = count }
            return (versions, widgets)
        }
        #expect(versions == [1, 2, 3])
        #expect(widgets == 1)
    }

    @Test func aFailingStepRollsBackAndStopsTheRun() async throws {
        let url = try await TestDatabase.create()
        let broken = MigrationRunner(migrations: [
            Self.migrations[0],
            Migration(version: 2, name: "broken", statements: ["INSERT INTO widgets VALUES (1)", "SELECT * FROM missing_table"]),
        ])
        await #expect(throws: (any Error).self) {
            try await TestDatabase.withClient(url) { try await broken.run(on: $0, logger: TestEnvironment.logger) }
        }
        let (versions, widgets) = try await TestDatabase.withClient(url) { client in
            var versions: [Int] = []
            for try await version in try await client.query("SELECT version FROM schema_migrations").decode(Int.self) { versions.append(version) }
            var widgets = -1
            for try await count in try await client.query("SELECT count(*)::int FROM widgets").decode(Int.self) { widgets = count }
            return (versions, widgets)
        }
        #expect(versions == [1])
        #expect(widgets == 0)
        // Fixed, the next start applies what is pending.
        let applied = try await TestDatabase.withClient(url) { try await MigrationRunner(migrations: Self.migrations).run(on: $0, logger: TestEnvironment.logger) }
        #expect(applied == [2, 3])
    }
}

@Suite("Configuration")
struct ConfigurationTests {
    func load(_ variables: [String: String]) throws -> CommonConfiguration {
        let reader = TestEnvironment.reader(databaseURL: "postgres://u:p%40ss@db.internal:6543/things", extra: variables)
        return try CommonConfiguration(reader: reader, serviceName: "svc", defaultPort: 9000, logger: TestEnvironment.logger)
    }

    @Test func readsTheDatabaseURLAndDefaults() throws {
        let configuration = try load([:])
        #expect(configuration.port == 9000)
        #expect(configuration.host == "127.0.0.1")
        #expect(configuration.database.host == "db.internal")
        #expect(configuration.database.port == 6543)
        #expect(configuration.database.username == "u")
        #expect(configuration.database.password == "p@ss")
        #expect(configuration.database.database == "things")
        #expect(configuration.tokens.accessTokenTTL == .seconds(900))
    }

    @Test func weakOrMissingSecretsAreRefused() throws {
        #expect(throws: ConfigurationError.self) { try load(["JWT_SECRET": "short"]) }
        #expect(throws: ConfigurationError.self) { try load(["SERVICE_TOKEN_SECRET": TestEnvironment.jwtSecret]) }
        #expect(throws: ConfigurationError.self) { try load(["APP_ENV": "staging"]) }
        let production = ["APP_ENV": "production"]
        #expect(throws: ConfigurationError.self) { try load(production.merging(["JWT_SECRET": ""]) { $1 }) }
        #expect(throws: ConfigurationError.self) { try load(production.merging(["JWT_SECRET": String(repeating: "ab", count: 20)]) { $1 }) }
        #expect(throws: Never.self) { try load(production) }
        // Development tolerates a missing secret (with a warning) so `swift run` works.
        let development = TestEnvironment.variables(databaseURL: "postgres://u@h/d").filter { $0.key != "JWT_SECRET" }
        let configuration = try CommonConfiguration(
            reader: ConfigReader(provider: EnvironmentVariablesProvider(environmentVariables: development)), serviceName: "svc", defaultPort: 1,
            logger: TestEnvironment.logger)
        #expect(configuration.tokens.secret.utf8.count >= 32)
    }
}
