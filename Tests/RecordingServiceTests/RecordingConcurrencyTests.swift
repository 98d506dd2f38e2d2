import AsyncHTTPClient
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import ObjectStore
import PostgresNIO
import Shared
import TestSupport
import Testing

@testable import RecordingService

@Suite("Recording: concurrency")
struct RecordingConcurrencyTests {
    /// One user, two uploads at once (one raw, one multipart): both stored, both listed,
    /// each with its own bytes.
    @Test(arguments: TestStorageBackend.allCases)
    func twoConcurrentUploadsByOneUserAreBothKept(backend: TestStorageBackend) async throws {
        try await withRecordingService(backend) { client, harness in
            let user = try TestUser()
            let first = TestAudio.bytes((1 << 20) + 3, seed: 21)
            let second = TestAudio.bytes((1 << 20) + 17, seed: 22)
            async let raw = client.uploadRaw(first, fileName: "first.mp3", token: user.token)
            async let multipart = client.uploadMultipart(
                TestAudio.multipart([("file", "second.wav", "audio/wav", second)]), token: user.token)
            let responses = try await [raw, multipart]
            for response in responses {
                #expect(response.status == .created, "upload answered \(response.status): \(String(buffer: response.body))")
            }
            let a = try responses[0].decode(Recording.self)
            let b = try responses[1].decode(Recording.self)
            #expect(a.id != b.id)
            #expect(a.sha256 == TestAudio.sha256(first))
            #expect(b.sha256 == TestAudio.sha256(second))
            #expect(a.sizeBytes == Int64(first.count))
            #expect(b.sizeBytes == Int64(second.count))

            let listed = try await client.list(token: user.token).items
            #expect(Set(listed.map(\.id)) == [a.id, b.id])
            #expect(listed.count == 2)
            for (recording, bytes) in [(a, first), (b, second)] {
                let download = try await client.send(.get, recording.contentUrl, token: user.token)
                #expect(download.status == .ok)
                #expect(Array(download.body.readableBytesView) == bytes, "\(recording.fileName): other bytes came back")
            }
            #expect(try await harness.rowCount(owner: user.id) == 2)
            #expect(Set(try await harness.storedKeys()) == [RecordingRules.objectKey(a.id), RecordingRules.objectKey(b.id)])
            #expect(try await harness.rowsAndObjectsMatch())
        }
    }

    /// The owner deletes (to the trash) while a download streams: the download completes with
    /// the right bytes (the trash keeps them), and the recording ends in the trash.
    @Test(arguments: TestStorageBackend.allCases)
    func deleteDuringADownloadIntoTheTrash(backend: TestStorageBackend) async throws {
        try await withRecordingService(backend, mode: .live, extra: ["RECORDING_TRASH_RETENTION_SECONDS": "3600"]) { client, harness in
            let user = try TestUser()
            let bytes = TestAudio.bytes(6 << 20, seed: 31)
            let recording = try await client.createRecording(bytes, token: user.token)
            let port = try #require(client.port)

            let download = try await StreamedDownload.during(port: port, path: recording.contentUrl, token: user.token) {
                let deleted = try await client.send(.delete, "/recordings/\(recording.id)", token: user.token)
                #expect(deleted.status == .noContent)
            }
            #expect(download.status == 200)
            #expect(download.failure == nil, "the download broke off: \(String(describing: download.failure))")
            #expect(download.body.count == bytes.count)
            #expect(download.body == bytes, "other bytes than the recording's")

            // In the trash, not among the recordings; its bytes kept for a restore.
            #expect(try await client.list("?deleted=true", token: user.token).items.map(\.id) == [recording.id])
            #expect(try await client.list(token: user.token).items.isEmpty)
            #expect(try await client.send(.get, "/recordings/\(recording.id)", token: user.token).status == .notFound)
            #expect(try await harness.storedKeys() == [RecordingRules.objectKey(recording.id)])
            #expect(try await harness.rowsAndObjectsMatch())
        }
    }

    /// With a retention of 0 the delete removes the bytes at once, under a running download:
    /// the download either completes with the right bytes or breaks off (never a `200` that
    /// ends quietly short, never other bytes), and nothing of the recording stays.
    @Test(arguments: TestStorageBackend.allCases)
    func deleteDuringADownloadWithNoRetention(backend: TestStorageBackend) async throws {
        try await withRecordingService(backend, mode: .live, extra: ["RECORDING_TRASH_RETENTION_SECONDS": "0"]) { client, harness in
            let user = try TestUser()
            let bytes = TestAudio.bytes(6 << 20, seed: 32)
            let recording = try await client.createRecording(bytes, token: user.token)
            let port = try #require(client.port)

            let download = try await StreamedDownload.during(port: port, path: recording.contentUrl, token: user.token) {
                let deleted = try await client.send(.delete, "/recordings/\(recording.id)", token: user.token)
                #expect(deleted.status == .noContent)
            }
            switch download.status {
            case 200:
                // Whatever arrived is the recording's, from its first byte.
                #expect(download.body.count <= bytes.count)
                #expect(download.body == Array(bytes.prefix(download.body.count)), "other bytes than the recording's")
                if download.failure == nil {
                    #expect(download.body.count == bytes.count, "a 200 that ended short without an error")
                }
            case 404:
                break  // the object went before the body started
            default:
                Issue.record("the download answered \(download.status)")
            }

            #expect(try await client.send(.get, "/recordings/\(recording.id)", token: user.token).status == .notFound)
            #expect(try await client.send(.get, recording.contentUrl, token: user.token).status == .notFound)
            #expect(try await client.list("?deleted=true", token: user.token).items.isEmpty)
            #expect(try await harness.rowCount() == 0)
            #expect(try await harness.storedKeys() == [])
        }
    }

