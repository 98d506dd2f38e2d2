import COpenSSL
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import ServiceLifecycle
import Shared
import Synchronization

/// A signing key made for the test run with libcrypto: RSA 2048 (RS256) or P-256 (ES256).
public final class TestSigningKey: @unchecked Sendable {
    public enum Kind: Sendable { case rsa, p256 }
    public let kind: Kind
    public let keyID: String
    private let key: OpaquePointer

    public init(_ kind: Kind, keyID: String = UUID().uuidString) {
        self.kind = kind
        self.keyID = keyID
        let context = EVP_PKEY_CTX_new_from_name(nil, kind == .rsa ? "RSA" : "EC", nil)!
        defer { EVP_PKEY_CTX_free(context) }
        precondition(EVP_PKEY_keygen_init(context) == 1)
        switch kind {
        case .rsa: precondition(EVP_PKEY_CTX_set_rsa_keygen_bits(context, 2048) == 1)
        case .p256: precondition(EVP_PKEY_CTX_set_group_name(context, COPENSSL_GROUP_P256) == 1)
        }
        var key: OpaquePointer?
        precondition(EVP_PKEY_generate(context, &key) == 1)
        self.key = key!
    }

    deinit { EVP_PKEY_free(key) }

    /// The public key as a JWK (`use` and `alg` as given; nil leaves them out).
    public func jwk(use: String? = "sig", alg: String? = nil) -> [String: JSONValue] {
        var jwk: [String: JSONValue] = ["kid": .string(keyID)]
        if let use { jwk["use"] = .string(use) }
        if let alg { jwk["alg"] = .string(alg) }
        switch kind {
        case .rsa:
            jwk["kty"] = .string("RSA")
            jwk["n"] = .string(Base64URL.encode(bignum("n")))
            jwk["e"] = .string(Base64URL.encode(bignum("e")))
        case .p256:
            let point = publicPoint
            jwk["kty"] = .string("EC")
            jwk["crv"] = .string("P-256")
            jwk["x"] = .string(Base64URL.encode(point[1..<33]))
            jwk["y"] = .string(Base64URL.encode(point[33..<65]))
        }
        return jwk
    }

    /// The bytes an HS256 "signature with the public key" attack would use as the secret.
    public var publicKeyBytes: [UInt8] { kind == .rsa ? bignum("n") : publicPoint }

    private func bignum(_ name: String) -> [UInt8] {
        var value: OpaquePointer?
        precondition(EVP_PKEY_get_bn_param(key, name == "n" ? COPENSSL_PARAM_RSA_N : COPENSSL_PARAM_RSA_E, &value) == 1)
        defer { BN_free(value) }
        var bytes = [UInt8](repeating: 0, count: Int((BN_num_bits(value) + 7) / 8))
        _ = BN_bn2bin(value, &bytes)
        return bytes
    }

    private var publicPoint: [UInt8] {
        var point = [UInt8](repeating: 0, count: 65)
        var length = 0
        precondition(EVP_PKEY_get_octet_string_param(key, COPENSSL_PARAM_PUB_KEY, &point, 65, &length) == 1 && length == 65)
        return point
    }

    /// libcrypto's signature of `message`: PKCS#1 v1.5 for RSA, DER ECDSA for P-256.
    public func signNative(_ message: [UInt8]) -> [UInt8] {
        let context = EVP_MD_CTX_new()!
        defer { EVP_MD_CTX_free(context) }
        precondition(EVP_DigestSignInit(context, nil, EVP_sha256(), nil, key) == 1)
        var length = 0
        precondition(EVP_DigestSign(context, nil, &length, message, message.count) == 1)
        var signature = [UInt8](repeating: 0, count: length)
        precondition(EVP_DigestSign(context, &signature, &length, message, message.count) == 1)
        return Array(signature[0..<length])
    }

    /// The JOSE signature: RSA as is, ECDSA as raw `R || S`.
    public func sign(_ message: [UInt8]) -> [UInt8] {
        let native = signNative(message)
        guard kind == .p256 else { return native }
        var pointer: UnsafePointer<UInt8>? = native.withUnsafeBufferPointer { $0.baseAddress }
        return native.withUnsafeBufferPointer { buffer in
            pointer = buffer.baseAddress
            let signature = d2i_ECDSA_SIG(nil, &pointer, buffer.count)!
            defer { ECDSA_SIG_free(signature) }
            var r: OpaquePointer?
            var s: OpaquePointer?
            ECDSA_SIG_get0(signature, &r, &s)
            var raw = [UInt8](repeating: 0, count: 64)
            raw.withUnsafeMutableBufferPointer { out in
                _ = BN_bn2binpad(r, out.baseAddress, 32)
                _ = BN_bn2binpad(s, out.baseAddress! + 32, 32)
            }
            return raw
        }
    }
}

