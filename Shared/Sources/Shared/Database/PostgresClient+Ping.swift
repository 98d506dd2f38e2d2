import Foundation
import Logging
import PostgresNIO

extension PostgresClient {
    /// Readiness probe: one round trip to the database.
    public func ping() async throws {
        try await self.query("SELECT 1").consume()
    }
}

extension PostgresRowSequence {
    /// Drains the rows of a statement whose result is not needed.
    public func consume() async throws {
        for try await _ in self {}
    }
}