    /// A restore and the purge of the same trashed recording at once, around the moment its
    /// retention ends: afterwards it is either restored (row and bytes) or gone (neither).
    @Test(arguments: TestStorageBackend.allCases)
    func restoreRacingThePurgeLeavesBothOrNeither(backend: TestStorageBackend) async throws {
        try await withRecordingService(backend, extra: ["RECORDING_TRASH_RETENTION_SECONDS": "3600"]) { client, harness in
            let user = try TestUser()
            let rounds = 8
            var recordings: [(Recording, [UInt8])] = []
            for round in 0..<rounds {
                let bytes = TestAudio.bytes(20_000 + round, seed: UInt64(40 + round))
                let recording = try await client.createRecording(bytes, token: user.token)
                #expect(try await client.send(.delete, "/recordings/\(recording.id)", token: user.token).status == .noContent)
                recordings.append((recording, bytes))
            }
            for (round, (recording, bytes)) in recordings.enumerated() {
                // The retention ends now, or a few milliseconds from now: which of the two
                // comes first differs from round to round.
                try await harness.execute(
                    "UPDATE recordings SET purge_after = now() + \(Double(round * 3)) * interval '1 millisecond' WHERE id = \(recording.id)")
                async let restore = client.send(.post, "/recordings/\(recording.id)/restore", token: user.token)
                async let purge = harness.dependencies.purger.purgeDue()
                let (restored, _) = try await (restore, purge)
                // Whatever is due by now goes (a restored recording is never due again).
                _ = try await harness.dependencies.purger.purgeDue()

                let key = try ObjectKey(RecordingRules.objectKey(recording.id))
                switch restored.status {
                case .ok:
                    #expect(try restored.decode(Recording.self).id == recording.id)
                    #expect(try await client.send(.get, "/recordings/\(recording.id)", token: user.token).status == .ok)
                    let download = try await client.send(.get, recording.contentUrl, token: user.token)
                    #expect(download.status == .ok, "restored, but its content answers \(download.status)")
                    #expect(Array(download.body.readableBytesView) == bytes)
                    #expect(try await harness.storage.head(key) != nil)
                case .notFound:
                    #expect(try await client.send(.get, "/recordings/\(recording.id)", token: user.token).status == .notFound)
                    #expect(try await client.send(.post, "/recordings/\(recording.id)/restore", token: user.token).status == .notFound)
                    #expect(try await harness.rowExists(recording.id) == false, "a row left without a restore")
                    #expect(try await harness.storage.head(key) == nil, "an object left without its row")
                default:
                    Issue.record("restore answered \(restored.status): \(String(buffer: restored.body))")
                }
                #expect(try await harness.rowsAndObjectsMatch(), "round \(round)")
            }
        }
    }
}

extension RecordingHarness {
    func rowExists(_ id: UUID) async throws -> Bool {
        try await TestDatabase.withClient(databaseURL) { client in
            var count = 0
            for try await value in try await client.query("SELECT count(*)::int FROM recordings WHERE id = \(id)").decode(Int.self) {
                count = value
            }
            return count == 1
        }
    }

    /// Every row has its object and every object its row (never one without the other).
    func rowsAndObjectsMatch(sourceLocation: SourceLocation = #_sourceLocation) async throws -> Bool {
        let keys = try await TestDatabase.withClient(databaseURL) { client in
            var keys: Set<String> = []
            for try await key in try await client.query("SELECT object_key FROM recordings").decode(String.self) { keys.insert(key) }
            return keys
        }
        let stored = Set(try await storedKeys())
        #expect(keys.subtracting(stored).isEmpty, "rows without an object: \(keys.subtracting(stored))", sourceLocation: sourceLocation)
        #expect(stored.subtracting(keys).isEmpty, "objects without a row: \(stored.subtracting(keys))", sourceLocation: sourceLocation)
        return keys == stored
    }
}

/// A download over a real socket that stops reading after its first chunk, runs `during`,
/// then reads the rest: what arrived, and how it ended.
struct StreamedDownload {
    var status: UInt
    var body: [UInt8]
    var failure: (any Error)?

    static func during(port: Int, path: String, token: String, _ during: () async throws -> Void) async throws -> StreamedDownload {
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
            let response = try await http.execute(request, timeout: .seconds(60))
            var result = StreamedDownload(status: response.status.code, body: [], failure: nil)
            var chunks = response.body.makeAsyncIterator()
            var more = true
            do {
                if let first = try await chunks.next() {
                    result.body += first.readableBytesView
                } else {
                    more = false
                }
            } catch {
                result.failure = error
                more = false
            }
            // The client reads no further meanwhile: the server is mid-stream.
            try await during()
            do {
                while more, let chunk = try await chunks.next() { result.body += chunk.readableBytesView }
            } catch {
                result.failure = error
            }
            try await http.shutdown()
            return result
        } catch {
            try? await http.shutdown()
            throw error
        }
    }
}
