import AsyncHTTPClient
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Shared
import TestSupport
import Testing

@testable import RecordingService

@Suite("Recording: uploads")
struct RecordingUploadTests {
    @Test(arguments: TestStorageBackend.allCases)
    func rawUploadStoresTheBytesAndTheirHash(backend: TestStorageBackend) async throws {
        try await withRecordingService(backend) { client, harness in
            let user = try TestUser()
            let bytes = TestAudio.bytes(50_000)
            let response = try await client.uploadRaw(bytes, fileName: "Morning take.mp3", contentType: "audio/mpeg; codecs=mp3", token: user.token)
            #expect(response.status == .created)
            let recording = try response.decode(Recording.self)
            #expect(response.headers[.location] == "/recordings/\(recording.id.uuidString.lowercased())")
            #expect(recording.title == "Morning take.mp3")
            #expect(recording.fileName == "Morning take.mp3")
            #expect(recording.contentType == "audio/mpeg")
            #expect(recording.sizeBytes == 50_000)
            #expect(recording.sha256 == TestAudio.sha256(bytes))
            #expect(recording.contentUrl == "/recordings/\(recording.id.uuidString.lowercased())/content")
            let json = try response.json
            #expect(Set(json.keys) == ["id", "title", "fileName", "contentType", "sizeBytes", "sha256", "createdAt", "contentUrl"])
            // Stored under a key made from the id, not from the file name.
            #expect(try await harness.storedKeys() == ["recordings/\(recording.id.uuidString.lowercased())"])
            let download = try await client.send(.get, recording.contentUrl, token: user.token)
            #expect(Array(buffer: download.body) == bytes)
        }
    }

    @Test(arguments: TestStorageBackend.allCases)
    func multipartUploadWithTitleBeforeOrAfterTheFile(backend: TestStorageBackend) async throws {
        try await withRecordingService(backend) { client, harness in
            let user = try TestUser()
            let bytes = TestAudio.bytes(120_000, seed: 3)
            let titleFirst = TestAudio.multipart([
                ("title", nil, nil, Array("  Rehearsal  ".utf8)),
                ("file", "C:\\music\\rehearsal.ogg", "audio/ogg", bytes),
            ])
            let first = try await client.uploadMultipart(titleFirst, token: user.token)
            #expect(first.status == .created, "\(String(buffer: first.body))")
            let a = try first.decode(Recording.self)
            #expect(a.title == "Rehearsal")
            #expect(a.fileName == "rehearsal.ogg")
            #expect(a.contentType == "audio/ogg")
            #expect(a.sha256 == TestAudio.sha256(bytes))
            #expect(a.sizeBytes == 120_000)

            let titleAfter = TestAudio.multipart([
                ("file", "b.wav", "audio/wav", bytes), ("title", nil, nil, Array("Later".utf8)), ("ignored", nil, nil, [1, 2]),
            ])
            let b = try await client.uploadMultipart(titleAfter, token: user.token).decode(Recording.self)
            #expect(b.title == "Later")
            let noTitle = try await client.uploadMultipart(TestAudio.multipart([("file", nil, "audio/flac", bytes)]), token: user.token)
            #expect(try noTitle.decode(Recording.self).title == "recording")

            let stored = try await client.send(.get, a.contentUrl, token: user.token)
            #expect(Array(buffer: stored.body) == bytes)
            #expect(try await harness.storedKeys().count == 3)
        }
    }

    @Test func nonAudioIsUnsupportedMediaType() async throws {
        try await withRecordingService { client, harness in
            let user = try TestUser()
            for contentType in ["text/plain", "application/octet-stream", "audio/*", "audio", "video/mp4"] {
                let response = try await client.uploadRaw([1, 2, 3], contentType: contentType, token: user.token)
                #expect(response.status == .unsupportedMediaType, "\(contentType)")
                #expect(try response.problem.code == "unsupported_media_type")
            }
            let noType = try await client.executeRequest(
                uri: "/recordings?fileName=a.mp3", method: .post, headers: [.authorization: "Bearer \(user.token)"], body: ByteBuffer(bytes: [1]))
            #expect(noType.status == .unsupportedMediaType)
            let image = try await client.uploadMultipart(TestAudio.multipart([("file", "a.png", "image/png", [1, 2, 3])]), token: user.token)
            #expect(image.status == .unsupportedMediaType)
            let untyped = try await client.uploadMultipart(TestAudio.multipart([("file", "a.mp3", nil, [1, 2, 3])]), token: user.token)
            #expect(untyped.status == .unsupportedMediaType)
            #expect(try await harness.rowCount() == 0)
            #expect(try await harness.storedKeys() == [])
        }
    }

