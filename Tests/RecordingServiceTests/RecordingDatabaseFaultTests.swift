import Foundation
import HummingbirdTesting
import Shared
import TestSupport
import Testing

@testable import RecordingService

@Suite("Recording: database faults")
struct RecordingDatabaseFaultTests {
    /// Every upload answered `201` has its row, and its object in the store.
    @Test func everyAcknowledgedUploadSurvivesAFastShutdownAndACrash() async throws {
        try await FaultablePostgres.with { database in
            try await withRecordingService(extra: database.serviceVariables) { client, harness in
                let owner = try TestUser()
                try await database.slowCommits(on: "recordings")
                // An upload makes two database calls, each bounded on its own: the per-user
                // rate limit before the body, then the row (wait + timeout, 3 s, each).
                let drill = FaultDrill(bound: FaultablePostgres.requestBound + .seconds(3))
                let report = try await drill.run(on: database) { index in
                    let response = try await client.uploadRaw(Array("take \(index)".utf8), token: owner.token)
                    guard response.status == .created else { return .refused(status: Int(response.status.code)) }
                    return .acknowledged(key: try response.decode(Recording.self).id.uuidString.lowercased())
                }
                report.check(stored: try await database.strings("SELECT id::text FROM recordings"), bound: drill.bound)
                let keys = try await database.strings("SELECT object_key FROM recordings")
                #expect(keys.isSubset(of: Set(try await harness.storedKeys())))
            }
        }
    }
}
