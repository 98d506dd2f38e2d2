import AuthService
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

@testable import FeedService

// MARK: - a real auth service, in this process

/// The auth service running on a real port (its own fresh database, the test secrets),
/// until `stop()`: feeds ask it for author names over HTTP, as in production.
final class RunningAuth: Sendable {
    let url: String
    let client: any TestClientProtocol
    private let stopSignal: AsyncStream<Void>.Continuation
    private let task: Task<Void, any Error>

    private init(url: String, client: any TestClientProtocol, stopSignal: AsyncStream<Void>.Continuation, task: Task<Void, any Error>) {
        self.url = url
        self.client = client
        self.stopSignal = stopSignal
        self.task = task
    }

    struct DidNotStart: Error {}

    static func start() async throws -> RunningAuth {
        let databaseURL = try await TestDatabase.create()
        let reader = TestEnvironment.reader(databaseURL: databaseURL, extra: ["BCRYPT_COST": "4", "HTTP_PORT": "0"])
        let configuration = try AuthConfiguration(reader: reader, logger: TestEnvironment.logger)
        let app = try await AuthService.buildApplication(configuration: configuration, logger: TestEnvironment.logger)
        let (started, startedContinuation) = AsyncStream.makeStream(of: (any TestClientProtocol).self)
        let (stopped, stopContinuation) = AsyncStream.makeStream(of: Void.self)
        let task = Task {
            defer { startedContinuation.finish() }
            try await app.test(.live) { client in
                startedContinuation.yield(client)
                for await _ in stopped {}
            }
        }
        var iterator = started.makeAsyncIterator()
        guard let client = await iterator.next(), let port = client.port else {
            try await task.value
            throw DidNotStart()
        }
        return RunningAuth(url: "http://127.0.0.1:\(port)", client: client, stopSignal: stopContinuation, task: task)
    }

    /// Shuts the server down; calls to `url` are refused afterwards.
    func stop() async throws {
        stopSignal.finish()
        try await task.value
    }

