import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import PostgresNIO
import Shared
import TestSupport
import Testing

@testable import FeedService

@Suite("Feed: lists and author names")
struct FeedListTests {
    @Test func newestFirstInPagesWithAnAuthorFilter() async throws {
        try await withFeedService { service in
            let ada = try await service.auth.signup(name: "Ada")
            let bob = try await service.auth.signup(name: "Bob")
            var created: [PostBody] = []
            for index in 0..<5 {
                created.append(try await service.createPost(index.isMultiple(of: 2) ? ada : bob, title: "post \(index)"))
            }
            let newestFirst = created.reversed().map(\.id)

            let first = try await service.list("?limit=2")
            #expect(first.items.map(\.id) == Array(newestFirst[0..<2]))
            let cursor = try #require(first.nextCursor)
            let second = try await service.list("?limit=2&cursor=\(cursor)")
            #expect(second.items.map(\.id) == Array(newestFirst[2..<4]))
            let third = try await service.list("?limit=2&cursor=\(try #require(second.nextCursor))")
            #expect(third.items.map(\.id) == [newestFirst[4]])
            #expect(third.nextCursor == nil)

            let all = try await service.list()
            #expect(all.items.map(\.id) == newestFirst)
            #expect(all.nextCursor == nil)
            #expect(all.items.map { $0.author.name } == ["Ada", "Bob", "Ada", "Bob", "Ada"])
            // `nextCursor: null` is written out.
            let raw = try await service.client.send(.get, "/feeds")
            #expect(try raw.json["nextCursor"] == .null)

            let adas = try await service.list("?author=\(ada.id.apiString)")
            #expect(adas.items.map(\.id) == newestFirst.enumerated().filter { $0.offset.isMultiple(of: 2) }.map(\.element))
            let bobsFirstPage = try await service.list("?author=\(bob.id.apiString)&limit=1")
            #expect(bobsFirstPage.items.map(\.id) == [newestFirst[1]])
            let bobsSecondPage = try await service.list("?author=\(bob.id.apiString)&limit=1&cursor=\(try #require(bobsFirstPage.nextCursor))")
            #expect(bobsSecondPage.items.map(\.id) == [newestFirst[3]])
            #expect(try await service.list("?author=\(UUID().apiString)").items.isEmpty)
        }
    }

    @Test func badListParametersAreBadRequests() async throws {
        try await withFeedService { service in
            for (query, field) in [
                ("limit=0", "limit"), ("limit=101", "limit"), ("limit=ten", "limit"), ("cursor=bogus", "cursor"),
                ("cursor=\(String(repeating: "A", count: 34))", "cursor"), ("author=not-a-user", "author"),
            ] {
                let response = try await service.client.send(.get, "/feeds?\(query)")
                #expect(response.status == .badRequest, "\(query)")
                #expect(try response.problem.errors?.map(\.field) == [field], "\(query)")
            }
            #expect(try await service.client.send(.get, "/feeds?limit=100").status == .ok)
            #expect(try await service.client.send(.get, "/feeds?limit=1").status == .ok)
        }
    }

    @Test func pagingUnderConcurrentInsertsNeitherSkipsNorRepeats() async throws {
        try await withFeedService { service in
            let user = try await service.auth.signup()
            var existing = Set<String>()
            for index in 0..<30 {
                existing.insert(try await service.createPost(user, title: "before \(index)").id)
            }
            let client = service.client
            let token = user.token
            // Writers keep adding posts while the reader walks the pages.
            let writers = Task {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for writer in 0..<3 {
                        group.addTask {
                            for index in 0..<8 {
                                let response = try await client.send(
                                    .post, "/feeds", json: #"{"title": "during \#(writer)-\#(index)"}"#, token: token)
                                #expect(response.status == .created)
                            }
                        }
                    }
                    try await group.waitForAll()
                }
            }
            var seen: [String] = []
            var cursor: String?
            repeat {
                let page = try await service.list("?limit=7" + (cursor.map { "&cursor=\($0)" } ?? ""))
                seen += page.items.map(\.id)
                cursor = page.nextCursor
            } while cursor != nil
            try await writers.value

            #expect(seen.count == Set(seen).count, "a post was repeated")
            #expect(existing.isSubset(of: Set(seen)), "a post was skipped")
            // Newest first throughout.
            let timestamps = try await service.list("?limit=100").items
            #expect(timestamps.count == 54)
            #expect(zip(timestamps, timestamps.dropFirst()).allSatisfy { $0.createdAt >= $1.createdAt })
        }
    }

