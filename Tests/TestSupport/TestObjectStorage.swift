import Configuration
import Foundation
import Logging
import NIOCore
import ObjectStore
import Shared

/// The object stores tests run against: a fresh folder, or a fresh bucket on the
/// throwaway SeaweedFS that `make test` starts (`TEST_S3_*`, see scripts/with-test-seaweedfs.sh).
public enum TestStorageBackend: String, Sendable, CaseIterable, CustomStringConvertible {
    case fileSystem = "filesystem"
    case s3

    public var description: String { rawValue }

    public struct NotConfigured: Error, CustomStringConvertible {
        public var description: String {
            "TEST_S3_ENDPOINT, TEST_S3_ACCESS_KEY and TEST_S3_SECRET_KEY are not set: run the tests with `make test`, "
                + "which starts a throwaway SeaweedFS (scripts/with-test-seaweedfs.sh)."
        }
    }

    /// The S3 server of this test run; throws (the test fails) when there is none.
    public static func s3Server() throws -> (endpoint: String, region: String, accessKey: String, secretKey: String) {
        let environment = ProcessInfo.processInfo.environment
        guard let endpoint = environment["TEST_S3_ENDPOINT"], !endpoint.isEmpty,
            let accessKey = environment["TEST_S3_ACCESS_KEY"], !accessKey.isEmpty,
            let secretKey = environment["TEST_S3_SECRET_KEY"], !secretKey.isEmpty
        else { throw NotConfigured() }
        return (endpoint, environment["TEST_S3_REGION"] ?? "us-east-1", accessKey, secretKey)
    }

    /// A bucket name no other test uses.
    public static func uniqueBucket() -> String {
        "test-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(24)
    }

    /// A new empty folder under the temp directory.
    public static func temporaryFolder() throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("test-store-\(UUID().uuidString.lowercased())")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url.path
    }

    /// Environment variables that point a service at a fresh store of this backend, and a
    /// clean-up to run afterwards.
    public func variables() throws -> (variables: [String: String], cleanUp: @Sendable () -> Void) {
        switch self {
        case .fileSystem:
            let folder = try Self.temporaryFolder()
            return (["STORAGE_BACKEND": "filesystem", "STORAGE_PATH": folder], { try? FileManager.default.removeItem(atPath: folder) })
        case .s3:
            let server = try Self.s3Server()
            return ([
                "STORAGE_BACKEND": "s3", "S3_ENDPOINT": server.endpoint, "S3_REGION": server.region,
                "S3_BUCKET": Self.uniqueBucket(), "S3_ACCESS_KEY_ID": server.accessKey, "S3_SECRET_ACCESS_KEY": server.secretKey,
            ], {})
        }
    }

    /// A prepared store of this backend for `body`, released afterwards.
    public func withStorage<T: Sendable>(_ body: (any ObjectStorage) async throws -> T) async throws -> T {
        let (variables, cleanUp) = try variables()
        defer { cleanUp() }
        let configuration = try ObjectStorageConfiguration(
            reader: ConfigReader(provider: EnvironmentVariablesProvider(environmentVariables: variables)), serviceName: "test")
        let (storage, _) = try configuration.makeStorage(logger: TestEnvironment.logger)
        do {
            try await storage.prepare()
            let result = try await body(storage)
            try await (storage as? S3ObjectStorage)?.shutdown()
            return result
        } catch {
            try? await (storage as? S3ObjectStorage)?.shutdown()
            throw error
        }
    }
}

/// A store that hands every call to `base`: a test's wrapper (one that counts, one that
/// breaks mid-upload) implements only the calls it changes.
public protocol ForwardingObjectStorage: ObjectStorage {
    var base: any ObjectStorage { get }
}

extension ForwardingObjectStorage {
    @discardableResult
    public func put<Body: AsyncSequence & Sendable>(_ key: ObjectKey, body: Body, length: Int64?) async throws -> ObjectInfo
    where Body.Element == ByteBuffer {
        try await base.put(key, body: body, length: length)
    }
    public func get(_ key: ObjectKey, range: ClosedRange<Int64>?) async throws -> ObjectContent { try await base.get(key, range: range) }
    public func head(_ key: ObjectKey) async throws -> ObjectInfo? { try await base.head(key) }
    public func delete(_ key: ObjectKey) async throws { try await base.delete(key) }
    public func list(prefix: String, startAfter: ObjectKey?, limit: Int) async throws -> [ObjectInfo] {
        try await base.list(prefix: prefix, startAfter: startAfter, limit: limit)
    }
    public func removeAbandonedUploads(olderThan date: Date) async throws -> Int {
        try await base.removeAbandonedUploads(olderThan: date)
    }
    public func prepare() async throws { try await base.prepare() }
    public func gatewayTarget(for key: ObjectKey) -> String? { base.gatewayTarget(for: key) }
}