    @Test(arguments: TestStorageBackend.allCases)
    func tooLargeIsRefusedAndNothingKept(backend: TestStorageBackend) async throws {
        try await withRecordingService(backend, extra: ["RECORDING_MAX_BYTES": "100000"]) { client, harness in
            let user = try TestUser()
            let exactly = try await client.uploadRaw(TestAudio.bytes(100_000), token: user.token)
            #expect(exactly.status == .created)
            let over = try await client.uploadRaw(TestAudio.bytes(100_001), token: user.token)
            #expect(over.status == .contentTooLarge)
            #expect(try over.problem.code == "payload_too_large")
            let multipartOver = try await client.uploadMultipart(
                TestAudio.multipart([("file", "a.mp3", "audio/mpeg", TestAudio.bytes(100_001))]), token: user.token)
            #expect(multipartOver.status == .contentTooLarge)
            // The limit counts the file's bytes, not the multipart framing around them.
            let multipartAtLimit = try await client.uploadMultipart(
                TestAudio.multipart([("title", nil, nil, Array("t".utf8)), ("file", "a.mp3", "audio/mpeg", TestAudio.bytes(100_000))]),
                token: user.token)
            #expect(multipartAtLimit.status == .created)
            #expect(try await harness.rowCount() == 2)
            #expect(try await harness.storedKeys().count == 2)
            try await harness.storage.removeAbandonedUploads(olderThan: Date().addingTimeInterval(60))
            #expect(try await harness.storage.list(prefix: "", startAfter: nil, limit: 10).count == 2)
        }
    }

    @Test func badUploadsAreClearProblems() async throws {
        try await withRecordingService { client, harness in
            let user = try TestUser()
            let noName = try await client.executeRequest(
                uri: "/recordings", method: .post, headers: [.contentType: "audio/mpeg", .authorization: "Bearer \(user.token)"],
                body: ByteBuffer(bytes: [1]))
            #expect(noName.status == .badRequest)
            #expect(try noName.problem.errors?.first?.field == "fileName")
            let empty = try await client.uploadRaw([], token: user.token)
            #expect(empty.status == .badRequest)
            #expect(try empty.problem.errors?.first?.field == "file")
            let noFile = try await client.uploadMultipart(TestAudio.multipart([("title", nil, nil, Array("x".utf8))]), token: user.token)
            #expect(noFile.status == .badRequest)
            #expect(try noFile.problem.errors?.first?.field == "file")
            let twoFiles = try await client.uploadMultipart(
                TestAudio.multipart([("file", "a.mp3", "audio/mpeg", [1]), ("file", "b.mp3", "audio/mpeg", [2])]), token: user.token)
            #expect(twoFiles.status == .badRequest)
            let noBoundary = try await client.executeRequest(
                uri: "/recordings", method: .post,
                headers: [.contentType: "multipart/form-data", .authorization: "Bearer \(user.token)"], body: ByteBuffer(bytes: [1]))
            #expect(noBoundary.status == .badRequest)
            let truncated = Array(TestAudio.multipart([("file", "a.mp3", "audio/mpeg", TestAudio.bytes(5000))]).dropLast(40))
            let cut = try await client.uploadMultipart(truncated, token: user.token)
            #expect(cut.status == .badRequest)
            #expect(try cut.problem.code == "upload_incomplete")
            let longTitle = try await client.uploadRaw([1, 2], title: String(repeating: "t", count: 201), token: user.token)
            #expect(longTitle.status == .badRequest)
            #expect(try longTitle.problem.errors?.first?.field == "title")
            let anonymous = try await client.executeRequest(
                uri: "/recordings?fileName=a.mp3", method: .post, headers: [.contentType: "audio/mpeg"], body: ByteBuffer(bytes: [1]))
            #expect(anonymous.status == .unauthorized)
            #expect(anonymous.headers[.wwwAuthenticate] == "Bearer")
            let forged = try await client.uploadRaw([1], token: user.token + "x")
            #expect(forged.status == .unauthorized)
            #expect(forged.headers[.wwwAuthenticate] == #"Bearer error="invalid_token""#)
            #expect(try await harness.rowCount() == 0)
            #expect(try await harness.storedKeys() == [])
        }
    }

