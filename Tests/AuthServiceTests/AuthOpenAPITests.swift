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
        // A provider with a configured authorization endpoint: the list has an item to check.
        let provider = [
            "OIDC_PROVIDERS": "doc", "OIDC_DOC_ISSUER": "https://doc.example", "OIDC_DOC_CLIENT_IDS": "web",
            "OIDC_DOC_AUTHORIZATION_URL": "https://doc.example/authorize",
        ]
        try await withAuthService(extra: provider) { client, _ in
            let check = try await ContractCheck(client: client)

            let signup = try await check.call(.post, "/auth/signup", json: #"{"email": "doc@example.com", "password": "password1", "name": "Doc"}"#)
            let session = try signup.decode(Session.self)
            _ = try await check.call(.post, "/auth/signup", json: #"{"email": "doc@example.com", "password": "password1", "name": "Doc"}"#)
            _ = try await check.call(.post, "/auth/signup", json: #"{"email": "x"}"#)
            _ = try await check.call(.post, "/auth/login", json: #"{"email": "doc@example.com", "password": "password1"}"#)
            _ = try await check.call(.post, "/auth/login", json: #"{"email": "doc@example.com", "password": "wrong-password"}"#)
            let refreshed = try await check.call(.post, "/auth/refresh", json: #"{"refreshToken": "\#(session.refreshToken)"}"#).decode(Session.self)
            _ = try await check.call(.post, "/auth/refresh", json: #"{"refreshToken": "nope"}"#)
            _ = try await check.call(.get, "/auth/me", token: refreshed.accessToken)
            _ = try await check.call(.get, "/auth/me")
            _ = try await check.call(.patch, "/auth/me", json: #"{"name": "Docs"}"#, token: refreshed.accessToken)
            _ = try await check.call(.patch, "/auth/me", json: "{}", token: refreshed.accessToken)
            _ = try await check.call(.patch, "/auth/me", json: #"{"password": "password2", "currentPassword": "bad-one"}"#, token: refreshed.accessToken)
            _ = try await check.call(.get, "/auth/verify", token: refreshed.accessToken)
            _ = try await check.call(.post, "/auth/email/verify/resend", token: refreshed.accessToken)
            _ = try await check.call(.get, "/auth/me/identities", token: refreshed.accessToken)
            _ = try await check.call(.delete, "/auth/me/identities/none", token: refreshed.accessToken)
            _ = try await check.call(.post, "/auth/social/none", json: #"{"idToken": "x.y.z"}"#)
            _ = try await check.call(.get, "/auth/social/providers")
            _ = try await check.call(.post, "/auth/email/verify", json: #"{"token": "not-a-token"}"#)
            _ = try await check.call(.post, "/auth/password/forgot", json: #"{"email": "doc@example.com"}"#)
            _ = try await check.call(.post, "/auth/password/forgot", json: #"{"email": "not an address"}"#)
            _ = try await check.call(.post, "/auth/password/reset", json: #"{"token": "not-a-token", "password": "password3"}"#)
            _ = try await check.call(.post, "/auth/password/reset", json: #"{"token": "not-a-token", "password": "short"}"#)
            let fromFeed = try TestEnvironment.serviceToken(from: "feed", to: "auth")
            _ = try await check.call(.get, "/internal/users?ids=\(session.user.id)", token: fromFeed)
            _ = try await check.call(.get, "/internal/users?ids=bad", token: fromFeed)
            _ = try await check.call(.get, "/internal/users?ids=\(session.user.id)")
            _ = try await check.call(.get, "/internal/users?ids=\(session.user.id)", token: try TestEnvironment.serviceToken(from: "vote", to: "auth"))
            _ = try await check.call(.delete, "/auth/me", json: "{}", token: refreshed.accessToken)
            _ = try await check.call(.delete, "/auth/me", json: #"{"currentPassword": "wrong password"}"#, token: refreshed.accessToken)
            let leaving = try await check.call(
                .post, "/auth/signup", json: #"{"email": "leaving@example.com", "password": "password1", "name": "Leaving"}"#)
            let leavingToken = try leaving.decode(Session.self).accessToken
            _ = try await check.call(.delete, "/auth/me", json: #"{"currentPassword": "password1"}"#, token: leavingToken)
            _ = try await check.call(.post, "/auth/logout", json: #"{"refreshToken": "\#(refreshed.refreshToken)"}"#)
            _ = try await check.call(.delete, "/auth/me", json: #"{"currentPassword": "password1"}"#, token: refreshed.accessToken)
            _ = try await check.call(.get, "/health")
            _ = try await check.call(.get, "/ready")
            _ = try await check.call(.get, "/metrics")

            #expect(check.problems == [])
            #expect(check.untestedOperations.isEmpty, "documented but not exercised: \(check.untestedOperations.sorted())")
        }
    }
}
