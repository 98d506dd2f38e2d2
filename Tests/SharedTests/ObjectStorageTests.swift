import Configuration
import Foundation
import Logging
import NIOCore
import ObjectStore
import Shared
import TestSupport
import Testing

/// Both backends against the same contract: the folder store, and SeaweedFS over S3.
@Suite("Storage: object stores")
struct ObjectStorageTests {
    static func bytes(_ count: Int, seed: UInt64 = 1) -> [UInt8] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
    }

    /// `data` in chunks, as a request body would arrive.
    static func chunks(_ data: [UInt8], size: Int = 64 * 1024) -> AsyncStream<ByteBuffer> {
        AsyncStream { continuation in
            var offset = 0
            while offset < data.count {
                continuation.yield(ByteBuffer(bytes: data[offset..<min(offset + size, data.count)]))
                offset += size
            }
            continuation.finish()
        }
    }

    struct Boom: Error {}

    /// Yields `data`, then fails.
    static func failing(after data: [UInt8]) -> AsyncThrowingStream<ByteBuffer, any Error> {
        AsyncThrowingStream { continuation in
            continuation.yield(ByteBuffer(bytes: data))
            continuation.finish(throwing: Boom())
        }
    }

    static func read(_ storage: any ObjectStorage, _ key: ObjectKey, range: ClosedRange<Int64>? = nil) async throws -> [UInt8] {
        Array(buffer: try await storage.get(key, range: range).collect(upTo: 64 << 20))
    }

    @Test(arguments: TestStorageBackend.allCases)
    func putGetHeadDeleteRoundTrip(backend: TestStorageBackend) async throws {
        try await backend.withStorage { storage in
            let key = try ObjectKey("recordings/\(UUID().uuidString.lowercased())")
            let data = Self.bytes(300_000)
            let info = try await storage.put(key, body: Self.chunks(data), length: Int64(data.count))
            #expect(info.size == 300_000)
            #expect(try await Self.read(storage, key) == data)
            let head = try #require(try await storage.head(key))
            #expect(head.size == 300_000)
            #expect(abs(head.lastModified.timeIntervalSinceNow) < 120)
            // Ranges at the edges.
            #expect(try await Self.read(storage, key, range: 0...0) == [data[0]])
            #expect(try await Self.read(storage, key, range: 299_999...299_999) == [data[299_999]])
            #expect(try await Self.read(storage, key, range: 1000...200_999) == Array(data[1000...200_999]))
            let partial = try await storage.get(key, range: 10...19)
            #expect(partial.length == 10)
            #expect(partial.info.size == 300_000)
            await #expect(throws: ObjectStorageError.rangeNotSatisfiable(size: 300_000)) {
                _ = try await storage.get(key, range: 300_000...300_001)
            }
            // Replacing keeps one object with the new bytes.
            try await storage.put(key, body: Self.chunks([1, 2, 3]), length: 3)
            #expect(try await Self.read(storage, key) == [1, 2, 3])

            try await storage.delete(key)
            #expect(try await storage.head(key) == nil)
            await #expect(throws: ObjectStorageError.notFound(key)) { _ = try await storage.get(key) }
            try await storage.delete(key)  // deleting again is fine
        }
    }

    @Test(arguments: TestStorageBackend.allCases)
    func unknownLengthStreamsInPartsAndHashesTheSame(backend: TestStorageBackend) async throws {
        try await backend.withStorage { storage in
            // Over two S3 parts (5 MiB each), in odd-sized chunks.
            let data = Self.bytes(11 * 1024 * 1024 + 17, seed: 7)
            let key = try ObjectKey("big/\(UUID().uuidString.lowercased())")
            let info = try await storage.put(key, body: Self.chunks(data, size: 333_333), length: nil)
            #expect(info.size == Int64(data.count))
            let hasher = SHA256Hasher()
            var received = 0
            try await storage.get(key).forEachChunk { chunk in
                received += chunk.readableBytes
                chunk.withUnsafeReadableBytes { hasher.update($0) }
            }
            #expect(received == data.count)
            #expect(hasher.finalize() == Crypto.sha256(data))
            // A small unknown-length body is a plain put.
            let small = try ObjectKey("big/small")
            try await storage.put(small, body: Self.chunks([9, 8, 7]), length: nil)
            #expect(try await Self.read(storage, small) == [9, 8, 7])
            // Empty objects exist too.
            let empty = try ObjectKey("big/empty")
            try await storage.put(empty, body: Self.chunks([]), length: 0)
            #expect(try await storage.head(empty)?.size == 0)
            #expect(try await Self.read(storage, empty) == [])
        }
    }

    @Test(arguments: TestStorageBackend.allCases)
    func aFailedPutLeavesNothing(backend: TestStorageBackend) async throws {
        try await backend.withStorage { storage in
            let key = try ObjectKey("recordings/failed")
            // The body's own error comes out as it is (not as a store outage).
            await #expect(throws: Boom.self) {
                try await storage.put(key, body: Self.failing(after: Self.bytes(100_000)), length: 1_000_000)
            }
            await #expect(throws: Boom.self) {
                try await storage.put(key, body: Self.failing(after: Self.bytes(6 * 1024 * 1024)), length: nil)
            }
            // Fewer bytes than announced.
            await #expect(throws: (any Error).self) {
                try await storage.put(key, body: Self.chunks(Self.bytes(10)), length: 11)
            }
            #expect(try await storage.head(key) == nil)
            #expect(try await storage.list(prefix: "recordings/", startAfter: nil, limit: 10) == [])
            // Nothing half-written is left either, once abandoned uploads are cleared.
            try await storage.removeAbandonedUploads(olderThan: Date().addingTimeInterval(60))
            #expect(try await storage.list(prefix: "", startAfter: nil, limit: 10) == [])
        }
    }

    @Test(arguments: TestStorageBackend.allCases)
    func listPagesInKeyOrderByPrefix(backend: TestStorageBackend) async throws {
        try await backend.withStorage { storage in
            let names = ["recordings/c", "recordings/a", "recordings/b/x", "recordingsX/d", "other/e"]
            for name in names {
                try await storage.put(try ObjectKey(name), body: Self.chunks([1]), length: 1)
            }
            let first = try await storage.list(prefix: "recordings/", startAfter: nil, limit: 2)
            #expect(first.map(\.key.rawValue) == ["recordings/a", "recordings/b/x"])
            let second = try await storage.list(prefix: "recordings/", startAfter: first.last?.key, limit: 2)
            #expect(second.map(\.key.rawValue) == ["recordings/c"])
            #expect(try await storage.list(prefix: "recordings/", startAfter: second.last?.key, limit: 2) == [])
            #expect(try await storage.list(prefix: "", startAfter: nil, limit: 10).count == 5)
            #expect(first.allSatisfy { $0.size == 1 })
        }
    }

    @Test func keysCannotEscapeTheRoot() throws {
        for bad in ["", "/abs", "a/../b", "..", "a/./b", ".hidden", "a//b", "a/", "a\0b", "a\\b", "ä", "a b", String(repeating: "a", count: 513)] {
            #expect(throws: ObjectStorageError.self, "\(bad.debugDescription)") { try ObjectKey(bad) }
        }
        for good in ["a", "recordings/0f8fad5b-d9cb-469f-a165-70867728950e", "a.b/c_d-e=f+g"] {
            #expect(throws: Never.self) { try ObjectKey(good) }
        }
    }

    @Test func fileSystemWritesThroughATemporaryFileAndSweepsLeftovers() async throws {
        let folder = try TestStorageBackend.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let storage = try FileSystemObjectStorage(root: folder, logger: TestEnvironment.logger)
        try await storage.prepare()
        let key = try ObjectKey("recordings/x")
        try await storage.put(key, body: Self.chunks([1, 2, 3]), length: 3)
        #expect(FileManager.default.contents(atPath: folder + "/recordings/x") == Data([1, 2, 3]))
        // What a crash mid-put leaves: a .part file, never a file under the key.
        let leftover = folder + "/.incoming/crashed.part"
        #expect(FileManager.default.createFile(atPath: leftover, contents: Data([0])))
        #expect(try await storage.list(prefix: "", startAfter: nil, limit: 10).map(\.key) == [key])
        #expect(try await storage.removeAbandonedUploads(olderThan: Date().addingTimeInterval(-3600)) == 0)
        #expect(FileManager.default.fileExists(atPath: leftover))
        #expect(try await storage.removeAbandonedUploads(olderThan: Date().addingTimeInterval(60)) == 1)
        #expect(!FileManager.default.fileExists(atPath: leftover))
        #expect(try await storage.head(key)?.size == 3)
    }

    /// Once `get` has answered, the bytes are the object's, whatever happens to it next: the
    /// service sends its status line after `get`, so a delete racing a download is a `404`
    /// (before) or a complete body (after), never a `200` cut short.
    @Test(arguments: TestStorageBackend.allCases)
    func contentOpenedBeforeADeleteIsReadInFull(backend: TestStorageBackend) async throws {
        try await backend.withStorage { storage in
            let key = try ObjectKey("recordings/racing-\(UUID().uuidString.lowercased())")
            let bytes = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            try await storage.put(key, body: Self.chunks(bytes), length: Int64(bytes.count))
            let content = try await storage.get(key, range: nil)
            try await storage.delete(key)
            #expect(try await storage.head(key) == nil)
            var received: [UInt8] = []
            try await content.forEachChunk { received += Array(buffer: $0) }
            #expect(received == bytes)
            await #expect(throws: ObjectStorageError.self) { try await storage.get(key, range: nil) }
        }
    }

    @Test func fileSystemDeletesLeaveNoEmptyFoldersAndPutsRacingThemLand() async throws {
        let folder = try TestStorageBackend.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let storage = try FileSystemObjectStorage(root: folder, logger: TestEnvironment.logger)
        try await storage.prepare()
        let (first, second) = (try ObjectKey("feeds/p/1"), try ObjectKey("feeds/p/2"))
        try await storage.put(first, body: Self.chunks([1]), length: 1)
        try await storage.put(second, body: Self.chunks([2]), length: 1)
        try await storage.delete(first)
        #expect(FileManager.default.fileExists(atPath: folder + "/feeds/p"))
        try await storage.delete(second)
        #expect(!FileManager.default.fileExists(atPath: folder + "/feeds"))
        #expect(FileManager.default.fileExists(atPath: folder))

        // A put into a folder that a delete is emptying at the same moment still lands.
        for round in 0..<30 {
            let (gone, new) = (try ObjectKey("feeds/q/gone-\(round)"), try ObjectKey("feeds/q/new-\(round)"))
            try await storage.put(gone, body: Self.chunks([0]), length: 1)
            async let deleted: Void = storage.delete(gone)
            async let stored = storage.put(new, body: Self.chunks([7]), length: 1)
            _ = try await (deleted, stored)
            #expect(try await storage.head(new)?.size == 1)
            try await storage.delete(new)
        }
        #expect(!FileManager.default.fileExists(atPath: folder + "/feeds"))
    }

    @Test func s3RefusesAWrongSignature() async throws {
        let server = try TestStorageBackend.s3Server()
        var configuration = S3ObjectStorage.Configuration(
            endpoint: server.endpoint, region: server.region, bucket: TestStorageBackend.uniqueBucket(),
            accessKeyID: server.accessKey, secretAccessKey: server.secretKey + "x")
        let wrong = try S3ObjectStorage(configuration: configuration, logger: TestEnvironment.logger)
        defer { Task { try? await wrong.shutdown() } }
        do {
            try await wrong.put(try ObjectKey("k"), body: Self.chunks([1]), length: 1)
            Issue.record("a wrong secret was accepted")
        } catch let error as ObjectStorageError {
            guard case .rejected(_, let status, let code) = error else { throw error }
            #expect(status == 403)
            #expect(code == "SignatureDoesNotMatch")
        }
        // HEAD answers carry no error body: only the status says it.
        await #expect(throws: ObjectStorageError.rejected(operation: "head bucket", status: 403, code: "HTTP403")) {
            try await wrong.prepare()
        }
        // The right secret works (the bucket is created on demand).
        configuration.secretAccessKey = server.secretKey
        let right = try S3ObjectStorage(configuration: configuration, logger: TestEnvironment.logger)
        defer { Task { try? await right.shutdown() } }
        try await right.prepare()
        try await right.prepare()  // idempotent
        try await right.put(try ObjectKey("k"), body: Self.chunks([1]), length: 1)
        #expect(try await right.head(try ObjectKey("k"))?.size == 1)
    }

    @Test func s3StoreThatIsDownIsUnavailable() async throws {
        let storage = try S3ObjectStorage(
            configuration: .init(endpoint: "http://127.0.0.1:1", region: "us-east-1", bucket: "down", accessKeyID: "a", secretAccessKey: "b"),
            logger: TestEnvironment.logger)
        for operation in ["prepare", "put", "get", "head", "delete", "list"] {
            do {
                let key = try ObjectKey("k")
                switch operation {
                case "prepare": try await storage.prepare()
                case "put": try await storage.put(key, body: Self.chunks([1]), length: 1)
                case "get": _ = try await storage.get(key)
                case "head": _ = try await storage.head(key)
                case "delete": try await storage.delete(key)
                default: _ = try await storage.list(prefix: "", startAfter: nil, limit: 1)
                }
                Issue.record("\(operation) succeeded against a closed port")
            } catch let error as APIError {
                #expect(error.status == .serviceUnavailable, "\(operation)")
            } catch {
                Issue.record("\(operation): \(error)")
            }
        }
        try await storage.shutdown()
    }

    @Test func configurationNamesItsVariables() throws {
        #expect(throws: ConfigurationError.self) {
            try ObjectStorageConfiguration(reader: ConfigReaderShim(["STORAGE_BACKEND": "tape"]).reader, serviceName: "x")
        }
        #expect(throws: ConfigurationError.self) {
            try ObjectStorageConfiguration(reader: ConfigReaderShim(["STORAGE_BACKEND": "s3"]).reader, serviceName: "x")
        }
        guard case .fileSystem(let path, let gatewayPath) = try ObjectStorageConfiguration(reader: ConfigReaderShim([:]).reader, serviceName: "x") else {
            Issue.record("the default is not the filesystem")
            return
        }
        #expect(path == "storage/x")
        #expect(gatewayPath == nil)
        for bad in ["_store/files/x/", "/_store/files/x", "/_store/../x/", "/_store//x/", "/_store/x?y/", "/_store/ x/"] {
            #expect(throws: ConfigurationError.self, "\(bad)") {
                try ObjectStorageConfiguration(reader: ConfigReaderShim(["STORAGE_GATEWAY_PATH": bad]).reader, serviceName: "x")
            }
        }
        let s3 = try ObjectStorageConfiguration(
            reader: ConfigReaderShim([
                "STORAGE_BACKEND": "s3", "S3_ENDPOINT": "http://127.0.0.1:8333", "S3_ACCESS_KEY_ID": "a", "S3_SECRET_ACCESS_KEY": "b",
            ]).reader, serviceName: "recording")
        guard case .s3(let configuration) = s3 else {
            Issue.record("not s3")
            return
        }
        #expect(configuration.bucket == "recording")
        #expect(configuration.region == "us-east-1")
        #expect(throws: ObjectStorageError.self) {
            _ = try S3ObjectStorage(
                configuration: .init(endpoint: "http://h/path", region: "r", bucket: "ok-bucket", accessKeyID: "a", secretAccessKey: "b"),
                logger: TestEnvironment.logger)
        }
    }
}

struct ConfigReaderShim {
    let reader: ConfigReader
    init(_ variables: [String: String]) {
        reader = ConfigReader(provider: EnvironmentVariablesProvider(environmentVariables: variables))
    }
}
