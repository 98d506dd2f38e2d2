import Foundation
import Shared
import Testing

// MARK: - Helpers

/// 32 bytes: the shortest secret HS256JWT accepts.
private let testSecret = Array("0123456789abcdef0123456789abcdef".utf8)
/// 2023-11-14T22:13:20Z, the fixed "now" of most tests.
private let testNow: Double = 1_700_000_000
private let standardHeader = #"{"alg":"HS256","typ":"JWT"}"#

/// An HS256-signed token with arbitrary header and payload text, for tokens `sign` never makes.
private func forge(
    header: String = standardHeader,
    payload: String,
    secret: [UInt8] = testSecret
) -> String {
    let signingInput = Base64URL.encode(header) + "." + Base64URL.encode(payload)
    return signingInput + "." + Base64URL.encode(Crypto.hmacSHA256(key: secret, data: signingInput))
}

/// The error `body` threw, or nil when it succeeded.
private func thrownError<T>(_ body: () throws(JWTError) -> T) -> JWTError? {
    if case .failure(let error) = Result(catching: body) { return error }
    return nil
}

/// Verifies `token` with a clock fixed at `time`; nil when the token is accepted.
private func rejection(
    _ token: String,
    validation: JWTValidation = JWTValidation(),
    at time: Double = testNow,
    secret: [UInt8] = testSecret
) -> JWTError? {
    thrownError { () throws(JWTError) -> [String: JSONValue] in
        let jwt = try HS256JWT(secret: secret, clock: { Date(timeIntervalSince1970: time) })
        return try jwt.verifyPayload(token, validation: validation)
    }
}

/// The case name without associated values, to compare with the fixture's "error" field.
private func caseName(_ error: JWTError?) -> String? {
    guard let error else { return nil }
    switch error {
    case .weakSecret: return "weakSecret"
    case .malformed: return "malformed"
    case .unsupportedAlgorithm: return "unsupportedAlgorithm"
    case .unsupportedCritical: return "unsupportedCritical"
    case .invalidSignature: return "invalidSignature"
    case .expired: return "expired"
    case .notYetValid: return "notYetValid"
    case .invalidIssuer: return "invalidIssuer"
    case .invalidAudience: return "invalidAudience"
    case .missingClaim: return "missingClaim"
    case .invalidClaim: return "invalidClaim"
    case .revoked: return "revoked"
    }
}

private func segments(_ token: String) -> [String] {
    token.split(separator: ".", omittingEmptySubsequences: false).map { String($0) }
}

private struct RFCClaims: Decodable {
    let iss: String
    let exp: Date
    let isRoot: Bool

    enum CodingKeys: String, CodingKey {
        case iss, exp
        case isRoot = "http://example.com/is_root"
    }
}

private struct SessionClaims: Codable, Equatable {
    var sub: String
    var name: String
    var iss: String
    var aud: String
    var iat: Int
    var exp: Int
    var jti: String
}

// MARK: - JWT

@Suite("HS256 JWT")
struct JWTTests {
    // RFC 7515 Appendix A.1.
    static let rfcKey = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"
    static let rfcToken =
        "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
        + ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
        + ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"

