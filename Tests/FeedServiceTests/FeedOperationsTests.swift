import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Shared
import TestSupport
import Testing

@testable import FeedService

@Suite("Feed: account deletion, sweeper, operations")
struct FeedOperationsTests {
    @Test func internalDeleteRemovesTheUsersPostsAndImages() async throws {
        try await withFeedService { feed in
            let gone = try await feed.auth.signup(name: "Gone")
            let stays = try await feed.auth.signup(name: "Stays")
            let first = try await feed.createPost(gone, form: MultipartForm().field("title", "a").file(TestImages.png())).decode(FeedJSON.self)
            _ = try await feed.createPost(gone, form: MultipartForm().field("title", "b").file(TestImages.gif).file(TestImages.png(seed: 4)))
            let kept = try await feed.createPost(stays, form: MultipartForm().field("title", "c").file(TestImages.gif)).decode(FeedJSON.self)
            #expect(try await feed.storedKeys().count == 4)

            let path = "/internal/users/\(gone.id.apiString)"
            // User tokens (even the user's own) are not service credentials.
            #expect(try await feed.client.send(.delete, path, token: gone.token).status == .unauthorized)
            #expect(try await feed.client.send(.delete, path).status == .unauthorized)
            #expect(try await feed.rowCounts().feeds == 3)

            let service = try TestEnvironment.serviceToken(from: "auth")
            #expect(try await feed.client.send(.delete, path, token: service).status == .noContent)
            #expect(try await feed.list().items.map(\.id) == [kept.id])
            #expect(try await feed.client.send(.get, "/feeds/\(first.id)").status == .notFound)
            #expect(try await feed.storedKeys() == [kept.images[0].objectKey(post: kept.id)])
            #expect(try await feed.rowCounts().images == 1)

            // Idempotent.
            #expect(try await feed.client.send(.delete, path, token: service).status == .noContent)
            #expect(try await feed.client.send(.delete, "/internal/users/\(UUID().apiString)", token: service).status == .noContent)
            #expect(try await feed.client.send(.delete, "/internal/users/nope", token: service).status == .badRequest)
        }
    }

    @Test func theSweeperRemovesObjectsWithoutARow() async throws {
        try await withFeedService(extra: ["FEED_SWEEP_INTERVAL_SECONDS": "0.1", "FEED_ORPHAN_GRACE_SECONDS": "0"]) { feed in
            let ada = try await feed.auth.signup()
            let post = try await feed.createPost(ada, form: MultipartForm().field("title", "kept").file(TestImages.png())).decode(FeedJSON.self)
            let orphan = try ObjectKey("feeds/\(UUID().apiString)/\(UUID().apiString)")
            let bytes = ByteBuffer(bytes: TestImages.gif)
            try await feed.storage.put(orphan, body: RequestBody(buffer: bytes), length: Int64(bytes.readableBytes))
            try await eventually { try await feed.storage.head(orphan) == nil }
            #expect(try await feed.storedKeys() == [post.images[0].objectKey(post: post.id)])
            #expect(try await feed.client.send(.get, post.images[0].url).status == .ok)
        }
    }

    @Test func healthReadinessMetricsAndDocument() async throws {
        try await withFeedService { feed in
            #expect(try await feed.client.send(.get, "/health").status == .ok)
            let ready = try await feed.client.send(.get, "/ready")
            #expect(ready.status == .ok)
            #expect(try ready.json["checks"] == .object(["database": .string("ok"), "storage": .string("ok")]))
            let metrics = try await feed.client.send(.get, "/metrics")
            #expect(metrics.status == .ok)
            let document = try await feed.client.send(.get, "/openapi.yaml")
            #expect(String(buffer: document.body).hasPrefix("openapi: 3.1"))
        }
    }

    @Test func readinessReportsABrokenStore() async throws {
        try await withFeedService(extra: ["STORAGE_PATH": "/dev/null/feed-store"]) { feed in
            let ready = try await feed.client.send(.get, "/ready")
            #expect(ready.status == .serviceUnavailable)
            #expect(try ready.json["checks"] == .object(["database": .string("ok"), "storage": .string("unavailable")]))
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
