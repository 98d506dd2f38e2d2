import Foundation
import COpenSSL
import Synchronization

/// Hashing, MACs, constant-time comparison and random bytes, all from OpenSSL's libcrypto.
public enum Crypto {
    /// Length of a SHA-256 digest (and of an HMAC-SHA256 tag) in bytes.
    public static let sha256Length = 32

    public static func hmacSHA256(key: [UInt8], data: [UInt8]) -> [UInt8] {
        key.withUnsafeBytes { key in
            data.withUnsafeBytes { data in hmacSHA256(key: key, data: data) }
        }
    }

    /// HMAC-SHA256 over the UTF-8 bytes of `data`.
    public static func hmacSHA256(key: [UInt8], data: some StringProtocol) -> [UInt8] {
        var string = String(data)
        return key.withUnsafeBytes { key in
            string.withUTF8 { utf8 in hmacSHA256(key: key, data: UnsafeRawBufferPointer(utf8)) }
        }
    }

    /// The pointer-based core, also used to MAC slices of a token without copying them.
    static func hmacSHA256(key: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer) -> [UInt8] {
        precondition(key.count <= Int(Int32.max), "HMAC key too long")
        return withNonNullBase(key) { keyBase in
            withNonNullBase(data) { dataBase in
                [UInt8](unsafeUninitializedCapacity: sha256Length) { out, initialized in
                    var length: UInt32 = 0
                    let result = HMAC(
                        EVP_sha256(),
                        keyBase, Int32(key.count),
                        dataBase.assumingMemoryBound(to: UInt8.self), data.count,
                        out.baseAddress, &length
                    )
                    // Only fails on allocation failure or a broken libcrypto: nothing to recover.
                    guard result != nil, length == UInt32(sha256Length) else {
                        fatalError("OpenSSL HMAC-SHA256 failed")
                    }
                    initialized = sha256Length
                }
            }
        }
    }

    public static func sha256(_ data: [UInt8]) -> [UInt8] {
        data.withUnsafeBytes { sha256(raw: $0) }
    }

    /// SHA-256 of the UTF-8 bytes of `data`.
    public static func sha256(_ data: some StringProtocol) -> [UInt8] {
        var string = String(data)
        return string.withUTF8 { sha256(raw: UnsafeRawBufferPointer($0)) }
    }

    static func sha256(raw data: UnsafeRawBufferPointer) -> [UInt8] {
        withNonNullBase(data) { base in
            [UInt8](unsafeUninitializedCapacity: sha256Length) { out, initialized in
                var length: UInt32 = 0
                guard EVP_Digest(base, data.count, out.baseAddress, &length, EVP_sha256(), nil) == 1,
                      length == UInt32(sha256Length)
                else {
                    fatalError("OpenSSL SHA-256 failed")
                }
                initialized = sha256Length
            }
        }
    }

    /// Compares without an early exit, so timing does not reveal how many leading bytes match.
    /// Lengths are public (a MAC's length is fixed), so they are compared first.
    public static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        guard !a.isEmpty else { return true }
        return a.withUnsafeBytes { a in
            b.withUnsafeBytes { b in
                CRYPTO_memcmp(a.baseAddress, b.baseAddress, a.count) == 0
            }
        }
    }

    /// Bytes from OpenSSL's CSPRNG. A failing CSPRNG is not something callers can handle safely.
    public static func randomBytes(_ count: Int) -> [UInt8] {
        precondition(count >= 0 && count <= Int(Int32.max), "invalid random byte count")
        guard count > 0 else { return [] }
        return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            guard RAND_bytes(buffer.baseAddress, Int32(count)) == 1 else {
                fatalError("OpenSSL RAND_bytes failed")
            }
            initialized = count
        }
    }

    /// OpenSSL expects valid pointers even for zero-length input; empty Swift buffers may have none.
    static func withNonNullBase<R>(
        _ buffer: UnsafeRawBufferPointer,
        _ body: (UnsafeRawPointer) -> R
    ) -> R {
        if let base = buffer.baseAddress { return body(base) }
        let zero: UInt8 = 0
        return withUnsafeBytes(of: zero) { body($0.baseAddress!) }
    }
}

/// HMAC-SHA256 under one key, keyed once: libcrypto's HMAC contexts with the key's pads
/// already absorbed, reset (not re-keyed) for each message and kept for reuse. The one-shot
/// `Crypto.hmacSHA256` fetches the algorithm, allocates a context and hashes the key each
/// time, which costs more than MAC-ing a token; every request's token check comes here.
public final class HMACSHA256Key: Sendable {
    /// Keyed contexts not in use; each is used by one caller at a time.
    private let idle: Mutex<[ContextBox]>
    private let template: ContextBox
    private static let maxIdle = 32

