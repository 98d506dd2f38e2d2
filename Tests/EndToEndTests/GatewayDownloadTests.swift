import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Shared
import TestSupport
import Testing

/// Downloads handed to the gateway (`X-Accel-Redirect`, Shared's `ObjectDownload`): the
/// client sees exactly the contract's answers, whoever sends the bytes.
@Suite("End to end: downloads sent by the gateway")
struct GatewayDownloadTests {
    let audio = Data((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 7) })

    func upload(_ client: GatewayClient, token: String) async throws -> (id: String, sha256: String) {
        let upload = try await client.send(
            .POST, "/recordings?fileName=gateway.wav", body: audio, token: token, headers: [("Content-Type", "audio/wav")])
        #expect(upload.status == 201)
        let recording = try upload.json
        return (try #require(recording["id"]?.stringValue), try #require(recording["sha256"]?.stringValue))
    }

    @Test func theGatewaySendsTheBytesWithTheContractsHeaders() async throws {
        let client = try GatewayClient()
        let user = try await client.signup()
        let (id, sha256) = try await upload(client, token: user.accessToken)
        let path = "/recordings/\(id)/content"
        let tag = "\"\(sha256)\""

        let full = try await client.send(.GET, path, token: user.accessToken)
        #expect(full.status == 200)
        #expect(full.body == audio)
        #expect(full.headers["ETag"] == [tag])
        #expect(full.headers["Accept-Ranges"] == ["bytes"])
        #expect(full.headers["Content-Length"] == ["\(audio.count)"])
        #expect(full.headers["Content-Type"] == ["audio/wav"])
        #expect(full.headers["X-Content-Type-Options"] == ["nosniff"])
        #expect(full.headers["Cache-Control"] == ["private, no-cache"])
        #expect(full.headers["Content-Disposition"].count == 1)
        // Neither nginx's own validator nor the hand-over reaches the client.
        #expect(full.headers["Last-Modified"].isEmpty)
        #expect(full.headers["X-Accel-Redirect"].isEmpty)

        let part = try await client.send(.GET, path, token: user.accessToken, headers: [("Range", "bytes=10-19")])
        #expect(part.status == 206)
        #expect(part.body == audio[10...19])
        #expect(part.headers["Content-Range"] == ["bytes 10-19/\(audio.count)"])
        #expect(part.headers["ETag"] == [tag])
        #expect(part.headers["Accept-Ranges"] == ["bytes"])
        let suffix = try await client.send(.GET, path, token: user.accessToken, headers: [("Range", "bytes=-5")])
        #expect(suffix.status == 206)
        #expect(suffix.body == audio.suffix(5))
        let open = try await client.send(.GET, path, token: user.accessToken, headers: [("Range", "bytes=299990-")])
        #expect(open.body == audio.suffix(10))
        let past = try await client.send(.GET, path, token: user.accessToken, headers: [("Range", "bytes=299990-400000")])
        #expect(past.status == 206)
        #expect(past.headers["Content-Range"] == ["bytes 299990-299999/\(audio.count)"])

        // If-Range: the same tag keeps the range, another one gets everything.
        let sameTag = try await client.send(.GET, path, token: user.accessToken, headers: [("Range", "bytes=0-3"), ("If-Range", tag)])
        #expect(sameTag.status == 206)
        #expect(sameTag.body == audio[0...3])
        let otherTag = try await client.send(.GET, path, token: user.accessToken, headers: [("Range", "bytes=0-3"), ("If-Range", "\"old\"")])
        #expect(otherTag.status == 200)
        #expect(otherTag.body == audio)

        // Answered by the service itself: 304, 416, HEAD.
        let unchanged = try await client.send(.GET, path, token: user.accessToken, headers: [("If-None-Match", tag)])
        #expect(unchanged.status == 304)
        #expect(unchanged.body.isEmpty)
        let changed = try await client.send(.GET, path, token: user.accessToken, headers: [("If-None-Match", "\"old\"")])
        #expect(changed.status == 200)
        #expect(changed.body == audio)
        let outside = try await client.send(.GET, path, token: user.accessToken, headers: [("Range", "bytes=300000-")])
        #expect(outside.status == 416)
        #expect(outside.headers["Content-Range"] == ["bytes */\(audio.count)"])
        #expect(outside.headers["Content-Type"].first?.hasPrefix("application/problem+json") == true)
        let head = try await client.send(.HEAD, path, token: user.accessToken)
        #expect(head.status == 200)
        #expect(head.headers["Content-Length"] == ["\(audio.count)"])
        #expect(head.body.isEmpty)

        // Requests nginx would read otherwise are streamed by the service, with the same answers.
        let ifMatch = try await client.send(.GET, path, token: user.accessToken, headers: [("If-Match", tag)])
        #expect(ifMatch.status == 200)
        #expect(ifMatch.body == audio)
        let huge = try await client.send(.GET, path, token: user.accessToken, headers: [("Range", "bytes=0-99999999999999999999")])
        #expect(huge.status == 206)
        #expect(huge.body == audio)
        let spaced = try await client.send(.GET, path, token: user.accessToken, headers: [("Range", "bytes= 1-2")])
        #expect(spaced.status == 206)
        #expect(spaced.body == audio[1...2])

        // The signed link of the web app's <audio> element takes the same way.
        let link = try await client.send(.POST, "/recordings/\(id)/link", token: user.accessToken)
        let url = try #require(try link.json["url"]?.stringValue)
        let linked = try await client.send(.GET, url, headers: [("Range", "bytes=100-199")])
        #expect(linked.status == 206)
        #expect(linked.body == audio[100...199])
    }

    @Test func theServiceHandsThePlainDownloadOverAndClientsCannotAskTheStore() async throws {
        let client = try GatewayClient()
        let user = try await client.signup()
        let (id, _) = try await upload(client, token: user.accessToken)

        // The service's own answer (as the gateway receives it): headers, no bytes, and where they are.
        let service = try GatewayClient(base: try Stack.require("recording"))
        let handedOver = try await service.send(.GET, "/recordings/\(id)/content", token: user.accessToken)
        #expect(handedOver.status == 200)
        #expect(handedOver.body.isEmpty)
        let target = try #require(handedOver.headers["X-Accel-Redirect"].first)
        #expect(target.hasPrefix("/_store/s3/") || target.hasPrefix("/_store/files/recording/"))
        // Not plain (If-Match): the service sends the bytes itself.
        let streamed = try await service.send(.GET, "/recordings/\(id)/content", token: user.accessToken, headers: [("If-Match", "*")])
        #expect(streamed.body == audio)
        #expect(streamed.headers["X-Accel-Redirect"].isEmpty)

        // The store's locations are internal: a client asking for one gets the gateway's 404.
        let direct = try await client.send(.GET, target)
        #expect(direct.status == 404)
        #expect(direct.headers["Content-Type"].first?.hasPrefix("application/problem+json") == true)
        #expect(direct.body.range(of: audio.prefix(64)) == nil)
    }
}
