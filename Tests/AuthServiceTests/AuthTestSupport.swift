import Foundation
import HummingbirdTesting
import Logging
import PostgresNIO
import Shared
import TestSupport
import Testing

@testable import AuthService

/// Runs `test` against a real auth service on its own fresh database (or on `databaseURL`,
/// to put several instances on one database).
func withAuthService(
    databaseURL existing: String? = nil,
    extra: [String: String] = [:],
    _ test: @escaping @Sendable (any TestClientProtocol, _ databaseURL: String) async throws -> Void
) async throws {
    try await withAuthService(databaseURL: existing, extra: extra) { client, _, databaseURL in try await test(client, databaseURL) }
}

/// The same, with the service's parts for `test` to reach into (the outbox dispatcher),
/// the outbox polling every `outboxPollInterval`.
func withAuthService(
    databaseURL existing: String? = nil,
    extra: [String: String] = [:],
    outboxPollInterval: Duration = .seconds(1),
    _ test: @escaping @Sendable (any TestClientProtocol, AuthDependencies, _ databaseURL: String) async throws -> Void
) async throws {
    let databaseURL: String
    if let existing { databaseURL = existing } else { databaseURL = try await TestDatabase.create() }
    let reader = TestEnvironment.reader(databaseURL: databaseURL, extra: ["BCRYPT_COST": "4"].merging(extra) { $1 })
    let configuration = try AuthConfiguration(reader: reader, logger: TestEnvironment.logger)
    let dependencies = try await AuthDependencies(
        configuration: configuration, logger: TestEnvironment.logger, outboxPollInterval: outboxPollInterval)
    let app = try await buildApplication(dependencies)
    try await app.test(.router) { client in try await test(client, dependencies, databaseURL) }
}

struct Session: Decodable {
    struct User: Decodable {
        var id: UUID
        var email: String
        var name: String
        var createdAt: Date
    }
    var user: User
    var accessToken: String
    var refreshToken: String
    var tokenType: String
    var expiresIn: Int
}

extension TestClientProtocol {
    func signup(email: String = "user-\(UUID().uuidString.prefix(8))@example.com", password: String = "correct horse", name: String = "Ada") async throws -> Session {
        let response = try await send(.post, "/auth/signup", json: #"{"email": "\#(email)", "password": "\#(password)", "name": "\#(name)"}"#)
        #expect(response.status == .created)
        return try response.decode(Session.self)
    }

    func login(email: String, password: String) async throws -> TestResponse {
        try await send(.post, "/auth/login", json: #"{"email": "\#(email)", "password": "\#(password)"}"#)
    }

    func refresh(_ token: String) async throws -> TestResponse {
        try await send(.post, "/auth/refresh", json: #"{"refreshToken": "\#(token)"}"#)
    }
}
