import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Shared
import TestSupport
import Testing

@testable import FeedService

@Suite("Feed: concurrent changes")
struct FeedConcurrencyTests {
    /// A post with 8 images and three PATCHes at once, each adding 2: only one fits under the
    /// limit of 10. The others get the documented `400` (field `images`), and their images,
    /// already stored when the limit is checked, do not stay behind in the store.
    @Test func racingEditsAtTheImageLimitLetOneThrough() async throws {
        try await withFeedService { service in
            let ada = try await service.auth.signup()
            var form = MultipartForm().field("title", "eight")
            for seed in 0..<8 { form = form.file(TestImages.png(seed: UInt8(seed))) }
            let post = try await service.createPost(ada, form: form).decode(PostBody.self)
            #expect(post.images.count == 8)

            let editors = 3
            let additions = (0..<editors).map { editor in
                (0..<2).map { TestImages.png(width: 3, height: 3, seed: UInt8(100 + editor * 2 + $0)) }
            }
            let responses = try await withThrowingTaskGroup(of: (Int, TestResponse).self) { group in
                for editor in 0..<editors {
                    group.addTask {
                        let form = additions[editor].reduce(MultipartForm().field("title", "edit \(editor)")) { $0.file($1) }
                        return (editor, try await service.client.send(.patch, "/feeds/\(post.id)", form: form, token: ada.token))
                    }
                }
                return try await group.reduce(into: [Int: TestResponse]()) { $0[$1.0] = $1.1 }
            }

            let winners = responses.filter { $0.value.status == .ok }
            #expect(winners.count == 1, "statuses: \(responses.mapValues(\.status.code))")
            for (editor, response) in responses where response.status != .ok {
                #expect(response.status == .badRequest, "editor \(editor): \(response.status)")
                #expect(try response.problem.code == "validation_failed")
                #expect(try response.problem.errors?.map(\.field) == ["images"])
            }
            let (winner, winning) = try #require(winners.first)
            let edited = try winning.decode(PostBody.self)
            #expect(edited.title == "edit \(winner)")
            #expect(edited.images.count == 10)
            #expect(Array(edited.images.prefix(8)) == post.images)

            // What a reader sees afterwards: the winner's edit, at most 10 images, each with
            // the bytes that were sent for it.
            let current = try await service.client.send(.get, "/feeds/\(post.id)").decode(PostBody.self)
            #expect(current == edited)
            #expect(current.images.count <= PostRules.maxImages)
            for (image, bytes) in zip(current.images.dropFirst(8), additions[winner]) {
                #expect(Array(try await service.client.send(.get, image.url).body.readableBytesView) == bytes)
            }

            // No orphans: exactly the objects of the images on the post, one row each, no partial upload.
            #expect(Set(try await service.storedKeys()) == Set(current.images.map { $0.objectKey(post: post.id) }))
            #expect(try await service.rowCounts().images == 10)
            #expect(try service.incomingFiles() == [])
        }
    }
}