    /// An EVP_MAC_CTX, freed with its box.
    private final class ContextBox: @unchecked Sendable {
        let context: OpaquePointer
        init(_ context: OpaquePointer) { self.context = context }
        deinit { EVP_MAC_CTX_free(context) }
    }

    public init(key: [UInt8]) {
        guard let mac = EVP_MAC_fetch(nil, "HMAC", nil) else { fatalError("OpenSSL has no HMAC") }
        defer { EVP_MAC_free(mac) }
        guard let context = EVP_MAC_CTX_new(mac) else { fatalError("OpenSSL EVP_MAC_CTX_new failed") }
        var digest = Array("SHA256".utf8CString)
        let ok = digest.withUnsafeMutableBufferPointer { name in
            var parameters = [
                OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, name.baseAddress, 0),
                OSSL_PARAM_construct_end(),
            ]
            return key.withUnsafeBytes { key in
                Crypto.withNonNullBase(key) { base in
                    EVP_MAC_init(context, base.assumingMemoryBound(to: UInt8.self), key.count, &parameters)
                }
            }
        }
        guard ok == 1 else { fatalError("OpenSSL EVP_MAC_init failed") }
        self.template = ContextBox(context)
        self.idle = Mutex([])
    }

    public func authenticate(_ data: UnsafeRawBufferPointer) -> [UInt8] {
        let box = idle.withLock { $0.popLast() } ?? {
            guard let context = EVP_MAC_CTX_dup(template.context) else { fatalError("OpenSSL EVP_MAC_CTX_dup failed") }
            return ContextBox(context)
        }()
        // A NULL key re-initialises the context with the key it holds.
        guard EVP_MAC_init(box.context, nil, 0, nil) == 1 else { fatalError("OpenSSL EVP_MAC_init failed") }
        let mac = Crypto.withNonNullBase(data) { base in
            [UInt8](unsafeUninitializedCapacity: Crypto.sha256Length) { out, initialized in
                var length = 0
                guard EVP_MAC_update(box.context, base.assumingMemoryBound(to: UInt8.self), data.count) == 1,
                      EVP_MAC_final(box.context, out.baseAddress, &length, Crypto.sha256Length) == 1,
                      length == Crypto.sha256Length
                else {
                    fatalError("OpenSSL HMAC-SHA256 failed")
                }
                initialized = Crypto.sha256Length
            }
        }
        idle.withLock { contexts in
            if contexts.count < Self.maxIdle { contexts.append(box) }
        }
        return mac
    }

    public func authenticate(_ data: [UInt8]) -> [UInt8] {
        data.withUnsafeBytes { authenticate($0) }
    }
}

/// Incremental SHA-256, e.g. for hashing an upload as it streams in.
///
/// Not `Sendable`: it wraps a mutable OpenSSL context; use it from one task at a time.
public final class SHA256Hasher {
    private let context: OpaquePointer

    public init() {
        guard let context = EVP_MD_CTX_new() else { fatalError("OpenSSL EVP_MD_CTX_new failed") }
        self.context = context
        Self.start(context)
    }

    deinit {
        EVP_MD_CTX_free(context)
    }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        guard EVP_DigestUpdate(context, base, bytes.count) == 1 else {
            fatalError("OpenSSL EVP_DigestUpdate failed")
        }
    }

    public func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// Returns the digest of everything passed to `update` and resets the hasher for reuse.
    public func finalize() -> [UInt8] {
        let digest = [UInt8](unsafeUninitializedCapacity: Crypto.sha256Length) { out, initialized in
            var length: UInt32 = 0
            guard EVP_DigestFinal_ex(context, out.baseAddress, &length) == 1,
                  length == UInt32(Crypto.sha256Length)
            else {
                fatalError("OpenSSL EVP_DigestFinal_ex failed")
            }
            initialized = Crypto.sha256Length
        }
        Self.start(context)
        return digest
    }

    private static func start(_ context: OpaquePointer) {
        guard EVP_DigestInit_ex(context, EVP_sha256(), nil) == 1 else {
            fatalError("OpenSSL EVP_DigestInit_ex failed")
        }
    }
}

