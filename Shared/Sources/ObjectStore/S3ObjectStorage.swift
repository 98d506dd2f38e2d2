import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Synchronization
import Shared

/// Objects in one bucket of an S3-compatible store (SeaweedFS here; MinIO or AWS S3
/// elsewhere), over path-style URLs (`<endpoint>/<bucket>/<key>`) signed with
/// Signature Version 4. Owns its `HTTPClient`: call `shutdown()` at the end
/// (`ObjectStorageService` does).
///
/// Streaming: a put with a known length is one `PUT` whose body streams through
/// (`UNSIGNED-PAYLOAD`); with an unknown length it becomes a multipart upload of
/// `partSize` parts, so memory holds at most one part per upload. Downloads stream the
/// response body. A store that cannot be reached (refused or timed-out connections,
/// `5xx`) is `APIError.unavailable`.
public final class S3ObjectStorage: ObjectStorage {
    public struct Configuration: Sendable {
        /// `http(s)://host[:port]`, no path.
        public var endpoint: String
        public var region: String
        public var bucket: String
        public var accessKeyID: String
        public var secretAccessKey: String
        /// Part size of multipart uploads (S3's minimum is 5 MiB).
        public var partSize: Int = 5 * 1024 * 1024
        /// Connecting to the store.
        public var connectTimeout: TimeAmount = .seconds(3)
        /// Silence on a connection before it is given up.
        public var readTimeout: TimeAmount = .seconds(30)
        /// Requests without a large body (head, delete, list, bucket checks).
        public var requestTimeout: TimeAmount = .seconds(15)
        /// Requests that move object bytes, including streaming them to a slow client.
        public var transferTimeout: TimeAmount = .hours(1)
        public var maxConnections: Int = 32
        /// The gateway's internal location that proxies presigned requests to this store
        /// (`STORAGE_GATEWAY_PATH`, e.g. `/_store/s3/`), to hand downloads to the gateway;
        /// nil: the service streams them.
        public var gatewayPath: String?
        /// How long a presigned URL handed to the gateway stays valid. The gateway uses it at
        /// once and it never leaves the gateway; the margin is for clock skew with the store.
        public var gatewayURLLifetime: Int = 300

        public init(endpoint: String, region: String, bucket: String, accessKeyID: String, secretAccessKey: String) {
            self.endpoint = endpoint
            self.region = region
            self.bucket = bucket
            self.accessKeyID = accessKeyID
            self.secretAccessKey = secretAccessKey
        }
    }

    public let configuration: Configuration
    let signer: AWSSignatureV4
    let httpClient: HTTPClient
    let logger: Logger
    /// `scheme://host[:port]` and the `Host` header value.
    let origin: String
    let host: String

    public init(configuration: Configuration, logger: Logger) throws(ObjectStorageError) {
        guard let url = URL(string: configuration.endpoint), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
            let hostName = url.host, !hostName.isEmpty, url.path.isEmpty || url.path == "/", url.query == nil
        else {
            throw .misconfigured("S3_ENDPOINT must look like http(s)://host[:port], without a path.")
        }
        guard Self.isValidBucketName(configuration.bucket) else {
            throw .misconfigured("S3_BUCKET must be 3 to 63 characters of a-z, 0-9, '-' and '.'.")
        }
        guard !configuration.accessKeyID.isEmpty, !configuration.secretAccessKey.isEmpty else {
            throw .misconfigured("S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY are required for the s3 store.")
        }
        guard configuration.partSize >= 5 * 1024 * 1024 else { throw .misconfigured("The S3 part size must be at least 5 MiB.") }
        self.configuration = configuration
        self.logger = logger
        self.signer = AWSSignatureV4(
            accessKeyID: configuration.accessKeyID, secretAccessKey: configuration.secretAccessKey,
            region: configuration.region, service: "s3")
        let hostWithPort = url.port.map { "\(hostName):\($0)" } ?? hostName
        self.host = hostWithPort
        self.origin = "\(scheme)://\(hostWithPort)"

        var clientConfiguration = HTTPClient.Configuration()
        clientConfiguration.redirectConfiguration = .disallow
        clientConfiguration.timeout = .init(
            connect: configuration.connectTimeout, read: configuration.readTimeout, write: configuration.readTimeout)
        clientConfiguration.decompression = .disabled
        clientConfiguration.connectionPool = .init(
            idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: configuration.maxConnections)
        // A store that is down must fail the request now, not after retrying until the deadline.
        clientConfiguration.connectionPool.retryConnectionEstablishment = false
        clientConfiguration.httpVersion = .http1Only
        self.httpClient = HTTPClient(
            eventLoopGroupProvider: .shared(HTTPClient.defaultEventLoopGroup), configuration: clientConfiguration,
            backgroundActivityLogger: logger)
    }

