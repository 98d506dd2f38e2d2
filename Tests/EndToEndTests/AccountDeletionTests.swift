import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Shared
import TestSupport
import Testing

/// Bytes of a 1×1 PNG, a real image for the feed's magic-byte check.
let tinyPNG = Data(base64Encoded: "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")!

@Suite("End to end: recordings, feeds and account deletion")
struct AccountDeletionTests {
    @Test func recordingsAndFeedsThroughTheGateway() async throws {
        let client = try GatewayClient()
        let user = try await client.signup(name: "Recorder")
        let audio = Data((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let upload = try await client.send(
            .POST, "/recordings?fileName=take1.wav", body: audio, token: user.accessToken, headers: [("Content-Type", "audio/wav")])
        #expect(upload.status == 201)
        let recording = try upload.json
        let recordingID = try #require(recording["id"]?.stringValue)
        #expect(recording["sizeBytes"] == .number(Double(audio.count)))
        let range = try await client.send(.GET, "/recordings/\(recordingID)/content", token: user.accessToken, headers: [("Range", "bytes=10-19")])
        #expect(range.status == 206)
        #expect(range.body == audio[10...19])
        let full = try await client.send(.GET, "/recordings/\(recordingID)/content", token: user.accessToken)
        #expect(full.body == audio)
        #expect(try await client.send(.GET, "/recordings/\(recordingID)", token: (try await client.signup()).accessToken).status == 404)

        let post = try await client.send(.POST, "/feeds", json: #"{"title":"Hello","content":"First post"}"#, token: user.accessToken)
        #expect(post.status == 201)
        let feed = try post.json
        #expect(feed["author"]?.objectValue?["name"] == .string("Recorder"))
        let feedID = try #require(feed["id"]?.stringValue)
        let listed = try await client.send(.GET, "/feeds?author=\(user.user.id)")
        #expect(listed.status == 200)
        #expect(try listed.json["items"]?.arrayValue?.count == 1)

        // Renaming in auth shows in feeds (a user event).
        #expect(try await client.send(.PATCH, "/auth/me", json: #"{"name":"Renamed"}"#, token: user.accessToken).status == 200)
        try await eventually(timeout: .seconds(15)) {
            try await client.send(.GET, "/feeds/\(feedID)").json["author"]?.objectValue?["name"] == .string("Renamed")
        }
    }

    @Test func deletingAnAccountRemovesItsDataEverywhere() async throws {
        let client = try GatewayClient()
        let other = try await client.signup(name: "Other")
        let user = try await client.signup(name: "Leaving")
        let poll = try await client.send(.POST, "/polls", json: #"{"title":"Keep?","candidates":["Yes","No"]}"#, token: other.accessToken).json
        let pollID = try #require(poll["id"]?.stringValue)
        let yes = try #require(poll["candidates"]?.arrayValue?.first?.objectValue?["id"]?.stringValue)
        #expect(try await client.send(.POST, "/polls/\(pollID)/votes", json: #"{"candidateId":"\#(yes)"}"#, token: user.accessToken).status == 201)
        let ownPoll = try await client.send(.POST, "/polls", json: #"{"title":"Mine","candidates":["A","B"]}"#, token: user.accessToken).json
        let ownPollID = try #require(ownPoll["id"]?.stringValue)
        let recording = try await client.send(
            .POST, "/recordings?fileName=bye.wav", body: Data(repeating: 7, count: 4096), token: user.accessToken,
            headers: [("Content-Type", "audio/wav")]).json
        let recordingID = try #require(recording["id"]?.stringValue)
        let boundary = "e2e-boundary"
        var multipart = Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nWith image\r\n".utf8)
        multipart += Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"content\"\r\n\r\nbye\r\n".utf8)
        multipart += Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"images\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n".utf8)
        multipart += tinyPNG + Data("\r\n--\(boundary)--\r\n".utf8)
        let post = try await client.send(
            .POST, "/feeds", body: multipart, token: user.accessToken, headers: [("Content-Type", "multipart/form-data; boundary=\(boundary)")])
        #expect(post.status == 201)
        let feed = try post.json
        let feedID = try #require(feed["id"]?.stringValue)
        let imageURL = try #require(feed["images"]?.arrayValue?.first?.objectValue?["url"]?.stringValue)
        let image = try await client.send(.GET, imageURL)
        #expect(image.status == 200)
        #expect(image.body == tinyPNG)

        #expect(try await client.send(.DELETE, "/auth/me", json: #"{"currentPassword":"e2e password"}"#, token: user.accessToken).status == 204)

        // Eventual but quick: every service hears of it within seconds. The access token is
        // refused at once, so the recording is looked for in recording's database.
        // A download that races the deletion of its object is cut off mid-body (its length
        // was already sent), which the client sees as a broken response: not yet gone.
        try await eventually(timeout: .seconds(20), every: .milliseconds(250)) {
            do {
                async let post = client.send(.GET, "/feeds/\(feedID)")
                async let image = client.send(.GET, imageURL)
                async let poll = client.send(.GET, "/polls/\(pollID)")
                async let own = client.send(.GET, "/polls/\(ownPollID)")
                let (p, i, v, o) = try await (post, image, poll, own)
                let votes = try v.json["totalVotes"]
                let recordings = try await Stack.count("recording", "SELECT count(*)::int FROM recordings WHERE id = '\(recordingID)'")
                return recordings == 0 && p.status == 404 && i.status == 404 && votes == .number(0) && o.status == 404
            } catch is HTTPParserError {
                return false
            } catch let error as HTTPClientError where error == .remoteConnectionClosed {
                return false
            }
        }
        // The email is free at once.
        #expect(try await client.send(
            .POST, "/auth/signup", json: #"{"email":"\#(user.user.email)","password":"another one","name":"Back"}"#).status == 201)
    }
}
