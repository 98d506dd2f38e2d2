import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Shared
import TestSupport
import Testing

@testable import RecordingService

/// The served OpenAPI document against the running service: every documented operation
/// is exercised, and every response (success and error) matches its documented schema.
@Suite("Recording: OpenAPI document")
struct RecordingOpenAPITests {
    @Test func documentMatchesTheRunningService() async throws {
        try await withRecordingService { client, _ in
            let served = try await client.send(.get, "/openapi.yaml")
            #expect(served.status == .ok)
            let contract = try OpenAPIContract(yaml: String(buffer: served.body))
            let user = try TestUser()
            let service = try TestEnvironment.serviceToken(from: "auth", to: "recording")
            var problems: [String] = []
            func check(_ response: TestResponse, _ method: HTTPRequest.Method, _ path: String) -> TestResponse {
                problems += contract.validate(response, method: method, path: path)
                return response
            }
            func call(_ method: HTTPRequest.Method, _ path: String, json: String? = nil, token: String? = nil, headers: HTTPFields = [:]) async throws -> TestResponse {
                check(try await client.send(method, path, json: json, token: token, headers: headers), method, path)
            }

            let created = check(try await client.uploadRaw(TestAudio.bytes(500), token: user.token), .post, "/recordings?fileName=take.mp3")
            let recording = try created.decode(Recording.self)
            _ = check(try await client.uploadMultipart(TestAudio.multipart([("file", "a.mp3", "audio/mpeg", [1, 2])]), token: user.token), .post, "/recordings")
            _ = check(try await client.uploadRaw([1], contentType: "text/plain", token: user.token), .post, "/recordings?fileName=a.txt")
            _ = check(try await client.uploadRaw([], token: user.token), .post, "/recordings?fileName=a.mp3")
            _ = check(try await client.uploadRaw([1], token: "bad"), .post, "/recordings?fileName=a.mp3")
            let page = try await call(.get, "/recordings?limit=1", token: user.token)
            _ = try await call(.get, "/recordings?limit=1&cursor=\(try #require(try page.decode(RecordingPage.self).nextCursor))", token: user.token)
            _ = try await call(.get, "/recordings?limit=0", token: user.token)
            _ = try await call(.get, "/recordings")
            let path = "/recordings/\(recording.id)"
            _ = try await call(.get, path, token: user.token)
            _ = try await call(.get, "/recordings/\(UUID())", token: user.token)
            _ = try await call(.patch, path, json: #"{"title": "Renamed"}"#, token: user.token)
            _ = try await call(.patch, path, json: #"{"title": ""}"#, token: user.token)
            _ = try await call(.get, "\(path)/content", token: user.token)
            _ = try await call(.get, "\(path)/content", token: user.token, headers: [.range: "bytes=0-9"])
            _ = try await call(.get, "\(path)/content", token: user.token, headers: [.range: "bytes=900-"])
            _ = try await call(.get, "\(path)/content", token: user.token, headers: [.ifNoneMatch: "\"\(recording.sha256)\""])
            _ = try await call(.head, "\(path)/content", token: user.token)
            _ = try await call(.head, "\(path)/content", token: user.token, headers: [.range: "bytes=0-9"])
            let link = try await call(.post, "\(path)/link", token: user.token)
            let url = try #require(try link.json["url"]?.stringValue)
            _ = try await call(.get, url, headers: [.range: "bytes=0-9"])
            _ = try await call(.get, "\(path)/content?token=forged")
            _ = try await call(.post, "/recordings/\(UUID())/link", token: user.token)
            _ = try await call(.delete, path, token: user.token)
            _ = try await call(.get, "/recordings?deleted=true", token: user.token)
            _ = try await call(.post, "\(path)/restore", token: user.token)
            _ = try await call(.post, "\(path)/restore", token: user.token)
            _ = try await call(.delete, "/recordings/\(UUID())", token: user.token)
            let event = try TestEnvironment.userEventJSON(.deleted(user.id))
            _ = try await call(.post, "/internal/events", json: event, token: service)
            _ = try await call(.post, "/internal/events", json: #"{"id":1,"type":"nope"}"#, token: service)
            _ = try await call(.post, "/internal/events", json: event)
            _ = try await call(.post, "/internal/events", json: event, token: try TestEnvironment.serviceToken(from: "feed", to: "recording"))
            _ = try await call(.get, "/health")
            _ = try await call(.get, "/ready")
            _ = try await call(.get, "/metrics")

            #expect(problems == [])
            let untested = contract.operations.subtracting(contract.exercisedOperations)
            #expect(untested.isEmpty, "documented but not exercised: \(untested.sorted())")
        }
    }
}