public enum Hex {
    private static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Lower-case hexadecimal.
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Base64url (RFC 4648 §5) without padding, as used by JWS/JWT.
public enum Base64URL {
    private static let alphabet: [UInt8] =
        Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// Maps an ASCII byte to its 6-bit value; 0xFF for bytes outside the alphabet.
    private static let decodeTable: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (value, byte) in alphabet.enumerated() {
            table[Int(byte)] = UInt8(value)
        }
        return table
    }()

    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        let input = Array(bytes)
        var out: [UInt8] = []
        out.reserveCapacity((input.count * 4 + 2) / 3)
        alphabet.withUnsafeBufferPointer { table in
            input.withUnsafeBufferPointer { input in
                let count = input.count
                var i = 0
                while i + 3 <= count {
                    let v: UInt32 = UInt32(input[i]) << 16 | UInt32(input[i + 1]) << 8 | UInt32(input[i + 2])
                    out.append(table[Int(v >> 18 & 0x3F)])
                    out.append(table[Int(v >> 12 & 0x3F)])
                    out.append(table[Int(v >> 6 & 0x3F)])
                    out.append(table[Int(v & 0x3F)])
                    i += 3
                }
                switch count - i {
                case 1:
                    let v: UInt32 = UInt32(input[i]) << 16
                    out.append(table[Int(v >> 18 & 0x3F)])
                    out.append(table[Int(v >> 12 & 0x3F)])
                case 2:
                    let v: UInt32 = UInt32(input[i]) << 16 | UInt32(input[i + 1]) << 8
                    out.append(table[Int(v >> 18 & 0x3F)])
                    out.append(table[Int(v >> 12 & 0x3F)])
                    out.append(table[Int(v >> 6 & 0x3F)])
                default:
                    break
                }
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Encodes the UTF-8 bytes of `string`.
    public static func encode(_ string: String) -> String {
        encode(string.utf8)
    }

    /// Strict decoding: only `A-Z a-z 0-9 - _`, no padding, no whitespace, and the unused
    /// low bits of the last character must be zero, so every byte string has exactly one
    /// accepted encoding. Returns nil for anything else.
    public static func decode(_ string: some StringProtocol) -> [UInt8]? {
        decode(utf8: string.utf8)
    }

    /// Decodes ASCII bytes (e.g. a slice of a token) with the same rules as `decode(_:)`.
    static func decode(utf8 input: some Collection<UInt8>) -> [UInt8]? {
        if let result = input.withContiguousStorageIfAvailable({ decode(buffer: $0) }) {
            return result
        }
        return Array(input).withUnsafeBufferPointer { decode(buffer: $0) }
    }

    private static func decode(buffer input: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        let count = input.count
        // One leftover character carries only 6 bits: not a whole byte.
        guard count % 4 != 1 else { return nil }
        var valid = true
        // Written in place (no append and its capacity check per byte): tokens are decoded on
        // every authenticated request.
        let out = [UInt8](unsafeUninitializedCapacity: count / 4 * 3 + 2) { out, written in
            decodeTable.withUnsafeBufferPointer { table in
                var i = 0, o = 0
                while i + 4 <= count {
                    let a = table[Int(input[i])], b = table[Int(input[i + 1])]
                    let c = table[Int(input[i + 2])], d = table[Int(input[i + 3])]
                    // Valid values are < 64; 0xFF (invalid) has the top bits set.
                    guard (a | b | c | d) & 0xC0 == 0 else {
                        valid = false
                        break
                    }
                    let v: UInt32 = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6 | UInt32(d)
                    out[o] = UInt8(truncatingIfNeeded: v >> 16)
                    out[o + 1] = UInt8(truncatingIfNeeded: v >> 8)
                    out[o + 2] = UInt8(truncatingIfNeeded: v)
                    i += 4
                    o += 3
                }
                if valid {
                    switch count - i {
                    case 2:
                        let a = table[Int(input[i])], b = table[Int(input[i + 1])]
                        // 12 bits carry one byte: the low 4 bits of `b` must be zero (canonical form).
                        if (a | b) & 0xC0 == 0, b & 0x0F == 0 {
                            out[o] = a << 2 | b >> 4
                            o += 1
                        } else {
                            valid = false
                        }
                    case 3:
                        let a = table[Int(input[i])], b = table[Int(input[i + 1])], c = table[Int(input[i + 2])]
                        // 18 bits carry two bytes: the low 2 bits of `c` must be zero (canonical form).
                        if (a | b | c) & 0xC0 == 0, c & 0x03 == 0 {
                            out[o] = a << 2 | b >> 4
                            out[o + 1] = (b & 0x0F) << 4 | c >> 2
                            o += 2
                        } else {
                            valid = false
                        }
                    default:
                        break
                    }
                }
                written = valid ? o : 0
            }
        }
        return valid ? out : nil
    }
}

extension UUID {
    /// A random (version 4) UUID from OpenSSL's CSPRNG. Foundation's `UUID()` on Linux opens,
    /// reads and closes `/dev/urandom` for every one: three system calls, ~4 µs, on paths
    /// that make one per request or per token.
    public static func random() -> UUID {
        var bytes: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &bytes) { buffer in
            guard RAND_bytes(buffer.baseAddress!.assumingMemoryBound(to: UInt8.self), 16) == 1 else {
                fatalError("OpenSSL RAND_bytes failed")
            }
        }
        bytes.6 = bytes.6 & 0x0F | 0x40  // version 4
        bytes.8 = bytes.8 & 0x3F | 0x80  // RFC 9562 variant
        return UUID(uuid: bytes)
    }
}
