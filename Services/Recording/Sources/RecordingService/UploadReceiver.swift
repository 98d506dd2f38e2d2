import Foundation
import Hummingbird
import Logging
import MultipartKit
import NIOCore
import Shared
import Synchronization

/// What an upload said about its file, and what the bytes turned out to be.
struct ReceivedUpload: Sendable {
    var fileName: String
    var contentType: String
    /// The `title` field (multipart) or `?title=` (raw), if any.
    var title: String?
    var sizeBytes: Int64
    var sha256: String
}

/// Streams an upload's file bytes into the object store while counting and hashing them:
/// memory stays flat whatever the size, the limit is enforced as bytes arrive, and the
/// object under `key` exists only if the whole file arrived (a failed put stores nothing).
///
/// Two shapes: `multipart/form-data` with a `file` part (and optional `title`), or the raw
/// bytes with an `audio/*` `Content-Type` and `?fileName=`.
struct UploadReceiver: Sendable {
    let storage: any ObjectStorage
    let maxBytes: Int64
    /// Bytes of a multipart body that are not the file (boundaries, part headers, fields).
    static let multipartOverheadLimit: Int64 = 1 << 20
    /// Largest text field kept (the title is at most 200 characters).
    static let fieldLimit = 4096

    func receive(_ request: Request, key: ObjectKey, logger: Logger) async throws -> ReceivedUpload {
        guard let contentType = request.headers[.contentType] else {
            throw Self.unsupportedMediaType
        }
        let essence = contentType.split(separator: ";", maxSplits: 1).first?
            .trimmingCharacters(in: .whitespaces).lowercased() ?? ""
        if essence == "multipart/form-data" {
            guard let boundary = Self.parameter("boundary", in: contentType), (1...70).contains(boundary.utf8.count) else {
                throw APIError.validation(field: "Content-Type", "multipart/form-data needs a boundary parameter")
            }
            if let length = declaredLength(request), length > maxBytes + Self.multipartOverheadLimit {
                throw tooLarge
            }
            return try await receiveMultipart(request, boundary: boundary, key: key)
        }
        guard let audioType = RecordingRules.audioContentType(contentType) else {
            throw Self.unsupportedMediaType
        }
        return try await receiveRaw(request, contentType: audioType, key: key)
    }

    // MARK: raw

    func receiveRaw(_ request: Request, contentType: String, key: ObjectKey) async throws -> ReceivedUpload {
        let query = request.uri.queryParameters
        guard let rawName = query["fileName"].map(String.init), let fileName = RecordingRules.sanitizedFileName(rawName) else {
            throw APIError.validation(field: "fileName", "is required (the file's name, in the query string)")
        }
        let title = query["title"].map(String.init)
        let length = declaredLength(request)
        if let length, length > maxBytes { throw tooLarge }
        let stored = try await streamToStorage(key: key, length: length) { sink in
            var body = request.body.makeAsyncIterator()
            while let chunk = try await Self.nextChunk(&body) {
                try await sink.write(chunk)
            }
            // A body that ended early (the client went away) is not the file it announced.
            if let length, sink.size != length { throw UploadFailure.incomplete }
        }
        return ReceivedUpload(fileName: fileName, contentType: contentType, title: title, sizeBytes: stored.size, sha256: stored.sha256)
    }

    // MARK: multipart

