import Foundation
import Shared

/// AWS Signature Version 4 (header and presigned-URL forms), on `Crypto`'s HMAC-SHA256 and SHA-256.
///
/// Paths are given decoded and are neither normalized nor double-encoded (the S3 rules):
/// each byte outside `A-Z a-z 0-9 - . _ ~` (and `/` between segments) is percent-encoded
/// exactly once, and the same encoded path must be the one sent on the wire (`encodedPath`).
public struct AWSSignatureV4: Sendable {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var region: String
    public var service: String

    public static let algorithm = "AWS4-HMAC-SHA256"
    /// `x-amz-content-sha256` for a body that is streamed without being hashed first.
    public static let unsignedPayload = "UNSIGNED-PAYLOAD"
    /// SHA-256 of no bytes.
    public static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    public init(accessKeyID: String, secretAccessKey: String, region: String, service: String) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.region = region
        self.service = service
    }

    /// What gets signed: everything but the body, which is represented by `payloadHash`.
    public struct Request: Sendable {
        public var method: String
        /// Decoded path, e.g. `/bucket/recordings/1234`.
        public var path: String
        /// Decoded query parameters (`?uploads` is `("uploads", "")`).
        public var query: [(name: String, value: String)]
        /// The headers to sign; must include `host` (and `x-amz-date` for header signing).
        public var headers: [(name: String, value: String)]
        /// Lower-case hex SHA-256 of the body, `UNSIGNED-PAYLOAD` or `emptyPayloadHash`.
        public var payloadHash: String

        public init(
            method: String, path: String, query: [(name: String, value: String)] = [],
            headers: [(name: String, value: String)], payloadHash: String
        ) {
            self.method = method
            self.path = path
            self.query = query
            self.headers = headers
            self.payloadHash = payloadHash
        }

        /// The path as it goes on the wire and into the canonical request.
        public var encodedPath: String { AWSSignatureV4.uriEncode(path.isEmpty ? "/" : path, encodeSlash: false) }

        /// The query string as it goes on the wire (sorted, each part encoded once).
        public var encodedQuery: String { AWSSignatureV4.canonicalQuery(query) }
    }

    // MARK: signing

    /// `yyyyMMdd'T'HHmmss'Z'` in UTC, the `X-Amz-Date` format.
    public static func timestamp(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        func pad(_ value: Int?, _ width: Int) -> String {
            let string = String(value ?? 0)
            return String(repeating: "0", count: max(0, width - string.count)) + string
        }
        return pad(c.year, 4) + pad(c.month, 2) + pad(c.day, 2) + "T" + pad(c.hour, 2) + pad(c.minute, 2) + pad(c.second, 2) + "Z"
    }

    func scope(dateStamp: String) -> String {
        "\(dateStamp)/\(region)/\(service)/aws4_request"
    }

    public func canonicalRequest(_ request: Request) -> String {
        let headers = Self.canonicalHeaders(request.headers)
        return [
            request.method.uppercased(),
            request.encodedPath,
            request.encodedQuery,
            headers.map { "\($0.name):\($0.value)\n" }.joined(),
            headers.map(\.name).joined(separator: ";"),
            request.payloadHash,
        ].joined(separator: "\n")
    }

    public func stringToSign(canonicalRequest: String, timestamp: String) -> String {
        [
            Self.algorithm,
            timestamp,
            scope(dateStamp: String(timestamp.prefix(8))),
            Hex.encode(Crypto.sha256(canonicalRequest)),
        ].joined(separator: "\n")
    }

    func signingKey(dateStamp: String) -> [UInt8] {
        let date = Crypto.hmacSHA256(key: Array("AWS4\(secretAccessKey)".utf8), data: dateStamp)
        let region = Crypto.hmacSHA256(key: date, data: self.region)
        let service = Crypto.hmacSHA256(key: region, data: self.service)
        return Crypto.hmacSHA256(key: service, data: "aws4_request")
    }

    /// The hex signature of `request` at `timestamp` (the request's `x-amz-date`).
    public func signature(_ request: Request, timestamp: String) -> String {
        let toSign = stringToSign(canonicalRequest: canonicalRequest(request), timestamp: timestamp)
        return Hex.encode(Crypto.hmacSHA256(key: signingKey(dateStamp: String(timestamp.prefix(8))), data: toSign))
    }

    /// The `Authorization` header value for `request`, whose headers already carry `x-amz-date: timestamp`.
    public func authorization(_ request: Request, timestamp: String) -> String {
        let signedHeaders = Self.canonicalHeaders(request.headers).map(\.name).joined(separator: ";")
        return "\(Self.algorithm) Credential=\(accessKeyID)/\(scope(dateStamp: String(timestamp.prefix(8)))), "
            + "SignedHeaders=\(signedHeaders), Signature=\(signature(request, timestamp: timestamp))"
    }

    /// The query of a presigned URL for `request` (its headers are the signed ones, usually
    /// just `host`; its payload hash is usually `UNSIGNED-PAYLOAD`), signature included.
    public func presignedQuery(_ request: Request, timestamp: String, expires: Int) -> [(name: String, value: String)] {
        var request = request
        let signedHeaders = Self.canonicalHeaders(request.headers).map(\.name).joined(separator: ";")
        request.query += [
            ("X-Amz-Algorithm", Self.algorithm),
            ("X-Amz-Credential", "\(accessKeyID)/\(scope(dateStamp: String(timestamp.prefix(8))))"),
            ("X-Amz-Date", timestamp),
            ("X-Amz-Expires", String(expires)),
            ("X-Amz-SignedHeaders", signedHeaders),
        ]
        return request.query + [("X-Amz-Signature", signature(request, timestamp: timestamp))]
    }

    // MARK: canonical forms

    /// Lower-case names, values trimmed with inner runs of spaces collapsed, repeated
    /// headers joined with commas, sorted by name.
    static func canonicalHeaders(_ headers: [(name: String, value: String)]) -> [(name: String, value: String)] {
        var merged: [String: [String]] = [:]
        for (name, value) in headers {
            let collapsed = value.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
            merged[name.lowercased(), default: []].append(collapsed.trimmingCharacters(in: .whitespaces))
        }
        return merged.map { (name: $0.key, value: $0.value.joined(separator: ",")) }
            .sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
    }

    static func canonicalQuery(_ query: [(name: String, value: String)]) -> String {
        query.map { (uriEncode($0.name, encodeSlash: true), uriEncode($0.value, encodeSlash: true)) }
            .sorted { $0.0 == $1.0 ? $0.1.utf8.lexicographicallyPrecedes($1.1.utf8) : $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }
            .map { "\($0.0)=\($0.1)" }
            .joined(separator: "&")
    }

    private static let hexDigits = Array("0123456789ABCDEF".utf8)

    /// RFC 3986 percent-encoding of everything but the unreserved characters (and `/` when
    /// `encodeSlash` is false), upper-case hex, over the UTF-8 bytes.
    public static func uriEncode(_ string: String, encodeSlash: Bool) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(string.utf8.count)
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(byte)
            case UInt8(ascii: "/") where !encodeSlash:
                out.append(byte)
            default:
                out.append(UInt8(ascii: "%"))
                out.append(hexDigits[Int(byte >> 4)])
                out.append(hexDigits[Int(byte & 0x0F)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
