import Foundation
import Hummingbird
import NIOCore
import ObjectStore
import Shared
import TestSupport
import Testing

/// A fresh filesystem store for one test, removed afterwards.
private func withStore(_ body: (FileSystemObjectStorage, String) async throws -> Void) async throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("upload-\(UUID().uuidString.lowercased())").path
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let storage = try FileSystemObjectStorage(root: folder, logger: TestEnvironment.logger)
    try await storage.prepare()
    try await body(storage, folder)
}

private struct TooLarge: Error {}
private struct ClientWentAway: Error {}

/// Writes `count` bytes in chunks of `chunk`.
private func produce(_ count: Int, chunk: Int = 1000, into sink: UploadSink) async throws {
    var left = count
    while left > 0 {
        let size = min(chunk, left)
        try await sink.write(ByteBuffer(repeating: UInt8(left % 251), count: size))
        left -= size
    }
}

@Suite("Shared: streaming an upload into the store")
struct StreamingUploadTests {
    @Test func storesExactlyTheLimitWithItsHash() async throws {
        try await withStore { storage, _ in
            let key = try ObjectKey("uploads/exact")
            let stored = try await StreamingUpload.put(into: storage, key: key, maxBytes: 10_000, tooLarge: TooLarge()) { sink in
                try await produce(10_000, into: sink)
                #expect(sink.size == 10_000)
            }
            let bytes = Array(try await storage.get(key).collect(upTo: 20_000).readableBytesView)
            #expect(bytes.count == 10_000)
            #expect(stored.sizeBytes == 10_000)
            #expect(stored.sha256 == Hex.encode(Crypto.sha256(bytes)))
        }
    }

    @Test func oneByteOverTheLimitStoresNothing() async throws {
        try await withStore { storage, folder in
            let key = try ObjectKey("uploads/over")
            await #expect(throws: TooLarge.self) {
                try await StreamingUpload.put(into: storage, key: key, maxBytes: 10_000, tooLarge: TooLarge()) { sink in
                    try await produce(10_001, into: sink)
                }
            }
            #expect(try await storage.head(key) == nil)
            #expect(try FileManager.default.contentsOfDirectory(atPath: folder + "/.incoming") == [])
        }
    }

    @Test func aProducerThatFailsStoresNothing() async throws {
        try await withStore { storage, _ in
            let key = try ObjectKey("uploads/abandoned")
            await #expect(throws: ClientWentAway.self) {
                try await StreamingUpload.put(into: storage, key: key, maxBytes: 1 << 20, tooLarge: TooLarge()) { sink in
                    try await produce(50_000, into: sink)
                    throw ClientWentAway()
                }
            }
            #expect(try await storage.list(prefix: "uploads/", startAfter: nil, limit: 10) == [])
        }
    }

    @Test func aStoreThatFailsReportsTheStoresError() async throws {
        try await withStore { storage, _ in
            // A key that exists as a folder cannot be replaced by a file: the put fails.
            try await storage.put(try ObjectKey("uploads/taken/inner"), body: RequestBody(buffer: ByteBuffer(string: "x")), length: 1)
            do {
                _ = try await StreamingUpload.put(into: storage, key: try ObjectKey("uploads/taken"), maxBytes: 1 << 30, tooLarge: TooLarge()) { sink in
                    try await produce(2 << 20, chunk: 64 * 1024, into: sink)
                }
                Issue.record("the put did not fail")
            } catch let error as APIError {
                #expect(error.status == .serviceUnavailable)
            }
        }
    }
}