    func receiveMultipart(_ request: Request, boundary: String, key: ObjectKey) async throws -> ReceivedUpload {
        let reader = MultipartEventReader(body: request.body, boundary: boundary, overheadLimit: Self.multipartOverheadLimit)
        var fields = FormFields()

        // Phase 1: up to the file part's headers. Nothing is stored yet, so a wrong type is a plain 415.
        var filePart: PartHeaders?
        while filePart == nil {
            guard let event = try await reader.next(fileBytesSoFar: 0) else {
                throw APIError.validation(field: "file", "is required (a multipart part named \"file\")")
            }
            if case .partStart(let headers) = event, headers.name == "file" {
                filePart = headers
            } else {
                try fields.consume(event)
            }
        }
        guard let filePart else { throw UploadFailure.incomplete }
        guard let partType = filePart.contentType, let contentType = RecordingRules.audioContentType(partType) else {
            throw Self.unsupportedMediaType
        }
        let fileName = filePart.fileName.flatMap(RecordingRules.sanitizedFileName) ?? RecordingRules.defaultFileName

        // Phase 2: the file's bytes go to the store; fields after it are still read.
        let stored = try await streamToStorage(key: key, length: nil) { sink in
            var inFile = true
            while let event = try await reader.next(fileBytesSoFar: sink.size) {
                switch event {
                case .body(let chunk) where inFile:
                    try await sink.write(chunk)
                case .partEnd where inFile:
                    inFile = false
                case .partStart(let headers) where headers.name == "file":
                    throw APIError.validation(field: "file", "send one file per upload")
                default:
                    try fields.consume(event)
                }
            }
            // The body ended inside the file or another part: the client went away.
            guard !inFile, !reader.insidePart else { throw UploadFailure.incomplete }
        }
        return ReceivedUpload(
            fileName: fileName, contentType: contentType, title: fields.values["title"], sizeBytes: stored.size,
            sha256: stored.sha256)
    }

    // MARK: streaming into the store

    /// Runs `produce` (which reads the request and writes the file's bytes to the sink)
    /// next to `storage.put`, connected by a back-pressured stream.
    func streamToStorage(
        key: ObjectKey, length: Int64?, produce: (UploadSink) async throws -> Void
    ) async throws -> (size: Int64, sha256: String) {
        let putFailed = FailureFlag()
        let storage = self.storage
        return try await withThrowingTaskGroup(of: Void.self) { group in
            // The stream moves into the put, and only the put holds it: when the put fails,
            // the stream goes away with it, which releases a producer waiting for demand.
            var stream: RequestBody?
            let source: RequestBody.Source
            do {
                let made = RequestBody.makeStream()
                stream = made.0
                source = made.1
            }
            group.addTask { [stream] in
                do {
                    try await storage.put(key, body: stream!, length: length)
                } catch {
                    putFailed.set()
                    throw error
                }
            }
            stream = nil
            let sink = UploadSink(source: source, maxBytes: maxBytes, putFailed: putFailed)
            do {
                try await produce(sink)
                source.finish()
            } catch {
                source.finish(error)
                do {
                    try await group.waitForAll()
                } catch let putError {
                    // Stopped because the store failed: the store's error is the answer.
                    if case UploadFailure.storeFailed = error { throw putError }
                }
                throw error
            }
            try await group.waitForAll()
            return (sink.size, Hex.encode(sink.hasher.finalize()))
        }
    }

    /// The next chunk of the request body. A connection that breaks mid-body is the
    /// client going away, not a server failure.
    static func nextChunk(_ iterator: inout RequestBody.AsyncIterator) async throws -> ByteBuffer? {
        do {
            return try await iterator.next()
        } catch {
            throw UploadFailure.incomplete
        }
    }

    func declaredLength(_ request: Request) -> Int64? {
        request.headers[.contentLength].flatMap { Int64($0) }
    }

    var tooLarge: APIError {
        APIError(.contentTooLarge, code: "payload_too_large", detail: "The file is larger than \(maxBytes) bytes.")
    }

    static let unsupportedMediaType = APIError(
        .unsupportedMediaType, code: "unsupported_media_type",
        detail: "Upload an audio/* file: multipart/form-data with a 'file' part, or the raw bytes with an audio/* Content-Type.")

    /// A parameter of a header value such as `multipart/form-data; boundary="abc"`.
    static func parameter(_ name: String, in header: String) -> String? {
        HeaderParameters.parse(header)[name.lowercased()]
    }
}

/// Why an upload stopped, for the handler to turn into an answer.
enum UploadFailure: Error {
    /// The body ended before the file did.
    case incomplete
    /// The store's put failed; its own error explains why.
    case storeFailed
}

