import Foundation
import HTTPTypes
import HummingbirdTesting
import Shared
import TestSupport
import Testing

@testable import AuthService

/// The served OpenAPI document against the running service: every documented operation
/// is exercised, and every response (success and error) matches its documented schema.
@Suite("Auth: OpenAPI document")
struct AuthOpenAPITests {
    @Test func documentMatchesTheRunningService() async throws {
        try await withAuthService { client, _ in
            let served = try await client.send(.get, "/openapi.yaml")
            #expect(served.status == .ok)
            let contract = try OpenAPIContract(yaml: String(buffer: served.body))
            var problems: [String] = []
            func call(_ method: HTTPRequest.Method, _ path: String, json: String? = nil, token: String? = nil) async throws -> TestResponse {
                let response = try await client.send(method, path, json: json, token: token)
                problems += contract.validate(response, method: method, path: path)
                return response
            }

            let signup = try await call(.post, "/auth/signup", json: #"{"email": "doc@example.com", "password": "password1", "name": "Doc"}"#)
            let session = try signup.decode(Session.self)
            _ = try await call(.post, "/auth/signup", json: #"{"email": "doc@example.com", "password": "password1", "name": "Doc"}"#)
            _ = try await call(.post, "/auth/signup", json: #"{"email": "x"}"#)
            _ = try await call(.post, "/auth/login", json: #"{"email": "doc@example.com", "password": "password1"}"#)
            _ = try await call(.post, "/auth/login", json: #"{"email": "doc@example.com", "password": "wrong-password"}"#)
            let refreshed = try await call(.post, "/auth/refresh", json: #"{"refreshToken": "\#(session.refreshToken)"}"#).decode(Session.self)
            _ = try await call(.post, "/auth/refresh", json: #"{"refreshToken": "nope"}"#)
            _ = try await call(.get, "/auth/me", token: refreshed.accessToken)
            _ = try await call(.get, "/auth/me")
            _ = try await call(.patch, "/auth/me", json: #"{"name": "Docs"}"#, token: refreshed.accessToken)
            _ = try await call(.patch, "/auth/me", json: "{}", token: refreshed.accessToken)
            _ = try await call(.patch, "/auth/me", json: #"{"password": "password2", "currentPassword": "bad-one"}"#, token: refreshed.accessToken)
            _ = try await call(.get, "/auth/verify", token: refreshed.accessToken)
            _ = try await call(.get, "/internal/users?ids=\(session.user.id)", token: try TestEnvironment.serviceToken())
            _ = try await call(.get, "/internal/users?ids=bad", token: try TestEnvironment.serviceToken())
            _ = try await call(.get, "/internal/users?ids=\(session.user.id)")
            _ = try await call(.post, "/auth/logout", json: #"{"refreshToken": "\#(refreshed.refreshToken)"}"#)
            _ = try await call(.delete, "/auth/me", token: refreshed.accessToken)
            _ = try await call(.get, "/health")
            _ = try await call(.get, "/ready")
            _ = try await call(.get, "/metrics")

            #expect(problems == [])
            let untested = contract.operations.subtracting(contract.exercisedOperations)
            #expect(untested.isEmpty, "documented but not exercised: \(untested.sorted())")
        }
    }
}
