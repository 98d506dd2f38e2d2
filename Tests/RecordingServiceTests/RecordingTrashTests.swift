import AsyncHTTPClient
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import PostgresNIO
import ObjectStore
import Shared
import TestSupport
import Testing

@testable import RecordingService

@Suite("Recording: trash, purge, account deletion, orphans")
struct RecordingTrashTests {
    @Test(arguments: TestStorageBackend.allCases)
    func trashHidesAtOnceAndRestoreBringsItBack(backend: TestStorageBackend) async throws {
        try await withRecordingService(backend) { client, harness in
            let user = try TestUser()
            let keep = try await client.createRecording(token: user.token)
            let recording = try await client.createRecording(token: user.token)
            let path = "/recordings/\(recording.id)"
            #expect(try await client.send(.delete, path, token: user.token).status == .noContent)
            // Hidden everywhere but the trash.
            #expect(try await client.list(token: user.token).items.map(\.id) == [keep.id])
            #expect(try await client.send(.get, path, token: user.token).status == .notFound)
            #expect(try await client.send(.get, "\(path)/content", token: user.token).status == .notFound)
            #expect(try await client.send(.patch, path, json: #"{"title": "x"}"#, token: user.token).status == .notFound)
            #expect(try await client.send(.delete, path, token: user.token).status == .notFound)
            let trash = try await client.list("?deleted=true", token: user.token)
            #expect(trash.items == [recording])
            // The bytes stay while it is restorable.
            #expect(try await harness.storedKeys().count == 2)

            let restored = try await client.send(.post, "\(path)/restore", token: user.token)
            #expect(restored.status == .ok)
            #expect(try restored.decode(Recording.self) == recording)
            #expect(try await client.list(token: user.token).items.map(\.id) == [recording.id, keep.id])
            #expect(try await client.list("?deleted=true", token: user.token).items.isEmpty)
            #expect(try await client.send(.post, "\(path)/restore", token: user.token).status == .notFound)
            let bytes = try await client.send(.get, "\(path)/content", token: user.token)
            #expect(bytes.status == .ok)
        }
    }

    /// Several replicas purge without coordinating: each removal is idempotent (an object
    /// deleted twice is fine) and each row goes once, so two purgers at once remove every due
    /// recording, and count each one once.
    @Test func twoPurgersAtOnceRemoveEachRecordingOnce() async throws {
        try await withRecordingService(extra: ["RECORDING_TRASH_RETENTION_SECONDS": "3600"]) { client, harness in
            let user = try TestUser()
            for _ in 0..<12 {
                let recording = try await client.createRecording(token: user.token)
                #expect(try await client.send(.delete, "/recordings/\(recording.id)", token: user.token).status == .noContent)
            }
            try await harness.execute("UPDATE recordings SET purge_after = now() - interval '1 second'")
            let dependencies = harness.dependencies
            let replica = TrashPurger(
                repository: dependencies.repository, storage: dependencies.storage, interval: .seconds(3600), logger: TestEnvironment.logger)
            async let first = dependencies.purger.purgeDue()
            async let second = replica.purgeDue()
            let purged = try await first + second
            #expect(purged == 12)
            #expect(try await harness.rowCount() == 0)
            #expect(try await harness.storedKeys().isEmpty)
        }
    }

    @Test(arguments: TestStorageBackend.allCases)
    func purgeRemovesRowsAndObjectsAfterTheRetention(backend: TestStorageBackend) async throws {
        try await withRecordingService(backend, extra: ["RECORDING_TRASH_RETENTION_SECONDS": "3600"]) { client, harness in
            let user = try TestUser()
            let recording = try await client.createRecording(token: user.token)
            let other = try await client.createRecording(token: user.token)
            #expect(try await client.send(.delete, "/recordings/\(recording.id)", token: user.token).status == .noContent)
            #expect(try await client.send(.delete, "/recordings/\(other.id)", token: user.token).status == .noContent)
            // Within the retention nothing is due.
            #expect(try await harness.dependencies.purger.purgeDue() == 0)
            #expect(try await harness.storedKeys().count == 2)
            // The retention of one of them passes.
            try await harness.execute("UPDATE recordings SET purge_after = now() - interval '1 second' WHERE id = \(recording.id)")
            #expect(try await client.list("?deleted=true", token: user.token).items.map(\.id) == [other.id])
            #expect(try await client.send(.post, "/recordings/\(recording.id)/restore", token: user.token).status == .notFound)
            #expect(try await harness.dependencies.purger.purgeDue() == 1)
            #expect(try await harness.storedKeys() == ["recordings/\(other.id.uuidString.lowercased())"])
            #expect(try await harness.rowCount() == 1)
            // The other one is still restorable.
            #expect(try await client.send(.post, "/recordings/\(other.id)/restore", token: user.token).status == .ok)
        }
    }

