import Foundation
import HummingbirdTesting
import Shared
import TestSupport
import Testing

@testable import AuthService

@Suite("Auth: database faults")
struct AuthDatabaseFaultTests {
    /// Every sign-up answered `201` has its account: the session it returned is usable.
    @Test func everyAcknowledgedSignUpSurvivesAFastShutdownAndACrash() async throws {
        try await FaultablePostgres.with { database in
            try await withAuthService(extra: database.serviceVariables) { client, _ in
                try await database.slowCommits(on: "users")
                let drill = FaultDrill(bound: FaultablePostgres.requestBound)
                let report = try await drill.run(on: database) { _ in
                    let email = "fault-\(UUID().uuidString.prefix(12).lowercased())@example.com"
                    let response = try await client.send(
                        .post, "/auth/signup", json: #"{"email": "\#(email)", "password": "correct horse", "name": "Ada"}"#)
                    return response.status == .created ? .acknowledged(key: email) : .refused(status: Int(response.status.code))
                }
                report.check(stored: try await database.strings("SELECT email FROM users"), bound: drill.bound)
            }
        }
    }
}
