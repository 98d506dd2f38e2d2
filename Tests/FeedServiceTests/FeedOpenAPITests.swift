import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Shared
import TestSupport
import Testing

@testable import FeedService

/// The served OpenAPI document against the running service: every documented operation
/// is exercised, and every response (success and error) matches its documented schema.
@Suite("Feed: OpenAPI document")
struct FeedOpenAPITests {
    @Test func documentMatchesTheRunningService() async throws {
        try await withFeedService { service in
            let check = try await ContractCheck(client: service.client)
            // Requests ContractCheck.call cannot make (headers, multipart) are checked by hand.
            func call(_ method: HTTPRequest.Method, _ path: String, json: String? = nil, token: String? = nil, headers: HTTPFields = [:]) async throws -> TestResponse {
                guard !headers.isEmpty else { return try await check.call(method, path, json: json, token: token) }
                let response = try await service.client.send(method, path, json: json, token: token, headers: headers)
                check.record(check.contract.validate(response, method: method, path: path))
                return response
            }
            func call(_ method: HTTPRequest.Method, _ path: String, form: MultipartForm, token: String?) async throws -> TestResponse {
                let response = try await service.client.send(method, path, form: form, token: token)
                check.record(check.contract.validate(response, method: method, path: path))
                return response
            }

            let ada = try await service.auth.signup(name: "Ada")
            let eve = try await service.auth.signup(name: "Eve")
            let created = try await call(.post, "/feeds", json: #"{"title": "doc", "content": "text"}"#, token: ada.token)
            let post = try created.decode(PostBody.self)
            let withImage = try await call(.post, "/feeds", form: MultipartForm().field("title", "pic").file(TestImages.png()), token: ada.token)
            let picture = try withImage.decode(PostBody.self)
            _ = try await call(.post, "/feeds", json: #"{"title": ""}"#, token: ada.token)
            _ = try await call(.post, "/feeds", json: #"{"title": "x"}"#)
            _ = try await call(.post, "/feeds", form: MultipartForm().field("title", "x").file(Array("no".utf8)), token: ada.token)
            _ = try await call(.post, "/feeds", json: "title", token: ada.token, headers: [.contentType: "text/plain"])
            // 413 without a 10 MiB upload: part headers beyond what the service reads.
            let hugeHeader = MultipartForm().file(TestImages.png(), fileName: String(repeating: "n", count: 70_000))
            _ = try await call(.post, "/feeds", form: hugeHeader, token: ada.token)

            _ = try await call(.get, "/feeds")
            _ = try await call(.get, "/feeds?limit=1&author=\(ada.id.apiString)")
            _ = try await call(.get, "/feeds?limit=0")
            _ = try await call(.get, "/feeds/\(post.id)")
            _ = try await call(.get, "/feeds/\(UUID().apiString)")

            _ = try await call(.patch, "/feeds/\(post.id)", json: #"{"title": "doc 2"}"#, token: ada.token)
            _ = try await call(
                .patch, "/feeds/\(picture.id)", form: MultipartForm().file(TestImages.gif).field("removeImageIds", picture.images[0].id),
                token: ada.token)
            _ = try await call(.patch, "/feeds/\(post.id)", json: "{}", token: ada.token)
            _ = try await call(.patch, "/feeds/\(post.id)", json: #"{"title": "mine"}"#, token: eve.token)
            _ = try await call(.patch, "/feeds/\(UUID().apiString)", json: #"{"title": "x"}"#, token: ada.token)
            _ = try await call(.patch, "/feeds/\(post.id)", json: #"{"title": "x"}"#)

            let image = try await service.client.send(.get, "/feeds/\(picture.id)").decode(PostBody.self).images[0]
            let bytes = try await call(.get, image.url)
            _ = try await call(.get, image.url, headers: [.ifNoneMatch: bytes.headers[.eTag] ?? ""])
            _ = try await call(.get, image.url, headers: [.range: "bytes=0-3"])
            _ = try await call(.get, image.url, headers: [.range: "bytes=100000-"])
            _ = try await call(.head, image.url)
            _ = try await call(.get, "/feeds/\(picture.id)/images/\(UUID().apiString)")
            _ = try await call(.head, "/feeds/\(picture.id)/images/\(UUID().apiString)")

            _ = try await call(.delete, "/feeds/\(post.id)", token: eve.token)
            _ = try await call(.delete, "/feeds/\(post.id)")
            _ = try await call(.delete, "/feeds/\(post.id)", token: ada.token)
            _ = try await call(.delete, "/feeds/\(post.id)", token: ada.token)

            let service = try TestEnvironment.serviceToken(from: "auth", to: "feed")
            let event = try TestEnvironment.userEventJSON(.deleted(ada.id))
            _ = try await call(.post, "/internal/events", json: event, token: service)
            _ = try await call(.post, "/internal/events", json: #"{"id":1,"type":"nope"}"#, token: service)
            _ = try await call(.post, "/internal/events", json: event, token: ada.token)
            _ = try await call(.post, "/internal/events", json: event, token: try TestEnvironment.serviceToken(from: "vote", to: "feed"))
            _ = try await call(.get, "/health")
            _ = try await call(.get, "/ready")
            _ = try await call(.get, "/metrics")

            #expect(check.problems == [])
            #expect(check.untestedOperations.isEmpty, "documented but not exercised: \(check.untestedOperations.sorted())")
        }
    }
}
