import Foundation
import Logging
import PostgresNIO

/// A fresh, empty database per test on the throwaway cluster `make test` starts
/// (`TEST_DATABASE_URL`), so tests run in parallel and in any order.
public enum TestDatabase {
    public struct NotConfigured: Error, CustomStringConvertible {
        public var description: String {
            "TEST_DATABASE_URL is not set: run the tests with `make test`, which starts a throwaway PostgreSQL."
        }
    }

    static var serverURL: String {
        get throws {
            guard let value = ProcessInfo.processInfo.environment["TEST_DATABASE_URL"], !value.isEmpty else { throw NotConfigured() }
            return value
        }
    }

    /// Creates a new database and returns its URL (as `DATABASE_URL` takes it).
    public static func create() async throws -> String {
        let name = "test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        try await withClient(try serverURL) { client in
            // Identifiers cannot be bound; the name is made above from hex digits only.
            try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)")).consume()
        }
        var url = URLComponents(string: try serverURL)!
        url.path = "/" + name
        return url.string!
    }

    /// A short-lived client on `databaseURL`, for arranging or asserting on database state.
    public static func withClient<T: Sendable>(_ databaseURL: String, _ body: (PostgresClient) async throws -> T) async throws -> T {
        guard let url = URLComponents(string: databaseURL) else { throw NotConfigured() }
        let database = String(url.path.dropFirst())
        var configuration = PostgresClient.Configuration(
            host: url.host ?? "127.0.0.1", port: url.port ?? 5432, username: url.user ?? "postgres",
            password: url.password, database: database.isEmpty ? "postgres" : database, tls: .disable)
        configuration.options.maximumConnections = 2
        var logger = Logger(label: "test-db")
        logger.logLevel = .error
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        let running = Task { await client.run() }
        defer { running.cancel() }
        return try await body(client)
    }
}

extension PostgresRowSequence {
    func consume() async throws {
        for try await _ in self {}
    }
}
