import Foundation
import Hummingbird
import NIOCore
import Synchronization
import Shared

/// Streams bytes that a handler reads from a request (a raw body, a multipart file part)
/// into an object store while counting and hashing them: memory stays flat whatever the
/// size, the byte limit is enforced as bytes arrive, and the object exists under its key
/// only if the whole stream arrived (a failed put stores nothing, see `ObjectStorage`).
public enum StreamingUpload {
    /// What was stored.
    public struct Stored: Sendable, Equatable {
        public var key: ObjectKey
        public var sizeBytes: Int64
        /// Lower-case hex SHA-256 of the bytes.
        public var sha256: String
    }

    /// Runs `produce` (which reads the request and writes the bytes to the sink) next to
    /// `storage.put`, connected by a back-pressured stream.
    ///
    /// - Parameters:
    ///   - length: the exact number of bytes, when known up front.
    ///   - maxBytes: more than this many bytes fail with `tooLarge` (and nothing is stored).
    ///   - tooLarge: the error for a stream over `maxBytes`, usually a `413`.
    /// - Throws: `produce`'s error, or the store's when the put failed first.
    public static func put(
        into storage: any ObjectStorage, key: ObjectKey, length: Int64? = nil, maxBytes: Int64,
        tooLarge: @autoclosure () -> any Error,
        produce: (UploadSink) async throws -> Void
    ) async throws -> Stored {
        let putFailed = UploadSink.FailureFlag()
        let tooLargeError = tooLarge()
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
            let sink = UploadSink(source: source, maxBytes: maxBytes, tooLarge: tooLargeError, putFailed: putFailed)
            do {
                try await produce(sink)
                source.finish()
            } catch {
                source.finish(error)
                do {
                    try await group.waitForAll()
                } catch let putError {
                    // Stopped because the store failed: the store's error is the answer.
                    if error is UploadSink.StoreFailed { throw putError }
                }
                throw error
            }
            try await group.waitForAll()
            return Stored(key: key, sizeBytes: sink.size, sha256: Hex.encode(sink.hasher.finalize()))
        }
    }
}

/// Counts, limits and hashes the bytes on their way into the store.
/// Not `Sendable`: it lives in the one task that reads the request.
public final class UploadSink {
    /// Set by the put task when it fails, so the producer stops reading the request at once.
    final class FailureFlag: Sendable {
        private let value = Atomic<Bool>(false)
        func set() { value.store(true, ordering: .releasing) }
        var isSet: Bool { value.load(ordering: .acquiring) }
    }

    /// The put failed; `StreamingUpload.put` throws the store's own error instead.
    struct StoreFailed: Error {}

    let source: RequestBody.Source
    let maxBytes: Int64
    let tooLarge: any Error
    let putFailed: FailureFlag
    let hasher = SHA256Hasher()
    /// Bytes written so far.
    public private(set) var size: Int64 = 0

    init(source: RequestBody.Source, maxBytes: Int64, tooLarge: any Error, putFailed: FailureFlag) {
        self.source = source
        self.maxBytes = maxBytes
        self.tooLarge = tooLarge
        self.putFailed = putFailed
    }

    /// Passes `chunk` on to the store, waiting while the store is behind.
    public func write(_ chunk: ByteBuffer) async throws {
        guard !putFailed.isSet else { throw StoreFailed() }
        size += Int64(chunk.readableBytes)
        guard size <= maxBytes else { throw tooLarge }
        chunk.withUnsafeReadableBytes { hasher.update($0) }
        await source.yield(chunk)
    }
}
