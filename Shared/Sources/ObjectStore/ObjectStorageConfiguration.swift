import Configuration
import Foundation
import Logging
import ServiceLifecycle
import Shared

/// Which object store a service uses, from the environment:
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `STORAGE_BACKEND` | `filesystem` | `filesystem` or `s3` |
/// | `STORAGE_PATH` | `storage/<service>` | root folder of the filesystem store |
/// | `S3_ENDPOINT` | - | `http(s)://host[:port]` of the S3-compatible store (path-style) |
/// | `S3_REGION` | `us-east-1` | signing region |
/// | `S3_BUCKET` | service name | bucket; created on start when missing |
/// | `S3_ACCESS_KEY_ID` / `S3_SECRET_ACCESS_KEY` | - | credentials (required for `s3`) |
/// | `STORAGE_GATEWAY_PATH` | - | the gateway's internal location for this store (`/_store/files/<service>/` or `/_store/s3/`): downloads are handed to the gateway, which sends the bytes itself; unset, the service streams them (set it only behind the gateway) |
public enum ObjectStorageConfiguration: Sendable {
    case fileSystem(path: String, gatewayPath: String?)
    case s3(S3ObjectStorage.Configuration)

    public enum Keys {
        public static let backend: ConfigKey = "storage.backend"  // STORAGE_BACKEND
        public static let path: ConfigKey = "storage.path"  // STORAGE_PATH
        public static let s3Endpoint: ConfigKey = "s3.endpoint"  // S3_ENDPOINT
        public static let s3Region: ConfigKey = "s3.region"  // S3_REGION
        public static let s3Bucket: ConfigKey = "s3.bucket"  // S3_BUCKET
        public static let s3AccessKeyID: ConfigKey = "s3.access.key.id"  // S3_ACCESS_KEY_ID
        public static let s3SecretAccessKey: ConfigKey = "s3.secret.access.key"  // S3_SECRET_ACCESS_KEY
        public static let gatewayPath: ConfigKey = "storage.gateway.path"  // STORAGE_GATEWAY_PATH
    }

    /// Environment variables whose values are secret (for `EnvironmentVariablesProvider`'s `secretsSpecifier`).
    public static let secretVariables = ["S3_SECRET_ACCESS_KEY"]

    public init(reader: ConfigReader, serviceName: String) throws {
        let backend = reader.string(forKey: Keys.backend, default: "filesystem").lowercased()
        let gatewayPath = try Self.gatewayPath(reader.string(forKey: Keys.gatewayPath))
        switch backend {
        case "filesystem":
            self = .fileSystem(path: reader.string(forKey: Keys.path, default: "storage/\(serviceName)"), gatewayPath: gatewayPath)
        case "s3":
            guard let endpoint = reader.string(forKey: Keys.s3Endpoint), !endpoint.isEmpty else {
                throw ConfigurationError("S3_ENDPOINT is required when STORAGE_BACKEND=s3 (e.g. http://127.0.0.1:8333).")
            }
            guard let accessKey = reader.string(forKey: Keys.s3AccessKeyID), !accessKey.isEmpty,
                let secretKey = reader.string(forKey: Keys.s3SecretAccessKey, isSecret: true), !secretKey.isEmpty
            else {
                throw ConfigurationError("S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY are required when STORAGE_BACKEND=s3.")
            }
            var configuration = S3ObjectStorage.Configuration(
                endpoint: endpoint,
                region: reader.string(forKey: Keys.s3Region, default: "us-east-1"),
                bucket: reader.string(forKey: Keys.s3Bucket, default: serviceName),
                accessKeyID: accessKey, secretAccessKey: secretKey)
            configuration.gatewayPath = gatewayPath
            self = .s3(configuration)
        default:
            throw ConfigurationError("STORAGE_BACKEND must be 'filesystem' or 's3', not '\(backend)'.")
        }
    }

    /// `STORAGE_GATEWAY_PATH`: empty is unset; otherwise an absolute path ending in `/` of
    /// characters that need no escaping, since it is the start of an `X-Accel-Redirect` URI.
    static func gatewayPath(_ value: String?) throws -> String? {
        guard let value, !value.isEmpty else { return nil }
        let safe = value.utf8.allSatisfy { ObjectKey.isKeyByte($0) || $0 == UInt8(ascii: "/") }
        guard safe, value.hasPrefix("/"), value.hasSuffix("/"), !value.contains("/."), !value.contains("//") else {
            throw ConfigurationError("STORAGE_GATEWAY_PATH must be a path like /_store/files/recording/ (starting and ending with '/'), not '\(value)'.")
        }
        return value
    }

    /// The store, and the service that prepares it at start-up and releases it at shutdown
    /// (add it to the application's services).
    public func makeStorage(logger: Logger) throws -> (storage: any ObjectStorage, service: ObjectStorageService) {
        do {
            switch self {
            case .fileSystem(let path, let gatewayPath):
                let storage = try FileSystemObjectStorage(root: path, gatewayPath: gatewayPath, logger: logger)
                return (storage as any ObjectStorage, ObjectStorageService(storage: storage, logger: logger, shutdown: {}))
            case .s3(let configuration):
                let storage = try S3ObjectStorage(configuration: configuration, logger: logger)
                return (storage as any ObjectStorage, ObjectStorageService(storage: storage, logger: logger, shutdown: { try await storage.shutdown() }))
            }
        } catch {
            throw ConfigurationError(error.description)
        }
    }
}

/// Prepares the store when the service starts (creating the folder or bucket), without
/// holding up the start when it is down: `/ready` reports it until it answers. Releases the
/// store's resources at shutdown, after the HTTP server has stopped.
public struct ObjectStorageService: Service {
    let storage: any ObjectStorage
    let logger: Logger
    let shutdown: @Sendable () async throws -> Void

    public init(storage: any ObjectStorage, logger: Logger, shutdown: @escaping @Sendable () async throws -> Void) {
        self.storage = storage
        self.logger = logger
        self.shutdown = shutdown
    }

    public func run() async throws {
        do {
            try await storage.prepare()
        } catch {
            logger.warning("object store not ready at start-up; /ready reports it until it answers", metadata: ["error": "\(error)"])
        }
        try? await gracefulShutdown()
        try await shutdown()
    }
}
