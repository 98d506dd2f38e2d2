import Foundation
import HTTPTypes
import HummingbirdTesting
import PostgresNIO
import Shared
import TestSupport
import Testing

@testable import AuthService

@Suite("Auth: sign-up and login")
struct SignupLoginTests {
    @Test func signupReturnsASessionWithNormalizedEmail() async throws {
        try await withAuthService { client, _ in
            let response = try await client.send(
                .post, "/auth/signup", json: #"{"email": "  Ada@Example.COM ", "password": "correct horse", "name": "  Ada Lovelace "}"#)
            #expect(response.status == .created)
            let session = try response.decode(Session.self)
            #expect(session.user.email == "ada@example.com")
            #expect(session.user.name == "Ada Lovelace")
            #expect(session.tokenType == "Bearer")
            #expect(session.expiresIn == 900)
            #expect(session.refreshToken.count >= 43)  // 256 random bits, base64url
            let user = try AccessTokens(settings: TestEnvironment.tokenSettings).verify(session.accessToken)
            #expect(user.id == session.user.id)
            #expect(user.name == "Ada Lovelace")
        }
    }

    @Test func duplicateEmailInAnotherCaseIsAConflict() async throws {
        try await withAuthService { client, _ in
            _ = try await client.signup(email: "grace@example.com")
            let response = try await client.send(
                .post, "/auth/signup", json: #"{"email": "GRACE@example.com", "password": "another pass", "name": "G"}"#,
                headers: [.requestID: "dup-check-1"])
            #expect(response.status == .conflict)
            #expect(response.headers[.contentType] == "application/problem+json")
            let problem = try response.problem
            #expect(problem.code == "email_taken")
            #expect(problem.status == 409)
            #expect(problem.requestId == "dup-check-1")
            #expect(response.headers[.requestID] == "dup-check-1")
        }
    }

    @Test func concurrentSignupsWithOneEmailLetExactlyOneThrough() async throws {
        try await withAuthService { client, _ in
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for index in 0..<8 {
                    group.addTask {
                        let email = index.isMultiple(of: 2) ? "race@example.com" : "RACE@example.com"
                        return try await client.send(
                            .post, "/auth/signup", json: #"{"email": "\#(email)", "password": "password \#(index)", "name": "R"}"#
                        ).status
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == .created }.count == 1)
            #expect(statuses.filter { $0 == .conflict }.count == 7)
        }
    }

    @Test func invalidSignupsListEachBadField() async throws {
        try await withAuthService { client, _ in
            let response = try await client.send(.post, "/auth/signup", json: #"{"email": "not-an-email", "password": "short", "name": "   "}"#)
            #expect(response.status == .badRequest)
            let problem = try response.problem
            #expect(problem.code == "validation_failed")
            #expect(Set(problem.errors?.map(\.field) ?? []) == ["email", "password", "name"])

            // Valid JSON, but text the database cannot store: a clear 400, not a 500.
            let nul = try await client.send(.post, "/auth/signup", json: #"{"email": "nul@example.com", "password": "12345678", "name": "a\u0000b"}"#)
            #expect(nul.status == .badRequest)

            let longName = String(repeating: "n", count: 51)
            let tooLong = try await client.send(.post, "/auth/signup", json: #"{"email": "a@b.co", "password": "12345678", "name": "\#(longName)"}"#)
            #expect(try tooLong.problem.errors?.map(\.field) == ["name"])
        }
    }

    @Test func passwordLengthIsCountedInUTF8Bytes() async throws {
        try await withAuthService { client, _ in
            // "é" is two bytes: 36 of them are exactly 72 bytes, 37 are 74.
            let atLimit = String(repeating: "é", count: 36)
            let overLimit = String(repeating: "é", count: 37)
            let ok = try await client.send(.post, "/auth/signup", json: #"{"email": "bytes@example.com", "password": "\#(atLimit)", "name": "B"}"#)
            #expect(ok.status == .created)
            let tooLong = try await client.send(.post, "/auth/signup", json: #"{"email": "bytes2@example.com", "password": "\#(overLimit)", "name": "B"}"#)
            #expect(tooLong.status == .badRequest)
            #expect(try tooLong.problem.errors?.first?.field == "password")
            let seventyThree = String(repeating: "a", count: 73)
            let ascii = try await client.send(.post, "/auth/signup", json: #"{"email": "bytes3@example.com", "password": "\#(seventyThree)", "name": "B"}"#)
            #expect(ascii.status == .badRequest)
            #expect(try await client.login(email: "bytes@example.com", password: atLimit).status == .ok)
        }
    }

    @Test func malformedBodiesAreClearProblems() async throws {
        try await withAuthService { client, _ in
            let notJSON = try await client.send(.post, "/auth/signup", json: "{nope")
            #expect(notJSON.status == .badRequest)
            #expect(try notJSON.problem.code == "validation_failed")
            let missing = try await client.send(.post, "/auth/signup", json: #"{"email": "a@b.co"}"#)
            #expect(missing.status == .badRequest)
            #expect(try missing.problem.errors?.first?.field == "password")
            let wrongType = try await client.send(.post, "/auth/login", json: #"{"email": 5, "password": "x"}"#)
            #expect(try wrongType.problem.errors?.first?.field == "email")
            let form = try await client.send(.post, "/auth/login", json: "email=a", headers: [.contentType: "application/x-www-form-urlencoded"])
            #expect(form.status == .unsupportedMediaType)
            let huge = try await client.send(.post, "/auth/login", json: #"{"email": "\#(String(repeating: "x", count: 2 << 20))"}"#)
            #expect(huge.status == .contentTooLarge)
            #expect(try huge.problem.code == "payload_too_large")
        }
    }

    @Test func wrongPasswordAndUnknownEmailLookTheSame() async throws {
        try await withAuthService { client, _ in
            _ = try await client.signup(email: "known@example.com", password: "right password")
            let wrongPassword = try await client.login(email: "known@example.com", password: "wrong password")
            let unknownEmail = try await client.login(email: "nobody@example.com", password: "right password")
            #expect(wrongPassword.status == .unauthorized)
            #expect(unknownEmail.status == .unauthorized)
            var (a, b) = (try wrongPassword.problem, try unknownEmail.problem)
            #expect(a.code == "invalid_credentials")
            (a.requestId, b.requestId) = ("", "")
            #expect(a == b)

            let ok = try await client.login(email: " KNOWN@example.com", password: "right password")
            #expect(ok.status == .ok)
            #expect(try ok.decode(Session.self).user.email == "known@example.com")
        }
    }
}

@Suite("Auth: tokens and sessions")
struct TokenTests {
    @Test func meRequiresAValidToken() async throws {
        try await withAuthService { client, _ in
            let session = try await client.signup(name: "Me")
            let me = try await client.send(.get, "/auth/me", token: session.accessToken)
            #expect(me.status == .ok)
            #expect(try me.json["name"] == .string("Me"))
            #expect(try me.json["id"] == .string(session.user.id.apiString))

            let none = try await client.send(.get, "/auth/me")
            #expect(none.status == .unauthorized)
            #expect(none.headers[.wwwAuthenticate] == "Bearer")
            #expect(try none.problem.code == "unauthorized")

            var tampered = Array(session.accessToken)
            let index = tampered.index(tampered.startIndex, offsetBy: tampered.count / 2)
            tampered[index] = tampered[index] == "A" ? "B" : "A"
            for token in [String(tampered), "not.a.jwt", "abc"] {
                let response = try await client.send(.get, "/auth/me", token: token)
                #expect(response.status == .unauthorized)
                #expect(response.headers[.wwwAuthenticate] == #"Bearer error="invalid_token""#)
                #expect(try response.problem.code == "invalid_token")
            }
            let basic = try await client.send(.get, "/auth/me", headers: [.authorization: "Basic dXNlcjpwYXNz"])
            #expect(basic.status == .unauthorized)
        }
    }

    @Test func expiredForeignAndServiceTokensAreRejected() async throws {
        try await withAuthService { client, _ in
            let session = try await client.signup()
            let longAgo = Date.now.addingTimeInterval(-3600)
            let expired = try AccessTokens(settings: TestEnvironment.tokenSettings, clock: { longAgo })
                .issue(userID: session.user.id, name: "x", sessionID: UUID()).token
            var foreignSettings = TestEnvironment.tokenSettings
            foreignSettings.secret = "another-secret-of-enough-length-0123456789"
            let forged = try AccessTokens(settings: foreignSettings).issue(userID: session.user.id, name: "x", sessionID: UUID()).token
            var otherAudience = TestEnvironment.tokenSettings
            otherAudience.audience = "someone-else"
            let wrongAudience = try AccessTokens(settings: otherAudience).issue(userID: session.user.id, name: "x", sessionID: UUID()).token
            for token in [expired, forged, wrongAudience, try TestEnvironment.serviceToken(from: "feed", to: "auth")] {
                let response = try await client.send(.get, "/auth/me", token: token)
                #expect(response.status == .unauthorized)
                #expect(try response.problem.code == "invalid_token")
            }
        }
    }

    @Test func verifyReturnsTheClaims() async throws {
        try await withAuthService { client, _ in
            let session = try await client.signup(name: "Claire")
            let response = try await client.send(.get, "/auth/verify", token: session.accessToken)
            #expect(response.status == .ok)
            let claims = try response.json
            #expect(claims["sub"] == .string(session.user.id.apiString))
            #expect(claims["name"] == .string("Claire"))
            #expect(claims["iss"] == .string("backend-auth"))
            #expect(claims["aud"] == .string("backend"))
            for key in ["iat", "exp", "jti"] { #expect(claims[key] != nil) }
        }
    }

    @Test func refreshRotatesAndReuseRevokesEverySession() async throws {
        try await withAuthService { client, _ in
            let first = try await client.signup(email: "rotate@example.com")
            let otherSession = try await client.login(email: "rotate@example.com", password: "correct horse").decode(Session.self)

            let rotated = try await client.refresh(first.refreshToken)
            #expect(rotated.status == .ok)
            let second = try rotated.decode(Session.self)
            #expect(second.refreshToken != first.refreshToken)
            #expect(try await client.send(.get, "/auth/me", token: second.accessToken).status == .ok)

            // The old token again: theft is assumed, every refresh token of the user goes.
            let reuse = try await client.refresh(first.refreshToken)
            #expect(reuse.status == .unauthorized)
            #expect(try reuse.problem.code == "invalid_refresh_token")
            #expect(try await client.refresh(second.refreshToken).status == .unauthorized)
            #expect(try await client.refresh(otherSession.refreshToken).status == .unauthorized)

            #expect(try await client.refresh("garbage").status == .unauthorized)
        }
    }

    @Test func concurrentRefreshesOfOneTokenYieldOneSession() async throws {
        try await withAuthService { client, _ in
            let session = try await client.signup()
            let presentations = 5
            let responses = try await withThrowingTaskGroup(of: TestResponse.self) { group in
                for _ in 0..<presentations { group.addTask { try await client.refresh(session.refreshToken) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            // Exactly one presentation rotates the token (a refresh that breaks under
            // contention gives none, or several); the row lock orders the others after it.
            let winners = responses.filter { $0.status == .ok }
            #expect(winners.count == 1, "statuses: \(responses.map(\.status.code))")
            let losers = responses.filter { $0.status != .ok }
            #expect(losers.count == presentations - 1)
            for loser in losers {
                // The others present a token that was already rotated: reuse, as API.md says.
                #expect(loser.status == .unauthorized)
                #expect(try loser.problem.code == "invalid_refresh_token")
            }
            let winner = try #require(winners.first).decode(Session.self)

            // The winner is the same session rotated: a new refresh token and a valid access
            // token for the same user and session. (Not checked against /auth/me: the losers'
            // reuse ends the user's sessions, and API.md lets that reach access tokens.)
            #expect(winner.user.id == session.user.id)
            #expect(winner.refreshToken != session.refreshToken)
            #expect(winner.tokenType == "Bearer")
            let tokens = try AccessTokens(settings: TestEnvironment.tokenSettings)
            let claims = try tokens.verify(winner.accessToken)
            let original = try tokens.verify(session.accessToken)
            #expect(claims.id == session.user.id)
            #expect(claims.sessionID == original.sessionID)

            // "Presenting one that was already rotated revokes every refresh token of that
            // user" (API.md): the losers were reuse, so the winner's new refresh token is
            // revoked too, and the original stays refused.
            let winnerRefresh = try await client.refresh(winner.refreshToken)
            #expect(winnerRefresh.status == .unauthorized)
            #expect(try winnerRefresh.problem.code == "invalid_refresh_token")
            #expect(try await client.refresh(session.refreshToken).status == .unauthorized)
        }
    }

    @Test func aRotatedTokenWorksWhenNothingReusesTheOldOne() async throws {
        // The counterpart of the race above without reuse: the new token keeps rotating.
        try await withAuthService { client, _ in
            let session = try await client.signup()
            let first = try await client.refresh(session.refreshToken)
            #expect(first.status == .ok)
            let rotated = try first.decode(Session.self)
            let second = try await client.refresh(rotated.refreshToken)
            #expect(second.status == .ok)
            #expect(try second.decode(Session.self).user.id == session.user.id)
            #expect(try await client.send(.get, "/auth/me", token: rotated.accessToken).status == .ok)
        }
    }

    @Test func logoutEndsThatSessionAndIsIdempotent() async throws {
        try await withAuthService { client, _ in
            let session = try await client.signup(email: "bye@example.com")
            let other = try await client.login(email: "bye@example.com", password: "correct horse").decode(Session.self)
            let logout = try await client.send(.post, "/auth/logout", json: #"{"refreshToken": "\#(session.refreshToken)"}"#)
            #expect(logout.status == .noContent)
            #expect(try await client.refresh(session.refreshToken).status == .unauthorized)
            #expect(try await client.send(.post, "/auth/logout", json: #"{"refreshToken": "\#(session.refreshToken)"}"#).status == .noContent)
            #expect(try await client.send(.post, "/auth/logout", json: #"{"refreshToken": "unknown"}"#).status == .noContent)
            // Only that session ended.
            #expect(try await client.refresh(other.refreshToken).status == .ok)
        }
    }
}

@Suite("Auth: account")
struct AccountTests {
    @Test func renameAndValidation() async throws {
        try await withAuthService { client, _ in
            let session = try await client.signup(name: "Old")
            let renamed = try await client.send(.patch, "/auth/me", json: #"{"name": " New Name "}"#, token: session.accessToken)
            #expect(renamed.status == .ok)
            #expect(try renamed.json["name"] == .string("New Name"))
            #expect(try await client.send(.get, "/auth/me", token: session.accessToken).json["name"] == .string("New Name"))

            let empty = try await client.send(.patch, "/auth/me", json: "{}", token: session.accessToken)
            #expect(empty.status == .badRequest)
            let blank = try await client.send(.patch, "/auth/me", json: #"{"name": "  "}"#, token: session.accessToken)
            #expect(blank.status == .badRequest)
            let noCurrent = try await client.send(.patch, "/auth/me", json: #"{"password": "new password"}"#, token: session.accessToken)
            #expect(noCurrent.status == .badRequest)
            #expect(try noCurrent.problem.errors?.map(\.field) == ["currentPassword"])
        }
    }

    @Test func passwordChangeNeedsTheCurrentOneAndEndsOtherSessions() async throws {
        try await withAuthService { client, _ in
            let mine = try await client.signup(email: "pw@example.com", password: "old password")
            let other = try await client.login(email: "pw@example.com", password: "old password").decode(Session.self)

            let wrong = try await client.send(
                .patch, "/auth/me", json: #"{"password": "new password", "currentPassword": "not it"}"#, token: mine.accessToken)
            #expect(wrong.status == .forbidden)
            #expect(try wrong.problem.code == "invalid_current_password")

            let changed = try await client.send(
                .patch, "/auth/me", json: #"{"password": "new password", "currentPassword": "old password", "name": "Both"}"#,
                token: mine.accessToken)
            #expect(changed.status == .ok)
            #expect(try changed.json["name"] == .string("Both"))

            #expect(try await client.refresh(other.refreshToken).status == .unauthorized)
            #expect(try await client.refresh(mine.refreshToken).status == .ok)
            #expect(try await client.login(email: "pw@example.com", password: "old password").status == .unauthorized)
            #expect(try await client.login(email: "pw@example.com", password: "new password").status == .ok)
        }
    }

    @Test func deletingTheAccountNeedsThePasswordFreesTheEmailAndWritesItsEvents() async throws {
        try await withAuthService(extra: ["OUTBOX_TARGETS": "vote=http://127.0.0.1:9,feed=http://127.0.0.1:9"]) { client, databaseURL in
            let session = try await client.signup(email: "gone@example.com")
            let noBody = try await client.send(.delete, "/auth/me", token: session.accessToken)
            #expect(noBody.status == .badRequest)
            let missing = try await client.send(.delete, "/auth/me", json: "{}", token: session.accessToken)
            #expect(missing.status == .badRequest)
            #expect(try missing.problem.errors?.first?.field == "currentPassword")
            let wrong = try await client.send(.delete, "/auth/me", json: #"{"currentPassword":"not it at all"}"#, token: session.accessToken)
            #expect(wrong.status == .forbidden)
            #expect(try wrong.problem.code == "invalid_current_password")
            #expect(try await client.send(.get, "/auth/me", token: session.accessToken).status == .ok)

            let delete = #"{"currentPassword":"correct horse"}"#
            #expect(try await client.send(.delete, "/auth/me", json: delete, token: session.accessToken).status == .noContent)
            #expect(try await client.send(.get, "/auth/me", token: session.accessToken).status == .unauthorized)
            #expect(try await client.send(.delete, "/auth/me", json: delete, token: session.accessToken).status == .unauthorized)
            #expect(try await client.login(email: "gone@example.com", password: "correct horse").status == .unauthorized)
            #expect(try await client.refresh(session.refreshToken).status == .unauthorized)
            _ = try await client.signup(email: "gone@example.com")

            let rows = try await TestDatabase.withClient(databaseURL) { client in
                var rows: [(String, UUID, Int, Int)] = []
                let query = """
                    SELECT e.event_type, e.aggregate_id, count(*)::int, count(*) FILTER (WHERE d.next_attempt_at > now() + interval '30 seconds')::int
                    FROM outbox_events e JOIN outbox_deliveries d ON d.event_id = e.id GROUP BY e.id ORDER BY e.id
                    """
                for try await row in try await client.query(PostgresQuery(unsafeSQL: query)).decode((String, UUID, Int, Int).self) {
                    rows.append(row)
                }
                return rows
            }
            // Two deletion events, a delivery each per service; the second one due later.
            #expect(rows.map(\.0) == ["user.deleted", "user.deleted"])
            #expect(rows.allSatisfy { $0.1 == session.user.id && $0.2 == 2 })
            #expect(rows.map(\.3) == [0, 2])
        }
    }

    /// Logout, a password change and refresh-token reuse end sessions at once, access tokens
    /// included: exactly the sessions they end.
    @Test func endedSessionsTokensAreRefusedAtOnce() async throws {
        try await withAuthService { client, _ in
            let first = try await client.signup(email: "sessions@example.com", password: "old password")
            func session() async throws -> Session {
                try await client.login(email: "sessions@example.com", password: "old password").decode(Session.self)
            }
            func works(_ session: Session) async throws -> Bool {
                try await client.send(.get, "/auth/me", token: session.accessToken).status == .ok
            }
            // Logout ends that session only.
            let laptop = try await session()
            #expect(try await client.send(.post, "/auth/logout", json: #"{"refreshToken":"\#(laptop.refreshToken)"}"#).status == .noContent)
            let refused = try await client.send(.get, "/auth/me", token: laptop.accessToken)
            #expect(refused.status == .unauthorized)
            #expect(try refused.problem.code == "invalid_token")
            #expect(try await works(first))

            // A password change ends every other session.
            let phone = try await session()
            let change = try await client.send(
                .patch, "/auth/me", json: #"{"password":"new password","currentPassword":"old password"}"#, token: first.accessToken)
            #expect(change.status == .ok)
            #expect(try await works(first))
            #expect(try await !works(phone))

            // Reuse of a rotated refresh token ends every session, the thief's new one too.
            let rotated = try await client.refresh(first.refreshToken).decode(Session.self)
            #expect(try await works(rotated))
            #expect(try await client.refresh(first.refreshToken).status == .unauthorized)
            #expect(try await !works(rotated))
            #expect(try await !works(first))
            // Signing in again starts a session that works.
            let fresh = try await client.login(email: "sessions@example.com", password: "new password").decode(Session.self)
            #expect(try await works(fresh))
        }
    }
}

@Suite("Auth: internal users")
struct InternalUsersTests {
    @Test func namesForAServiceCaller() async throws {
        try await withAuthService { client, _ in
            let a = try await client.signup(name: "Alice")
            let b = try await client.signup(name: "Bob")
            let unknown = UUID()
            let service = try TestEnvironment.serviceToken(from: "feed", to: "auth")
            let response = try await client.send(
                .get, "/internal/users?ids=\(a.user.id),\(b.user.id),\(unknown)", token: service)
            #expect(response.status == .ok)
            let names = try response.decode([UserName].self)
            #expect(Set(names) == [UserName(id: a.user.id.apiString, name: "Alice"), UserName(id: b.user.id.apiString, name: "Bob")])

            let repeated = try await client.send(.get, "/internal/users?ids=\(a.user.id)&ids=\(b.user.id)", token: service)
            #expect(try repeated.decode([UserName].self).count == 2)
        }
    }

    @Test func rejectsUsersAndBadInput() async throws {
        try await withAuthService { client, _ in
            let user = try await client.signup()
            let asUser = try await client.send(.get, "/internal/users?ids=\(user.user.id)", token: user.accessToken)
            #expect(asUser.status == .unauthorized)
            #expect(try asUser.problem.code == "invalid_service_credential")
            #expect(try await client.send(.get, "/internal/users?ids=\(user.user.id)").status == .unauthorized)

            // Only feed reads names; a credential minted for another service does not open auth.
            let fromVote = try await client.send(
                .get, "/internal/users?ids=\(user.user.id)", token: try TestEnvironment.serviceToken(from: "vote", to: "auth"))
            #expect(fromVote.status == .forbidden)
            #expect(try fromVote.problem.code == "caller_not_allowed")
            let forVote = try await client.send(
                .get, "/internal/users?ids=\(user.user.id)", token: try TestEnvironment.serviceToken(from: "feed", to: "vote"))
            #expect(forVote.status == .unauthorized)

            let service = try TestEnvironment.serviceToken(from: "feed", to: "auth")
            let tooMany = (0...100).map { _ in UUID().uuidString }.joined(separator: ",")
            #expect(try await client.send(.get, "/internal/users?ids=\(tooMany)", token: service).status == .badRequest)
            #expect(try await client.send(.get, "/internal/users?ids=nope", token: service).status == .badRequest)
            #expect(try await client.send(.get, "/internal/users", token: service).status == .badRequest)
        }
    }
}

extension UserName: Hashable {
    public func hash(into hasher: inout Hasher) { hasher.combine(id) }
}
