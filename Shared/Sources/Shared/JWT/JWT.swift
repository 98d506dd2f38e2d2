import Foundation

public enum JWTError: Error, Equatable, Sendable {
    /// The HMAC secret is shorter than 32 bytes (RFC 7518 §3.2).
    case weakSecret
    /// Not three base64url segments, or header/payload not JSON objects.
    case malformed(String)
    /// `alg` missing or anything but exactly "HS256" (RFC 8725 §3.1: allow-list, no "none").
    case unsupportedAlgorithm(String)
    /// A `crit` header: we understand no extensions, so RFC 7515 §4.1.11 says reject.
    case unsupportedCritical
    case invalidSignature
    case expired
    /// `nbf` or `iat` lies in the future (beyond the leeway).
    case notYetValid
    case invalidIssuer
    case invalidAudience
    case missingClaim(String)
    /// A claim has the wrong JSON type, or the payload does not decode into the claims type.
    case invalidClaim(String)
    /// A valid token whose user or session has been revoked (user events).
    case revoked
}

public struct JWTValidation: Sendable {
    /// When set, `iss` must be present and equal to it exactly.
    public var issuer: String?
    /// When set, `aud` (a string or an array of strings) must be present and contain it exactly.
    /// When nil, a token that carries `aud` is rejected (RFC 7519 §4.1.3: a recipient that is
    /// not named in `aud` must reject the token).
    public var audience: String?
    /// Clock-skew allowance applied to `exp`, `nbf` and `iat`.
    public var leeway: Duration
    /// Claims that must be present.
    public var requiredClaims: Set<String>

    public init(
        issuer: String? = nil,
        audience: String? = nil,
        leeway: Duration = .seconds(30),
        requiredClaims: Set<String> = ["exp"]
    ) {
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.requiredClaims = requiredClaims
    }
}

/// The claims of a verified token, in the payload's order. A token has a handful of
/// claims: looking one up compares names in turn, which is cheaper than hashing them into
/// a dictionary on every request.
public struct JWTClaims: Sendable {
    public let members: [(name: String, value: JSONValue)]

    public subscript(name: String) -> JSONValue? {
        for member in members where member.name == name { return member.value }
        return nil
    }

