import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import PostgresNIO
import ObjectStore
import Shared
import Synchronization
import TestSupport
import Testing

@testable import RecordingService

/// What a test can reach besides the HTTP client: the database and the service's parts.
struct RecordingHarness: Sendable {
    let databaseURL: String
    let dependencies: RecordingDependencies

    var storage: any ObjectStorage { dependencies.storage }

    /// Every object key in the store under `recordings/`.
    func storedKeys() async throws -> [String] {
        try await storage.list(prefix: "recordings/", startAfter: nil, limit: 1000).map(\.key.rawValue)
    }

    func rowCount(owner: UUID? = nil) async throws -> Int {
        try await TestDatabase.withClient(databaseURL) { client in
            let rows: PostgresRowSequence
            if let owner {
                rows = try await client.query("SELECT count(*)::int FROM recordings WHERE owner_id = \(owner)")
            } else {
                rows = try await client.query("SELECT count(*)::int FROM recordings")
            }
            var count = 0
            for try await value in rows.decode(Int.self) { count = value }
            return count
        }
    }

    func execute(_ query: PostgresQuery) async throws {
        try await TestDatabase.withClient(databaseURL) { client in
            for try await _ in try await client.query(query) {}
        }
    }
}

/// Runs `test` against a real recording service on its own fresh database and store.
func withRecordingService(
    _ backend: TestStorageBackend = .fileSystem,
    mode: TestingSetup = .router,
    extra: [String: String] = [:],
    waitForReady: Bool = true,
    wrapStorage: @escaping @Sendable (any ObjectStorage) -> any ObjectStorage = { $0 },
    _ test: @escaping @Sendable (any TestClientProtocol, RecordingHarness) async throws -> Void
) async throws {
    let databaseURL = try await TestDatabase.create()
    let (storageVariables, cleanUp) = try backend.variables()
    defer { cleanUp() }
    let reader = TestEnvironment.reader(
        databaseURL: databaseURL,
        extra: storageVariables.merging([
            // Background passes run only when a test asks for them.
            "RECORDING_PURGE_INTERVAL_SECONDS": "3600", "RECORDING_SWEEP_INTERVAL_SECONDS": "3600",
            // Tests upload as much as they need; the limit's own test sets it.
            "RECORDING_UPLOAD_BURST": "100000",
        ]) { $1 }.merging(extra) { $1 })
    let configuration = try RecordingConfiguration(reader: reader, logger: TestEnvironment.logger)
    var dependencies = try RecordingDependencies(configuration: configuration, logger: TestEnvironment.logger)
    // What the routes (uploads, downloads) use; the purger and sweeper keep the store itself.
    dependencies.storage = wrapStorage(dependencies.storage)
    let app = try buildApplication(dependencies)
    let harness = RecordingHarness(databaseURL: databaseURL, dependencies: dependencies)
    try await app.test(mode) { client in
        // The store is prepared by a background service; wait for it like a load balancer would.
        if waitForReady {
            try await eventually(timeout: .seconds(40)) { try await client.send(.get, "/ready").status == .ok }
        }
        try await test(client, harness)
    }
}

/// A test user: an id and the access token the auth service would issue.
struct TestUser: Sendable {
    let id: UUID
    let token: String

    init() throws {
        id = UUID()
        token = try TestEnvironment.accessToken(userID: id)
    }
}

struct Recording: Codable, Equatable {
    var id: UUID
    var title: String
    var fileName: String
    var contentType: String
    var sizeBytes: Int64
    var sha256: String
    var createdAt: Date
    var contentUrl: String
}

struct RecordingPage: Decodable {
    var items: [Recording]
    var nextCursor: String?
}

extension JSONDecoder {
    static var iso8601: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}

enum TestAudio {
    /// Deterministic bytes that also contain CR LF and `--` runs, to keep multipart parsing honest.
    static func bytes(_ count: Int, seed: UInt64 = 1) -> [UInt8] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15
        var result = (0..<count).map { _ -> UInt8 in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
        let tricky = Array("\r\n--\r\n--Boundary\r\n\r\n-".utf8)
        var offset = 7
        while offset + tricky.count < count {
            result.replaceSubrange(offset..<offset + tricky.count, with: tricky)
            offset += 9973
        }
        return result
    }

