import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import PostgresNIO
import Shared
import TestSupport
import Testing

@testable import RecordingService

@Suite("Recording: list, get, rename, download")
struct RecordingAccessTests {
    @Test func listIsTheCallersNewestFirstInKeysetPages() async throws {
        try await withRecordingService { client, _ in
            let user = try TestUser()
            let other = try TestUser()
            var created: [Recording] = []
            for index in 0..<5 {
                created.append(try await client.createRecording(TestAudio.bytes(100 + index), fileName: "r\(index).mp3", token: user.token))
            }
            _ = try await client.createRecording(token: other.token)
            let first = try await client.list("?limit=2", token: user.token)
            #expect(first.items.map(\.id) == [created[4].id, created[3].id])
            let cursor = try #require(first.nextCursor)
            let second = try await client.list("?limit=2&cursor=\(cursor)", token: user.token)
            #expect(second.items.map(\.id) == [created[2].id, created[1].id])
            let third = try await client.list("?limit=2&cursor=\(try #require(second.nextCursor))", token: user.token)
            #expect(third.items.map(\.id) == [created[0].id])
            #expect(third.nextCursor == nil)
            let all = try await client.list(token: user.token)
            #expect(all.items.count == 5)
            #expect(all.nextCursor == nil)
            let raw = try await client.send(.get, "/recordings?limit=100", token: user.token)
            #expect(try raw.json["nextCursor"] == .null)

            for bad in ["limit=0", "limit=101", "limit=abc", "cursor=abc", "cursor=\(cursor)x", "deleted=maybe"] {
                let response = try await client.send(.get, "/recordings?\(bad)", token: user.token)
                #expect(response.status == .badRequest, "\(bad)")
                #expect(try response.problem.code == "validation_failed")
            }
            #expect(try await client.send(.get, "/recordings").status == .unauthorized)
        }
    }

    @Test func pagesAreStableWhenTimestampsTieAndRowsArrive() async throws {
        try await withRecordingService { client, harness in
            let user = try TestUser()
            // Rows with one timestamp (metadata only; listing does not touch the store).
            for index in 0..<5 {
                try await harness.execute(
                    """
                    INSERT INTO recordings (id, owner_id, title, file_name, content_type, size_bytes, sha256, object_key, created_at)
                    VALUES (gen_random_uuid(), \(user.id), \("t\(index)"), 'f.mp3', 'audio/mpeg', 1, \(String(repeating: "a", count: 64)),
                            \("recordings/tie-\(index)"), '2000-01-01T00:00:00.123456Z')
                    """)
            }
            var seen: [UUID] = []
            var cursor: String?
            repeat {
                let page = try await client.list("?limit=2" + (cursor.map { "&cursor=\($0)" } ?? ""), token: user.token)
                seen += page.items.map(\.id)
                // A newer recording arriving mid-way does not shift the pages.
                if seen.count == 2 { _ = try await client.createRecording(token: user.token) }
                cursor = page.nextCursor
            } while cursor != nil
            #expect(seen.count == 5)
            #expect(Set(seen).count == 5)
            #expect(seen == seen.sorted { $0.uuidString.lowercased() > $1.uuidString.lowercased() })
        }
    }

