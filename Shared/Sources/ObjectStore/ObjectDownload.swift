import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Shared

/// Serves one stored object over HTTP, streaming: `ETag` with `If-None-Match` (`304`),
/// one `Range` (`206`, or `416` with `Content-Range: bytes */size`; `If-Range` honoured;
/// multiple or malformed ranges are ignored and the whole object is sent), and `HEAD`
/// (headers only, the store is not touched).
///
/// Behind the gateway (the store has a `gatewayTarget`), a plain `GET` is handed over: the
/// answer is the headers and an `X-Accel-Redirect` to the object, and nginx sends the bytes
/// itself (from the file, or from the S3 store by a presigned URL), applying the `Range`.
/// "Plain" means nginx and the store read the request exactly as this type does: no
/// `If-Match`, `If-Unmodified-Since` or `If-Modified-Since` (nginx would judge those by its
/// own validators), an `If-Range` only when it is this object's tag, and a `Range` only in
/// its simple satisfiable form (`bytes=a-b`, `bytes=a-`, `bytes=-n`). The service decides
/// everything else itself (`304`, `416`, `HEAD`, empty objects) and streams the rare
/// request that is not plain, so the answers are the same either way.
public struct ObjectDownload: Sendable {
    public var key: ObjectKey
    public var size: Int64
    public var contentType: String
    /// Unquoted opaque validator, e.g. the object's SHA-256 in hex; sent quoted.
    public var entityTag: String
    /// `Content-Disposition`, e.g. from `ContentDisposition.attachment(fileName:)`.
    public var contentDisposition: String?
    public var cacheControl: String

    public init(
        key: ObjectKey, size: Int64, contentType: String, entityTag: String, contentDisposition: String? = nil,
        cacheControl: String = "private, no-cache"
    ) {
        self.key = key
        self.size = size
        self.contentType = contentType
        self.entityTag = entityTag
        self.contentDisposition = contentDisposition
        self.cacheControl = cacheControl
    }

    var quotedEntityTag: String { "\"\(entityTag)\"" }

    /// The answer to `request` (GET or HEAD). Throws `ObjectStorageError.notFound` when the
    /// store has no such object, `APIError` `416` for a range outside the object.
    public func response(to request: Request, storage: any ObjectStorage) async throws -> Response {
        var headers: HTTPFields = [
            .eTag: quotedEntityTag,
            .acceptRanges: "bytes",
            .cacheControl: cacheControl,
            .contentType: contentType,
            HTTPField.Name("X-Content-Type-Options")!: "nosniff",
        ]
        if let contentDisposition { headers[.contentDisposition] = contentDisposition }

        if let ifNoneMatch = request.headers[values: .ifNoneMatch].joined(separator: ",").nilIfEmpty,
            Self.matches(ifNoneMatch, entityTag: quotedEntityTag)
        {
            headers[.contentType] = nil
            return Response(status: .notModified, headers: headers)
        }

        var range: ClosedRange<Int64>?
        if let rangeHeader = request.headers[.range], rangeApplies(request) {
            switch ByteRangeRequest(rangeHeader, size: size) {
            case .ignore:
                break
            case .satisfiable(let satisfiable):
                range = satisfiable
            case .unsatisfiable:
                throw APIError(
                    .rangeNotSatisfiable, code: "range_not_satisfiable",
                    detail: "The range is outside the content (\(size) bytes).", headers: [.contentRange: "bytes */\(size)"])
            }
        }
        let status: HTTPResponse.Status = range == nil ? .ok : .partialContent
        let length = range.map { $0.upperBound - $0.lowerBound + 1 } ?? size
        if let range { headers[.contentRange] = "bytes \(range.lowerBound)-\(range.upperBound)/\(size)" }
        headers[.contentLength] = String(length)

        if request.method == .head || length == 0 {
            return Response(status: status, headers: headers, body: ResponseBody())
        }
        if request.method == .get, isPlain(request), let target = storage.gatewayTarget(for: key) {
            return gatewayResponse(to: request, target: target, headers: headers)
        }
        let content = try await storage.get(key, range: range)
        return Response(status: status, headers: headers, body: ResponseBody(contentLength: Int(length)) { writer in
            try await content.forEachChunk { chunk in try await writer.write(chunk) }
            try await writer.finish(nil)
        })
    }

    /// The hand-over to the gateway: what the client gets besides the bytes, and where they
    /// are. nginx keeps `Content-Type`, `Cache-Control` and `Content-Disposition` from this
    /// answer, takes the `ETag` into its location (`$upstream_http_etag`), and sets
    /// `Content-Length`, `Content-Range` and the status from what it sends. It adds
    /// `Accept-Ranges` itself to a `200` (two would be sent), so it is here only for a `206`.
    func gatewayResponse(to request: Request, target: String, headers: HTTPFields) -> Response {
        var headers = headers
        headers[.contentLength] = nil
        headers[.contentRange] = nil
        if request.headers[.range] == nil { headers[.acceptRanges] = nil }
        headers[Self.accelRedirect] = target
        return Response(status: .ok, headers: headers, body: ResponseBody())
    }

    static let accelRedirect = HTTPField.Name("X-Accel-Redirect")!

