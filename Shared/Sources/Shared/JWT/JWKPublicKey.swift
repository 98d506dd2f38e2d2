import COpenSSL
import Foundation

/// A public signing key from a JWKS (RFC 7517), as libcrypto's `EVP_PKEY`: RSA from `n`/`e`
/// (RS256) or P-256 from `x`/`y` (ES256). The key decides the algorithm: a token's `alg`
/// must be the one its key is for, so an HS256 token "signed" with the public key's bytes,
/// or `none`, never verifies.
public final class JWKPublicKey: @unchecked Sendable {
    public enum Algorithm: String, Sendable {
        case rs256 = "RS256"
        case es256 = "ES256"
    }

    public let keyID: String?
    public let algorithm: Algorithm
    // Immutable after init; libcrypto's verify calls on one key are safe from many threads.
    private let key: OpaquePointer

    public enum KeyError: Error, Equatable {
        case unsupported(String)
        case malformed(String)
    }

    /// One JWK object. Keys whose `use` is not `sig`, whose `alg` (when given) does not fit
    /// the key type, or with RSA moduli under 2048 bits are refused.
    public init(jwk: [String: JSONValue]) throws {
        self.keyID = jwk["kid"]?.stringValue
        if let use = jwk["use"]?.stringValue, use != "sig" { throw KeyError.unsupported("use \(use)") }
        switch jwk["kty"]?.stringValue {
        case "RSA":
            guard let n = jwk["n"]?.stringValue.flatMap(Base64URL.decode), let e = jwk["e"]?.stringValue.flatMap(Base64URL.decode),
                  !n.isEmpty, !e.isEmpty
            else { throw KeyError.malformed("RSA key without n or e") }
            let modulus = n.drop { $0 == 0 }
            guard modulus.count * 8 >= 2048, modulus.count <= 1024 else { throw KeyError.unsupported("RSA modulus of \(modulus.count * 8) bits") }
            if let alg = jwk["alg"]?.stringValue, alg != "RS256" { throw KeyError.unsupported("alg \(alg) for an RSA key") }
            self.algorithm = .rs256
            self.key = try Self.makeRSA(n: Array(modulus), e: e)
        case "EC":
            guard jwk["crv"]?.stringValue == "P-256" else { throw KeyError.unsupported("curve \(jwk["crv"]?.stringValue ?? "none")") }
            guard let x = jwk["x"]?.stringValue.flatMap(Base64URL.decode), let y = jwk["y"]?.stringValue.flatMap(Base64URL.decode),
                  x.count == 32, y.count == 32
            else { throw KeyError.malformed("P-256 key without 32-byte x and y") }
            if let alg = jwk["alg"]?.stringValue, alg != "ES256" { throw KeyError.unsupported("alg \(alg) for a P-256 key") }
            self.algorithm = .es256
            self.key = try Self.makeP256(point: [0x04] + x + y)
        case let type:
            throw KeyError.unsupported("kty \(type ?? "none")")
        }
    }

    deinit { EVP_PKEY_free(key) }

    /// Whether `signature` is this key's signature of `message` (the JWS signing input). For
    /// ES256 the signature is JOSE's raw `R || S` (64 bytes), converted to DER for libcrypto.
    public func verify(signature raw: [UInt8], message: [UInt8]) -> Bool {
        let signature: [UInt8]
        switch algorithm {
        case .rs256:
            signature = raw
        case .es256:
            // A DER signature (what libcrypto itself makes) is not a JOSE one: length first.
            guard let der = Self.derSignature(raw: raw) else { return false }
            signature = der
        }
        guard let context = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestVerifyInit(context, nil, EVP_sha256(), nil, key) == 1 else { return false }
        return EVP_DigestVerify(context, signature, signature.count, message, message.count) == 1
    }

