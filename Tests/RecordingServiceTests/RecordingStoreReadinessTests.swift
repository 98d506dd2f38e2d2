import Foundation
import HummingbirdTesting
import ObjectStore
import Shared
import TestSupport
import Testing

@testable import RecordingService

/// `/ready` follows whether the store takes writes, not only whether it exists.
@Suite("Recording: readiness of the store")
struct RecordingStoreReadinessTests {
    /// A store folder that exists but refuses new files (a read-only or full disk). Permission
    /// bits do not stop root, which runs CI, so the store's `.incoming` folder is made a link
    /// to `/proc`, where the kernel refuses every new file whoever asks.
    @Test func aFileStoreThatRefusesWritesIsNotReadyUntilItTakesThemAgain() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("unwritable-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createSymbolicLink(atPath: root + "/.incoming", withDestinationPath: "/proc")
        try await withRecordingService(extra: ["STORAGE_PATH": root], waitForReady: false) { client, _ in
            try await eventually { try await client.send(.get, "/ready").status == .serviceUnavailable }
            let ready = try await client.send(.get, "/ready")
            #expect(try ready.json["checks"]?["storage"] == .string("unavailable"))
            // An upload fails the same way (and leaves nothing behind).
            #expect(try await client.uploadRaw(Array("x".utf8), token: try TestUser().token).status == .serviceUnavailable)

            try FileManager.default.removeItem(atPath: root + "/.incoming")
            try await eventually { try await client.send(.get, "/ready").status == .ok }
        }
    }

    /// An S3 store whose server stops (the suite's SeaweedFS, reached through a forwarder the
    /// test can stop, which cuts the connections and closes new ones) is not ready until the
    /// server is back.
    @Test func anS3StoreWhoseServerStopsIsNotReadyUntilItIsBack() async throws {
        let (variables, cleanUp) = try TestStorageBackend.s3.variables()
        defer { cleanUp() }
        let endpoint = try #require(variables["S3_ENDPOINT"].flatMap { URLComponents(string: $0) })
        let server = try await TCPForwarder(to: try #require(endpoint.host), port: try #require(endpoint.port))
        let extra = variables.merging(["S3_ENDPOINT": "http://127.0.0.1:\(server.port)"]) { $1 }
        do {
            try await withRecordingService(extra: extra, waitForReady: false) { client, _ in
                try await eventually(timeout: .seconds(40)) { try await client.send(.get, "/ready").status == .ok }

                await server.stop()
                try await eventually { try await client.send(.get, "/ready").status == .serviceUnavailable }
                let ready = try await client.send(.get, "/ready")
                #expect(try ready.json["checks"]?["storage"] == .string("unavailable"))
                #expect(try await client.uploadRaw(Array("x".utf8), token: try TestUser().token).status == .serviceUnavailable)

                server.start()
                try await eventually { try await client.send(.get, "/ready").status == .ok }
            }
        } catch {
            await server.close()
            throw error
        }
        await server.close()
    }
}
