import Foundation
import Shared
import TestSupport
import Testing

/// Social sign-in through the gateway: the stack's auth is configured with provider `e2e`
/// (scripts/with-test-stack.sh), whose discovery and keys this test serves on E2E_OIDC_PORT.
@Suite("End to end: social sign-in")
struct SocialSignInJourneyTests {
    @Test func signInWithTheProviderThenUseEveryService() async throws {
        let port = try #require(ProcessInfo.processInfo.environment["E2E_OIDC_PORT"].flatMap(Int.init), "E2E_OIDC_PORT is not set")
        let key = TestSigningKey(.p256)
        let provider = TestOIDCProvider(keys: [key])
        try await provider.run(port: port) { issuer in
            let client = try GatewayClient()
            let email = "e2e-social-\(UUID().apiString.prefix(8))@example.com"
            let token = try TestOIDCProvider.token(
                provider.claims(issuer: issuer, subject: "e2e-\(UUID().apiString)", email: email, name: "Social E2E"), key: key)
            // The provider runs in this (busy) test process: auth's first key fetch may time
            // out (503: no keys yet); it fetches again on the next sign-in.
            var created = try await client.send(.POST, "/auth/social/e2e", json: #"{"idToken":"\#(token)"}"#)
            try await eventually {
                if created.status != 503 { return true }
                created = try await client.send(.POST, "/auth/social/e2e", json: #"{"idToken":"\#(token)"}"#)
                return false
            }
            #expect(created.status == 201)
            let session = try created.decode(SessionReply.self)
            #expect(session.user.email == email && session.user.name == "Social E2E")
            let again = try await client.send(.POST, "/auth/social/e2e", json: #"{"idToken":"\#(token)"}"#)
            #expect(again.status == 200)
            // The session is an ordinary one: every service takes its access token.
            let poll = try await client.send(.POST, "/polls", json: #"{"title":"Social?","candidates":["Yes","No"]}"#, token: session.accessToken)
            #expect(poll.status == 201)
            let identities = try await client.send(.GET, "/auth/me/identities", token: session.accessToken)
            #expect(identities.status == 200)
            #expect(try await client.send(.POST, "/auth/social/nope", json: #"{"idToken":"\#(token)"}"#).status == 404)
        }
    }
}
