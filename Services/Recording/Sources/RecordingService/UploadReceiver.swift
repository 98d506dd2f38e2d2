import Foundation
import Hummingbird
import Logging
import NIOCore
import ObjectStore
import Shared

/// What an upload said about its file, and what the bytes turned out to be.
struct ReceivedUpload: Sendable {
    var fileName: String
    var contentType: String
    /// The `title` field (multipart) or `?title=` (raw), if any.
    var title: String?
    var sizeBytes: Int64
    var sha256: String
}

/// Streams an upload's file bytes into the object store (`StreamingUpload`: counted,
/// hashed and limited as they arrive; the object under `key` exists only if the whole file
/// arrived).
///
/// Two shapes: `multipart/form-data` with a `file` part (and optional `title`, before or
/// after it), or the raw bytes with an `audio/*` `Content-Type` and `?fileName=`.
struct UploadReceiver: Sendable {
    let storage: any ObjectStorage
    let maxBytes: Int64
    /// What a multipart body may carry besides the file, for the up-front `Content-Length` check.
    static let multipartOverheadLimit: Int64 = 1 << 20
    /// Largest text field read (the title is at most 200 characters).
    static let fieldLimit = 4096

    func receive(_ request: Request, key: ObjectKey, logger: Logger) async throws -> ReceivedUpload {
        guard let contentType = request.headers[.contentType] else {
            throw Self.unsupportedMediaType
        }
        if let boundary = try MultipartFormReader.boundary(in: contentType) {
            if let length = declaredLength(request), length > maxBytes + Self.multipartOverheadLimit {
                throw tooLarge
            }
            return try await receiveMultipart(MultipartFormReader(body: request.body, boundary: boundary), key: key)
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
        let stored = try await StreamingUpload.put(into: storage, key: key, length: length, maxBytes: maxBytes, tooLarge: tooLarge) { sink in
            var body = request.body.makeAsyncIterator()
            while let chunk = try await Self.nextChunk(&body) {
                try await sink.write(chunk)
            }
            // A body that ended early (the client went away) is not the file it announced.
            if let length, sink.size != length { throw UploadFailure.incomplete }
        }
        return ReceivedUpload(
            fileName: fileName, contentType: contentType, title: title, sizeBytes: stored.sizeBytes, sha256: stored.sha256)
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

    // MARK: multipart

    func receiveMultipart(_ reader: MultipartFormReader, key: ObjectKey) async throws -> ReceivedUpload {
        var title: String?
        var file: (fileName: String, contentType: String, stored: StreamingUpload.Stored)?
        do {
            while let part = try await reader.nextPart() {
                switch part.name {
                case "file":
                    guard file == nil else { throw APIError.validation(field: "file", "send one file per upload") }
                    // Checked before any byte is stored, so a wrong type is a plain 415.
                    guard let partType = part.contentType, let contentType = RecordingRules.audioContentType(partType) else {
                        throw Self.unsupportedMediaType
                    }
                    let fileName = part.fileName.flatMap(RecordingRules.sanitizedFileName) ?? RecordingRules.defaultFileName
                    let stored = try await StreamingUpload.put(into: storage, key: key, maxBytes: maxBytes, tooLarge: tooLarge) { sink in
                        while let chunk = try await reader.nextChunk() {
                            try await sink.write(chunk)
                        }
                    }
                    file = (fileName, contentType, stored)
                case "title":
                    let text = try await reader.text(maxBytes: Self.fieldLimit, field: "title")
                    if title == nil { title = text }
                default:
                    // Other fields are read (within the same bound) and ignored.
                    _ = try await reader.text(maxBytes: Self.fieldLimit, field: String((part.name ?? "(unnamed)").prefix(40)))
                }
            }
        } catch {
            // The file is stored but the request failed after it (a second file, a cut body):
            // the upload as a whole failed, so its object goes too.
            if file != nil { try? await storage.delete(key) }
            throw error
        }
        guard let file else {
            throw APIError.validation(field: "file", "is required (a multipart part named \"file\")")
        }
        return ReceivedUpload(
            fileName: file.fileName, contentType: file.contentType, title: title, sizeBytes: file.stored.sizeBytes,
            sha256: file.stored.sha256)
    }

    // MARK: helpers

    func declaredLength(_ request: Request) -> Int64? {
        request.headers[.contentLength].flatMap { Int64($0) }
    }

    var tooLarge: APIError {
        APIError(.contentTooLarge, code: "payload_too_large", detail: "The file is larger than \(maxBytes) bytes.")
    }

    static let unsupportedMediaType = APIError(
        .unsupportedMediaType, code: "unsupported_media_type",
        detail: "Upload an audio/* file: multipart/form-data with a 'file' part, or the raw bytes with an audio/* Content-Type.")
}

/// Why an upload stopped, for the handler to turn into an answer.
enum UploadFailure: Error {
    /// The body ended before the file did.
    case incomplete
}