/// A real OpenID provider for the tests: discovery and JWKS over HTTP, ID tokens signed with
/// its keys. It can rotate keys, go down after serving, or never answer.
public final class TestOIDCProvider: Sendable {
    public enum Mode: Sendable { case serving, failing, hanging }

    struct State {
        var keys: [TestSigningKey]
        var extraJWKs: [[String: JSONValue]] = []
        var mode: Mode = .serving
        var jwksFetches = 0
        var maxAge = 3600
    }

    private let state: Mutex<State>
    public let clientID = "test-app-client"

    public init(keys: [TestSigningKey]) {
        self.state = Mutex(State(keys: keys))
    }

    public var keys: [TestSigningKey] { state.withLock { $0.keys } }
    public var jwksFetches: Int { state.withLock { $0.jwksFetches } }
    public func setMode(_ mode: Mode) { state.withLock { $0.mode = mode } }
    public func publish(_ keys: [TestSigningKey], extra: [[String: JSONValue]] = []) {
        state.withLock { $0.keys = keys; $0.extraJWKs = extra }
    }

    /// Runs the provider on a real port (`port`, or any free one) for `body`, which gets its
    /// issuer URL.
    public func run<T: Sendable>(port: Int = 0, _ body: @escaping @Sendable (_ issuer: String) async throws -> T) async throws -> T {
        let router = Router()
        let issuerBox = Mutex<String>("")
        router.get(".well-known/openid-configuration") { _, _ in
            let issuer = issuerBox.withLock { $0 }
            return try await self.answer([
                "issuer": .string(issuer), "jwks_uri": .string("\(issuer)/jwks"), "authorization_endpoint": .string("\(issuer)/authorize"),
            ])
        }
        router.get("jwks") { _, _ in
            let (keys, extra, maxAge) = self.state.withLock { state -> ([TestSigningKey], [[String: JSONValue]], Int) in
                state.jwksFetches += 1
                return (state.keys, state.extraJWKs, state.maxAge)
            }
            var response = try await self.answer(["keys": .array(keys.map { .object($0.jwk()) } + extra.map { .object($0) })])
            response.headers[.cacheControl] = "public, max-age=\(maxAge)"
            return response
        }
        // Not HummingbirdTesting's live mode: it always binds a random port, and the
        // end-to-end stack's auth expects the provider on the port it was configured with.
        let (bound, boundContinuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)),
            onServerRunning: { channel in boundContinuation.yield(channel.localAddress?.port ?? 0) })
        let services = ServiceGroup(configuration: .init(services: [app], logger: Logger(label: "test-oidc-provider")))
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await services.run() }
            var ports = bound.makeAsyncIterator()
            guard let port = await ports.next() else { throw CancellationError() }
            let issuer = "http://127.0.0.1:\(port)"
            issuerBox.withLock { $0 = issuer }
            do {
                let value = try await body(issuer)
                await services.triggerGracefulShutdown()
                try await group.waitForAll()
                return value
            } catch {
                await services.triggerGracefulShutdown()
                throw error
            }
        }
    }

    private func answer(_ object: [String: JSONValue]) async throws -> Response {
        switch state.withLock({ $0.mode }) {
        case .failing:
            return Response(status: .serviceUnavailable)
        case .hanging:
            try await Task.sleep(for: .seconds(8))
            return Response(status: .serviceUnavailable)
        case .serving:
            let body = try JSONEncoder().encode(JSONValue.object(object))
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
    }

    /// The claims of a good ID token for `subject`, for `issuer`; tests change what they test.
    public func claims(issuer: String, subject: String, email: String?, emailVerified: Bool = true, name: String? = "Social User") -> [String: JSONValue] {
        let now = Date().timeIntervalSince1970.rounded(.down)
        var claims: [String: JSONValue] = [
            "iss": .string(issuer), "aud": .string(clientID), "sub": .string(subject),
            "iat": .number(now), "exp": .number(now + 600), "email_verified": .bool(emailVerified),
        ]
        if let email { claims["email"] = .string(email) }
        if let name { claims["name"] = .string(name) }
        return claims
    }

    /// A compact JWS of `claims`, signed by `key` (RS256 or ES256 by its kind) unless
    /// `header` or `signature` say otherwise.
    public static func token(
        _ claims: [String: JSONValue], key: TestSigningKey, header: [String: JSONValue]? = nil,
        signature: ((_ signingInput: [UInt8]) -> [UInt8])? = nil
    ) throws -> String {
        let header = header ?? ["alg": .string(key.kind == .rsa ? "RS256" : "ES256"), "kid": .string(key.keyID), "typ": .string("JWT")]
        let encoder = JSONEncoder()
        let input = Base64URL.encode(try encoder.encode(JSONValue.object(header))) + "." + Base64URL.encode(try encoder.encode(JSONValue.object(claims)))
        let signed = (signature ?? key.sign)(Array(input.utf8))
        return input + "." + Base64URL.encode(signed)
    }
}
