import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Shared
import TestSupport
import Testing

@testable import FeedService

@Suite("Feed: create and read")
struct FeedCreateTests {
    @Test func createAsJSONThenReadIt() async throws {
        try await withFeedService { service in
            let ada = try await service.auth.signup(name: "Ada")
            let response = try await service.client.send(
                .post, "/feeds", json: #"{"title": "  Hello  ", "content": "First post"}"#, token: ada.token)
            #expect(response.status == .created)
            let created = try response.decode(PostBody.self)
            #expect(response.headers[.location] == "/feeds/\(created.id)")
            #expect(created.id == created.id.lowercased())
            #expect(created.title == "Hello")
            #expect(created.content == "First post")
            #expect(created.author == PostBody.Author(id: ada.id.apiString, name: "Ada"))
            #expect(created.images == [])
            #expect(created.createdAt == created.updatedAt)
            // author.name is written out, and no other key is.
            #expect(Set(try response.json.keys) == ["id", "title", "content", "author", "images", "createdAt", "updatedAt"])

            let read = try await service.client.send(.get, "/feeds/\(created.id)")
            #expect(read.status == .ok)
            #expect(try read.decode(PostBody.self) == created)
        }
    }

    @Test func unknownOrMalformedIDsAreNotFound() async throws {
        try await withFeedService { service in
            for path in ["/feeds/\(UUID().apiString)", "/feeds/not-a-uuid", "/feeds/\(UUID().apiString)/images/\(UUID().apiString)"] {
                let response = try await service.client.send(.get, path)
                #expect(response.status == .notFound, "\(path)")
                #expect(response.headers[.contentType] == "application/problem+json")
            }
            #expect(try await service.client.send(.get, "/feeds/\(UUID().apiString)").problem.code == "feed_not_found")
        }
    }

    @Test func creatingNeedsAValidToken() async throws {
        try await withFeedService { service in
            let anonymous = try await service.client.send(.post, "/feeds", json: #"{"title": "t", "content": ""}"#)
            #expect(anonymous.status == .unauthorized)
            #expect(anonymous.headers[.wwwAuthenticate] == "Bearer")
            let forged = try await service.client.send(.post, "/feeds", json: #"{"title": "t", "content": ""}"#, token: "not.a.token")
            #expect(forged.status == .unauthorized)
            #expect(try forged.problem.code == "invalid_token")
            #expect(try await service.rowCounts().feeds == 0)
        }
    }

    @Test func titleAndContentRules() async throws {
        try await withFeedService { service in
            let user = try await service.auth.signup()
            func create(_ json: String) async throws -> TestResponse {
                try await service.client.send(.post, "/feeds", json: json, token: user.token)
            }
            let title200 = String(repeating: "t", count: 200)
            let content20k = String(repeating: "c", count: 20_000)
            #expect(try await create(#"{"title": "\#(title200)", "content": "\#(content20k)"}"#).status == .created)
            #expect(try await create(#"{"title": "Empty content is fine", "content": ""}"#).status == .created)
            #expect(try await create(#"{"title": "Content may be left out"}"#).status == .created)

            let cases: [(String, Set<String>)] = [
                (#"{"content": "no title"}"#, ["title"]),
                (#"{"title": "   ", "content": ""}"#, ["title"]),
                (#"{"title": "\#(title200)t", "content": ""}"#, ["title"]),
                (#"{"title": "ok", "content": "\#(content20k)c"}"#, ["content"]),
                (#"{"title": "", "content": "\#(content20k)c"}"#, ["title", "content"]),
                (#"{"title": "nul \u0000", "content": ""}"#, ["title"]),
                (#"{"title": 5}"#, ["title"]),
            ]
            for (json, fields) in cases {
                let response = try await create(json)
                #expect(response.status == .badRequest, "\(json.prefix(60))")
                let problem = try response.problem
                #expect(problem.code == "validation_failed")
                #expect(Set(problem.errors?.map(\.field) ?? []) == fields, "\(json.prefix(60))")
            }
            let plain = try await service.client.send(
                .post, "/feeds", json: "title=x", token: user.token, headers: [.contentType: "text/plain"])
            #expect(plain.status == .unsupportedMediaType)
            #expect(try await service.rowCounts().feeds == 3)
        }
    }

    @Test func multipartImagesRoundTripByteForByte() async throws {
        try await withFeedService { service in
            let user = try await service.auth.signup(name: "Grace")
            let png = TestImages.png(width: 3, height: 2, seed: 7)
            let form = MultipartForm()
                .field("title", "Pictures")
                .file(png, fileName: "a.png", contentType: "image/png")
                .file(TestImages.gif, fileName: "b.gif", contentType: "application/octet-stream")
                .file(TestImages.jpegStart, fileName: "c.jpg", contentType: nil)
                .file(TestImages.webpStart, fileName: "d.webp", contentType: "image/webp")
                .field("content", "four images, in this order")
            let response = try await service.createPost(user, form: form)
            #expect(response.status == .created)
            let created = try response.decode(PostBody.self)
            #expect(created.title == "Pictures")
            #expect(created.content == "four images, in this order")
            #expect(created.author.name == "Grace")
            // Types come from the bytes (the GIF was declared octet-stream, the JPEG not at all); order is kept.
            #expect(created.images.map(\.contentType) == ["image/png", "image/gif", "image/jpeg", "image/webp"])
            #expect(created.images.map(\.sizeBytes) == [png.count, TestImages.gif.count, TestImages.jpegStart.count, TestImages.webpStart.count])
            for image in created.images {
                #expect(image.url == "/feeds/\(created.id)/images/\(image.id)")
            }
            #expect(try await service.storedKeys().count == 4)

            let first = created.images[0]
            let download = try await service.client.send(.get, first.url)
            #expect(download.status == .ok)
            #expect(Array(download.body.readableBytesView) == png)
            #expect(download.headers[.contentType] == "image/png")
            #expect(download.headers[.contentLength] == String(png.count))
            #expect(download.headers[.cacheControl] == "public, max-age=31536000, immutable")
            let etag = try #require(download.headers[.eTag])
            #expect(etag == "\"\(Hex.encode(Crypto.sha256(png)))\"")

            let gif = try await service.client.send(.get, created.images[1].url)
            #expect(Array(gif.body.readableBytesView) == TestImages.gif)
            #expect(gif.headers[.contentType] == "image/gif")

            let notModified = try await service.client.send(.get, first.url, headers: [.ifNoneMatch: etag])
            #expect(notModified.status == .notModified)
            #expect(notModified.body.readableBytes == 0)
            let head = try await service.client.send(.head, first.url)
            #expect(head.status == .ok)
            #expect(head.headers[.contentLength] == String(png.count))
            #expect(head.body.readableBytes == 0)

            // An image id of another post is not found under this one.
            let other = try await service.createPost(user)
            #expect(try await service.client.send(.get, "/feeds/\(other.id)/images/\(first.id)").status == .notFound)
        }
    }

    @Test func aFakeImageIsRejectedAndNothingStays() async throws {
        try await withFeedService { service in
            let user = try await service.auth.signup()
            // Declared PNG, but the bytes are text.
            let fake = try await service.createPost(
                user, form: MultipartForm().field("title", "fake").file(Array("hello, not a png".utf8), contentType: "image/png"))
            #expect(fake.status == .unsupportedMediaType)
            #expect(try fake.problem.code == "unsupported_image_type")

            // A real image first, then a fake one: the first one's object goes again.
            let mixed = try await service.createPost(
                user,
                form: MultipartForm().field("title", "mixed").file(TestImages.png()).file(Array("<svg/>".utf8), fileName: "x.svg", contentType: "image/svg+xml"))
            #expect(mixed.status == .unsupportedMediaType)

            // A real PNG declared as something that is not an image.
            let declared = try await service.createPost(
                user, form: MultipartForm().field("title", "t").file(TestImages.png(), contentType: "text/plain"))
            #expect(declared.status == .unsupportedMediaType)

            let empty = try await service.createPost(user, form: MultipartForm().field("title", "t").file([]))
            #expect(empty.status == .unsupportedMediaType)
            try await service.expectNothingStored()
        }
    }

    @Test func moreThanTenImagesIsABadRequest() async throws {
        try await withFeedService { service in
            let user = try await service.auth.signup()
            var form = MultipartForm().field("title", "too many")
            for seed in 0..<11 { form = form.file(TestImages.png(seed: UInt8(seed))) }
            let response = try await service.createPost(user, form: form)
            #expect(response.status == .badRequest)
            #expect(try response.problem.errors?.map(\.field) == ["images"])
            try await service.expectNothingStored()

            var ten = MultipartForm().field("title", "ten")
            for seed in 0..<10 { ten = ten.file(TestImages.png(seed: UInt8(seed))) }
            let accepted = try await service.createPost(user, form: ten)
            #expect(accepted.status == .created)
            #expect(try accepted.decode(PostBody.self).images.count == 10)
        }
    }

    @Test func anImageOverTenMebibytesIsTooLarge() async throws {
        try await withFeedService { service in
            let user = try await service.auth.signup()
            let png = TestImages.png()
            let exactly = png + [UInt8](repeating: 0, count: 10 * 1024 * 1024 - png.count)
            let over = try await service.createPost(
                user, form: MultipartForm().field("title", "too big").file(TestImages.gif).file(exactly + [0]))
            #expect(over.status == .contentTooLarge)
            #expect(try over.problem.code == "image_too_large")
            try await service.expectNothingStored()

            let ok = try await service.createPost(user, form: MultipartForm().field("title", "just fits").file(exactly))
            #expect(ok.status == .created)
            let image = try #require(try ok.decode(PostBody.self).images.first)
            #expect(image.sizeBytes == exactly.count)
            #expect(Array(try await service.client.send(.get, image.url).body.readableBytesView) == exactly)
        }
    }

    @Test func aStoreFailingMidCreateLeavesNoRowAndNoObject() async throws {
        // The disk under the store fails during the second image's put, after its first chunk;
        // the first image is already stored by then.
        let failing = Captured<FailingStorage>()
        try await withFeedService(wrapStorage: { storage, root in
            let wrapped = FailingStorage(base: storage, root: root, failingPut: 2)
            failing.set(wrapped)
            return wrapped
        }) { service in
            let user = try await service.auth.signup()
            let form = MultipartForm().field("title", "doomed")
                .file(TestImages.png(seed: 1)).file(TestImages.png(width: 40, height: 40, seed: 2)).file(TestImages.gif)
            let response = try await service.createPost(user, form: form)
            #expect(try #require(failing.value).didBreak, "the disk failure was never injected")
            // The service's answer to a store that fails: 503 with Retry-After, as problem+json.
            #expect(response.status == .serviceUnavailable)
            #expect(response.headers[.contentType] == "application/problem+json")
            #expect(try response.problem.code == "service_unavailable")
            #expect(response.headers[.retryAfter] != nil)
            // And nothing of the request stays: no row, not the first image's object, no partial file.
            try await service.expectNothingStored()
            #expect(try await service.list().items.isEmpty)
            // The store works again afterwards (its staging folder comes back).
            let ok = try await service.createPost(user, form: MultipartForm().field("title", "later").file(TestImages.gif))
            #expect(ok.status == .created)
        }
    }

    @Test func malformedMultipartIsABadRequest() async throws {
        try await withFeedService { service in
            let user = try await service.auth.signup()
            let unknownField = try await service.createPost(user, form: MultipartForm().field("title", "t").field("colour", "red"))
            #expect(unknownField.status == .badRequest)
            #expect(try unknownField.problem.errors?.map(\.field) == ["colour"])

            let twice = try await service.createPost(user, form: MultipartForm().field("title", "a").field("title", "b"))
            #expect(twice.status == .badRequest)

            // The body ends inside the image part: the client went away.
            let form = MultipartForm().field("title", "cut").file(TestImages.png())
            var truncated = form.encoded
            truncated.moveWriterIndex(to: truncated.writerIndex - 30)
            let cut = try await service.client.executeRequest(
                uri: "/feeds", method: .post,
                headers: [.contentType: form.contentType, .authorization: "Bearer \(user.token)"], body: truncated)
            #expect(cut.status == .badRequest)
            #expect(try cut.problem.code == "upload_incomplete")

            let noBoundary = try await service.client.send(
                .post, "/feeds", json: "x", token: user.token, headers: [.contentType: "multipart/form-data"])
            #expect(noBoundary.status == .badRequest)
            try await service.expectNothingStored()
        }
    }

    /// Posts per user are limited (a token bucket in feed's database), before the body is
    /// read; other users are not affected, and a deleted user's bucket goes with them.
    @Test func postsPerUserAreLimited() async throws {
        try await withFeedService(extra: ["FEED_POST_BURST": "2", "FEED_POSTS_PER_HOUR": "1"]) { service in
            let ada = try await service.auth.signup(name: "Ada")
            for index in 0..<2 { #expect(try await service.createPost(ada, title: "Post \(index)").title == "Post \(index)") }
            let refused = try await service.client.send(.post, "/feeds", json: #"{"title": "Third", "content": "No"}"#, token: ada.token)
            #expect(refused.status == .tooManyRequests)
            #expect(try refused.problem.code == "rate_limited")
            #expect(refused.headers[.retryAfter] == "3600")
            #expect(try await service.list("?author=\(ada.id.apiString)").items.count == 2)
            let grace = try await service.auth.signup(name: "Grace")
            #expect(try await service.createPost(grace).title == "Hello")
        }
    }
}
