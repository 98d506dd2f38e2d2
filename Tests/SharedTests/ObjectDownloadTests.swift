import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
@testable import ObjectStore
import Shared
import TestSupport
import Testing

@Suite("Downloads handed to the gateway")
struct ObjectDownloadTests {
    /// Only the forms nginx and S3 stores read exactly as `ByteRangeRequest` does.
    @Test func simpleRangesAreTheOnesTheGatewayApplies() {
        for simple in ["bytes=0-0", "bytes=10-19", "bytes=5-", "bytes=-5", "bytes=0-999999999999999"] {
            #expect(ObjectDownload.isSimpleRange(simple), "\(simple)")
        }
        for other in [
            "bytes=5-3", "bytes=-", "bytes=", "Bytes=0-1", "bytes= 0-1", "bytes=0-1,3-4", "bytes=0-1 ", "items=0-1",
            "bytes=0-9999999999999999", "bytes=--1", "bytes=a-b", "bytes=1-2-3",
        ] {
            #expect(!ObjectDownload.isSimpleRange(other), "\(other)")
        }
    }

    @Test func noGatewayPathNoHandOver() throws {
        let storage = try FileSystemObjectStorage(root: NSTemporaryDirectory(), logger: TestEnvironment.logger)
        #expect(storage.gatewayTarget(for: try ObjectKey("recordings/a")) == nil)
        let handed = try FileSystemObjectStorage(root: NSTemporaryDirectory(), gatewayPath: "/_store/files/x/", logger: TestEnvironment.logger)
        #expect(handed.gatewayTarget(for: try ObjectKey("recordings/a")) == "/_store/files/x/recordings/a")
    }

    /// The S3 target is a presigned GET the store itself accepts, with a Range, and nothing
    /// else: what the gateway's /_store/s3/ location sends.
    @Test func theS3TargetIsAPresignedRequestTheStoreAccepts() async throws {
        let server = try TestStorageBackend.s3Server()
        var configuration = S3ObjectStorage.Configuration(
            endpoint: server.endpoint, region: server.region, bucket: TestStorageBackend.uniqueBucket(),
            accessKeyID: server.accessKey, secretAccessKey: server.secretKey)
        configuration.gatewayPath = "/_store/s3/"
        let storage = try S3ObjectStorage(configuration: configuration, logger: TestEnvironment.logger)
        defer { Task { try? await storage.shutdown() } }
        try await storage.prepare()
        let key = try ObjectKey("recordings/\(UUID().apiString)")
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try await storage.put(key, body: ObjectStorageTests.chunks(bytes), length: Int64(bytes.count))

        let target = try #require(storage.gatewayTarget(for: key))
        #expect(target.hasPrefix("/_store/s3/\(configuration.bucket)/\(key.rawValue)?"))
        var request = HTTPClientRequest(url: server.endpoint + "/" + target.dropFirst("/_store/s3/".count))
        request.headers.add(name: "Range", value: "bytes=10-19")
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        #expect(response.status == .partialContent)
        #expect(Array(buffer: try await response.body.collect(upTo: 1 << 20)) == Array(bytes[10...19]))

        // Signed for this object only: another key with the same query is refused.
        let other = server.endpoint + "/\(configuration.bucket)/recordings/other?" + target.split(separator: "?")[1]
        let refused = try await HTTPClient.shared.execute(HTTPClientRequest(url: other), timeout: .seconds(10))
        #expect(refused.status == .forbidden)
        _ = try await refused.body.collect(upTo: 1 << 20)
    }
}