    /// True when nginx and the store would answer `request` as `response(to:storage:)` does
    /// (see the type's comment).
    func isPlain(_ request: Request) -> Bool {
        let headers = request.headers
        if headers[.ifMatch] != nil || headers[.ifUnmodifiedSince] != nil || headers[.ifModifiedSince] != nil { return false }
        if let ifRange = headers[.ifRange], ifRange != quotedEntityTag { return false }
        guard let range = headers[.range] else { return true }
        return headers[values: .range].count == 1 && Self.isSimpleRange(range)
    }

    /// `bytes=a-b`, `bytes=a-` or `bytes=-n` exactly: lower-case unit, no spaces, at most 15
    /// digits per number (no overflow anywhere), `a <= b`. Whether it fits the object is
    /// decided before (an unsatisfiable one is this service's `416`).
    static func isSimpleRange(_ header: String) -> Bool {
        let utf8 = header.utf8
        guard utf8.starts(with: "bytes=".utf8) else { return false }
        let spec = utf8.dropFirst(6)
        guard let dash = spec.firstIndex(of: UInt8(ascii: "-")) else { return false }
        let first = spec[..<dash], last = spec[spec.index(after: dash)...]
        func isNumber(_ digits: Substring.UTF8View.SubSequence) -> Bool {
            (1...15).contains(digits.count) && digits.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
        }
        switch (first.isEmpty, last.isEmpty) {
        case (true, false): return isNumber(last)
        case (false, true): return isNumber(first)
        case (false, false):
            guard isNumber(first), isNumber(last) else { return false }
            return Int64(String(decoding: first, as: UTF8.self))! <= Int64(String(decoding: last, as: UTF8.self))!
        case (true, true): return false
        }
    }

    /// `If-Range` with another validator (or a date, which this server does not issue) means
    /// "send everything".
    func rangeApplies(_ request: Request) -> Bool {
        guard let ifRange = request.headers[.ifRange]?.trimmingCharacters(in: .whitespaces) else { return true }
        return ifRange == quotedEntityTag
    }

    /// `*` or any listed tag, compared weakly (a `W/` prefix is ignored).
    static func matches(_ header: String, entityTag: String) -> Bool {
        for candidate in header.split(separator: ",") {
            var tag = candidate.trimmingCharacters(in: .whitespaces)
            if tag == "*" { return true }
            if tag.hasPrefix("W/") { tag.removeFirst(2) }
            if tag == entityTag { return true }
        }
        return false
    }
}

/// A `Range` header resolved against a size (RFC 9110 §14.1.2).
public enum ByteRangeRequest: Equatable, Sendable {
    /// Absent in effect: another unit, malformed, or several ranges. Send the whole content.
    case ignore
    case satisfiable(ClosedRange<Int64>)
    case unsatisfiable

    public init(_ header: String, size: Int64) {
        let value = header.trimmingCharacters(in: .whitespaces)
        guard value.lowercased().hasPrefix("bytes=") else {
            self = .ignore
            return
        }
        let spec = value.dropFirst("bytes=".count).trimmingCharacters(in: .whitespaces)
        guard !spec.contains(","), let dash = spec.firstIndex(of: "-") else {
            self = .ignore
            return
        }
        let first = spec[..<dash].trimmingCharacters(in: .whitespaces)
        let last = spec[spec.index(after: dash)...].trimmingCharacters(in: .whitespaces)
        func number(_ text: String) -> Int64? {
            guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
            // Beyond Int64: treat as "very large" rather than malformed.
            return Int64(text) ?? Int64.max
        }
        if first.isEmpty {
            // Suffix: the last N bytes.
            guard let suffix = number(last) else {
                self = .ignore
                return
            }
            guard suffix > 0, size > 0 else {
                self = .unsatisfiable
                return
            }
            self = .satisfiable(max(0, size - suffix)...(size - 1))
            return
        }
        guard let start = number(first) else {
            self = .ignore
            return
        }
        var end = size - 1
        if !last.isEmpty {
            guard let requestedEnd = number(last), requestedEnd >= start else {
                self = .ignore
                return
            }
            end = min(requestedEnd, size - 1)
        }
        guard start < size else {
            self = .unsatisfiable
            return
        }
        self = .satisfiable(start...end)
    }
}

/// `Content-Disposition` values (RFC 6266) with a safe ASCII fallback and the exact
/// UTF-8 name in `filename*` (RFC 8187).
public enum ContentDisposition {
    public static func attachment(fileName: String) -> String {
        "attachment; " + parameters(fileName: fileName)
    }

    public static func inline(fileName: String) -> String {
        "inline; " + parameters(fileName: fileName)
    }

    static func parameters(fileName: String) -> String {
        let fallback = String(fileName.unicodeScalars.map { scalar -> Character in
            let printable = scalar.value >= 0x20 && scalar.value < 0x7F && scalar != "\"" && scalar != "\\" && scalar != "%"
            return printable ? Character(scalar) : "_"
        })
        return "filename=\"\(fallback)\"; filename*=UTF-8''\(AWSSignatureV4.uriEncode(fileName, encodeSlash: true))"
    }
}

extension String {
    fileprivate var nilIfEmpty: String? { isEmpty ? nil : self }
}
