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

    @Test func aPageOfTwentyAuthorsTakesOneCallToAuth() async throws {
        try await withFeedService { service in
            var users: [TestUser] = []
            for index in 0..<20 {
                users.append(try await service.auth.signup(name: "Author \(index)"))
            }
            // Posts written straight into the database, so no name is cached yet.
            try await TestDatabase.withClient(service.databaseURL) { client in
                for user in users {
                    try await client.query(
                        "INSERT INTO feeds (id, author_id, title, content) VALUES (\(UUID()), \(user.id), 'a post', '')"
                    ).consume()
                }
            }
            let page = try await service.list("?limit=20")
            #expect(page.items.count == 20)
            let calls = await service.directoryCalls.calls
            #expect(calls.count == 1)
            #expect(calls.first?.count == 20)
            #expect(Set(calls.first ?? []) == Set(users.map(\.id)))
            let expected = Dictionary(uniqueKeysWithValues: users.map { ($0.id.apiString, $0.name) })
            for item in page.items {
                #expect(item.author.name == expected[item.author.id])
            }

            // Within the TTL the names come from the cache: no further call.
            _ = try await service.list("?limit=20")
            _ = try await service.list("?limit=5")
            #expect(await service.directoryCalls.calls.count == 1)
        }
    }

    @Test func aRenameShowsOnceTheTTLHasPassed() async throws {
        try await withFeedService(extra: ["AUTHOR_CACHE_TTL_SECONDS": "1"]) { service in
            let ada = try await service.auth.signup(name: "Ada")
            let post = try await service.createPost(ada)
            #expect(post.author.name == "Ada")
            try await service.auth.rename(ada, to: "Ada Lovelace")
            try await eventually {
                try await service.list("?author=\(ada.id.apiString)").items.first?.author.name == "Ada Lovelace"
            }
            let read = try await service.client.send(.get, "/feeds/\(post.id)")
            #expect(try read.decode(PostBody.self).author.name == "Ada Lovelace")
        }
    }

    @Test func authDownStillAnswersWithCachedNamesOrNull() async throws {
        // TTL 0: nothing is fresh, so every read asks auth and, failing, falls back to the cache.
        try await withFeedService(extra: ["AUTHOR_CACHE_TTL_SECONDS": "0"]) { service in
            let ada = try await service.auth.signup(name: "Ada")
            let post = try await service.createPost(ada, title: "cached author")
            #expect(post.author.name == "Ada")
            // A post whose author this instance never looked up.
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

            #expect(try await service.metric(AuthorNames.degradedMetric) >= before + 3)
        }
    }
}

