import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Shared
import TestSupport
import Testing

@testable import RecordingService

@Suite("Recording: query strings")
struct RecordingQueryTests {
    /// Browsers and HTTP libraries send a space in a query as `+`; a real plus comes as `%2B`.
    @Test func aPlusInTheQueryIsASpace() async throws {
        try await withRecordingService { client, _ in
            let user = try TestUser()
            for (query, expected) in [("raw+tone.wav", "raw tone.wav"), ("a%2Bb.wav", "a+b.wav"), ("two%20words+and+more.wav", "two words and more.wav")] {
                let response = try await client.executeRequest(
                    uri: "/recordings?fileName=\(query)&title=My+take", method: .post,
                    headers: [.authorization: "Bearer \(user.token)", .contentType: "audio/wav"],
                    body: ByteBuffer(bytes: TestAudio.bytes(100)))
                #expect(response.status == .created)
                let recording = try response.decode(Recording.self)
                #expect(recording.fileName == expected)
                #expect(recording.title == "My take")
            }
        }
    }
}
