import Foundation
import HummingbirdTesting
import Shared
import TestSupport
import Testing

@testable import FeedService

@Suite("Feed: database faults")
struct FeedDatabaseFaultTests {
    @Test func everyAcknowledgedPostSurvivesAFastShutdownAndACrash() async throws {
        try await FaultablePostgres.with { database in
            try await withFeedService(extra: database.serviceVariables) { service in
                let id = UUID()
                let author = TestUser(id: id, name: "Ada", token: try TestEnvironment.accessToken(userID: id, name: "Ada"))
                try await database.slowCommits(on: "feeds")
                // A post makes two database calls, each bounded on its own: the per-user rate
                // limit before the body, then the row (wait + timeout, 3 s, each).
                let drill = FaultDrill(bound: FaultablePostgres.requestBound + .seconds(3))
                let report = try await drill.run(on: database) { index in
                    let response = try await service.client.send(
                        .post, "/feeds", json: #"{"title": "post \#(index)", "content": "storm"}"#, token: author.token)
                    guard response.status == .created else { return .refused(status: Int(response.status.code)) }
                    return .acknowledged(key: try response.decode(PostBody.self).id)
                }
                report.check(stored: try await database.strings("SELECT id::text FROM feeds"), bound: drill.bound)
            }
        }
    }
}
