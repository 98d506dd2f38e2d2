import Foundation
import HummingbirdTesting
import Shared
import TestSupport
import Testing

@testable import AuthService

@Suite("Auth: hardening")
struct AuthHardeningTests {
    /// bcrypt stops at a NUL: "\u0000anything" would sign in as an empty password and
    /// "hunter22\u0000x" would match "hunter22\u0000y". Control characters are refused everywhere.
    @Test func passwordsWithControlCharactersAreRefused() async throws {
        try await withAuthService { client, _ in
            let email = "nul-\(UUID().uuidString.prefix(8).lowercased())@example.com"
            for password in [#"\u0000anything"#, #"hunter22\u0000x"#, #"correct\u001fhorse"#, #"correct\u007fhorse"#] {
                let signup = try await client.send(
                    .post, "/auth/signup", json: #"{"email": "\#(email)", "password": "\#(password)", "name": "Ada"}"#)
                #expect(signup.status == .badRequest, "\(password)")
                #expect(try signup.problem.errors?.map(\.field) == ["password"])
            }
            let session = try await client.signup(email: email, password: "hunter22 is fine")
            let login = try await client.send(.post, "/auth/login", json: #"{"email": "\#(email)", "password": "hunter22\u0000x"}"#)
            #expect(login.status == .badRequest)
            let change = try await client.send(
                .patch, "/auth/me", json: #"{"password": "new\u0000password", "currentPassword": "hunter22 is fine"}"#,
                token: session.accessToken)
            #expect(change.status == .badRequest)
            let wrongCurrent = try await client.send(
                .patch, "/auth/me", json: #"{"password": "new password", "currentPassword": "hunter22\u0000"}"#,
                token: session.accessToken)
            #expect(wrongCurrent.status == .badRequest)
            // The account is untouched: the real password still works.
            #expect(try await client.login(email: email, password: "hunter22 is fine").status == .ok)
        }
    }

    @Test func responsesWithTokensAreNotStoredAndNoResponseIsSniffed() async throws {
        try await withAuthService { client, _ in
            let email = "headers-\(UUID().uuidString.prefix(8).lowercased())@example.com"
            let signup = try await client.send(
                .post, "/auth/signup", json: #"{"email": "\#(email)", "password": "correct horse", "name": "Ada"}"#)
            #expect(signup.status == .created)
            let session = try signup.decode(Session.self)
            let login = try await client.login(email: email, password: "correct horse")
            let refresh = try await client.refresh(session.refreshToken)
            for response in [signup, login, refresh] {
                #expect(response.headers[.cacheControl] == "no-store")
                #expect(response.headers[.xContentTypeOptions] == "nosniff")
            }
            let me = try await client.send(.get, "/auth/me", token: session.accessToken)
            #expect(me.headers[.xContentTypeOptions] == "nosniff")
            let problem = try await client.send(.get, "/auth/me", token: "nope")
            #expect(problem.status == .unauthorized)
            #expect(problem.headers[.xContentTypeOptions] == "nosniff")
        }
    }
}