    /// As one dictionary.
    public var dictionary: [String: JSONValue] {
        Dictionary(members.lazy.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
    }
}

/// JWS compact serialization with HMAC-SHA256 only (one algorithm per key, RFC 8725 §3.1).
public struct HS256JWT: Sendable, CustomStringConvertible {
    private static let minimumSecretLength = 32
    /// Base64url of `{"alg":"HS256","typ":"JWT"}`, the only header we issue.
    private static let encodedHeader = Base64URL.encode(#"{"alg":"HS256","typ":"JWT"}"#)
    private static let encodedHeaderBytes = Array(encodedHeader.utf8)
    /// Registered claims that must be strings when present.
    private static let stringClaims = ["iss", "sub", "jti"]

    private let key: HMACSHA256Key
    private let clock: @Sendable () -> Date

    /// Refuses secrets shorter than 32 bytes (RFC 7518 §3.2: key ≥ hash output size).
    public init(secret: [UInt8], clock: @escaping @Sendable () -> Date = { Date() }) throws(JWTError) {
        guard secret.count >= Self.minimumSecretLength else { throw JWTError.weakSecret }
        self.key = HMACSHA256Key(key: secret)
        self.clock = clock
    }

    /// Uses the UTF-8 bytes of `secret`.
    public init(secret: String, clock: @escaping @Sendable () -> Date = { Date() }) throws(JWTError) {
        try self.init(secret: Array(secret.utf8), clock: clock)
    }

    /// Keeps the secret out of logs and string interpolation.
    public var description: String { "HS256JWT(secret: <redacted>)" }

    // MARK: Signing

    /// Signs `claims` (which must encode to a JSON object). Keys are sorted and dates are
    /// written as seconds since 1970, so `exp`/`iat`/`nbf` can be `Date` or integers.
    public func sign(_ claims: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .secondsSince1970
        let payload = try encoder.encode(claims)
        guard payload.first == UInt8(ascii: "{") else {
            throw JWTError.malformed("claims must encode to a JSON object")
        }
        let signingInput = Self.encodedHeader + "." + Base64URL.encode(payload)
        let signature = key.authenticate(Array(signingInput.utf8))
        return signingInput + "." + Base64URL.encode(signature)
    }

    // MARK: Verification

    /// Verifies `token` completely and decodes its payload as `Claims`
    /// (dates as seconds since 1970).
    public func verify<Claims: Decodable>(
        _ token: some StringProtocol,
        as type: Claims.Type,
        validation: JWTValidation
    ) throws(JWTError) -> Claims {
        let payloadJSON = try verifiedPayload(token, validation: validation).json
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        do {
            return try decoder.decode(Claims.self, from: Data(payloadJSON))
        } catch let error as DecodingError {
            throw JWTError.invalidClaim(Self.claimName(in: error))
        } catch {
            throw JWTError.invalidClaim("payload")
        }
    }

    /// Verifies `token` completely and returns its payload as raw JSON.
    public func verifyPayload(
        _ token: some StringProtocol,
        validation: JWTValidation
    ) throws(JWTError) -> [String: JSONValue] {
        try verifiedPayload(token, validation: validation).claims.dictionary
    }

    /// Verifies `token` completely and returns its claims (the fast path of access tokens).
    public func verifyClaims(
        _ token: some StringProtocol,
        validation: JWTValidation
    ) throws(JWTError) -> JWTClaims {
        try verifiedPayload(token, validation: validation).claims
    }

    /// Checks run in this order: structure, header, signature, and only then the payload,
    /// so nothing an attacker wrote in the payload is interpreted before it is authenticated.
    private func verifiedPayload(
        _ token: some StringProtocol,
        validation: JWTValidation
    ) throws(JWTError) -> (claims: JWTClaims, json: [UInt8]) {
        let bytes = Array(token.utf8)
        var dots = 0, firstDot = 0, secondDot = 0
        for index in bytes.indices where bytes[index] == UInt8(ascii: ".") {
            dots += 1
            if dots == 1 { firstDot = index } else if dots == 2 { secondDot = index }
        }
        guard dots == 2 else {
            throw JWTError.malformed("expected 3 dot-separated segments, found \(dots + 1)")
        }
        let headerSegment = bytes[..<firstDot], payloadSegment = bytes[(firstDot + 1)..<secondDot]
        let signatureSegment = bytes[(secondDot + 1)...]
        guard !headerSegment.isEmpty, !payloadSegment.isEmpty else {
            throw JWTError.malformed("empty header or payload segment")
        }

        // Base64url syntax of all three segments is structure, not content: check it first.
        // The header we issue is always the same bytes: those need no decoding or parsing.
        let issuedHeader = headerSegment.elementsEqual(Self.encodedHeaderBytes)
        guard let headerJSON = issuedHeader ? [] : Base64URL.decode(utf8: headerSegment),
              let payloadJSON = Base64URL.decode(utf8: payloadSegment),
              let signature = Base64URL.decode(utf8: signatureSegment)
        else {
            throw JWTError.malformed("segment is not unpadded base64url")
        }
        if !issuedHeader {
            let header = try Self.parseObject(headerJSON, name: "header")
            try Self.checkHeader(header)
        }

        // Signature, over the first two segments exactly as received.
        let expected = bytes[..<payloadSegment.endIndex].withUnsafeBytes { key.authenticate($0) }
        guard Crypto.constantTimeEquals(signature, expected) else {
            throw JWTError.invalidSignature
        }

        // Payload, now authenticated.
        let claims = try Self.parseObject(payloadJSON, name: "payload")
        try checkClaims(claims, validation: validation)
        return (claims, payloadJSON)
    }

    private static func checkHeader(_ header: JWTClaims) throws(JWTError) {
        guard let alg = header["alg"] else {
            throw JWTError.unsupportedAlgorithm("missing alg")
        }
        // Exact, case-sensitive match: "hs256", "none", "HS512" are all refused.
        guard alg == .string("HS256") else {
            throw JWTError.unsupportedAlgorithm(alg.stringValue ?? "non-string alg")
        }
        guard header["crit"] == nil else {
            throw JWTError.unsupportedCritical
        }
        if let typ = header["typ"] {
            guard let value = typ.stringValue, value.lowercased() == "jwt" else {
                throw JWTError.malformed("unsupported typ")
            }
        }
    }

    private func checkClaims(_ claims: JWTClaims, validation: JWTValidation) throws(JWTError) {
        // Types first, so a string "exp" is reported as invalid rather than silently ignored.
        let exp = try Self.numericDate(claims, "exp")
        let nbf = try Self.numericDate(claims, "nbf")
        let iat = try Self.numericDate(claims, "iat")
        for name in Self.stringClaims {
            if let value = claims[name], value.stringValue == nil {
                throw JWTError.invalidClaim(name)
            }
        }
        let audience = claims["aud"]
        try Self.checkAudienceType(audience)

        // Sorted only when one is missing, so the error names the same claim every time.
        if validation.requiredClaims.contains(where: { claims[$0] == nil }) {
            for name in validation.requiredClaims.sorted() where claims[name] == nil {
                throw JWTError.missingClaim(name)
            }
        }

        let now = clock().timeIntervalSince1970
        let leeway = Self.seconds(validation.leeway)
        if let exp, !(now < exp + leeway) {
            throw JWTError.expired
        }
        if let nbf, !(now >= nbf - leeway) {
            throw JWTError.notYetValid
        }
        if let iat, iat > now + leeway {
            throw JWTError.notYetValid
        }

        if let issuer = validation.issuer {
            guard let iss = claims["iss"]?.stringValue else { throw JWTError.missingClaim("iss") }
            guard iss == issuer else { throw JWTError.invalidIssuer }
        }

        if let expected = validation.audience {
            switch audience {
            case nil: throw JWTError.missingClaim("aud")
            case .string(let value)?: guard value == expected else { throw JWTError.invalidAudience }
            case .array(let values)?: guard values.contains(.string(expected)) else { throw JWTError.invalidAudience }
            default: throw JWTError.invalidAudience  // not reached: checked above
            }
        } else if audience != nil {
            throw JWTError.invalidAudience
        }
    }

    // MARK: Helpers

    private static func parseObject(_ json: [UInt8], name: String) throws(JWTError) -> JWTClaims {
        if let members = JSONValue.parseMembers(json) { return JWTClaims(members: members) }
        // Not an object: say whether it is JSON at all.
        guard JSONValue.parse(json) != nil else {
            throw JWTError.malformed("\(name) is not valid JSON")
        }
        throw JWTError.malformed("\(name) is not a JSON object")
    }

    /// A NumericDate (RFC 7519 §2): a JSON number, integral or not, but never a string or bool.
    private static func numericDate(_ claims: JWTClaims, _ name: String) throws(JWTError) -> Double? {
        guard let value = claims[name] else { return nil }
        guard let number = value.numberValue, number.isFinite else {
            throw JWTError.invalidClaim(name)
        }
        return number
    }

    /// `aud` may be a single string or an array of strings (RFC 7519 §4.1.3).
    private static func checkAudienceType(_ audience: JSONValue?) throws(JWTError) {
        switch audience {
        case nil, .string?:
            return
        case .array(let values)?:
            guard values.allSatisfy({ $0.stringValue != nil }) else { throw JWTError.invalidClaim("aud") }
        default:
            throw JWTError.invalidClaim("aud")
        }
    }

    private static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    /// The top-level claim a decoding failure is about, for `JWTError.invalidClaim`.
    private static func claimName(in error: DecodingError) -> String {
        let path: [any CodingKey]
        switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            path = context.codingPath
        case .keyNotFound(let key, let context):
            path = context.codingPath + [key]
        default:
            path = []
        }
        return path.first?.stringValue ?? "payload"
    }
}