    /// Names are feed's own: set from the token when a post is created, so a page costs no
    /// call to auth. Posts of authors feed never saw (written before it kept names; here
    /// straight into the database) take one call for the whole page, once.
    @Test func namesAreLocalAndUnseenAuthorsTakeOneCallOnce() async throws {
        try await withFeedService { service in
            let ada = try await service.auth.signup(name: "Ada")
            _ = try await service.createPost(ada)
            #expect(try await service.list().items.first?.author.name == "Ada")
            #expect(await service.directoryCalls.calls.isEmpty)

            var users: [TestUser] = []
            for index in 0..<19 {
                users.append(try await service.auth.signup(name: "Author \(index)"))
            }
            let stranger = UUID()  // auth does not know this one
            try await TestDatabase.withClient(service.databaseURL) { client in
                for id in users.map(\.id) + [stranger] {
                    try await client.query(
                        "INSERT INTO feeds (id, author_id, title, content) VALUES (\(UUID()), \(id), 'a post', '')"
                    ).consume()
                }
            }
            let page = try await service.list("?limit=21")
            #expect(page.items.count == 21)
            let calls = await service.directoryCalls.calls
            #expect(calls.count == 1)
            #expect(Set(calls.first ?? []) == Set(users.map(\.id) + [stranger]))
            let expected = Dictionary(uniqueKeysWithValues: (users + [ada]).map { ($0.id.apiString, $0.name) })
            for item in page.items {
                #expect(item.author.name == expected[item.author.id], "\(item.author.id)")
            }
            // Remembered, the unknown one included: no further call.
            _ = try await service.list("?limit=21")
            _ = try await service.client.send(.get, "/feeds?author=\(stranger.apiString)")
            #expect(await service.directoryCalls.calls.count == 1)
        }
    }

    /// `user.renamed` shows at once; an older rename, or a post made with a token issued
    /// before the rename, never brings the old name back; a redelivery changes nothing.
    @Test func renamesApplyInVersionOrder() async throws {
        try await withFeedService { service in
            let ada = try await service.auth.signup(name: "Ada")
            let post = try await service.createPost(ada)
            let now = UserEvent.nameVersion(of: Date())
            let rename = UserEvent(id: 10, type: .userRenamed, userId: ada.id, name: "Ada Lovelace", version: now)
            #expect(try await service.client.deliver(rename, to: "feed").status == .noContent)
            #expect(try await service.list().items.first?.author.name == "Ada Lovelace")
            let read = try await service.client.send(.get, "/feeds/\(post.id)")
            #expect(try read.decode(PostBody.self).author.name == "Ada Lovelace")

            // Out of order: an older rename arrives late; then the same event again.
            let older = UserEvent(id: 9, type: .userRenamed, userId: ada.id, name: "Countess", version: now - 1_000_000)
            #expect(try await service.client.deliver(older, to: "feed").status == .noContent)
            #expect(try await service.client.deliver(rename, to: "feed").status == .noContent)
            #expect(try await service.list().items.first?.author.name == "Ada Lovelace")
            // Ada's token still says "Ada" (issued before the rename): her next post keeps the new name.
            let second = try await service.createPost(ada, title: "Later")
            #expect(second.author.name == "Ada Lovelace")
            #expect(try await service.list().items.map(\.author.name) == ["Ada Lovelace", "Ada Lovelace"])
            let malformed = UserEvent(id: 11, type: .userRenamed, userId: ada.id)
            #expect(try await service.client.deliver(malformed, to: "feed").status == .badRequest)
        }
    }

    @Test func authDownStillAnswersWithKnownNamesOrNull() async throws {
        try await withFeedService { service in
            let ada = try await service.auth.signup(name: "Ada")
            let post = try await service.createPost(ada, title: "known author")
            #expect(post.author.name == "Ada")
            // A post whose author feed never saw.
            let stranger = UUID()
            let strangerPost = UUID()
            try await TestDatabase.withClient(service.databaseURL) { client in
                try await client.query(
                    "INSERT INTO feeds (id, author_id, title, content) VALUES (\(strangerPost), \(stranger), 'unseen author', '')"
                ).consume()
            }
            let before = try await service.metric(AuthorNames.degradedMetric)

            try await service.auth.stop()

            let page = try await service.client.send(.get, "/feeds")
            #expect(page.status == .ok)
            let items = try page.decode(PageJSON.self).items
            #expect(items.count == 2)
            #expect(items.first { $0.id == post.id }?.author.name == "Ada")
            let unseen = try #require(items.first { $0.id == strangerPost.apiString })
            #expect(unseen.author.id == stranger.apiString)
            #expect(unseen.author.name == nil)
            #expect(String(buffer: page.body).contains(#"{"id":"\#(stranger.apiString)","name":null}"#), "name is written out as null")

            let one = try await service.client.send(.get, "/feeds/\(post.id)")
            #expect(one.status == .ok)
            #expect(try one.decode(PostBody.self).author.name == "Ada")
            let created = try await service.client.send(.post, "/feeds", json: #"{"title": "while auth is down"}"#, token: ada.token)
            #expect(created.status == .created)
            #expect(try created.decode(PostBody.self).author.name == "Ada")

            #expect(try await service.metric(AuthorNames.degradedMetric) >= before + 1)
            // Not remembered as unknown: asked again once auth is back (here: still down).
            _ = try await service.client.send(.get, "/feeds")
            #expect(try await service.metric(AuthorNames.degradedMetric) >= before + 2)
        }
    }
}
