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
    @Test func userDeletedRemovesTheUsersPostsImagesAndName() async throws {
        try await withFeedService { service in
            let gone = try await service.auth.signup(name: "Gone")
            let stays = try await service.auth.signup(name: "Stays")
            let first = try await service.createPost(gone, form: MultipartForm().field("title", "a").file(TestImages.png())).decode(PostBody.self)
            _ = try await service.createPost(gone, form: MultipartForm().field("title", "b").file(TestImages.gif).file(TestImages.png(seed: 4)))
            let kept = try await service.createPost(stays, form: MultipartForm().field("title", "c").file(TestImages.gif)).decode(PostBody.self)
            #expect(try await service.storedKeys().count == 4)

            // User tokens (even the user's own) are not service credentials.
            let event = try TestEnvironment.userEventJSON(.deleted(gone.id))
            #expect(try await service.client.send(.post, "/internal/events", json: event, token: gone.token).status == .unauthorized)
            #expect(try await service.client.send(.post, "/internal/events", json: event).status == .unauthorized)
            #expect(try await service.rowCounts().feeds == 3)

            #expect(try await service.client.deliver(.deleted(gone.id), to: "feed").status == .noContent)
            #expect(try await service.list().items.map(\.id) == [kept.id])
            #expect(try await service.client.send(.get, "/feeds/\(first.id)").status == .notFound)
            #expect(try await service.storedKeys() == [kept.images[0].objectKey(post: kept.id)])
            #expect(try await service.rowCounts().images == 1)
            // The token is refused; a late rename does not bring the name back.
            #expect(try await service.client.send(.post, "/feeds", json: #"{"title": "ghost"}"#, token: gone.token).status == .unauthorized)
            let late = UserEvent(id: 3, type: .userRenamed, userId: gone.id, name: "Back", version: UserEvent.nameVersion(of: Date()))
            #expect(try await service.client.deliver(late, to: "feed").status == .noContent)
            try await TestDatabase.withClient(service.databaseURL) { client in
                let rows = try await client.query("SELECT name FROM authors WHERE id = \(gone.id)")
                for try await name in rows.decode(String?.self) { #expect(name == nil) }
            }

            // A post the deleted user wrote in the window before the event arrived (here:
            // straight into the database) goes with the redelivery.
            try await TestDatabase.withClient(service.databaseURL) { client in
                try await client.query(
                    "INSERT INTO feeds (id, author_id, title, content) VALUES (\(UUID()), \(gone.id), 'late', '')").consume()
            }
            #expect(try await service.client.deliver(.deleted(gone.id, id: 2), to: "feed").status == .noContent)
            #expect(try await service.list().items.map(\.id) == [kept.id])
            #expect(try await service.client.deliver(.deleted(UUID()), to: "feed").status == .noContent)
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
            #expect(try ready.json["checks"] == .object(["database": .string("ok"), "storage": .string("ok"), "userEvents": .string("ok")]))
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
            ("AUTH_URL", "not a url"),
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
    }
}