    @Test(arguments: TestStorageBackend.allCases)
    func retentionZeroPurgesAtOnce(backend: TestStorageBackend) async throws {
        try await withRecordingService(backend, extra: ["RECORDING_TRASH_RETENTION_SECONDS": "0"]) { client, harness in
            let user = try TestUser()
            let recording = try await client.createRecording(token: user.token)
            #expect(try await client.send(.delete, "/recordings/\(recording.id)", token: user.token).status == .noContent)
            #expect(try await harness.rowCount() == 0)
            #expect(try await harness.storedKeys() == [])
            #expect(try await client.list("?deleted=true", token: user.token).items.isEmpty)
            #expect(try await client.send(.post, "/recordings/\(recording.id)/restore", token: user.token).status == .notFound)
        }
    }

    @Test(arguments: TestStorageBackend.allCases)
    func deletingAUserRemovesAllTheirRecordingsIdempotently(backend: TestStorageBackend) async throws {
        try await withRecordingService(backend) { client, harness in
            let leaving = try TestUser()
            let staying = try TestUser()
            let a = try await client.createRecording(token: leaving.token)
            _ = try await client.createRecording(token: leaving.token)
            #expect(try await client.send(.delete, "/recordings/\(a.id)", token: leaving.token).status == .noContent)
            let kept = try await client.createRecording(token: staying.token)
            // A partial earlier attempt: one object already gone.
            try await harness.storage.delete(try ObjectKey("recordings/\(a.id.uuidString.lowercased())"))

            let response = try await client.deliver(.deleted(leaving.id), to: "recording")
            #expect(response.status == .noContent)
            #expect(try await harness.rowCount(owner: leaving.id) == 0)
            #expect(try await harness.storedKeys() == ["recordings/\(kept.id.uuidString.lowercased())"])
            #expect(try await client.deliver(.deleted(leaving.id), to: "recording").status == .noContent)
            #expect(try await client.list(token: staying.token).items == [kept])
            // The deleted user's token uploads nothing more.
            #expect(try await client.uploadRaw(TestAudio.bytes(10), token: leaving.token).status == .unauthorized)

            let event = try TestEnvironment.userEventJSON(.deleted(leaving.id))
            #expect(try await client.send(.post, "/internal/events", json: event).status == .unauthorized)
            #expect(try await client.send(.post, "/internal/events", json: event, token: staying.token).status == .unauthorized)
        }
    }

    @Test(arguments: TestStorageBackend.allCases)
    func sweeperRemovesOnlyOldObjectsWithoutARow(backend: TestStorageBackend) async throws {
        try await withRecordingService(backend, extra: ["RECORDING_ORPHAN_GRACE_SECONDS": "0"]) { client, harness in
            let user = try TestUser()
            let recording = try await client.createRecording(token: user.token)
            // What a crash between storing the bytes and committing the row leaves behind.
            let orphan = try ObjectKey("recordings/\(UUID().uuidString.lowercased())")
            try await harness.storage.put(orphan, body: ObjectBody([1, 2, 3]), length: 3)
            // Object timestamps have one-second resolution on S3: the orphan counts as old
            // once its timestamp is past, so sweep until it went.
            var removed = 0
            try await eventually {
                removed += try await harness.dependencies.sweeper.sweep()
                return removed >= 1
            }
            #expect(removed == 1)
            #expect(try await harness.storedKeys() == ["recordings/\(recording.id.uuidString.lowercased())"])
            #expect(try await harness.dependencies.sweeper.sweep() == 0)
        }
        // Within the grace period an object without a row may be an upload about to commit.
        try await withRecordingService(.fileSystem, extra: ["RECORDING_ORPHAN_GRACE_SECONDS": "3600"]) { _, harness in
            let young = try ObjectKey("recordings/\(UUID().uuidString.lowercased())")
            try await harness.storage.put(young, body: ObjectBody([1]), length: 1)
            #expect(try await harness.dependencies.sweeper.sweep() == 0)
            #expect(try await harness.storage.head(young) != nil)
        }
    }

    /// Every replica sweeps, uncoordinated: two sweeps at once over the same orphans both
    /// succeed (deleting an object twice is no error) and leave exactly the objects with rows.
    @Test(arguments: TestStorageBackend.allCases)
    func twoSweepersAtOnceLeaveExactlyTheObjectsWithRows(backend: TestStorageBackend) async throws {
        try await withRecordingService(backend, extra: ["RECORDING_ORPHAN_GRACE_SECONDS": "0"]) { client, harness in
            let user = try TestUser()
            let recording = try await client.createRecording(token: user.token)
            for _ in 0..<20 {
                let orphan = try ObjectKey("recordings/\(UUID().uuidString.lowercased())")
                try await harness.storage.put(orphan, body: ObjectBody([1, 2, 3]), length: 3)
            }
            let repository = harness.dependencies.repository
            let replica = OrphanObjectSweeper(
                storage: harness.storage, prefix: "recordings/", interval: .seconds(3600), grace: .zero, logger: TestEnvironment.logger
            ) { keys in try await repository.existingObjectKeys(keys, logger: TestEnvironment.logger) }
            let expected = ["recordings/\(recording.id.uuidString.lowercased())"]
            // S3 timestamps have one-second resolution: sweep until the orphans count as old.
            try await eventually {
                async let first = harness.dependencies.sweeper.sweep()
                async let second = replica.sweep()
                _ = try await (first, second)
                return try await harness.storedKeys() == expected
            }
            #expect(try await harness.storedKeys() == expected)
        }
    }