/// Set by the put task when it fails, so the producer stops reading the request at once.
final class FailureFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .releasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }
}

/// Counts, limits and hashes the file's bytes on their way into the store.
/// Not `Sendable`: it lives in the one task that reads the request.
final class UploadSink {
    let source: RequestBody.Source
    let maxBytes: Int64
    let putFailed: FailureFlag
    let hasher = SHA256Hasher()
    private(set) var size: Int64 = 0

    init(source: RequestBody.Source, maxBytes: Int64, putFailed: FailureFlag) {
        self.source = source
        self.maxBytes = maxBytes
        self.putFailed = putFailed
    }

    func write(_ chunk: ByteBuffer) async throws {
        guard !putFailed.isSet else { throw UploadFailure.storeFailed }
        size += Int64(chunk.readableBytes)
        guard size <= maxBytes else {
            throw APIError(.contentTooLarge, code: "payload_too_large", detail: "The file is larger than \(maxBytes) bytes.")
        }
        chunk.withUnsafeReadableBytes { hasher.update($0) }
        await source.yield(chunk)
    }
}

/// The headers of one multipart part that matter here.
struct PartHeaders {
    var name: String?
    var fileName: String?
    var contentType: String?
}

/// Small text fields (`title`), each capped at `UploadReceiver.fieldLimit` bytes.
struct FormFields {
    var values: [String: String] = [:]
    private var current: (name: String, bytes: [UInt8])?

    /// A part that is not the file.
    mutating func consume(_ event: MultipartEventReader.Event) throws {
        switch event {
        case .partStart(let headers): begin(headers)
        case .body(let chunk): try append(chunk)
        case .partEnd: end()
        }
    }

    mutating func begin(_ headers: PartHeaders) {
        current = headers.name.map { ($0, []) }
    }

    mutating func append(_ chunk: ByteBuffer) throws {
        guard var part = current else { return }
        guard part.bytes.count + chunk.readableBytes <= UploadReceiver.fieldLimit else {
            throw APIError.validation(field: part.name, "is too long")
        }
        part.bytes += chunk.readableBytesView
        current = part
    }

    mutating func end() {
        if let part = current, values[part.name] == nil {
            values[part.name] = String(decoding: part.bytes, as: UTF8.self)
        }
        current = nil
    }
}

/// A multipart body as a stream of events, read chunk by chunk from the request.
/// Not `Sendable`: used by one task.
final class MultipartEventReader {
    enum Event {
        case partStart(PartHeaders)
        case body(ByteBuffer)
        case partEnd
    }

    private enum RawEvent {
        case header(String, String)
        case body(ByteBuffer)
        case partEnd
    }

    /// Collects the parser's callbacks for one chunk (kept apart from the reader, so the
    /// parser's closures do not retain it).
    private final class Collector {
        var events: [RawEvent] = []
    }

    private var iterator: RequestBody.AsyncIterator
    private let parser: MultipartParser
    private let collector = Collector()
    private var pending: [RawEvent] = []
    private var pendingIndex = 0
    private var headers: [(String, String)] = []
    private var bytesRead: Int64 = 0
    private let overheadLimit: Int64
    /// True between a part's first header and its end.
    private(set) var insidePart = false

    init(body: RequestBody, boundary: String, overheadLimit: Int64) {
        self.iterator = body.makeAsyncIterator()
        self.parser = MultipartParser(boundary: boundary)
        self.overheadLimit = overheadLimit
        let collector = self.collector
        parser.onHeader = { name, value in collector.events.append(.header(name, value)) }
        parser.onBody = { buffer in collector.events.append(.body(buffer)) }
        parser.onPartComplete = { collector.events.append(.partEnd) }
    }