    /// Signs a new user up; returns their id and access token.
    func signup(name: String = "Ada") async throws -> TestUser {
        let email = "user-\(UUID().uuidString.prefix(12).lowercased())@example.com"
        let response = try await client.send(
            .post, "/auth/signup", json: #"{"email": "\#(email)", "password": "correct horse", "name": "\#(name)"}"#)
        #expect(response.status == .created)
        let session = try response.decode(SessionJSON.self)
        return TestUser(id: session.user.id, name: name, token: session.accessToken)
    }

    func rename(_ user: TestUser, to name: String) async throws {
        let response = try await client.send(.patch, "/auth/me", json: #"{"name": "\#(name)"}"#, token: user.token)
        #expect(response.status == .ok)
    }
}

struct SessionJSON: Decodable {
    struct User: Decodable {
        var id: UUID
    }
    var user: User
    var accessToken: String
}

struct TestUser: Sendable {
    var id: UUID
    var name: String
    var token: String
}

// MARK: - the feed service under test

/// Counts the calls that reach the author directory (and the ids in each).
actor DirectoryCalls {
    private(set) var calls: [[UUID]] = []

    func record(_ ids: [UUID]) { calls.append(ids) }
    func reset() { calls = [] }
}

struct CountingDirectory: AuthorDirectory {
    let base: any AuthorDirectory
    let calls: DirectoryCalls

    func names(of ids: [UUID], requestID: String, logger: Logger) async throws -> [UUID: String] {
        await calls.record(ids)
        return try await base.names(of: ids, requestID: requestID, logger: logger)
    }
}

/// What a feed test works with: the feed service (in-process router), the auth service it
/// asks for names, a view of the same object store, and the feed database.
struct FeedTestContext: Sendable {
    let client: any TestClientProtocol
    let auth: RunningAuth
    let storage: FileSystemObjectStorage
    let storagePath: String
    let databaseURL: String
    let directoryCalls: DirectoryCalls
}

/// Runs `test` against a feed service on a fresh database and a fresh storage folder, with a
/// real auth service started for it (stopped afterwards, or earlier by the test).
func withFeedService(
    extra: [String: String] = [:],
    wrapStorage: @escaping @Sendable (any ObjectStorage, _ storagePath: String) -> any ObjectStorage = { storage, _ in storage },
    _ test: @escaping @Sendable (FeedTestContext) async throws -> Void
) async throws {
    let auth = try await RunningAuth.start()
    let storagePath = FileManager.default.temporaryDirectory.appendingPathComponent("feed-store-\(UUID().uuidString.lowercased())").path
    defer { try? FileManager.default.removeItem(atPath: storagePath) }
    do {
        let databaseURL = try await TestDatabase.create()
        let variables = [
            "AUTH_URL": auth.url, "STORAGE_BACKEND": "filesystem", "STORAGE_PATH": storagePath,
            // The whole suite loads two cores: a name lookup may take longer than production's
            // 1 s; tests of the degraded path stop auth (refused at once) or set their own.
            "AUTH_TIMEOUT_MS": "10000",
            // Tests post as much as they need; the limit's own test sets it.
            "FEED_POST_BURST": "100000",
        ].merging(extra) { $1 }
        let configuration = try FeedConfiguration(
            reader: TestEnvironment.reader(databaseURL: databaseURL, extra: variables), logger: TestEnvironment.logger)
        let calls = DirectoryCalls()
        var dependencies = try FeedDependencies(configuration: configuration, logger: TestEnvironment.logger)
        // What the routes (posts, images, /ready) use; the sweeper keeps the store itself.
        dependencies.storage = wrapStorage(dependencies.storage, storagePath)
        dependencies.authorDirectory = CountingDirectory(base: dependencies.authorDirectory, calls: calls)
        let app = try buildApplication(dependencies)
        let storage = try FileSystemObjectStorage(root: storagePath, logger: TestEnvironment.logger)
        try await app.test(.router) { client in
            try await test(FeedTestContext(
                client: client, auth: auth, storage: storage, storagePath: storagePath, databaseURL: databaseURL,
                directoryCalls: calls))
        }
    } catch {
        try? await auth.stop()
        throw error
    }
    try await auth.stop()
}

extension FeedTestContext {
    /// Every object under `feeds/`.
    func storedKeys() async throws -> [String] {
        try await storage.list(prefix: "feeds/", startAfter: nil, limit: 10_000).map(\.key.rawValue)
    }

    /// Partial uploads the store still holds.
    func incomingFiles() throws -> [String] {
        let folder = storagePath + "/.incoming"
        guard FileManager.default.fileExists(atPath: folder) else { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: folder)
    }

    /// Rows in the feed database: (posts, images).
    func rowCounts() async throws -> (feeds: Int, images: Int) {
        try await TestDatabase.withClient(databaseURL) { client in
            var counts = (feeds: -1, images: -1)
            for try await (feeds, images) in try await client.query(
                "SELECT (SELECT count(*) FROM feeds)::int, (SELECT count(*) FROM feed_images)::int"
            ).decode((Int, Int).self) {
                counts = (feeds, images)
            }
            return counts
        }
    }

    /// Nothing of a failed request stays: no row, no object, no partial upload.
    func expectNothingStored(sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let counts = try await rowCounts()
        #expect(counts.feeds == 0 && counts.images == 0, "rows left: \(counts)", sourceLocation: sourceLocation)
        #expect(try await storedKeys() == [], sourceLocation: sourceLocation)
        #expect(try incomingFiles() == [], sourceLocation: sourceLocation)
    }

    func createPost(_ user: TestUser, title: String = "Hello", content: String = "First post") async throws -> PostBody {
        let response = try await client.send(
            .post, "/feeds", json: #"{"title": "\#(title)", "content": "\#(content)"}"#, token: user.token)
        #expect(response.status == .created)
        return try response.decode(PostBody.self)
    }

    func createPost(_ user: TestUser, form: MultipartForm) async throws -> TestResponse {
        try await client.send(.post, "/feeds", form: form, token: user.token)
    }

    func list(_ query: String = "") async throws -> PageJSON {
        let response = try await client.send(.get, "/feeds\(query)")
        #expect(response.status == .ok)
        return try response.decode(PageJSON.self)
    }

    /// The value of a counter in `/metrics` (0 when it is not there yet).
    func metric(_ name: String) async throws -> Double {
        let text = String(buffer: try await client.send(.get, "/metrics").body)
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") || line.hasPrefix(name + "{") {
            return Double(line.split(separator: " ").last ?? "") ?? 0
        }
        return 0
    }
}

// MARK: - JSON the tests read

extension PostBody {
    /// The post with the author's name replaced: that name comes from auth, which a loaded
    /// machine may not answer in time (the degraded path, tested on its own), so checks that
    /// a change left a post alone compare everything else.
    func withAuthorName(_ name: String?) -> PostBody {
        var post = self
        post.author.name = name
        return post
    }
}

struct PostBody: Decodable, Equatable {
    struct Author: Decodable, Equatable {
        var id: String
        var name: String?
    }
    struct Image: Decodable, Equatable {
        var id: String
        var url: String
        var contentType: String
        var sizeBytes: Int
    }
    var id: String
    var title: String
    var content: String
    var author: Author
    var images: [Image]
    var createdAt: Date
    var updatedAt: Date
}

struct PageJSON: Decodable {
    var items: [PostBody]
    var nextCursor: String?
}

// MARK: - multipart bodies

/// A `multipart/form-data` body, built part by part.
struct MultipartForm: Sendable {
    let boundary = "feed-test-\(UUID().uuidString.prefix(8))"
    private(set) var body = ByteBuffer()

    var contentType: String { "multipart/form-data; boundary=\(boundary)" }

    func field(_ name: String, _ value: String) -> MultipartForm {
        var form = self
        form.body.writeString("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n")
        return form
    }

    func file(_ bytes: [UInt8], name: String = "images", fileName: String = "image.png", contentType: String? = "image/png") -> MultipartForm {
        var form = self
        form.body.writeString("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"; filename=\"\(fileName)\"\r\n")
        if let contentType { form.body.writeString("Content-Type: \(contentType)\r\n") }
        form.body.writeString("\r\n")
        form.body.writeBytes(bytes)
        form.body.writeString("\r\n")
        return form
    }

    /// The body with its closing boundary.
    var encoded: ByteBuffer {
        var body = self.body
        body.writeString("--\(boundary)--\r\n")
        return body
    }
}

extension TestClientProtocol {
    func send(_ method: HTTPRequest.Method, _ uri: String, form: MultipartForm, token: String?) async throws -> TestResponse {
        var headers: HTTPFields = [.contentType: form.contentType]
        if let token { headers[.authorization] = "Bearer \(token)" }
        return try await executeRequest(uri: uri, method: method, headers: headers, body: form.encoded)
    }
}

// MARK: - images

/// Small, valid image files made on the spot.
enum TestImages {
    /// A valid PNG (8-bit RGBA, stored deflate blocks) of `width`×`height` pixels whose
    /// colours depend on `seed`, so two calls give different files.
    static func png(width: Int = 2, height: Int = 2, seed: UInt8 = 0) -> [UInt8] {
        var raw: [UInt8] = []
        for y in 0..<height {
            raw.append(0)  // filter: none
            for x in 0..<width {
                raw += [UInt8(truncatingIfNeeded: x * 40 &+ Int(seed)), UInt8(truncatingIfNeeded: y * 40), seed, 255]
            }
        }
        var ihdr: [UInt8] = []
        ihdr += bigEndian(UInt32(width)) + bigEndian(UInt32(height))
        ihdr += [8, 6, 0, 0, 0]  // depth 8, RGBA, deflate, no filter method, no interlace
        return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
            + chunk("IHDR", ihdr) + chunk("IDAT", zlibStored(raw)) + chunk("IEND", [])
    }

    /// The smallest GIF: one transparent pixel.
    static let gif: [UInt8] = [
        0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
        0xFF, 0xFF, 0xFF, 0x21, 0xF9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2C, 0x00, 0x00, 0x00, 0x00,
        0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x01, 0x44, 0x00, 0x3B,
    ]

    /// A JPEG's start (SOI + APP0 JFIF); enough for the magic-byte check.
    static let jpegStart: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 0x4A, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0xFF, 0xD9]

    /// A WebP's RIFF header; enough for the magic-byte check.
    static let webpStart: [UInt8] = Array("RIFF".utf8) + [0x1A, 0, 0, 0] + Array("WEBPVP8L".utf8) + [0x0D, 0, 0, 0, 0x2F, 0, 0, 0]

    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let typeAndData = Array(type.utf8) + data
        return bigEndian(UInt32(data.count)) + typeAndData + bigEndian(crc32(typeAndData))
    }

    static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        precondition(data.count < 65_536)
        let length = UInt16(data.count)
        var out: [UInt8] = [0x78, 0x01, 0x01]  // zlib header; one final stored block
        out += [UInt8(length & 0xFF), UInt8(length >> 8), UInt8(~length & 0xFF), UInt8(~length >> 8)]
        out += data
        var a: UInt32 = 1
        var b: UInt32 = 0
        for byte in data {
            a = (a + UInt32(byte)) % 65_521
            b = (b + a) % 65_521
        }
        return out + bigEndian(b << 16 | a)
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }

    static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }
}

// MARK: - a store that breaks

/// A real filesystem store whose disk fails under the `failingPut`-th put, after its first
/// chunk: the folder the store stages uploads in disappears (as an unmounted or broken volume
/// would make it), so the store's own write fails and the store reports it as it does any disk
/// failure. The fake itself throws nothing: what the client sees is the service's doing.
final class FailingStorage: ForwardingObjectStorage {
    let base: any ObjectStorage
    let root: String
    let failingPut: Int
    private let puts = Mutex(0)
    private let broke = Mutex(false)

    init(base: any ObjectStorage, root: String, failingPut: Int) {
        self.base = base
        self.root = root
        self.failingPut = failingPut
    }

    /// Whether the disk failure really happened (a test that expects it checks this).
    var didBreak: Bool { broke.withLock { $0 } }

    /// Where the store stages an upload until it is complete (see `FeedTestContext.incomingFiles`).
    var stagingFolder: String { root + "/.incoming" }

    func put<Body: AsyncSequence & Sendable>(_ key: ObjectKey, body: Body, length: Int64?) async throws -> ObjectInfo
    where Body.Element == ByteBuffer {
        let number = puts.withLock { count in
            count += 1
            return count
        }
        guard number == failingPut else { return try await base.put(key, body: body, length: length) }
        let failure = DiskFailingSequence(base: body) { [self] in
            // The upload's partial file is open in there right now.
            guard FileManager.default.fileExists(atPath: stagingFolder) else { return }
            try? FileManager.default.removeItem(atPath: stagingFolder)
            broke.withLock { $0 = true }
        }
        return try await base.put(key, body: failure, length: length)
    }
}

/// A value a test hands out of a `@Sendable` closure (e.g. the store it wrapped).
final class Captured<Value: Sendable>: Sendable {
    private let slot = Mutex<Value?>(nil)
    func set(_ value: Value) { slot.withLock { $0 = value } }
    var value: Value? { slot.withLock { $0 } }
}

/// Passes the body through unchanged, calling `breakDisk` once after the first chunk.
struct DiskFailingSequence<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == ByteBuffer {
    typealias Element = ByteBuffer
    let base: Base
    let breakDisk: @Sendable () -> Void

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        let breakDisk: @Sendable () -> Void
        var delivered = 0

        mutating func next() async throws -> ByteBuffer? {
            if delivered == 1 { breakDisk() }
            delivered += 1
            return try await base.next()
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: base.makeAsyncIterator(), breakDisk: breakDisk) }
}