    /// Releases the HTTP client's connections. The store is unusable afterwards.
    public func shutdown() async throws {
        try await httpClient.shutdown()
    }

    static func isValidBucketName(_ name: String) -> Bool {
        (3...63).contains(name.utf8.count)
            && name.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x2E }
            && !name.hasPrefix("-") && !name.hasPrefix(".") && !name.hasSuffix("-") && !name.hasSuffix(".")
    }

    // MARK: ObjectStorage

    /// A presigned GET of the object (`<gateway path><bucket>/<key>?X-Amz-...`), which the
    /// gateway's location sends to the store as it is, with the client's `Range`.
    public func gatewayTarget(for key: ObjectKey) -> String? {
        guard let gatewayPath = configuration.gatewayPath else { return nil }
        let request = AWSSignatureV4.Request(
            method: "GET", path: "/\(configuration.bucket)/\(key.rawValue)", query: [], headers: [("host", host)],
            payloadHash: AWSSignatureV4.unsignedPayload)
        let query = signer.presignedQuery(
            request, timestamp: AWSSignatureV4.timestamp(Date()), expires: configuration.gatewayURLLifetime)
        return gatewayPath + request.encodedPath.dropFirst() + "?" + AWSSignatureV4.canonicalQuery(query)
    }

    public func prepare() async throws {
        let head = try await send("HEAD", key: nil, timeout: configuration.requestTimeout)
        switch head.status.code {
        case 200:
            return
        case 404:
            let create = try await send("PUT", key: nil, timeout: configuration.requestTimeout)
            // 409: another instance created it in between (BucketAlreadyOwnedByYou).
            guard create.status == .ok || create.status == .conflict else {
                throw try await rejected("create bucket", create)
            }
            logger.info("created bucket", metadata: ["bucket": "\(configuration.bucket)"])
        default:
            throw try await rejected("head bucket", head)
        }
    }

    @discardableResult
    public func put<Body: AsyncSequence & Sendable>(
        _ key: ObjectKey, body: Body, length: Int64?
    ) async throws -> ObjectInfo where Body.Element == ByteBuffer {
        if let length {
            let tracked = ErrorTrackingSequence(base: body)
            let response = try await send(
                "PUT", key: key, headers: [("content-type", "application/octet-stream")],
                body: .stream(tracked, length: .known(length)), bodyErrors: tracked.errors,
                timeout: configuration.transferTimeout)
            try await expectSuccess("put", response)
            return ObjectInfo(key: key, size: length, lastModified: Date())
        }
        // Unknown length: one part's worth decides between a plain PUT and a multipart upload.
        var iterator = body.makeAsyncIterator()
        var first = ByteBuffer()
        var finished = false
        while first.readableBytes < configuration.partSize {
            guard var chunk = try await iterator.next() else {
                finished = true
                break
            }
            first.writeBuffer(&chunk)
        }
        if finished {
            let size = Int64(first.readableBytes)
            let response = try await send(
                "PUT", key: key, headers: [("content-type", "application/octet-stream")],
                body: .bytes(first), timeout: configuration.transferTimeout)
            try await expectSuccess("put", response)
            return ObjectInfo(key: key, size: size, lastModified: Date())
        }
        return try await multipartUpload(key, first: first, rest: &iterator)
    }

    func multipartUpload<Iterator: AsyncIteratorProtocol>(
        _ key: ObjectKey, first: ByteBuffer, rest iterator: inout Iterator
    ) async throws -> ObjectInfo where Iterator.Element == ByteBuffer {
        let initiate = try await send("POST", key: key, query: [("uploads", "")], timeout: configuration.requestTimeout)
        try await expectSuccess("initiate multipart upload", initiate)
        let answer = try await Self.text(of: initiate)
        guard let uploadID = S3XML.value("UploadId", in: answer[...]), !uploadID.isEmpty else {
            throw ObjectStorageError.rejected(operation: "initiate multipart upload", status: 200, code: "NoUploadId")
        }
        do {
            var parts: [(number: Int, etag: String)] = []
            var size: Int64 = 0
            var part = first
            while true {
                let number = parts.count + 1
                size += Int64(part.readableBytes)
                let response = try await send(
                    "PUT", key: key, query: [("partNumber", String(number)), ("uploadId", uploadID)],
                    body: .bytes(part), timeout: configuration.transferTimeout)
                try await expectSuccess("upload part", response)
                guard let etag = response.headers.first(name: "etag") else {
                    throw ObjectStorageError.rejected(operation: "upload part", status: 200, code: "NoETag")
                }
                parts.append((number, etag))
                part = ByteBuffer()
                while part.readableBytes < configuration.partSize, var chunk = try await iterator.next() {
                    part.writeBuffer(&chunk)
                }
                if part.readableBytes == 0 { break }
            }
            let xml = "<CompleteMultipartUpload>"
                + parts.map { "<Part><PartNumber>\($0.number)</PartNumber><ETag>\(S3XML.escape($0.etag))</ETag></Part>" }.joined()
                + "</CompleteMultipartUpload>"
            let complete = try await send(
                "POST", key: key, query: [("uploadId", uploadID)], headers: [("content-type", "application/xml")],
                body: .bytes(ByteBuffer(string: xml)), payloadHash: Hex.encode(Crypto.sha256(xml)),
                timeout: configuration.requestTimeout)
            try await expectSuccess("complete multipart upload", complete)
            // S3 may report a failed completion inside a 200.
            let result = try await Self.text(of: complete)
            if result.contains("<Error>") {
                throw ObjectStorageError.rejected(
                    operation: "complete multipart upload", status: 200, code: S3XML.value("Code", in: result[...]) ?? "Error")
            }
            return ObjectInfo(key: key, size: size, lastModified: Date())
        } catch {
            await abortMultipartUpload(key: key, uploadID: uploadID)
            throw error
        }
    }

    func abortMultipartUpload(key: ObjectKey, uploadID: String) async {
        do {
            let response = try await send("DELETE", key: key, query: [("uploadId", uploadID)], timeout: configuration.requestTimeout)
            if response.status.code >= 300 && response.status != .notFound {
                logger.warning("could not abort multipart upload", metadata: ["key": "\(key)", "status": "\(response.status.code)"])
            }
        } catch {
            // The sweeper's removeAbandonedUploads retries later.
            logger.warning("could not abort multipart upload", metadata: ["key": "\(key)", "error": "\(error)"])
        }
    }

    public func get(_ key: ObjectKey, range: ClosedRange<Int64>?) async throws -> ObjectContent {
        var headers: [(name: String, value: String)] = []
        if let range {
            guard range.lowerBound >= 0 else { throw ObjectStorageError.rangeNotSatisfiable(size: 0) }
            headers.append(("range", "bytes=\(range.lowerBound)-\(range.upperBound)"))
        }
        let response = try await send("GET", key: key, headers: headers, timeout: configuration.transferTimeout)
        switch response.status.code {
        case 200, 206:
            break
        case 404:
            throw ObjectStorageError.notFound(key)
        case 416:
            let size = response.headers.first(name: "content-range").flatMap { Int64($0.split(separator: "/").last ?? "") } ?? 0
            throw ObjectStorageError.rangeNotSatisfiable(size: size)
        default:
            try await expectSuccess("get", response)
        }
        let length = response.headers.first(name: "content-length").flatMap { Int64($0) } ?? 0
        var size = length
        if response.status == .partialContent {
            // Content-Range: bytes 0-9/443
            guard let total = response.headers.first(name: "content-range").flatMap({ Int64($0.split(separator: "/").last ?? "") }) else {
                throw ObjectStorageError.rejected(operation: "get", status: 206, code: "NoContentRange")
            }
            size = total
        } else if range != nil {
            // The store ignored the range (it covers the whole object): serve it as asked.
            guard let range, range.lowerBound == 0, range.upperBound == size - 1 else {
                throw ObjectStorageError.rejected(operation: "get", status: 200, code: "RangeIgnored")
            }
        }
        let info = ObjectInfo(
            key: key, size: size,
            lastModified: response.headers.first(name: "last-modified").flatMap(HTTPDate.parse) ?? Date())
        let body = response.body
        let logger = self.logger
        return ObjectContent(info: info, range: range) { consume in
            do {
                for try await chunk in body {
                    try await consume(chunk)
                }
            } catch let error as HTTPClientError {
                logger.error("object download failed", metadata: ["key": "\(key)", "error": "\(error)"])
                throw APIError.unavailable("The object store is unavailable. Try again shortly.")
            }
        }
    }

    public func head(_ key: ObjectKey) async throws -> ObjectInfo? {
        let response = try await send("HEAD", key: key, timeout: configuration.requestTimeout)
        if response.status == .notFound { return nil }
        try await expectSuccess("head", response)
        return ObjectInfo(
            key: key, size: response.headers.first(name: "content-length").flatMap { Int64($0) } ?? 0,
            lastModified: response.headers.first(name: "last-modified").flatMap(HTTPDate.parse) ?? Date())
    }

    public func delete(_ key: ObjectKey) async throws {
        let response = try await send("DELETE", key: key, timeout: configuration.requestTimeout)
        if response.status == .notFound { return }
        try await expectSuccess("delete", response)
    }

    public func list(prefix: String, startAfter: ObjectKey?, limit: Int) async throws -> [ObjectInfo] {
        guard ObjectKey.isValidPrefix(prefix) else { throw ObjectStorageError.invalidKey(prefix) }
        guard limit > 0 else { return [] }
        var page: [ObjectInfo] = []
        var after = startAfter?.rawValue
        // Keys that are not ours (another tool's objects) are skipped, so keep reading until
        // the page has something or the listing ends.
        while true {
            var query: [(name: String, value: String)] = [("list-type", "2"), ("prefix", prefix), ("max-keys", String(min(limit, 1000)))]
            if let after { query.append(("start-after", after)) }
            let response = try await send("GET", key: nil, query: query, timeout: configuration.requestTimeout)
            try await expectSuccess("list", response)
            let xml = try await Self.text(of: response)
            var lastKey: String?
            for contents in S3XML.blocks("Contents", in: xml[...]) {
                guard let raw = S3XML.value("Key", in: contents) else { continue }
                lastKey = raw
                guard let key = try? ObjectKey(raw), page.count < limit else { continue }
                page.append(ObjectInfo(
                    key: key, size: S3XML.value("Size", in: contents).flatMap { Int64($0) } ?? 0,
                    lastModified: S3XML.value("LastModified", in: contents).flatMap(S3XML.date) ?? Date()))
            }
            let truncated = S3XML.value("IsTruncated", in: xml[...]) == "true"
            guard page.isEmpty, truncated, let lastKey else { return page }
            after = lastKey
        }
    }

    @discardableResult
    public func removeAbandonedUploads(olderThan date: Date) async throws -> Int {
        var removed = 0
        var markers: (key: String, uploadID: String)?
        while true {
            var query: [(name: String, value: String)] = [("uploads", "")]
            if let markers { query += [("key-marker", markers.key), ("upload-id-marker", markers.uploadID)] }
            let response = try await send("GET", key: nil, query: query, timeout: configuration.requestTimeout)
            try await expectSuccess("list multipart uploads", response)
            let xml = try await Self.text(of: response)
            for upload in S3XML.blocks("Upload", in: xml[...]) {
                guard let raw = S3XML.value("Key", in: upload), let key = try? ObjectKey(raw),
                    let uploadID = S3XML.value("UploadId", in: upload),
                    let initiated = S3XML.value("Initiated", in: upload).flatMap(S3XML.date), initiated < date
                else { continue }
                await abortMultipartUpload(key: key, uploadID: uploadID)
                removed += 1
            }
            guard S3XML.value("IsTruncated", in: xml[...]) == "true",
                let nextKey = S3XML.value("NextKeyMarker", in: xml[...]),
                let nextUpload = S3XML.value("NextUploadIdMarker", in: xml[...])
            else { break }
            markers = (nextKey, nextUpload)
        }
        if removed > 0 { logger.info("aborted abandoned multipart uploads", metadata: ["count": "\(removed)"]) }
        return removed
    }

    // MARK: requests

    /// Signs and sends one request. Connection failures and timeouts become `503`.
    func send(
        _ method: String, key: ObjectKey?, query: [(name: String, value: String)] = [],
        headers extra: [(name: String, value: String)] = [], body: HTTPClientRequest.Body? = nil,
        bodyErrors: BodyErrorBox? = nil, payloadHash: String? = nil, timeout: TimeAmount
    ) async throws -> HTTPClientResponse {
        let timestamp = AWSSignatureV4.timestamp(Date())
        let payloadHash = payloadHash ?? (body == nil ? AWSSignatureV4.emptyPayloadHash : AWSSignatureV4.unsignedPayload)
        var signed = AWSSignatureV4.Request(
            method: method,
            path: "/\(configuration.bucket)" + (key.map { "/\($0.rawValue)" } ?? ""),
            query: query,
            headers: [("host", host), ("x-amz-date", timestamp), ("x-amz-content-sha256", payloadHash)]
                + extra.filter { $0.name == "range" },
            payloadHash: payloadHash)
        let authorization = signer.authorization(signed, timestamp: timestamp)
        signed.headers += extra.filter { $0.name != "range" }

        let query = signed.encodedQuery
        var request = HTTPClientRequest(url: origin + signed.encodedPath + (query.isEmpty ? "" : "?\(query)"))
        request.method = HTTPMethod(rawValue: method)
        for (name, value) in signed.headers { request.headers.add(name: name, value: value) }
        request.headers.add(name: "authorization", value: authorization)
        request.body = body
        do {
            return try await httpClient.execute(request, timeout: timeout, logger: logger)
        } catch {
            // The caller's body failed (too large, client gone): its error, not an outage.
            if let bodyError = bodyErrors?.error { throw bodyError }
            if let clientError = error as? HTTPClientError, clientError == .bodyLengthMismatch {
                throw ObjectStorageError.lengthMismatch(expected: -1, actual: -1)
            }
            if error is CancellationError { throw error }
            logger.error("object store unreachable", metadata: ["method": "\(method)", "error": "\(error)"])
            throw APIError.unavailable("The object store is unavailable. Try again shortly.")
        }
    }

    /// 2xx passes; 5xx is an outage (`503`); anything else is a refusal we did not expect.
    func expectSuccess(_ operation: String, _ response: HTTPClientResponse) async throws {
        guard !(200..<300).contains(response.status.code) else { return }
        if response.status.code >= 500 {
            logger.error("object store failed", metadata: ["operation": "\(operation)", "status": "\(response.status.code)"])
            throw APIError.unavailable("The object store is unavailable. Try again shortly.")
        }
        throw try await rejected(operation, response)
    }

    func rejected(_ operation: String, _ response: HTTPClientResponse) async throws -> any Error {
        if response.status.code >= 500 {
            logger.error("object store failed", metadata: ["operation": "\(operation)", "status": "\(response.status.code)"])
            return APIError.unavailable("The object store is unavailable. Try again shortly.")
        }
        let text = (try? await Self.text(of: response)) ?? ""
        let code = S3XML.value("Code", in: text[...]) ?? "HTTP\(response.status.code)"
        logger.error("object store refused a request", metadata: [
            "operation": "\(operation)", "status": "\(response.status.code)", "code": "\(code)",
        ])
        return ObjectStorageError.rejected(operation: operation, status: Int(response.status.code), code: code)
    }

    static func text(of response: HTTPClientResponse) async throws -> String {
        String(buffer: try await response.body.collect(upTo: 4 << 20))
    }
}

/// The first error an upload body threw, so `put` can tell the caller's failure (too
/// large, client gone) from the store's.
final class BodyErrorBox: Sendable {
    private let value = Mutex<(any Error)?>(nil)

    var error: (any Error)? { value.withLock { $0 } }

    func record(_ error: any Error) {
        value.withLock { if $0 == nil { $0 = error } }
    }
}

/// An upload body that records its own errors in `errors`.
struct ErrorTrackingSequence<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == ByteBuffer {
    typealias Element = ByteBuffer
    let base: Base
    let errors = BodyErrorBox()

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        let errors: BodyErrorBox

        mutating func next() async throws -> ByteBuffer? {
            do {
                return try await base.next()
            } catch {
                errors.record(error)
                throw error
            }
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator(), errors: errors)
    }
}
