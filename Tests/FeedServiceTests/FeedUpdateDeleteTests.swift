import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import PostgresNIO
import Shared
import TestSupport
import Testing

@testable import FeedService

@Suite("Feed: author-only changes")
struct FeedUpdateDeleteTests {
    @Test func theAuthorPatchesTitleAndContent() async throws {
        try await withFeedService { service in
            let ada = try await service.auth.signup(name: "Ada")
            let created = try await service.createPost(ada, title: "Before", content: "old")
            // updatedAt has second precision in JSON: move the post an hour into the past (as
            // if it had been written then) instead of waiting for the clock to tick.
            try await TestDatabase.withClient(service.databaseURL) { client in
                try await client.query(
                    "UPDATE feeds SET created_at = created_at - interval '1 hour', updated_at = updated_at - interval '1 hour' WHERE id = \(try #require(UUID(uuidString: created.id)))"
                ).consume()
            }
            let post = try await service.client.send(.get, "/feeds/\(created.id)").decode(PostBody.self)
            #expect(post.updatedAt < created.updatedAt)

            let title = try await service.client.send(.patch, "/feeds/\(post.id)", json: #"{"title": " After "}"#, token: ada.token)
            #expect(title.status == .ok)
            let renamed = try title.decode(PostBody.self)
            #expect(renamed.title == "After")
            #expect(renamed.content == "old")
            #expect(renamed.createdAt == post.createdAt)
            #expect(renamed.updatedAt > post.updatedAt)
            #expect(renamed.author.name == "Ada")

            let content = try await service.client.send(.patch, "/feeds/\(post.id)", json: #"{"content": ""}"#, token: ada.token)
            #expect(try content.decode(PostBody.self).content == "")
            #expect(try await service.client.send(.get, "/feeds/\(post.id)").decode(PostBody.self).title == "After")
        }
    }

    @Test func onlyTheAuthorMayChangeOrDelete() async throws {
        try await withFeedService { service in
            let ada = try await service.auth.signup(name: "Ada")
            let eve = try await service.auth.signup(name: "Eve")
            let post = try await service.createPost(ada, title: "Mine")

            let patch = try await service.client.send(.patch, "/feeds/\(post.id)", json: #"{"title": "Eve's"}"#, token: eve.token)
            #expect(patch.status == .forbidden)
            #expect(try patch.problem.code == "not_author")
            let multipart = try await service.client.send(
                .patch, "/feeds/\(post.id)", form: MultipartForm().file(TestImages.png()), token: eve.token)
            #expect(multipart.status == .forbidden)
            let delete = try await service.client.send(.delete, "/feeds/\(post.id)", token: eve.token)
            #expect(delete.status == .forbidden)

            #expect(try await service.client.send(.patch, "/feeds/\(post.id)", json: #"{"title": "x"}"#).status == .unauthorized)
            #expect(try await service.client.send(.delete, "/feeds/\(post.id)").status == .unauthorized)
            let unknown = UUID().apiString
            #expect(try await service.client.send(.patch, "/feeds/\(unknown)", json: #"{"title": "x"}"#, token: eve.token).status == .notFound)
            #expect(try await service.client.send(.delete, "/feeds/\(unknown)", token: eve.token).status == .notFound)
            #expect(try await service.client.send(.delete, "/feeds/nope", token: eve.token).status == .notFound)

            #expect(try await service.client.send(.get, "/feeds/\(post.id)").decode(PostBody.self).title == "Mine")
            #expect(try await service.storedKeys() == [])
        }
    }

    @Test func invalidPatchesChangeNothing() async throws {
        try await withFeedService { service in
            let ada = try await service.auth.signup()
            let post = try await service.createPost(ada, title: "Stays")
            for json in [#"{}"#, #"{"title": ""}"#, #"{"title": null, "content": null}"#, #"{"content": "\#(String(repeating: "c", count: 20_001))"}"#] {
                let response = try await service.client.send(.patch, "/feeds/\(post.id)", json: json, token: ada.token)
                #expect(response.status == .badRequest, "\(json.prefix(40))")
            }
            let stored = try await service.client.send(.get, "/feeds/\(post.id)").decode(PostBody.self)
            #expect(stored.withAuthorName(post.author.name) == post)
        }
    }

    @Test func addAndRemoveImagesInOneRequest() async throws {
        try await withFeedService { service in
            let ada = try await service.auth.signup()
            let (a, b, c) = (TestImages.png(seed: 1), TestImages.png(seed: 2), TestImages.png(seed: 3))
            let created = try await service.createPost(ada, form: MultipartForm().field("title", "album").file(a).file(b))
            let post = try created.decode(PostBody.self)
            let (imageA, imageB) = (post.images[0], post.images[1])

            let patch = try await service.client.send(
                .patch, "/feeds/\(post.id)",
                form: MultipartForm().field("title", "album, edited").file(c).file(TestImages.gif).field("removeImageIds", imageA.id),
                token: ada.token)
            #expect(patch.status == .ok)
            let edited = try patch.decode(PostBody.self)
            #expect(edited.title == "album, edited")
            #expect(edited.content == post.content)
            // The kept image first, then the added ones in the order sent.
            #expect(edited.images.count == 3)
            #expect(edited.images.first == imageB)
            #expect(edited.images.dropFirst().map(\.contentType) == ["image/png", "image/gif"])
            let added = edited.images[1]
            #expect(Array(try await service.client.send(.get, added.url).body.readableBytesView) == c)
            #expect(Array(try await service.client.send(.get, imageB.url).body.readableBytesView) == b)
            // The removed image is gone, bytes and all.
            #expect(try await service.client.send(.get, imageA.url).status == .notFound)
            #expect(try await service.storedKeys().count == 3)
            #expect(try await service.storedKeys().contains { $0.hasSuffix(imageA.id) } == false)
            #expect(try await service.client.send(.get, "/feeds/\(post.id)").decode(PostBody.self) == edited)
        }
    }

    @Test func aRejectedPatchLeavesThePostAndStoreAsTheyWere() async throws {
        try await withFeedService { service in
            let ada = try await service.auth.signup()
            var form = MultipartForm().field("title", "nine")
            for seed in 0..<9 { form = form.file(TestImages.png(seed: UInt8(seed))) }
            let post = try await service.createPost(ada, form: form).decode(PostBody.self)
            let keys = try await service.storedKeys()
            #expect(keys.count == 9)

            // 9 + 2 > 10: refused after both new images were stored; they go again.
            let tooMany = try await service.client.send(
                .patch, "/feeds/\(post.id)", form: MultipartForm().field("title", "eleven").file(TestImages.gif).file(TestImages.png(seed: 77)),
                token: ada.token)
            #expect(tooMany.status == .badRequest)
            #expect(try tooMany.problem.errors?.map(\.field) == ["images"])

            // Removing an image of another post (or none at all) is refused, with the new image.
            let other = try await service.createPost(ada, form: MultipartForm().field("title", "other").file(TestImages.gif)).decode(PostBody.self)
            let foreign = try await service.client.send(
                .patch, "/feeds/\(post.id)",
                form: MultipartForm().file(TestImages.png(seed: 99)).field("removeImageIds", other.images[0].id), token: ada.token)
            #expect(foreign.status == .badRequest)
            #expect(try foreign.problem.errors?.map(\.field) == ["removeImageIds"])
            let malformed = try await service.client.send(
                .patch, "/feeds/\(post.id)", form: MultipartForm().field("removeImageIds", "not-an-id"), token: ada.token)
            #expect(malformed.status == .badRequest)
            let fake = try await service.client.send(
                .patch, "/feeds/\(post.id)", form: MultipartForm().file(Array("GIF8 not really".utf8)), token: ada.token)
            #expect(fake.status == .unsupportedMediaType)

            let stored = try await service.client.send(.get, "/feeds/\(post.id)").decode(PostBody.self)
            #expect(stored.withAuthorName(post.author.name) == post)
            #expect(Set(try await service.storedKeys()) == Set(keys + [try #require(other.images.first).objectKey(post: other.id)]))
            #expect(try service.incomingFiles() == [])

            // Swapping one for one at ten is fine.
            let ten = try await service.client.send(
                .patch, "/feeds/\(post.id)", form: MultipartForm().file(TestImages.gif).file(TestImages.gif).field("removeImageIds", post.images[0].id),
                token: ada.token)
            #expect(ten.status == .ok)
            #expect(try ten.decode(PostBody.self).images.count == 10)
        }
    }

    @Test func deletingAPostDeletesItsImages() async throws {
        try await withFeedService { service in
            let ada = try await service.auth.signup()
            let post = try await service.createPost(ada, form: MultipartForm().field("title", "short-lived").file(TestImages.png()).file(TestImages.gif))
                .decode(PostBody.self)
            let keep = try await service.createPost(ada, form: MultipartForm().field("title", "keeper").file(TestImages.gif)).decode(PostBody.self)
            #expect(try await service.storedKeys().count == 3)

            #expect(try await service.client.send(.delete, "/feeds/\(post.id)", token: ada.token).status == .noContent)
            #expect(try await service.client.send(.get, "/feeds/\(post.id)").status == .notFound)
            #expect(try await service.client.send(.get, post.images[0].url).status == .notFound)
            #expect(try await service.storedKeys() == [keep.images[0].objectKey(post: keep.id)])
            #expect(try await service.client.send(.delete, "/feeds/\(post.id)", token: ada.token).status == .notFound)
            #expect(try await service.list().items.map(\.id) == [keep.id])
        }
    }
}

extension PostBody.Image {
    func objectKey(post: String) -> String { "feeds/\(post)/\(id)" }
}
