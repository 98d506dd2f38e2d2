import Foundation
import Logging
import PostgresNIO

extension PostgresClient {
    /// Readiness probe: one round trip to the database.
    public func ping() async throws {
        try await self.query("SELECT 1").consume()
    }
}