    /// The next event, or nil at the end of the body. `fileBytesSoFar` lets the reader
    /// bound everything that is not the file.
    func next(fileBytesSoFar: Int64) async throws -> Event? {
        while true {
            while pendingIndex < pending.count {
                let raw = pending[pendingIndex]
                pendingIndex += 1
                switch raw {
                case .header(let name, let value):
                    insidePart = true
                    headers.append((name, value))
                case .body(let buffer):
                    if let start = takePartStart() {
                        pendingIndex -= 1
                        return .partStart(start)
                    }
                    return .body(buffer)
                case .partEnd:
                    if let start = takePartStart() {
                        pendingIndex -= 1
                        return .partStart(start)
                    }
                    insidePart = false
                    return .partEnd
                }
            }
            pending.removeAll(keepingCapacity: true)
            pendingIndex = 0
            guard let chunk = try await UploadReceiver.nextChunk(&iterator) else { return nil }
            bytesRead += Int64(chunk.readableBytes)
            if bytesRead - fileBytesSoFar > overheadLimit + Int64(chunk.readableBytes) {
                throw APIError(.contentTooLarge, code: "payload_too_large", detail: "The multipart body carries too much besides the file.")
            }
            do {
                try parser.execute(chunk)
            } catch {
                throw APIError.validation(field: "body", "is not valid multipart/form-data")
            }
            pending = collector.events
            collector.events.removeAll(keepingCapacity: true)
        }
    }

    /// The headers gathered since the last part began, once its body starts.
    private func takePartStart() -> PartHeaders? {
        guard insidePart, !headers.isEmpty else { return nil }
        var part = PartHeaders()
        for (name, value) in headers {
            switch name.lowercased() {
            case "content-disposition":
                let parameters = HeaderParameters.parse(value)
                part.name = parameters["name"]
                part.fileName = parameters["filename*"].flatMap(HeaderParameters.decodeExtendedValue) ?? parameters["filename"]
            case "content-type":
                part.contentType = value
            default:
                break
            }
        }
        headers.removeAll()
        return part
    }
}

/// `value; name=token; other="quoted \" string"` → lower-cased names to values.
enum HeaderParameters {
    static func parse(_ header: String) -> [String: String] {
        var result: [String: String] = [:]
        let scalars = Array(header.unicodeScalars)
        var index = scalars.firstIndex(of: ";") ?? scalars.endIndex
        while index < scalars.endIndex {
            index += 1  // past ';'
            while index < scalars.endIndex, scalars[index] == " " || scalars[index] == "\t" { index += 1 }
            var name = ""
            while index < scalars.endIndex, scalars[index] != "=", scalars[index] != ";" {
                name.unicodeScalars.append(scalars[index])
                index += 1
            }
            name = name.trimmingCharacters(in: .whitespaces).lowercased()
            var value = ""
            if index < scalars.endIndex, scalars[index] == "=" {
                index += 1
                while index < scalars.endIndex, scalars[index] == " " { index += 1 }
                if index < scalars.endIndex, scalars[index] == "\"" {
                    index += 1
                    while index < scalars.endIndex, scalars[index] != "\"" {
                        // Only \" and \\ are escapes: browsers send Windows paths (C:\x\y.mp3) as they are.
                        if scalars[index] == "\\", index + 1 < scalars.endIndex, scalars[index + 1] == "\"" || scalars[index + 1] == "\\" {
                            index += 1
                        }
                        value.unicodeScalars.append(scalars[index])
                        index += 1
                    }
                    // Skip to the next parameter.
                    while index < scalars.endIndex, scalars[index] != ";" { index += 1 }
                } else {
                    while index < scalars.endIndex, scalars[index] != ";" {
                        value.unicodeScalars.append(scalars[index])
                        index += 1
                    }
                    value = value.trimmingCharacters(in: .whitespaces)
                }
            }
            if !name.isEmpty, result[name] == nil { result[name] = value }
        }
        return result
    }

    /// RFC 8187 `UTF-8''percent%20encoded`.
    static func decodeExtendedValue(_ value: String) -> String? {
        let parts = value.split(separator: "'", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].lowercased() == "utf-8" else { return nil }
        return String(parts[2]).removingPercentEncoding
    }
}