    /// The client goes away mid-body: no row, and nothing in the store once the sweeper ran.
    @Test(arguments: TestStorageBackend.allCases)
    func interruptedUploadLeavesNothing(backend: TestStorageBackend) async throws {
        let probe = StoreProbe()
        try await withRecordingService(
            backend, mode: .live, extra: ["RECORDING_ORPHAN_GRACE_SECONDS": "0"], wrapStorage: { ProbedStorage(base: $0, probe: probe) }
        ) { client, harness in
            let user = try TestUser()
            let port = try #require(client.port)
            let http = HTTPClient(eventLoopGroupProvider: .singleton)
            defer { Task { try? await http.shutdown() } }
            let sent = SentCounter()
            for multipart in [false, true] {
                var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/recordings" + (multipart ? "" : "?fileName=cut.mp3"))
                request.method = .POST
                request.headers.add(name: "Authorization", value: "Bearer \(user.token)")
                let boundary = TestAudio.boundary
                request.headers.add(
                    name: "Content-Type", value: multipart ? "multipart/form-data; boundary=\(boundary)" : "audio/mpeg")
                let head = multipart
                    ? Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cut.mp3\"\r\nContent-Type: audio/mpeg\r\n\r\n".utf8)
                    : []
                // Announces 8 MiB, sends 3 MiB, waits until the store has received the first
                // 1 MiB of this upload, then the connection is dropped.
                let storedBefore = probe.bytesStored
                let reachedStore: @Sendable () -> Bool = { probe.bytesStored >= storedBefore + (1 << 20) }
                request.body = .stream(
                    InterruptedBody(head: head, chunks: 3, counter: sent, reachedStore: reachedStore), length: .known(Int64(8 << 20)))
                await #expect(throws: (any Error).self) { _ = try await http.execute(request, timeout: .seconds(30)) }
                #expect(reachedStore(), "the upload never reached the store")
            }
            #expect(sent.value >= 6 << 20)
            // No row ever, and nothing in the store once the sweeper ran (with a grace of 0,
            // but object timestamps of one-second resolution on S3: sweep until it holds).
            #expect(try await harness.rowCount() == 0)
            try await eventually(timeout: .seconds(20)) {
                _ = try await harness.dependencies.sweeper.sweep()
                return try await harness.storage.list(prefix: "", startAfter: nil, limit: 10).isEmpty
            }
            #expect(try await harness.rowCount() == 0)
            #expect(try await harness.storedKeys() == [])
            // The service still works.
            let ok = try await client.uploadRaw(TestAudio.bytes(100), token: user.token)
            #expect(ok.status == .created)
        }
    }
}

/// Fixed buffers as an upload stream.
struct BufferSequence: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let buffers: [ByteBuffer]

    struct AsyncIterator: AsyncIteratorProtocol {
        var remaining: ArraySlice<ByteBuffer>
        mutating func next() async throws -> ByteBuffer? { remaining.popFirst() }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(remaining: buffers[...]) }
}

/// A fixed body as an upload stream.
struct ObjectBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let bytes: [UInt8]
    init(_ bytes: [UInt8]) { self.bytes = bytes }

    struct AsyncIterator: AsyncIteratorProtocol {
        var bytes: [UInt8]?
        mutating func next() async throws -> ByteBuffer? {
            defer { bytes = nil }
            return bytes.map { ByteBuffer(bytes: $0) }
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(bytes: bytes) }
}

final class SentCounter: Sendable {
    private let count = Mutex(0)
    func add(_ n: Int) { count.withLock { $0 += n } }
    var value: Int { count.withLock { $0 } }
}

import Synchronization

/// Sends `head`, then `chunks` MiB of audio, then, once `reachedStore` holds (or after
/// a deadline), fails: the client aborts the request.
struct InterruptedBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    struct Gone: Error {}
    let head: [UInt8]
    let chunks: Int
    let counter: SentCounter
    let reachedStore: @Sendable () -> Bool

    struct AsyncIterator: AsyncIteratorProtocol {
        let head: [UInt8]
        let chunks: Int
        let counter: SentCounter
        let reachedStore: @Sendable () -> Bool
        var index = -1

        mutating func next() async throws -> ByteBuffer? {
            defer { index += 1 }
            if index == -1 {
                if !head.isEmpty { return ByteBuffer(bytes: head) }
                index += 1
            }
            guard index < chunks else {
                // Let the bytes reach the store before the connection goes (the test checks
                // afterwards that they did; this runs outside the test's task, so it only waits).
                let deadline = ContinuousClock.now + .seconds(20)
                while !reachedStore(), ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(20))
                }
                throw Gone()
            }
            let chunk = TestAudio.bytes(1 << 20, seed: UInt64(index))
            counter.add(chunk.count)
            return ByteBuffer(bytes: chunk)
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(head: head, chunks: chunks, counter: counter, reachedStore: reachedStore)
    }
}
