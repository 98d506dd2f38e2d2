import Configuration
import Foundation
import Shared

/// One OpenID Connect provider from configuration: `OIDC_PROVIDERS=google,kakao` and, per
/// NAME, `OIDC_<NAME>_ISSUER`, `OIDC_<NAME>_CLIENT_IDS` (comma-separated) and optionally
/// `OIDC_<NAME>_JWKS_URL` (otherwise discovery at `{issuer}/.well-known/openid-configuration`)
/// and `OIDC_<NAME>_AUTHORIZATION_URL` (otherwise discovery's `authorization_endpoint`), where
/// the web app sends people to sign in.
struct OIDCProvider: Sendable, Equatable {
    var name: String
    var issuer: String
    /// The first is the web app's (`GET /auth/social/providers`).
    var clientIDs: [String]
    var jwksURL: String?
    var authorizationURL: String?

    static func all(reader: ConfigReader) throws -> [OIDCProvider] {
        let names = reader.string(forKey: ConfigReader.key(forVariable: "OIDC_PROVIDERS"), default: "")
            .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty }
        return try names.map { name in
            guard name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) else {
                throw ConfigurationError("OIDC_PROVIDERS names are letters and digits (they become /auth/social/{name}), not '\(name)'.")
            }
            let prefix = "OIDC_\(name.uppercased())_"
            func value(_ suffix: String) -> String? {
                reader.string(forKey: ConfigReader.key(forVariable: prefix + suffix)).flatMap { $0.isEmpty ? nil : $0 }
            }
            guard let issuer = value("ISSUER"), let url = URLComponents(string: issuer), ["https", "http"].contains(url.scheme ?? "") else {
                throw ConfigurationError("\(prefix)ISSUER must be the provider's issuer URL, e.g. https://accounts.google.com.")
            }
            let clientIDs = (value("CLIENT_IDS") ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard !clientIDs.isEmpty else { throw ConfigurationError("\(prefix)CLIENT_IDS must list the app's client id(s) at \(name).") }
            return OIDCProvider(
                name: name, issuer: issuer, clientIDs: clientIDs, jwksURL: value("JWKS_URL"), authorizationURL: value("AUTHORIZATION_URL"))
        }
    }
}

/// What a verified ID token says about the person.
struct IDTokenClaims: Sendable, Equatable {
    var subject: String
    var email: String?
    var emailVerified: Bool
    var name: String?
}

/// Why an ID token was refused (all of them are `401 invalid_id_token` to the client; the
/// reason goes to the log).
struct IDTokenError: Error, CustomStringConvertible, Equatable {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Verifies ID tokens of one provider (OpenID Connect Core 1.0 §3.1.3.7): signature by a key
/// of the provider's JWKS (RS256 or ES256, the key decides), `iss` exactly, `aud` one of the
/// client ids (and `azp` when `aud` has several), `exp`/`iat`/`nbf` with the leeway, `sub`,
/// and `nonce` when the request sends one.
struct IDTokenVerifier: Sendable {
    let provider: OIDCProvider
    let keys: JWKSCache
    let leeway: Duration
    /// An ID token is a few kilobytes; anything far larger is refused before any parsing.
    static let maxLength = 16 * 1024

    func verify(_ token: String, nonce: String?, now: Date = Date()) async throws -> IDTokenClaims {
        guard token.utf8.count <= Self.maxLength else { throw IDTokenError("token of \(token.utf8.count) bytes") }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let headerBytes = Base64URL.decode(parts[0]), let payloadBytes = Base64URL.decode(parts[1]),
              let signature = Base64URL.decode(parts[2]),
              case .object(let header) = JSONValue.parse(headerBytes), case .object(let claims) = JSONValue.parse(payloadBytes)
        else { throw IDTokenError("not a JWS of JSON objects") }
        guard let alg = header["alg"]?.stringValue, alg == "RS256" || alg == "ES256" else {
            throw IDTokenError("alg \(header["alg"]?.stringValue ?? "missing") is not accepted")
        }
        guard header["crit"] == nil else { throw IDTokenError("crit header") }
        let kid = header["kid"]?.stringValue
        let key = try await keys.key(id: kid)
        guard key.algorithm.rawValue == alg else { throw IDTokenError("alg \(alg) does not fit the key \(kid ?? "")") }
        guard key.verify(signature: signature, message: Array("\(parts[0]).\(parts[1])".utf8)) else {
            throw IDTokenError("bad signature")
        }

        guard claims["iss"]?.stringValue == provider.issuer else { throw IDTokenError("iss") }
        let audiences: [String]
        switch claims["aud"] {
        case .string(let one): audiences = [one]
        case .array(let many): audiences = many.compactMap(\.stringValue)
        default: throw IDTokenError("aud missing")
        }
        guard audiences.contains(where: provider.clientIDs.contains) else { throw IDTokenError("aud is not ours") }
        if audiences.count > 1 {
            guard let azp = claims["azp"]?.stringValue, provider.clientIDs.contains(azp) else { throw IDTokenError("azp") }
        }
        let slack = leeway.timeInterval
        let time = now.timeIntervalSince1970
        guard let exp = claims["exp"]?.numberValue, exp + slack > time else { throw IDTokenError("expired or no exp") }
        guard let iat = claims["iat"]?.numberValue, iat - slack <= time else { throw IDTokenError("iat missing or in the future") }
        if let nbf = claims["nbf"] {
            guard let value = nbf.numberValue, value - slack <= time else { throw IDTokenError("nbf in the future") }
        }
        guard let subject = claims["sub"]?.stringValue, !subject.isEmpty, subject.utf8.count <= 255 else { throw IDTokenError("sub") }
        if let nonce {
            guard let sent = claims["nonce"]?.stringValue, Crypto.constantTimeEquals(Array(sent.utf8), Array(nonce.utf8)) else {
                throw IDTokenError("nonce")
            }
        }
        // Apple sends email_verified as the string "true".
        let verified = claims["email_verified"]?.boolValue ?? (claims["email_verified"]?.stringValue == "true")
        return IDTokenClaims(
            subject: subject, email: claims["email"]?.stringValue.map(AuthRules.normalizedEmail),
            emailVerified: verified, name: claims["name"]?.stringValue)
    }
}