    @Test func getAndRename() async throws {
        try await withRecordingService { client, _ in
            let user = try TestUser()
            let recording = try await client.createRecording(token: user.token)
            let fetched = try await client.send(.get, "/recordings/\(recording.id)", token: user.token)
            #expect(fetched.status == .ok)
            #expect(try fetched.decode(Recording.self) == recording)
            let renamed = try await client.send(.patch, "/recordings/\(recording.id)", json: #"{"title": "  New name "}"#, token: user.token)
            #expect(renamed.status == .ok)
            #expect(try renamed.decode(Recording.self).title == "New name")
            #expect(try await client.send(.get, "/recordings/\(recording.id)", token: user.token).decode(Recording.self).title == "New name")
            for body in [#"{"title": "   "}"#, "{}", #"{"title": 5}"#, #"{"title": "\#(String(repeating: "x", count: 201))"}"#] {
                let response = try await client.send(.patch, "/recordings/\(recording.id)", json: body, token: user.token)
                #expect(response.status == .badRequest, "\(body)")
            }
            let form = try await client.send(.patch, "/recordings/\(recording.id)", json: "title=x", token: user.token,
                                             headers: [.contentType: "application/x-www-form-urlencoded"])
            #expect(form.status == .unsupportedMediaType)
            #expect(try await client.send(.get, "/recordings/\(UUID())", token: user.token).status == .notFound)
            #expect(try await client.send(.get, "/recordings/not-a-uuid", token: user.token).status == .notFound)
        }
    }

    @Test func anotherUsersRecordingIsNotFoundEverywhere() async throws {
        try await withRecordingService { client, harness in
            let owner = try TestUser()
            let stranger = try TestUser()
            let recording = try await client.createRecording(token: owner.token)
            let path = "/recordings/\(recording.id)"
            let attempts: [(HTTPRequest.Method, String, String?)] = [
                (.get, path, nil), (.patch, path, #"{"title": "mine"}"#), (.delete, path, nil), (.post, "\(path)/restore", nil),
                (.get, "\(path)/content", nil), (.head, "\(path)/content", nil),
            ]
            for (method, uri, json) in attempts {
                let response = try await client.send(method, uri, json: json, token: stranger.token)
                #expect(response.status == .notFound, "\(method) \(uri)")
                if method != .head { #expect(try response.problem.code == "recording_not_found") }
            }
            #expect(try await client.list(token: stranger.token).items.isEmpty)
            #expect(try await client.list("?deleted=true", token: stranger.token).items.isEmpty)
            // Untouched for its owner.
            let mine = try await client.send(.get, path, token: owner.token).decode(Recording.self)
            #expect(mine == recording)
            #expect(try await harness.rowCount() == 1)
        }
    }

    @Test(arguments: TestStorageBackend.allCases)
    func downloadsWithRangesConditionsAndHead(backend: TestStorageBackend) async throws {
        try await withRecordingService(backend) { client, _ in
            let user = try TestUser()
            let bytes = TestAudio.bytes(1000, seed: 5)
            let recording = try await client.createRecording(bytes, fileName: "Ünïcode take.mp3", token: user.token)
            let url = recording.contentUrl
            func get(_ headers: HTTPFields = [:], method: HTTPRequest.Method = .get) async throws -> TestResponse {
                try await client.send(method, url, token: user.token, headers: headers)
            }
            let etag = "\"\(recording.sha256)\""
            let full = try await get()
            #expect(full.status == .ok)
            #expect(Array(buffer: full.body) == bytes)
            #expect(full.headers[.contentType] == "audio/mpeg")
            #expect(full.headers[.contentLength] == "1000")
            #expect(full.headers[.eTag] == etag)
            #expect(full.headers[.acceptRanges] == "bytes")
            #expect(full.headers[.contentDisposition] == #"attachment; filename="_n_code take.mp3"; filename*=UTF-8''%C3%9Cn%C3%AFcode%20take.mp3"#)

            let cases: [(String, ClosedRange<Int>)] = [
                ("bytes=0-0", 0...0), ("bytes=999-999", 999...999), ("bytes=999-", 999...999), ("bytes=-1", 999...999),
                ("bytes=0-", 0...999), ("bytes=10-19", 10...19), ("bytes=900-5000", 900...999), ("bytes=-1000", 0...999),
            ]
            for (range, expected) in cases {
                let partial = try await get([.range: range])
                #expect(partial.status == .partialContent, "\(range)")
                #expect(Array(buffer: partial.body) == Array(bytes[expected]), "\(range)")
                #expect(partial.headers[.contentRange] == "bytes \(expected.lowerBound)-\(expected.upperBound)/1000", "\(range)")
                #expect(partial.headers[.contentLength] == String(expected.count), "\(range)")
            }
            for range in ["bytes=1000-", "bytes=1000-1001", "bytes=-0"] {
                let unsatisfiable = try await get([.range: range])
                #expect(unsatisfiable.status == .rangeNotSatisfiable, "\(range)")
                #expect(unsatisfiable.headers[.contentRange] == "bytes */1000")
                #expect(try unsatisfiable.problem.code == "range_not_satisfiable")
            }
            for ignored in ["bytes=5-2", "bytes=0-1,5-6", "lines=1-2"] {
                let whole = try await get([.range: ignored])
                #expect(whole.status == .ok, "\(ignored)")
                #expect(whole.body.readableBytes == 1000)
            }
            // If-Range with another validator: the whole thing.
            #expect(try await get([.range: "bytes=0-0", .ifRange: "\"other\""]).status == .ok)
            #expect(try await get([.range: "bytes=0-0", .ifRange: etag]).status == .partialContent)

            for match in [etag, "W/\(etag)", "\"x\", \(etag)", "*"] {
                let notModified = try await get([.ifNoneMatch: match])
                #expect(notModified.status == .notModified, "\(match)")
                #expect(notModified.body.readableBytes == 0)
                #expect(notModified.headers[.eTag] == etag)
            }
            #expect(try await get([.ifNoneMatch: "\"stale\""]).status == .ok)

            let head = try await get(method: .head)
            #expect(head.status == .ok)
            #expect(head.headers[.contentLength] == "1000")
            #expect(head.headers[.eTag] == etag)
            #expect(head.body.readableBytes == 0)
            let headRange = try await get([.range: "bytes=0-9"], method: .head)
            #expect(headRange.status == .partialContent)
            #expect(headRange.headers[.contentLength] == "10")
            #expect(try await client.send(.get, url).status == .unauthorized)
        }
    }

    /// A signed link serves the content without a header (ranges too), for that recording
    /// only, until it expires or the recording goes to the trash.
    @Test func signedLinksServeTheContentWithoutAToken() async throws {
        try await withRecordingService { client, _ in
            let user = try TestUser()
            let bytes = TestAudio.bytes(2000)
            let recording = try await client.createRecording(bytes, fileName: "link.mp3", token: user.token)
            let other = try await client.createRecording(token: user.token)
            let made = try await client.send(.post, "/recordings/\(recording.id)/link", token: user.token)
            #expect(made.status == .ok)
            let url = try #require(try made.json["url"]?.stringValue)
            #expect(url.hasPrefix("/recordings/\(recording.id.uuidString.lowercased())/content?token="))
            let full = try await client.send(.get, url)
            #expect(full.status == .ok)
            #expect(Array(buffer: full.body) == bytes)
            let part = try await client.send(.get, url, headers: [.range: "bytes=10-19"])
            #expect(part.status == .partialContent)
            #expect(Array(buffer: part.body) == Array(bytes[10...19]))
            // Another recording's content with this token: not ours to show.
            let token = String(url.split(separator: "=", maxSplits: 1)[1])
            #expect(try await client.send(.get, "/recordings/\(other.id)/content?token=\(token)").status == .notFound)
            // Another user cannot make one; nobody can without a token.
            #expect(try await client.send(.post, "/recordings/\(recording.id)/link", token: try TestUser().token).status == .notFound)
            #expect(try await client.send(.post, "/recordings/\(recording.id)/link").status == .unauthorized)
            #expect(try await client.send(.get, "/recordings/\(recording.id)/content").status == .unauthorized)
            // Into the trash: the link stops at once.
            #expect(try await client.send(.delete, "/recordings/\(recording.id)", token: user.token).status == .noContent)
            #expect(try await client.send(.get, url).status == .notFound)
        }
    }

    @Test func aLinkExpiresAndCannotBeForged() {
        let links = ContentLinks(serviceTokenSecret: TestEnvironment.serviceTokenSecret, lifetime: .seconds(60))
        let (recording, owner) = (UUID(), UUID())
        let now = Date()
        let link = links.make(recordingID: recording, ownerID: owner, now: now)
        #expect(links.check(token: link.token, recordingID: recording, now: now) == .valid(ownerID: owner))
        #expect(links.check(token: link.token, recordingID: recording, now: now.addingTimeInterval(61)) == .expired)
        #expect(links.check(token: link.token, recordingID: UUID(), now: now) == .invalid)
        var bytes = try! #require(Base64URL.decode(link.token))
        bytes[20] ^= 1  // a later expiry, same signature
        #expect(links.check(token: Base64URL.encode(bytes), recordingID: recording, now: now) == .invalid)
        let otherKey = ContentLinks(serviceTokenSecret: "another-secret-0123456789abcdef0123456789", lifetime: .seconds(60))
        #expect(otherKey.check(token: link.token, recordingID: recording, now: now) == .invalid)
    }
}
