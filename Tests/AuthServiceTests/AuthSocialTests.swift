import Foundation
import HummingbirdTesting
import PostgresNIO
import Shared
import TestSupport
import Testing

@testable import AuthService

/// Social sign-in against a real OpenID provider (discovery and JWKS over HTTP, keys made
/// for the run), with the contract's linking rules.
@Suite("Auth: social sign-in")
struct AuthSocialTests {
    static let rsa = TestSigningKey(.rsa)
    static let ec = TestSigningKey(.p256)

    static func withProvider(
        _ provider: TestOIDCProvider = TestOIDCProvider(keys: [rsa, ec]), extra: [String: String] = [:],
        _ body: @escaping @Sendable (any TestClientProtocol, _ issuer: String, _ databaseURL: String) async throws -> Void
    ) async throws {
        try await provider.run { issuer in
            let settings = [
                "OIDC_PROVIDERS": "test", "OIDC_TEST_ISSUER": issuer, "OIDC_TEST_CLIENT_IDS": "\(provider.clientID),second-app",
                "OIDC_KEYS_REFETCH_SECONDS": "0.1",
            ]
            try await withAuthService(extra: settings.merging(extra) { $1 }) { client, databaseURL in
                try await body(client, issuer, databaseURL)
            }
        }
    }

    static func signIn(_ client: any TestClientProtocol, _ token: String, nonce: String? = nil, provider: String = "test") async throws -> TestResponse {
        let nonceField = nonce.map { #", "nonce": "\#($0)""# } ?? ""
        return try await client.send(.post, "/auth/social/\(provider)", json: #"{"idToken": "\#(token)"\#(nonceField)}"#)
    }

    static func address() -> String { "social-\(UUID().uuidString.prefix(8).lowercased())@example.com" }

    static func markVerified(_ email: String, _ databaseURL: String) async throws {
        try await TestDatabase.withClient(databaseURL) { client in
            try await client.query("UPDATE users SET email_verified = true WHERE email = \(email)").consume()
        }
    }

    @Test func aNewIdentityMakesAUserAndSignsInAgainWithEitherKeyType() async throws {
        let provider = TestOIDCProvider(keys: [Self.rsa, Self.ec])
        try await Self.withProvider(provider) { client, issuer, _ in
            let email = Self.address()
            let claims = provider.claims(issuer: issuer, subject: "subject-1", email: email, name: "Soo-ah Kim")
            // The answers match auth's OpenAPI document too.
            let check = try await ContractCheck(client: client)
            let firstToken = try TestOIDCProvider.token(claims, key: Self.rsa)
            let created = try await check.call(.post, "/auth/social/test", json: #"{"idToken": "\#(firstToken)"}"#)
            #expect(created.status == .created)
            #expect(created.headers[.cacheControl] == "no-store")
            let session = try created.decode(Session.self)
            #expect(session.user.email == email && session.user.name == "Soo-ah Kim")
            let user = try #require(try created.json["user"]?.objectValue)
            #expect(user["hasPassword"] == .bool(false))
            #expect(user["emailVerified"] == .bool(true))
            let again = try await Self.signIn(client, try TestOIDCProvider.token(claims, key: Self.ec))
            #expect(again.status == .ok)
            #expect(try again.decode(Session.self).user.id == session.user.id)
            let identities = try await check.call(.get, "/auth/me/identities", token: session.accessToken)
            #expect(check.problems == [])
            #expect(try identities.json["items"]?.arrayValue?.first?.objectValue?["provider"] == .string("test"))
            // No password: changing one is refused with a way out; the only method cannot go.
            let change = try await client.send(
                .patch, "/auth/me", json: #"{"password": "new password", "currentPassword": "anything"}"#, token: session.accessToken)
            #expect(change.status == .conflict)
            #expect(try change.problem.code == "no_password")
            let unlink = try await client.send(.delete, "/auth/me/identities/test", token: session.accessToken)
            #expect(unlink.status == .conflict)
            #expect(try unlink.problem.code == "last_sign_in_method")
            #expect(try await client.send(.delete, "/auth/me/identities/other", token: session.accessToken).status == .notFound)
            // Deleting the account needs a fresh ID token of a linked provider (another
            // subject's is refused).
            let stranger = try TestOIDCProvider.token(provider.claims(issuer: issuer, subject: "someone-else", email: nil), key: Self.rsa)
            let refused = try await client.send(
                .delete, "/auth/me", json: #"{"provider": "test", "idToken": "\#(stranger)"}"#, token: session.accessToken)
            #expect(refused.status == .forbidden)
            let mine = try TestOIDCProvider.token(claims, key: Self.rsa)
            let deleted = try await client.send(.delete, "/auth/me", json: #"{"provider": "test", "idToken": "\#(mine)"}"#, token: session.accessToken)
            #expect(deleted.status == .noContent)
            // The identity went with the user: the same subject makes a new one.
            let fresh = try await Self.signIn(client, try TestOIDCProvider.token(claims, key: Self.rsa))
            #expect(fresh.status == .created)
            #expect(try fresh.decode(Session.self).user.id != session.user.id)
        }
    }

    /// Linking needs both sides verified (the account pre-takeover attack).
    @Test func anExistingAccountIsLinkedOnlyWhenBothSidesProvedTheAddress() async throws {
        let provider = TestOIDCProvider(keys: [Self.rsa])
        try await Self.withProvider(provider) { client, issuer, databaseURL in
            let email = Self.address()
            let owner = try await client.signup(email: email, password: "correct horse")
            let verifiedClaims = provider.claims(issuer: issuer, subject: "link-1", email: email, emailVerified: true)
            // The account's address is not verified yet: no link.
            let early = try await Self.signIn(client, try TestOIDCProvider.token(verifiedClaims, key: Self.rsa))
            #expect(early.status == .conflict)
            #expect(try early.problem.code == "account_exists")
            try await Self.markVerified(email, databaseURL)
            // The provider does not vouch for the address: no link either.
            let unverified = provider.claims(issuer: issuer, subject: "link-1", email: email, emailVerified: false)
            #expect(try await Self.signIn(client, try TestOIDCProvider.token(unverified, key: Self.rsa)).status == .conflict)
            let linked = try await Self.signIn(client, try TestOIDCProvider.token(verifiedClaims, key: Self.rsa))
            #expect(linked.status == .ok)
            let session = try linked.decode(Session.self)
            #expect(session.user.id == owner.user.id)
            // With a password the provider may go; then it is simply not linked.
            #expect(try await client.send(.delete, "/auth/me/identities/test", token: session.accessToken).status == .noContent)
            #expect(try await client.send(.delete, "/auth/me/identities/test", token: session.accessToken).status == .notFound)
        }
    }

    @Test(arguments: [
        "alg none", "HS256 with the public key", "another key with a known kid", "wrong iss", "aud not ours", "expired",
        "nbf in the future", "no sub", "nonce mismatch", "DER ES256 signature", "50 KB token", "garbage base64",
        "several aud without azp", "no kid with several keys",
    ])
    func aBadTokenIsRefused(_ case: String) async throws {
        let provider = TestOIDCProvider(keys: [Self.rsa, Self.ec])
        try await Self.withProvider(provider) { client, issuer, _ in
            var claims = provider.claims(issuer: issuer, subject: "bad-1", email: Self.address())
            var nonce: String?
            let token: String
            switch `case` {
            case "alg none":
                let header = Base64URL.encode(#"{"alg":"none","kid":"\#(Self.rsa.keyID)"}"#)
                token = header + "." + Base64URL.encode(try JSONEncoder().encode(JSONValue.object(claims))) + "."
            case "HS256 with the public key":
                token = try TestOIDCProvider.token(
                    claims, key: Self.rsa, header: ["alg": .string("HS256"), "kid": .string(Self.rsa.keyID)],
                    signature: { Crypto.hmacSHA256(key: Self.rsa.publicKeyBytes, data: $0) })
            case "another key with a known kid":
                let impostor = TestSigningKey(.rsa, keyID: Self.rsa.keyID)
                token = try TestOIDCProvider.token(claims, key: impostor)
            case "wrong iss":
                claims["iss"] = .string(issuer + "/other")
                token = try TestOIDCProvider.token(claims, key: Self.rsa)
            case "aud not ours":
                claims["aud"] = .string("someone-else")
                token = try TestOIDCProvider.token(claims, key: Self.rsa)
            case "expired":
                claims["exp"] = .number(Date().timeIntervalSince1970 - 120)
                token = try TestOIDCProvider.token(claims, key: Self.rsa)
            case "nbf in the future":
                claims["nbf"] = .number(Date().timeIntervalSince1970 + 600)
                token = try TestOIDCProvider.token(claims, key: Self.rsa)
            case "no sub":
                claims["sub"] = nil
                token = try TestOIDCProvider.token(claims, key: Self.rsa)
            case "nonce mismatch":
                claims["nonce"] = .string("sent-by-the-app")
                nonce = "another-nonce"
                token = try TestOIDCProvider.token(claims, key: Self.rsa)
            case "DER ES256 signature":
                token = try TestOIDCProvider.token(claims, key: Self.ec, signature: Self.ec.signNative)
            case "50 KB token":
                claims["padding"] = .string(String(repeating: "x", count: 50_000))
                token = try TestOIDCProvider.token(claims, key: Self.rsa)
            case "garbage base64":
                token = "%%%.***.!!!"
            case "several aud without azp":
                claims["aud"] = .array([.string(provider.clientID), .string("second-app")])
                token = try TestOIDCProvider.token(claims, key: Self.rsa)
            default:  // no kid with several keys
                token = try TestOIDCProvider.token(claims, key: Self.rsa, header: ["alg": .string("RS256")])
            }
            let response = try await Self.signIn(client, token, nonce: nonce)
            #expect(response.status == .unauthorized, "\(`case`)")
            #expect(try response.problem.code == "invalid_id_token", "\(`case`)")
        }
    }

    @Test func aNonceThatMatchesAndSeveralAudiencesWithAzpAreAccepted() async throws {
        let provider = TestOIDCProvider(keys: [Self.rsa])
        try await Self.withProvider(provider) { client, issuer, _ in
            var claims = provider.claims(issuer: issuer, subject: "ok-1", email: Self.address())
            claims["nonce"] = .string("n-0S6_WzA2Mj")
            claims["aud"] = .array([.string(provider.clientID), .string("second-app")])
            claims["azp"] = .string(provider.clientID)
            let response = try await Self.signIn(client, try TestOIDCProvider.token(claims, key: Self.rsa), nonce: "n-0S6_WzA2Mj")
            #expect(response.status == .created)
        }
    }

    /// A key with `use: enc` is never used to verify, even with a matching kid.
    @Test func aKeyForEncryptionIsNotUsed() async throws {
        let encryption = TestSigningKey(.rsa)
        let provider = TestOIDCProvider(keys: [Self.rsa])
        provider.publish([Self.rsa], extra: [encryption.jwk(use: "enc")])
        try await Self.withProvider(provider) { client, issuer, _ in
            let claims = provider.claims(issuer: issuer, subject: "enc-1", email: Self.address())
            let token = try TestOIDCProvider.token(claims, key: encryption)
            let response = try await Self.signIn(client, token)
            #expect(response.status == .unauthorized)
        }
    }

    /// Keys rotate (a new kid is fetched), survive the provider going down, and a provider
    /// that never had keys to give is a 503.
    @Test func keysRotateAndOutlastTheProvider() async throws {
        let provider = TestOIDCProvider(keys: [Self.rsa])
        try await Self.withProvider(provider) { client, issuer, _ in
            let first = try await Self.signIn(client, try TestOIDCProvider.token(provider.claims(issuer: issuer, subject: "r-1", email: Self.address()), key: Self.rsa))
            #expect(first.status == .created)
            #expect(provider.jwksFetches == 1)
            let rotated = TestSigningKey(.p256)
            provider.publish([rotated])
            try await eventually {
                let token = try TestOIDCProvider.token(provider.claims(issuer: issuer, subject: "r-2", email: Self.address()), key: rotated)
                return try await Self.signIn(client, token).status == .created
            }
            // Down: the keys it had still verify.
            provider.setMode(.failing)
            let token = try TestOIDCProvider.token(provider.claims(issuer: issuer, subject: "r-3", email: Self.address()), key: rotated)
            #expect(try await Self.signIn(client, token).status == .created)
        }
        let unreachable = TestOIDCProvider(keys: [Self.rsa])
        unreachable.setMode(.failing)
        try await Self.withProvider(unreachable) { client, issuer, _ in
            let token = try TestOIDCProvider.token(unreachable.claims(issuer: issuer, subject: "d-1", email: Self.address()), key: Self.rsa)
            let response = try await Self.signIn(client, token)
            #expect(response.status == .serviceUnavailable)
            #expect(try await Self.signIn(client, token, provider: "nope").status == .notFound)
        }
    }

    /// The web app's buttons: the discovered (or configured) authorization endpoint and the
    /// first client id; a provider with neither (a JWKS URL, no discovery) is left out.
    @Test func browsersLearnWhereToSignIn() async throws {
        let provider = TestOIDCProvider(keys: [Self.rsa])
        let extra = [
            "OIDC_PROVIDERS": "test,native,custom", "OIDC_NATIVE_ISSUER": "https://native.example", "OIDC_NATIVE_CLIENT_IDS": "app",
            "OIDC_NATIVE_JWKS_URL": "https://native.example/keys", "OIDC_CUSTOM_ISSUER": "https://custom.example",
            "OIDC_CUSTOM_CLIENT_IDS": "web,ios", "OIDC_CUSTOM_AUTHORIZATION_URL": "https://custom.example/login",
        ]
        try await Self.withProvider(provider, extra: extra) { client, issuer, _ in
            let response = try await client.send(.get, "/auth/social/providers")
            #expect(response.status == .ok)
            let items = try #require(response.json["items"]?.arrayValue)
            #expect(items == [
                .object(["name": .string("test"), "clientId": .string(provider.clientID), "authorizationEndpoint": .string("\(issuer)/authorize")]),
                .object(["name": .string("custom"), "clientId": .string("web"), "authorizationEndpoint": .string("https://custom.example/login")]),
            ])
        }
    }

    @Test func aProviderThatNeverAnswersIsA503() async throws {
        let silent = TestOIDCProvider(keys: [Self.rsa])
        silent.setMode(.hanging)
        try await Self.withProvider(silent) { client, issuer, _ in
            let token = try TestOIDCProvider.token(silent.claims(issuer: issuer, subject: "h-1", email: Self.address()), key: Self.rsa)
            #expect(try await Self.signIn(client, token).status == .serviceUnavailable)
        }
    }
}
