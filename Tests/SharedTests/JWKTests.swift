import Foundation
import Shared
import Testing

/// JWKPublicKey (RS256, ES256 on libcrypto) against tokens and keys made by an independent
/// implementation, PyJWT with `cryptography` (Fixtures/make_pyjwt_jwk_fixtures.py).
@Suite("JWK signatures (PyJWT vectors)")
struct JWKTests {
    struct Case: Decodable {
        var name: String
        var token: String
        var kid: String
    }

    struct Fixture: Decodable {
        var keys: [JSONValue]
        var valid: [Case]
        var invalid: [Case]
    }

    static func load() throws -> (Fixture, [String: JWKPublicKey]) {
        let url = try #require(Bundle.module.url(forResource: "pyjwt_jwk", withExtension: "json", subdirectory: "Fixtures"))
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
        var keys: [String: JWKPublicKey] = [:]
        for case .object(let jwk) in fixture.keys {
            let key = try JWKPublicKey(jwk: jwk)
            keys[try #require(key.keyID)] = key
        }
        return (fixture, keys)
    }

    static func verifies(_ token: String, with key: JWKPublicKey) -> Bool {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let signature = Base64URL.decode(parts[2]) else { return false }
        return key.verify(signature: signature, message: Array("\(parts[0]).\(parts[1])".utf8))
    }

    @Test func pyjwtTokensVerifyAndTamperedOnesDoNot() throws {
        let (fixture, keys) = try Self.load()
        #expect(keys["rsa-1"]?.algorithm == .rs256 && keys["ec-1"]?.algorithm == .es256)
        for valid in fixture.valid {
            #expect(Self.verifies(valid.token, with: try #require(keys[valid.kid])), "\(valid.name)")
        }
        for invalid in fixture.invalid {
            #expect(!Self.verifies(invalid.token, with: try #require(keys[invalid.kid])), "\(invalid.name)")
        }
        // A signature for one key type never passes with the other.
        let rs = try #require(fixture.valid.first { $0.kid == "rsa-1" })
        #expect(!Self.verifies(rs.token, with: try #require(keys["ec-1"])))
    }

    @Test func unusableKeysAreRefused() throws {
        let (fixture, _) = try Self.load()
        guard case .object(let rsa) = fixture.keys[0], case .object(let ec) = fixture.keys[1] else { Issue.record("fixture keys"); return }
        var encryption = rsa
        encryption["use"] = .string("enc")
        #expect(throws: JWKPublicKey.KeyError.self) { try JWKPublicKey(jwk: encryption) }
        var mismatched = rsa
        mismatched["alg"] = .string("HS256")
        #expect(throws: JWKPublicKey.KeyError.self) { try JWKPublicKey(jwk: mismatched) }
        var offCurve = ec
        offCurve["y"] = .string(Base64URL.encode([UInt8](repeating: 7, count: 32)))
        #expect(throws: JWKPublicKey.KeyError.self) { try JWKPublicKey(jwk: offCurve) }
        var short = rsa
        short["n"] = .string(Base64URL.encode([UInt8](repeating: 0xFF, count: 128)))
        #expect(throws: JWKPublicKey.KeyError.self) { try JWKPublicKey(jwk: short) }
        #expect(throws: JWKPublicKey.KeyError.self) { try JWKPublicKey(jwk: ["kty": .string("oct"), "k": .string("c2VjcmV0")]) }
    }
}