    /// A multi-megabyte upload over a real socket, in chunks: the download hashes the same.
    /// (Its own client: the test client's 20-second timeout is tight for 12 MiB in a debug
    /// build next to every other test.)
    @Test(arguments: TestStorageBackend.allCases)
    func multiMegabyteUploadsOverTheNetwork(backend: TestStorageBackend) async throws {
        try await withRecordingService(backend, mode: .live) { client, harness in
            let user = try TestUser()
            let port = try #require(client.port)
            let http = HTTPClient(eventLoopGroupProvider: .singleton)
            defer { Task { try? await http.shutdown() } }
            func send(_ path: String, contentType: String? = nil, body: [UInt8]? = nil) async throws -> (status: UInt, contentLength: String?, body: [UInt8]) {
                var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
                request.method = body == nil ? .GET : .POST
                request.headers.add(name: "Authorization", value: "Bearer \(user.token)")
                if let contentType { request.headers.add(name: "Content-Type", value: contentType) }
                if let body {
                    // In 256 KiB pieces, as a real client streams.
                    let pieces = stride(from: 0, to: body.count, by: 256 * 1024).map { ByteBuffer(bytes: body[$0..<min($0 + 256 * 1024, body.count)]) }
                    request.body = .stream(BufferSequence(buffers: pieces), length: .known(Int64(body.count)))
                }
                let response = try await http.execute(request, timeout: .seconds(120))
                let bytes = Array(buffer: try await response.body.collect(upTo: 64 << 20))
                return (response.status.code, response.headers.first(name: "content-length"), bytes)
            }
            // 12 MiB (and a few bytes), as the README says.
            let bytes = TestAudio.bytes(12 * 1024 * 1024 + 5, seed: 11)
            let sha = TestAudio.sha256(bytes)
            let (rawStatus, _, rawBody) = try await send("/recordings?fileName=long.wav", contentType: "audio/wav", body: bytes)
            #expect(rawStatus == 201)
            let a = try JSONDecoder.iso8601.decode(Recording.self, from: Data(rawBody))
            #expect(a.sha256 == sha)
            // Multipart has no length for the file: over S3 this is a multipart upload (5 + 5 + 2 MiB parts).
            let (multipartStatus, _, multipartBody) = try await send(
                "/recordings", contentType: "multipart/form-data; boundary=\(TestAudio.boundary)",
                body: TestAudio.multipart([("file", "long.wav", "audio/wav", bytes)]))
            #expect(multipartStatus == 201)
            let b = try JSONDecoder.iso8601.decode(Recording.self, from: Data(multipartBody))
            #expect(b.sha256 == sha)
            #expect(b.sizeBytes == Int64(bytes.count))
            for recording in [a, b] {
                let (status, contentLength, body) = try await send(recording.contentUrl)
                #expect(status == 200)
                #expect(contentLength == String(bytes.count))
                #expect(TestAudio.sha256(body) == sha)
            }
            #expect(try await harness.storedKeys().count == 2)
        }
    }

    @Test func storeThatIsDownIs503AndLeavesNoRow() async throws {
        try await withRecordingService(
            .fileSystem,
            extra: [
                "STORAGE_BACKEND": "s3", "S3_ENDPOINT": "http://127.0.0.1:1", "S3_BUCKET": "down", "S3_ACCESS_KEY_ID": "a",
                "S3_SECRET_ACCESS_KEY": "b",
            ], waitForReady: false
        ) { client, harness in
            let user = try TestUser()
            let ready = try await client.send(.get, "/ready")
            #expect(ready.status == .serviceUnavailable)
            #expect(try ready.json["checks"]?["storage"] == .string("unavailable"))
            let raw = try await client.uploadRaw(TestAudio.bytes(10_000), token: user.token)
            #expect(raw.status == .serviceUnavailable)
            #expect(try raw.problem.code == "service_unavailable")
            #expect(raw.headers[.retryAfter] != nil)
            let multipart = try await client.uploadMultipart(
                TestAudio.multipart([("file", "a.mp3", "audio/mpeg", TestAudio.bytes(10_000))]), token: user.token)
            #expect(multipart.status == .serviceUnavailable)
            #expect(try await harness.rowCount() == 0)
        }
    }

    @Test func fileSystemStoreThatBreaksIs503() async throws {
        let folder = try TestStorageBackend.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // A file where the store's folder should be: every write fails.
        let blocked = folder + "/blocked"
        #expect(FileManager.default.createFile(atPath: blocked, contents: Data()))
        try await withRecordingService(.fileSystem, extra: ["STORAGE_PATH": blocked], waitForReady: false) { client, harness in
            let user = try TestUser()
            let response = try await client.uploadRaw(TestAudio.bytes(1000), token: user.token)
            #expect(response.status == .serviceUnavailable)
            #expect(try await harness.rowCount() == 0)
        }
    }

    /// Uploads per user are limited (a token bucket in recording's database), before a byte
    /// of the body is stored; other users are not affected.
    @Test func uploadsPerUserAreLimited() async throws {
        try await withRecordingService(extra: ["RECORDING_UPLOAD_BURST": "2", "RECORDING_UPLOADS_PER_HOUR": "2"]) { client, harness in
            let user = try TestUser()
            for index in 0..<2 {
                let response = try await client.uploadRaw(TestAudio.bytes(1000), fileName: "take-\(index).mp3", contentType: "audio/mpeg", token: user.token)
                #expect(response.status == .created)
            }
            let refused = try await client.uploadRaw(TestAudio.bytes(1000), fileName: "take-3.mp3", contentType: "audio/mpeg", token: user.token)
            #expect(refused.status == .tooManyRequests)
            #expect(try refused.problem.code == "rate_limited")
            #expect(refused.headers[.retryAfter] == "1800")
            #expect(try await harness.rowCount(owner: user.id) == 2)
            #expect(try await harness.storedKeys().count == 2)
            let other = try TestUser()
            let allowed = try await client.uploadRaw(TestAudio.bytes(1000), fileName: "mine.mp3", contentType: "audio/mpeg", token: other.token)
            #expect(allowed.status == .created)
        }
    }
}