    static func sha256(_ bytes: [UInt8]) -> String { Hex.encode(Crypto.sha256(bytes)) }

    static let boundary = "Boundary-7d3f1c2a"

    /// A multipart body with the given parts (name, file name, content type, bytes).
    static func multipart(_ parts: [(name: String, fileName: String?, contentType: String?, bytes: [UInt8])], boundary: String = boundary) -> [UInt8] {
        var body: [UInt8] = []
        for part in parts {
            var header = "--\(boundary)\r\nContent-Disposition: form-data; name=\"\(part.name)\""
            if let fileName = part.fileName { header += "; filename=\"\(fileName)\"" }
            header += "\r\n"
            if let contentType = part.contentType { header += "Content-Type: \(contentType)\r\n" }
            header += "\r\n"
            body += Array(header.utf8) + part.bytes + Array("\r\n".utf8)
        }
        return body + Array("--\(boundary)--\r\n".utf8)
    }
}

extension TestClientProtocol {
    /// Raw upload: the bytes with an audio type and `?fileName=`.
    func uploadRaw(
        _ bytes: [UInt8], fileName: String = "take.mp3", contentType: String = "audio/mpeg", title: String? = nil, token: String
    ) async throws -> TestResponse {
        var uri = "/recordings?fileName=\(fileName.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? fileName)"
        if let title { uri += "&title=\(title.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? title)" }
        return try await executeRequest(
            uri: uri, method: .post,
            headers: [.contentType: contentType, .authorization: "Bearer \(token)"], body: ByteBuffer(bytes: bytes))
    }

    func uploadMultipart(_ body: [UInt8], boundary: String = TestAudio.boundary, token: String) async throws -> TestResponse {
        try await executeRequest(
            uri: "/recordings", method: .post,
            headers: [.contentType: "multipart/form-data; boundary=\(boundary)", .authorization: "Bearer \(token)"],
            body: ByteBuffer(bytes: body))
    }

    /// Uploads and returns the created recording (the test fails otherwise).
    func createRecording(_ bytes: [UInt8] = TestAudio.bytes(2000), fileName: String = "take.mp3", token: String) async throws -> Recording {
        let response = try await uploadRaw(bytes, fileName: fileName, token: token)
        #expect(response.status == .created, "upload answered \(response.status): \(String(buffer: response.body))")
        return try response.decode(Recording.self)
    }

    func list(_ query: String = "", token: String) async throws -> RecordingPage {
        let response = try await send(.get, "/recordings\(query)", token: token)
        #expect(response.status == .ok, "list answered \(response.status): \(String(buffer: response.body))")
        return try response.decode(RecordingPage.self)
    }
}

// MARK: - watching the store

/// Counts the bytes the service hands to the store's `put`, so a test can wait until an
/// upload has really reached the store (instead of sleeping and hoping it did).
final class StoreProbe: Sendable {
    private let bytes = Mutex<Int64>(0)
    func add(_ count: Int) { bytes.withLock { $0 += Int64(count) } }
    var bytesStored: Int64 { bytes.withLock { $0 } }
}

/// The store, with the bytes of every put counted into `probe`.
struct ProbedStorage: ForwardingObjectStorage {
    let base: any ObjectStorage
    let probe: StoreProbe

    func put<Body: AsyncSequence & Sendable>(_ key: ObjectKey, body: Body, length: Int64?) async throws -> ObjectInfo
    where Body.Element == ByteBuffer {
        try await base.put(key, body: CountingSequence(base: body, probe: probe), length: length)
    }
}

struct CountingSequence<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == ByteBuffer {
    typealias Element = ByteBuffer
    let base: Base
    let probe: StoreProbe

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        let probe: StoreProbe
        mutating func next() async throws -> ByteBuffer? {
            let buffer = try await base.next()
            if let buffer { probe.add(buffer.readableBytes) }
            return buffer
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: base.makeAsyncIterator(), probe: probe) }
}
