import Foundation
import Shared
import TestSupport
import Testing

/// The e-mail journeys through the gateway, with the stack's auth sending to the run's real
/// SMTP server: sign up, read the mail, verify; forgot, read, reset, old sessions end in
/// every service.
@Suite("End to end: e-mail")
struct EmailJourneyTests {
    @Test func verifyThenForgetAndResetThePassword() async throws {
        let client = try GatewayClient()
        let session = try await client.signup(name: "Mail Reader")
        let email = session.user.email
        let welcome = try await TestMail.parse(try #require(try await TestMail.waitForMessages(to: email).first))
        let verifyToken = try #require(welcome.token(route: "verify"))
        let verified = try await client.send(.POST, "/auth/email/verify", json: #"{"token":"\#(verifyToken)"}"#)
        #expect(verified.status == 200)
        #expect(try verified.json["emailVerified"] == .bool(true))

        #expect(try await client.send(.POST, "/auth/password/forgot", json: #"{"email":"\#(email)"}"#).status == 202)
        let reset = try await TestMail.parse(try #require(try await TestMail.waitForMessages(to: email, count: 2).last))
        let resetToken = try #require(reset.token(route: "reset"))
        let renewed = try await client.send(.POST, "/auth/password/reset", json: #"{"token":"\#(resetToken)","password":"a new password"}"#)
        #expect(renewed.status == 200)
        // The old session is over: its refresh token now, its access token in every service
        // within the contract's 2 s (vote's routes here).
        #expect(try await client.send(.POST, "/auth/refresh", json: #"{"refreshToken":"\#(session.refreshToken)"}"#).status == 401)
        try await eventually(timeout: .seconds(5)) {
            try await client.send(.POST, "/polls", json: "{}", token: session.accessToken).status == 401
        }
        let fresh = try renewed.decode(SessionReply.self)
        #expect(try await client.send(.POST, "/polls", json: "{}", token: fresh.accessToken).status == 400)
        let login = try await client.send(.POST, "/auth/login", json: #"{"email":"\#(email)","password":"a new password"}"#)
        #expect(login.status == 200)
    }
}
