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

    /// A guessing run spread over many client addresses still meets a growing delay per
    /// account, counted in the database (every instance sees it); the owner waits at most the
    /// maximum, and a success clears the count.
    @Test func failedLoginsSlowDownThatAccountOnEveryInstance() async throws {
        // A delay long enough that the checks below come within it on a loaded machine (each
        // login is a bcrypt verification), short enough to wait for at the end.
        let throttle = ["LOGIN_THROTTLE_FREE_FAILURES": "3", "LOGIN_THROTTLE_BASE_DELAY_SECONDS": "8", "LOGIN_THROTTLE_MAX_DELAY_SECONDS": "8"]
        try await withAuthService(extra: throttle) { first, databaseURL in
            try await withAuthService(databaseURL: databaseURL, extra: throttle) { second, _ in
                let email = "throttle-\(UUID().uuidString.prefix(8).lowercased())@example.com"
                let unknown = "nobody-\(UUID().uuidString.prefix(8).lowercased())@example.com"
                _ = try await first.signup(email: email, password: "correct horse")
                let bystander = "bystander-\(UUID().uuidString.prefix(8).lowercased())@example.com"
                _ = try await first.signup(email: bystander, password: "correct horse")
                for (index, client) in [first, second, first].enumerated() {
                    #expect(try await client.login(email: email, password: "wrong \(index)").status == .unauthorized)
                    #expect(try await client.login(email: unknown, password: "wrong \(index)").status == .unauthorized)
                }
                // The next attempt comes too soon, on the other instance too: refused before
                // the password is looked at (the right one as well), alike for an unknown e-mail.
                for attempt in [email, unknown] {
                    let throttled = try await second.login(email: attempt, password: "correct horse")
                    #expect(throttled.status == .tooManyRequests)
                    #expect(try throttled.problem.code == "login_throttled")
                    #expect((1...8).contains(Int(throttled.headers[.retryAfter] ?? "") ?? 0))
                }
                // Other accounts are not slowed down.
                #expect(try await first.login(email: bystander, password: "correct horse").status == .ok)
                // The owner gets in once the delay has passed, and that clears the count:
                // the next wrong password is an ordinary 401 again.
                try await eventually(every: .milliseconds(200)) {
                    try await first.login(email: email, password: "correct horse").status == .ok
                }
                #expect(try await second.login(email: email, password: "wrong again").status == .unauthorized)
                #expect(try await second.login(email: email, password: "correct horse").status == .ok)
            }
        }
    }

    @Test func theLoginThrottleRefusesASettingThatCannotHold() throws {
        let reader = TestEnvironment.reader(
            databaseURL: "postgres://unused", extra: ["LOGIN_THROTTLE_BASE_DELAY_SECONDS": "30", "LOGIN_THROTTLE_MAX_DELAY_SECONDS": "10"])
        #expect(throws: ConfigurationError.self) { try LoginThrottle(reader: reader) }
    }
}
