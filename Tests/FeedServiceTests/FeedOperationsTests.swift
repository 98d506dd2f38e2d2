import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import ObjectStore
import Shared
import TestSupport
import Testing

@testable import FeedService

@Suite("Feed: account deletion, sweeper, operations")
struct FeedOperationsTests {
    @Test func internalDeleteRemovesTheUsersPostsAndImages() async throws {
        try await withFeedService { service in
            let gone = try await service.auth.signup(name: "Gone")
            let stays = try await service.auth.signup(name: "Stays")
            let first = try await service.createPost(gone, form: MultipartForm().field("title", "a").file(TestImages.png())).decode(PostBody.self)
            _ = try await service.createPost(gone, form: MultipartForm().field("title", "b").file(TestImages.gif).file(TestImages.png(seed: 4)))
            let kept = try await service.createPost(stays, form: MultipartForm().field("title", "c").file(TestImages.gif)).decode(PostBody.self)
            #expect(try await service.storedKeys().count == 4)

            let path = "/internal/users/\(gone.id.apiString)"
            // User tokens (even the user's own) are not service credentials.
            #expect(try await service.client.send(.delete, path, token: gone.token).status == .unauthorized)
            #expect(try await service.client.send(.delete, path).status == .unauthorized)
            #expect(try await service.rowCounts().feeds == 3)

            let credential = try TestEnvironment.serviceToken(from: "auth")
            #expect(try await service.client.send(.delete, path, token: credential).status == .noContent)
            #expect(try await service.list().items.map(\.id) == [kept.id])
            #expect(try await service.client.send(.get, "/feeds/\(first.id)").status == .notFound)
            #expect(try await service.storedKeys() == [kept.images[0].objectKey(post: kept.id)])
            #expect(try await service.rowCounts().images == 1)

            // Idempotent.
            #expect(try await service.client.send(.delete, path, token: credential).status == .noContent)
            #expect(try await service.client.send(.delete, "/internal/users/\(UUID().apiString)", token: credential).status == .noContent)
            #expect(try await service.client.send(.delete, "/internal/users/nope", token: credential).status == .badRequest)
        }
    }

    @Test func theSweeperRemovesObjectsWithoutARow() async throws {
        // A grace of an hour, and an orphan made two hours old: with a grace of 0 the sweeper
        // (every 0.1 s) could also take the post's image between its put and its row's commit.
        try await withFeedService(extra: ["FEED_SWEEP_INTERVAL_SECONDS": "0.1", "FEED_ORPHAN_GRACE_SECONDS": "3600"]) { service in
            let ada = try await service.auth.signup()
            let post = try await service.createPost(ada, form: MultipartForm().field("title", "kept").file(TestImages.png())).decode(PostBody.self)
            let orphan = try ObjectKey("feeds/\(UUID().apiString)/\(UUID().apiString)")
            let bytes = ByteBuffer(bytes: TestImages.gif)
            try await service.storage.put(orphan, body: RequestBody(buffer: bytes), length: Int64(bytes.readableBytes))
            try FileManager.default.setAttributes(
                [.modificationDate: Date.now.addingTimeInterval(-7200)], ofItemAtPath: service.storagePath + "/" + orphan.rawValue)
            #expect(try await service.storage.head(orphan).map { $0.lastModified < Date.now.addingTimeInterval(-3600) } == true)
            try await eventually { try await service.storage.head(orphan) == nil }
            #expect(try await service.storedKeys() == [post.images[0].objectKey(post: post.id)])
            #expect(try await service.client.send(.get, post.images[0].url).status == .ok)
        }
    }

    @Test func healthReadinessMetricsAndDocument() async throws {
        try await withFeedService { service in
            #expect(try await service.client.send(.get, "/health").status == .ok)
            // The store's write probe, like any check, may miss its 2 s deadline while the whole
            // suite loads the machine: wait for it as a load balancer would.
            try await eventually { try await service.client.send(.get, "/ready").status == .ok }
            let ready = try await service.client.send(.get, "/ready")
            #expect(try ready.json["checks"] == .object(["database": .string("ok"), "storage": .string("ok")]))
            let metrics = try await service.client.send(.get, "/metrics")
            #expect(metrics.status == .ok)
            let document = try await service.client.send(.get, "/openapi.yaml")
            #expect(String(buffer: document.body).hasPrefix("openapi: 3.1"))
        }
    }

    @Test func readinessReportsABrokenStore() async throws {
        try await withFeedService(extra: ["STORAGE_PATH": "/dev/null/feed-store"]) { service in
            let ready = try await service.client.send(.get, "/ready")
            #expect(ready.status == .serviceUnavailable)
            #expect(try ready.json["checks"]?["storage"] == .string("unavailable"))
        }
    }

    @Test func configurationRejectsBadValues() throws {
        for (name, value) in [
            ("AUTH_URL", "not a url"), ("AUTHOR_CACHE_TTL_SECONDS", "soon"), ("AUTHOR_CACHE_SIZE", "0"),
            ("AUTH_TIMEOUT_MS", "-5"), ("FEED_ORPHAN_GRACE_SECONDS", "x"), ("STORAGE_BACKEND", "tape"),
        ] {
            let reader = TestEnvironment.reader(databaseURL: "postgres://u@127.0.0.1/db", extra: [name: value])
            #expect(throws: ConfigurationError.self, "\(name)=\(value)") {
                try FeedConfiguration(reader: reader, logger: TestEnvironment.logger)
            }
        }
        let defaults = try FeedConfiguration(
            reader: TestEnvironment.reader(databaseURL: "postgres://u@127.0.0.1/db"), logger: TestEnvironment.logger)
        #expect(defaults.common.port == 8084)
        #expect(defaults.authURL == "http://127.0.0.1:8081")
        #expect(defaults.authorCacheTTL == .seconds(60))
        #expect(defaults.authorCacheSize == 10_000)
    }

    @Test func theNameCacheKeepsItsSizeBound() async {
        let cache = AuthorNameCache(ttl: .seconds(60), capacity: 10)
        let ids = (0..<25).map { _ in UUID() }
        for id in ids {
            await cache.store(requested: [id], found: [id: "n"])
        }
        #expect(await cache.count <= 10)
        // The newest entries stay.
        let (names, _) = await cache.lookup([ids[24]])
        #expect(names[ids[24]] == "n")
        let (oldest, answered) = await cache.lookup([ids[0]], includingExpired: true)
        #expect(oldest.isEmpty && answered.isEmpty)
    }
}
