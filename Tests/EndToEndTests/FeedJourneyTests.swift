import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Shared
import TestSupport
import Testing

/// Feeds through the gateway, with the real auth service and the outbox between them.
@Suite("End to end: feeds")
struct FeedJourneyTests {
    /// PNG magic bytes, then bytes that look like multipart delimiters.
    static let image: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + Array("\r\n--e2e\r\n--x\r\n".utf8) + (0..<200).map { UInt8($0) }

    static func multipart(_ fields: [(String, String)], images: [[UInt8]]) -> (body: Data, contentType: String) {
        let boundary = "e2e-\(UUID().apiString)"
        var body = Data()
        for (name, value) in fields {
            body += Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n".utf8)
        }
        for image in images {
            body += Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"images\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n".utf8)
            body += Data(image) + Data("\r\n".utf8)
        }
        body += Data("--\(boundary)--\r\n".utf8)
        return (body, "multipart/form-data; boundary=\(boundary)")
    }

    @Test func postWithImagesReadEditAndGoWithTheAccount() async throws {
        let client = try GatewayClient()
        let author = try await client.signup(name: "Feeder")
        let form = Self.multipart([("title", "Through nginx"), ("content", "with a picture")], images: [Self.image])
        let created = try await client.send(
            .POST, "/feeds", body: form.body, token: author.accessToken, headers: [("Content-Type", form.contentType)])
        #expect(created.status == 201)
        let post = try created.json
        guard case .string(let id)? = post["id"], case .array(let images)? = post["images"], case .object(let image)? = images.first,
            case .string(let url)? = image["url"]
        else {
            Issue.record("unexpected feed: \(post)")
            return
        }
        #expect(created.headers.first(name: "Location") == "/feeds/\(id)")
        #expect(post["author"] == .object(["id": .string(author.user.id), "name": .string("Feeder")]))

        let bytes = try await client.send(.GET, url)
        #expect(bytes.status == 200)
        #expect(Array(bytes.body) == Self.image)
        #expect(bytes.headers.first(name: "Content-Type") == "image/png")
        #expect(bytes.headers.first(name: "Cache-Control") == "public, max-age=31536000, immutable")
        let etag = try #require(bytes.headers.first(name: "ETag"))
        #expect(try await client.send(.GET, url, headers: [("If-None-Match", etag)]).status == 304)
        // The gateway sent the bytes (feed's folder, /_store/files/): the service's headers only.
        #expect(bytes.headers["Accept-Ranges"] == ["bytes"])
        #expect(bytes.headers["X-Content-Type-Options"] == ["nosniff"])
        #expect(bytes.headers["Last-Modified"].isEmpty)
        let part = try await client.send(.GET, url, headers: [("Range", "bytes=1-3")])
        #expect(part.status == 206)
        #expect(Array(part.body) == Array(Self.image[1...3]))
        #expect(part.headers.first(name: "ETag") == etag)

        let list = try await client.send(.GET, "/feeds?author=\(author.user.id)")
        #expect(list.status == 200)
        #expect(try list.json["items"]?.arrayValue?.count == 1)
        let edit = Self.multipart([("title", "Edited"), ("removeImageIds", image["id"]?.stringValue ?? "")], images: [Self.image, Self.image])
        let patched = try await client.send(
            .PATCH, "/feeds/\(id)", body: edit.body, token: author.accessToken, headers: [("Content-Type", edit.contentType)])
        #expect(patched.status == 200)
        #expect(try patched.json["title"] == .string("Edited"))
        #expect(try patched.json["images"]?.arrayValue?.count == 2)
        #expect(try await client.send(.GET, url).status == 404)
        let newImage = try #require(try patched.json["images"]?.arrayValue?.last?.objectValue?["url"]?.stringValue)
        #expect(try await client.send(.GET, newImage).status == 200)
        let other = try await client.signup(name: "Other")
        #expect(try await client.send(.DELETE, "/feeds/\(id)", token: other.accessToken).status == 403)
        #expect(try await client.send(.POST, "/internal/events", json: #"{"type":"user.deleted","userId":"\#(author.user.id)"}"#).status == 404)

        // Deleting the account removes the posts too (auth's outbox calls feed).
        #expect(try await client.send(.DELETE, "/auth/me", json: #"{"currentPassword":"e2e password"}"#, token: author.accessToken).status == 204)
        try await eventually(timeout: .seconds(15)) {
            try await client.send(.GET, "/feeds/\(id)").status == 404
        }
        #expect(try await client.send(.GET, newImage).status == 404)
    }
}