    @Test func rfc7515AppendixA1() throws {
        let key = try #require(Base64URL.decode(Self.rfcKey))
        #expect(key.count == 64)

        // 2011-03-22T18:00:00Z, 43 minutes before the token's exp.
        let beforeExpiry = try HS256JWT(secret: key, clock: { Date(timeIntervalSince1970: 1_300_816_800) })
        let payload = try beforeExpiry.verifyPayload(Self.rfcToken, validation: JWTValidation())
        #expect(payload["iss"]?.stringValue == "joe")
        #expect(payload["exp"]?.numberValue == 1_300_819_380)
        #expect(payload["http://example.com/is_root"]?.boolValue == true)

        let claims = try beforeExpiry.verify(Self.rfcToken, as: RFCClaims.self, validation: JWTValidation())
        #expect(claims.iss == "joe")
        #expect(claims.isRoot)
        #expect(claims.exp == Date(timeIntervalSince1970: 1_300_819_380))

        let realClock = try HS256JWT(secret: key)
        #expect(throws: JWTError.expired) {
            try realClock.verifyPayload(Self.rfcToken, validation: JWTValidation())
        }
    }

    @Test func signAndVerifyRoundTrip() throws {
        let jwt = try HS256JWT(secret: testSecret, clock: { Date(timeIntervalSince1970: testNow) })
        let claims = SessionClaims(
            sub: "user-42", name: "Ada / Lovelace", iss: "urn:auth", aud: "urn:api",
            iat: 1_700_000_000, exp: 1_700_000_900, jti: "5d0f6c1e-8d3b-4b0a-9a57-2f1f3c1b7e10"
        )
        let token = try jwt.sign(claims)

        let parts = segments(token)
        #expect(parts.count == 3)
        #expect(parts[0] == "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9")  // {"alg":"HS256","typ":"JWT"}
        let payloadBytes = try #require(Base64URL.decode(parts[1]))
        let payloadJSON = String(decoding: payloadBytes, as: UTF8.self)
        let expectedJSON = #"{"aud":"urn:api","exp":1700000900,"iat":1700000000,"iss":"urn:auth","#
            + #""jti":"5d0f6c1e-8d3b-4b0a-9a57-2f1f3c1b7e10","name":"Ada / Lovelace","sub":"user-42"}"#
        #expect(payloadJSON == expectedJSON)

        let validation = JWTValidation(issuer: "urn:auth", audience: "urn:api")
        let decoded = try jwt.verify(token, as: SessionClaims.self, validation: validation)
        #expect(decoded == claims)

        // The raw payload re-encodes to the same JSON (integers stay integers).
        let raw = try jwt.verifyPayload(token, validation: validation)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let reencoded = try encoder.encode(raw)
        #expect(String(decoding: reencoded, as: UTF8.self) == expectedJSON)
    }

    @Test func signsDatesAsSeconds() throws {
        struct DateClaims: Codable, Equatable { var exp: Date }
        let jwt = try HS256JWT(secret: testSecret, clock: { Date(timeIntervalSince1970: testNow) })
        let claims = DateClaims(exp: Date(timeIntervalSince1970: 1_700_000_600))
        let token = try jwt.sign(claims)
        let payload = try jwt.verifyPayload(token, validation: JWTValidation())
        #expect(payload["exp"]?.numberValue == 1_700_000_600)
        let decoded = try jwt.verify(token, as: DateClaims.self, validation: JWTValidation())
        #expect(decoded == claims)
    }

    @Test func refusesToSignNonObjects() throws {
        let jwt = try HS256JWT(secret: testSecret)
        #expect(throws: JWTError.self) { try jwt.sign("just a string") }
        #expect(throws: JWTError.self) { try jwt.sign([1, 2, 3]) }
    }

    @Test func secretLength() throws {
        #expect(throws: JWTError.weakSecret) { try HS256JWT(secret: [UInt8](repeating: 7, count: 31)) }
        #expect(throws: JWTError.weakSecret) { try HS256JWT(secret: String(repeating: "x", count: 31)) }
        #expect(throws: JWTError.weakSecret) { try HS256JWT(secret: "") }
        _ = try HS256JWT(secret: [UInt8](repeating: 7, count: 32))
        _ = try HS256JWT(secret: String(repeating: "x", count: 32))
        _ = try HS256JWT(secret: String(repeating: "é", count: 16))  // 32 UTF-8 bytes
        let jwt = try HS256JWT(secret: testSecret)
        let description = String(describing: jwt)
        #expect(!description.contains("0123"))
    }

    // MARK: Structure

    @Test func rejectsMalformedStructure() {
        let token = forge(payload: #"{"exp":1700003600}"#)
        #expect(rejection(token) == nil)
        let parts = segments(token)
        let (header, payload, signature) = (parts[0], parts[1], parts[2])

        // The last signature character has two unused low bits; setting one is non-canonical.
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        let lastValue = alphabet.firstIndex(of: signature.last!)!
        let nonCanonical = String(signature.dropLast()) + String(alphabet[lastValue | 1])

        let cases: [(String, String)] = [
            ("empty token", ""),
            ("one segment", header),
            ("two segments", "\(header).\(payload)"),
            ("four segments", "\(header).\(payload).\(signature).\(signature)"),
            ("only dots", ".."),
            ("empty header", ".\(payload).\(signature)"),
            ("empty payload", "\(header)..\(signature)"),
            ("padded header", "\(header)=.\(payload).\(signature)"),
            ("padded payload", "\(header).\(payload)=.\(signature)"),
            ("padded signature", "\(token)="),
            ("plus in signature", "\(header).\(payload).+\(signature.dropFirst())"),
            ("slash in signature", "\(header).\(payload)./\(signature.dropFirst())"),
            ("plus in header", "+\(header.dropFirst()).\(payload).\(signature)"),
            ("non-canonical signature bits", "\(header).\(payload).\(nonCanonical)"),
            ("trailing whitespace", "\(token) "),
            ("leading whitespace", " \(token)"),
        ]
        for (name, candidate) in cases {
            #expect(caseName(rejection(candidate)) == "malformed", "\(name)")
        }
    }

    @Test func rejectsNonObjectHeaderAndPayload() {
        for header in ["[]", #""x""#, "1", "null", "{", #"{"alg":"HS256""#, "not json"] {
            let token = forge(header: header, payload: #"{"exp":1700003600}"#)
            #expect(caseName(rejection(token)) == "malformed", "header \(header)")
        }
        // Correctly signed, so these fail on the payload itself.
        for payload in ["[]", #""x""#, "1", "true", "null", "{", "[{}]"] {
            let token = forge(payload: payload)
            #expect(caseName(rejection(token)) == "malformed", "payload \(payload)")
        }
    }

    /// The payload is read member by member (no dictionary): the same JSON rules as
    /// `JSONValue.parse`, text beyond ASCII included.
    @Test func payloadMembersFollowTheJSONRules() throws {
        let jwt = try HS256JWT(secret: testSecret, clock: { Date(timeIntervalSince1970: testNow) })
        let payload = #"{"exp":1700003600,"name":"Zoë 🎤","esc":"caf\u00e9 \"q\"","n":{"a":[1,{"b":null}]}}"#
        let claims = try jwt.verifyClaims(forge(payload: payload), validation: JWTValidation())
        #expect(claims["name"] == .string("Zoë 🎤"))
        #expect(claims["esc"] == .string("café \"q\""))
        #expect(claims["n"] == .object(["a": .array([.number(1), .object(["b": .null])])]))
        #expect(claims.members.map(\.name) == ["exp", "name", "esc", "n"])
        #expect(claims.dictionary == (try jwt.verifyPayload(forge(payload: payload), validation: JWTValidation())))
        for bad in [
            #"{"exp":1700003600,"exp":1700003600}"#, #"{"a":1,"b":2,"a":3,"exp":1700003600}"#,
            #"{"exp":1700003600,"x":"a\u00"}"#, #"{"exp":1700003600,"x":"\ud800"}"#, #"{"exp":1700003600} x"#,
        ] {
            #expect(caseName(rejection(forge(payload: bad))) == "malformed", "payload \(bad)")
        }
        // Beyond 16 members the repeat check uses a set: still every repeat is refused.
        let many = (0..<40).map { #""k\#($0)":\#($0)"# }.joined(separator: ",")
        #expect(JSONValue.parse(Array("{\(many)}".utf8))?.objectValue?.count == 40)
        #expect(JSONValue.parse(Array("{\(many),\"k3\":0}".utf8)) == nil)
        #expect(JSONValue.parseMembers(Array("{\(many),\"k39\":0}".utf8)) == nil)
        #expect(JSONValue.parseMembers(Array("{\"k1\":0,\(many)}".utf8)) == nil)
        // Bytes that are not UTF-8 inside a string (a String cannot hold them: signed by hand).
        let bytes = Array(#"{"exp":1700003600,"name":"A"#.utf8) + [0xC3, 0x28] + Array(#""}"#.utf8)
        let signingInput = Base64URL.encode(standardHeader) + "." + Base64URL.encode(bytes)
        let token = signingInput + "." + Base64URL.encode(Crypto.hmacSHA256(key: testSecret, data: signingInput))
        #expect(caseName(rejection(token)) == "malformed")
    }

    // MARK: Header

    @Test func acceptsHeaderVariants() {
        let payload = #"{"exp":1700003600}"#
        for header in [
            #"{"alg":"HS256"}"#,
            #"{"alg":"HS256","typ":"jwt"}"#,
            #"{"alg":"HS256","typ":"JWT","kid":"key-1"}"#,
            "{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}",
        ] {
            #expect(rejection(forge(header: header, payload: payload)) == nil, "\(header)")
        }
    }

    @Test func rejectsAlgorithmsOtherThanHS256() {
        let payload = #"{"exp":1700003600}"#
        // alg "none" with an empty signature, the classic downgrade.
        let unsigned = Base64URL.encode(#"{"alg":"none","typ":"JWT"}"#) + "." + Base64URL.encode(payload) + "."
        #expect(rejection(unsigned) == JWTError.unsupportedAlgorithm("none"))

        // Even with a valid HS256 MAC, only the exact string "HS256" is accepted.
        for header in [
            #"{"alg":"none","typ":"JWT"}"#,
            #"{"alg":"HS512","typ":"JWT"}"#,
            #"{"alg":"HS384","typ":"JWT"}"#,
            #"{"alg":"hs256","typ":"JWT"}"#,
            #"{"alg":"HS256 ","typ":"JWT"}"#,
            #"{"alg":"RS256","typ":"JWT"}"#,
            #"{"typ":"JWT"}"#,
            #"{"alg":256,"typ":"JWT"}"#,
            #"{"alg":null,"typ":"JWT"}"#,
        ] {
            let token = forge(header: header, payload: payload)
            #expect(caseName(rejection(token)) == "unsupportedAlgorithm", "\(header)")
        }
    }

    @Test func rejectsCriticalHeaders() {
        let payload = #"{"exp":1700003600}"#
        for header in [#"{"alg":"HS256","crit":["exp"]}"#, #"{"alg":"HS256","crit":[]}"#, #"{"alg":"HS256","crit":"b64"}"#] {
            #expect(rejection(forge(header: header, payload: payload)) == JWTError.unsupportedCritical, "\(header)")
        }
    }

    @Test func rejectsOtherTypes() {
        let payload = #"{"exp":1700003600}"#
        for header in [#"{"alg":"HS256","typ":"at+jwt"}"#, #"{"alg":"HS256","typ":"JOSE"}"#, #"{"alg":"HS256","typ":1}"#] {
            #expect(caseName(rejection(forge(header: header, payload: payload))) == "malformed", "\(header)")
        }
    }

    // MARK: Signature

    @Test func rejectsBadSignatures() throws {
        let token = forge(payload: #"{"exp":1700003600,"sub":"alice"}"#)
        #expect(rejection(token) == nil)
        let parts = segments(token)
        let (header, payload, signature) = (parts[0], parts[1], parts[2])
        let mac = try #require(Base64URL.decode(signature))
        let shortMAC = Array(mac.dropLast())
        let longMAC: [UInt8] = mac + [0]

        let otherPayload = Base64URL.encode(#"{"exp":1700003600,"sub":"admin"}"#)
        let flippedFirst = (signature.first == "A" ? "B" : "A") + String(signature.dropFirst())
        let cases: [(String, String)] = [
            ("tampered payload", "\(header).\(otherPayload).\(signature)"),
            ("tampered signature", "\(header).\(payload).\(flippedFirst)"),
            ("signature 31 bytes", "\(header).\(payload).\(Base64URL.encode(shortMAC))"),
            ("signature 33 bytes", "\(header).\(payload).\(Base64URL.encode(longMAC))"),
            ("empty signature", "\(header).\(payload)."),
            ("other secret", forge(payload: #"{"exp":1700003600,"sub":"alice"}"#, secret: Array(repeating: 1, count: 32))),
            // The MAC covers the segments as received, so re-encoding the header differently breaks it.
            ("re-encoded header", Base64URL.encode(#"{"typ":"JWT","alg":"HS256"}"#) + ".\(payload).\(signature)"),
        ]
        for (name, candidate) in cases {
            #expect(rejection(candidate) == JWTError.invalidSignature, "\(name)")
        }
    }

    // MARK: Time claims

    @Test func expiryLeewayEdges() {
        let exp = 1_700_000_000.0
        let token = forge(payload: #"{"exp":1700000000}"#)
        #expect(rejection(token, at: exp - 3600) == nil)
        #expect(rejection(token, at: exp + 29) == nil)
        #expect(rejection(token, at: exp + 30) == JWTError.expired)
        #expect(rejection(token, at: exp + 3600) == JWTError.expired)

        let strict = JWTValidation(leeway: .zero)
        #expect(rejection(token, validation: strict, at: exp - 1) == nil)
        #expect(rejection(token, validation: strict, at: exp) == JWTError.expired)

        // Fractional seconds on both sides.
        let fractional = forge(payload: #"{"exp":1700000000.5}"#)
        #expect(rejection(fractional, validation: strict, at: exp + 0.25) == nil)
        #expect(rejection(fractional, validation: strict, at: exp + 0.5) == JWTError.expired)
    }

    @Test func notBeforeLeewayEdges() {
        let nbf = 1_700_000_000.0
        let token = forge(payload: #"{"exp":1800000000,"nbf":1700000000}"#)
        #expect(rejection(token, at: nbf + 3600) == nil)
        #expect(rejection(token, at: nbf) == nil)
        #expect(rejection(token, at: nbf - 30) == nil)
        #expect(rejection(token, at: nbf - 31) == JWTError.notYetValid)
        #expect(rejection(token, at: nbf - 3600) == JWTError.notYetValid)
    }

    @Test func issuedAtInTheFuture() {
        #expect(rejection(forge(payload: #"{"exp":1800000000,"iat":1700000030}"#)) == nil)
        #expect(rejection(forge(payload: #"{"exp":1800000000,"iat":1700000031}"#)) == JWTError.notYetValid)
        #expect(rejection(forge(payload: #"{"exp":1800000000,"iat":1800000000}"#)) == JWTError.notYetValid)
        #expect(rejection(forge(payload: #"{"exp":1800000000,"iat":1600000000}"#)) == nil)
    }

    // MARK: Claim types

    @Test func rejectsWrongClaimTypes() {
        let cases: [(String, String)] = [
            (#"{"exp":"1800000000"}"#, "exp"),
            (#"{"exp":true}"#, "exp"),
            (#"{"exp":null}"#, "exp"),
            (#"{"exp":[1800000000]}"#, "exp"),
            (#"{"exp":1800000000,"nbf":false}"#, "nbf"),
            (#"{"exp":1800000000,"nbf":"0"}"#, "nbf"),
            (#"{"exp":1800000000,"iat":null}"#, "iat"),
            (#"{"exp":1800000000,"iat":{}}"#, "iat"),
            (#"{"exp":1800000000,"iss":5}"#, "iss"),
            (#"{"exp":1800000000,"sub":["alice"]}"#, "sub"),
            (#"{"exp":1800000000,"jti":{}}"#, "jti"),
            (#"{"exp":1800000000,"aud":5}"#, "aud"),
            (#"{"exp":1800000000,"aud":["urn:api",1]}"#, "aud"),
        ]
        let validation = JWTValidation(audience: "urn:api")
        for (payload, claim) in cases {
            #expect(rejection(forge(payload: payload), validation: validation) == JWTError.invalidClaim(claim), "\(payload)")
        }
    }

    @Test func typedDecodingFailuresNameTheClaim() throws {
        struct NeedsName: Decodable {
            let name: String
            let exp: Int
        }
        let jwt = try HS256JWT(secret: testSecret, clock: { Date(timeIntervalSince1970: testNow) })
        let missing = forge(payload: #"{"exp":1800000000}"#)
        #expect(throws: JWTError.invalidClaim("name")) {
            try jwt.verify(missing, as: NeedsName.self, validation: JWTValidation())
        }
        let wrongType = forge(payload: #"{"exp":1800000000,"name":5}"#)
        #expect(throws: JWTError.invalidClaim("name")) {
            try jwt.verify(wrongType, as: NeedsName.self, validation: JWTValidation())
        }
    }

    // MARK: Issuer, audience, required claims

    @Test func issuerMustMatchExactly() {
        let validation = JWTValidation(issuer: "urn:expected")
        #expect(rejection(forge(payload: #"{"exp":1800000000,"iss":"urn:expected"}"#), validation: validation) == nil)
        for iss in ["urn:", "urn:expected:more", "URN:EXPECTED", "urn:expecte", " urn:expected", ""] {
            let token = forge(payload: #"{"exp":1800000000,"iss":"\#(iss)"}"#)
            #expect(rejection(token, validation: validation) == JWTError.invalidIssuer, "\(iss)")
        }
        #expect(rejection(forge(payload: #"{"exp":1800000000}"#), validation: validation) == JWTError.missingClaim("iss"))
    }

    @Test func audienceMustBeContained() {
        let validation = JWTValidation(audience: "urn:api")
        let accepted = [#""urn:api""#, #"["urn:api"]"#, #"["urn:other","urn:api"]"#]
        for aud in accepted {
            let token = forge(payload: #"{"exp":1800000000,"aud":\#(aud)}"#)
            #expect(rejection(token, validation: validation) == nil, "\(aud)")
        }
        let refused = [#""urn:other""#, #""urn:ap""#, #""urn:api:v2""#, #"["urn:other"]"#, "[]"]
        for aud in refused {
            let token = forge(payload: #"{"exp":1800000000,"aud":\#(aud)}"#)
            #expect(rejection(token, validation: validation) == JWTError.invalidAudience, "\(aud)")
        }
        #expect(rejection(forge(payload: #"{"exp":1800000000}"#), validation: validation) == JWTError.missingClaim("aud"))
        // A token addressed to someone, checked by a verifier that names no audience (RFC 7519 §4.1.3).
        #expect(rejection(forge(payload: #"{"exp":1800000000,"aud":"urn:api"}"#)) == JWTError.invalidAudience)
    }

    @Test func requiredClaims() {
        #expect(rejection(forge(payload: #"{"sub":"alice"}"#)) == JWTError.missingClaim("exp"))
        let needsSub = JWTValidation(requiredClaims: ["exp", "sub"])
        #expect(rejection(forge(payload: #"{"exp":1800000000}"#), validation: needsSub) == JWTError.missingClaim("sub"))
        #expect(rejection(forge(payload: #"{"exp":1800000000,"sub":"alice"}"#), validation: needsSub) == nil)
        let nothingRequired = JWTValidation(requiredClaims: [])
        #expect(rejection(forge(payload: #"{"sub":"alice"}"#), validation: nothingRequired) == nil)
    }
}

// MARK: - PyJWT fixtures

/// Tokens produced by PyJWT (see Fixtures/make_pyjwt_fixtures.py).
private struct PyJWTFixture: Decodable {
    struct Valid: Decodable {
        let name: String
        let token: String
        let payload: [String: JSONValue]
    }

    struct Invalid: Decodable {
        let name: String
        let token: String
        let error: String
    }

    let secret: String
    let now: Double
    let leewaySeconds: Int
    let issuer: String
    let audience: String
    let valid: [Valid]
    let invalid: [Invalid]

    static func load() throws -> PyJWTFixture {
        let url = try #require(Bundle.module.url(forResource: "pyjwt", withExtension: "json", subdirectory: "Fixtures"))
        return try JSONDecoder().decode(PyJWTFixture.self, from: Data(contentsOf: url))
    }
}

@Suite("PyJWT fixtures")
struct PyJWTFixtureTests {
    @Test func acceptsEveryValidToken() throws {
        let fixture = try PyJWTFixture.load()
        #expect(fixture.valid.count >= 5)
        let now = fixture.now
        let jwt = try HS256JWT(secret: fixture.secret, clock: { Date(timeIntervalSince1970: now) })
        let validation = JWTValidation(
            issuer: fixture.issuer, audience: fixture.audience, leeway: .seconds(fixture.leewaySeconds)
        )
        for entry in fixture.valid {
            let result = Result { () throws(JWTError) -> [String: JSONValue] in
                try jwt.verifyPayload(entry.token, validation: validation)
            }
            switch result {
            case .success(let payload):
                #expect(payload == entry.payload, "\(entry.name)")
            case .failure(let error):
                Issue.record("valid PyJWT token \"\(entry.name)\" rejected: \(error)")
            }
        }
    }

    @Test func rejectsEveryInvalidToken() throws {
        let fixture = try PyJWTFixture.load()
        #expect(fixture.invalid.count >= 10)
        let now = fixture.now
        let jwt = try HS256JWT(secret: fixture.secret, clock: { Date(timeIntervalSince1970: now) })
        let validation = JWTValidation(
            issuer: fixture.issuer, audience: fixture.audience, leeway: .seconds(fixture.leewaySeconds)
        )
        for entry in fixture.invalid {
            let error = thrownError { () throws(JWTError) -> [String: JSONValue] in
                try jwt.verifyPayload(entry.token, validation: validation)
            }
            #expect(caseName(error) == entry.error, "\(entry.name)")
        }
    }
}

// MARK: - Base64URL

@Suite("Base64URL")
struct Base64URLTests {
    @Test func matchesFoundationOnRandomInput() {
        for length in 0...64 {
            for _ in 0..<4 {
                let bytes = Crypto.randomBytes(length)
                let expected = Data(bytes).base64EncodedString()
                    .replacingOccurrences(of: "+", with: "-")
                    .replacingOccurrences(of: "/", with: "_")
                    .replacingOccurrences(of: "=", with: "")
                let encoded = Base64URL.encode(bytes)
                #expect(encoded == expected, "length \(length)")
                #expect(Base64URL.decode(encoded) == bytes, "length \(length)")
            }
        }
    }

    @Test func rfc4648Vectors() {
        let vectors = [
            ("", ""), ("f", "Zg"), ("fo", "Zm8"), ("foo", "Zm9v"),
            ("foob", "Zm9vYg"), ("fooba", "Zm9vYmE"), ("foobar", "Zm9vYmFy"),
        ]
        for (plain, encoded) in vectors {
            #expect(Base64URL.encode(plain) == encoded)
            #expect(Base64URL.decode(encoded) == Array(plain.utf8))
        }
        let fbff: [UInt8] = [0xFB, 0xFF]
        #expect(Base64URL.encode(fbff) == "-_8")  // "+/8=" in standard base64
        #expect(Base64URL.decode("-_8") == fbff)
        #expect(Base64URL.decode("QQ") == Array("A".utf8))
        #expect(Base64URL.decode("QUI") == Array("AB".utf8))
        #expect(Base64URL.decode("a.Zm9v.b".split(separator: ".")[1]) == Array("foo".utf8))
    }

    @Test func rejectsInvalidInput() {
        let invalid = [
            "A", "AAAAA",             // length % 4 == 1
            "AA==", "AA=", "AAA=", "====",  // padding
            "A+", "AB/C", "+/8=",     // standard alphabet
            "QR", "QUJ", "-_9",       // non-zero unused bits (non-canonical)
            "A A", " QQ", "QQ\n", "Q\u{0}", "Zé", "Zm9v.",
        ]
        for string in invalid {
            #expect(Base64URL.decode(string) == nil, "\(string.debugDescription)")
        }
    }
}

// MARK: - Crypto

@Suite("Crypto")
struct CryptoTests {
    @Test func hmacSHA256RFC4231() {
        // Test case 1.
        #expect(
            Hex.encode(Crypto.hmacSHA256(key: [UInt8](repeating: 0x0B, count: 20), data: "Hi There"))
                == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        )
        // Test case 2.
        #expect(
            Hex.encode(Crypto.hmacSHA256(key: Array("Jefe".utf8), data: "what do ya want for nothing?"))
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        )
        // Test case 6: key longer than the block size.
        let longKey = [UInt8](repeating: 0xAA, count: 131)
        #expect(
            Hex.encode(Crypto.hmacSHA256(key: longKey, data: "Test Using Larger Than Block-Size Key - Hash Key First"))
                == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        )
        // Empty key and data (no base address in Swift; OpenSSL still gets valid pointers).
        #expect(
            Hex.encode(Crypto.hmacSHA256(key: [], data: [UInt8]()))
                == "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad"
        )
        // Byte and string overloads agree, including for substrings.
        let key = Array("Jefe".utf8)
        let text = "xx what do ya want for nothing?"
        #expect(Crypto.hmacSHA256(key: key, data: text.dropFirst(3)) == Crypto.hmacSHA256(key: key, data: Array(text.utf8.dropFirst(3))))
    }

    /// The keyed context gives the one-shot's MACs (RFC 4231 cases 1, 2, 6, the empty key),
    /// call after call and from several threads at once.
    @Test func keyedHMACMatchesOneShot() async {
        let cases: [([UInt8], String)] = [
            ([UInt8](repeating: 0x0B, count: 20), "Hi There"),
            (Array("Jefe".utf8), "what do ya want for nothing?"),
            ([UInt8](repeating: 0xAA, count: 131), "Test Using Larger Than Block-Size Key - Hash Key First"),
            ([], ""),
        ]
        for (key, message) in cases {
            let keyed = HMACSHA256Key(key: key)
            #expect(keyed.authenticate(Array(message.utf8)) == Crypto.hmacSHA256(key: key, data: message))
            #expect(keyed.authenticate(Array(message.utf8)) == Crypto.hmacSHA256(key: key, data: message))
        }
        let shared = HMACSHA256Key(key: Array("Jefe".utf8))
        await withTaskGroup(of: Bool.self) { group in
            for index in 0..<64 {
                group.addTask {
                    let message = Array("message \(index)".utf8)
                    return shared.authenticate(message) == Crypto.hmacSHA256(key: Array("Jefe".utf8), data: message)
                }
            }
            for await same in group { #expect(same) }
        }
    }

    @Test func sha256() {
        #expect(Hex.encode(Crypto.sha256("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Hex.encode(Crypto.sha256("")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(Crypto.sha256(Array("abc".utf8)) == Crypto.sha256("abc"))
        #expect(Crypto.sha256([UInt8]()) == Crypto.sha256(""))
    }

    /// `UUID.random()`: version 4 with the RFC 9562 variant, in Foundation's and the API's
    /// text forms, and no two alike.
    @Test func randomUUIDsAreVersion4AndDistinct() {
        let ids = (0..<2000).map { _ in UUID.random() }
        #expect(Set(ids).count == ids.count)
        for id in ids.prefix(200) {
            #expect(id.uuid.6 >> 4 == 4)
            #expect(id.uuid.8 >> 6 == 0b10)
            #expect(UUID(uuidString: id.uuidString) == id)
            #expect(UUID(apiString: id.apiString) == id)
        }
        // Not a constant pattern: every one of the 122 random bits is set in some id.
        var seen: [UInt8] = Array(repeating: 0, count: 16)
        for id in ids { withUnsafeBytes(of: id.uuid) { for (index, byte) in $0.enumerated() { seen[index] |= byte } } }
        #expect(seen[6] == 0x4F && seen[8] == 0xBF && seen.enumerated().allSatisfy { [6, 8].contains($0.offset) || $0.element == 0xFF })
    }

    @Test func incrementalHasherMatchesOneShot() {
        let data = Crypto.randomBytes(10_000)
        let hasher = SHA256Hasher()
        var offset = 0
        var step = 1
        while offset < data.count {
            let end = min(offset + step, data.count)
            hasher.update(Array(data[offset..<end]))
            offset = end
            step = step * 3 + 1
        }
        #expect(hasher.finalize() == Crypto.sha256(data))

        // finalize() resets, so the hasher can be reused; the raw-buffer overload works too.
        data.withUnsafeBytes { hasher.update($0) }
        #expect(hasher.finalize() == Crypto.sha256(data))

        #expect(SHA256Hasher().finalize() == Crypto.sha256(""))
        let abc = SHA256Hasher()
        abc.update(Array("a".utf8))
        abc.update([])
        abc.update(Array("bc".utf8))
        #expect(Hex.encode(abc.finalize()) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func constantTimeEquals() {
        #expect(Crypto.constantTimeEquals([1, 2, 3], [1, 2, 3]))
        #expect(!Crypto.constantTimeEquals([1, 2, 3], [1, 2, 4]))
        #expect(!Crypto.constantTimeEquals([1, 2, 3], [1, 2]))
        #expect(!Crypto.constantTimeEquals([], [0]))
        #expect(Crypto.constantTimeEquals([], []))
    }

    @Test func randomBytes() {
        #expect(Crypto.randomBytes(0).isEmpty)
        let a = Crypto.randomBytes(32)
        let b = Crypto.randomBytes(32)
        #expect(a.count == 32)
        #expect(a != b)
    }

    @Test func hex() {
        #expect(Hex.encode([0x00, 0x0A, 0xFF, 0x7F]) == "000aff7f")
        #expect(Hex.encode([UInt8]()) == "")
    }
}