    private static func makeRSA(n: [UInt8], e: [UInt8]) throws -> OpaquePointer {
        guard let builder = OSSL_PARAM_BLD_new() else { throw KeyError.malformed("out of memory") }
        defer { OSSL_PARAM_BLD_free(builder) }
        let modulus = BN_bin2bn(n, Int32(n.count), nil)
        let exponent = BN_bin2bn(e, Int32(e.count), nil)
        defer { BN_free(modulus); BN_free(exponent) }
        guard modulus != nil, exponent != nil,
              OSSL_PARAM_BLD_push_BN(builder, COPENSSL_PARAM_RSA_N, modulus) == 1,
              OSSL_PARAM_BLD_push_BN(builder, COPENSSL_PARAM_RSA_E, exponent) == 1
        else { throw KeyError.malformed("RSA parameters") }
        return try fromData(builder: builder, type: "RSA")
    }

    private static func makeP256(point: [UInt8]) throws -> OpaquePointer {
        guard let builder = OSSL_PARAM_BLD_new() else { throw KeyError.malformed("out of memory") }
        defer { OSSL_PARAM_BLD_free(builder) }
        // The builder refers to the point's bytes until the key is made: both in this scope.
        return try point.withUnsafeBytes { bytes in
            guard OSSL_PARAM_BLD_push_utf8_string(builder, COPENSSL_PARAM_GROUP_NAME, COPENSSL_GROUP_P256, 0) == 1,
                  OSSL_PARAM_BLD_push_octet_string(builder, COPENSSL_PARAM_PUB_KEY, bytes.baseAddress, bytes.count) == 1
            else { throw KeyError.malformed("EC parameters") }
            return try fromData(builder: builder, type: "EC")
        }
    }

    /// Builds the key; libcrypto checks an EC point lies on the curve.
    private static func fromData(builder: OpaquePointer, type: String) throws -> OpaquePointer {
        guard let params = OSSL_PARAM_BLD_to_param(builder) else { throw KeyError.malformed("parameters") }
        defer { OSSL_PARAM_free(params) }
        guard let context = EVP_PKEY_CTX_new_from_name(nil, type, nil) else { throw KeyError.malformed("no \(type) support") }
        defer { EVP_PKEY_CTX_free(context) }
        var key: OpaquePointer?
        guard EVP_PKEY_fromdata_init(context) == 1,
              EVP_PKEY_fromdata(context, &key, COPENSSL_EVP_PKEY_PUBLIC_KEY, params) == 1, let key
        else { throw KeyError.malformed("libcrypto refused the \(type) key") }
        if type == "EC" {
            // An off-curve point must not become a key.
            guard let check = EVP_PKEY_CTX_new_from_pkey(nil, key, nil) else { EVP_PKEY_free(key); throw KeyError.malformed("EC check") }
            defer { EVP_PKEY_CTX_free(check) }
            guard EVP_PKEY_public_check(check) == 1 else { EVP_PKEY_free(key); throw KeyError.malformed("the EC point is not on P-256") }
        }
        return key
    }

    /// JOSE `R || S` (32 + 32 bytes) as an ASN.1 DER `ECDSA-Sig-Value`.
    static func derSignature(raw: [UInt8]) -> [UInt8]? {
        guard raw.count == 64, let signature = ECDSA_SIG_new() else { return nil }
        defer { ECDSA_SIG_free(signature) }
        guard let r = BN_bin2bn(Array(raw[0..<32]), 32, nil) else { return nil }
        guard let s = BN_bin2bn(Array(raw[32..<64]), 32, nil) else { BN_free(r); return nil }
        guard ECDSA_SIG_set0(signature, r, s) == 1 else { BN_free(r); BN_free(s); return nil }
        let length = i2d_ECDSA_SIG(signature, nil)
        guard length > 0 else { return nil }
        var der = [UInt8](repeating: 0, count: Int(length))
        let written = der.withUnsafeMutableBufferPointer { buffer -> Int32 in
            var pointer = buffer.baseAddress
            return i2d_ECDSA_SIG(signature, &pointer)
        }
        return written == length ? der : nil
    }
}
