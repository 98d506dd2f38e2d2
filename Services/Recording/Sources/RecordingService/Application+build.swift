import Configuration
import Foundation
import Hummingbird
import Logging
import PostgresNIO
import ServiceLifecycle
import Shared

/// Everything the recording service reads at start-up.
public struct RecordingConfiguration: Sendable {
    public var common: CommonConfiguration
    public var storage: ObjectStorageConfiguration
    /// Largest file accepted (`RECORDING_MAX_BYTES`).
    public var maxUploadBytes: Int64
    /// How long a deleted recording stays restorable (`RECORDING_TRASH_RETENTION_SECONDS`; 0 purges at once).
    public var trashRetention: Duration
    /// How often the purge looks for recordings past their retention (`RECORDING_PURGE_INTERVAL_SECONDS`).
    public var purgeInterval: Duration
    /// How often the sweeper looks for objects without a row (`RECORDING_SWEEP_INTERVAL_SECONDS`).
    public var sweepInterval: Duration
    /// How old an object without a row must be before the sweeper removes it (`RECORDING_ORPHAN_GRACE_SECONDS`).
    public var orphanGrace: Duration

    public init(reader: ConfigReader, logger: Logger) throws {
        self.common = try CommonConfiguration(reader: reader, serviceName: "recording", defaultPort: 8083, logger: logger)
        self.storage = try ObjectStorageConfiguration(reader: reader, serviceName: "recording")
        let maxBytes = reader.int(forKey: "recording.max.bytes", default: 100 * 1024 * 1024)
        guard maxBytes > 0 else { throw ConfigurationError("RECORDING_MAX_BYTES must be positive.") }
        self.maxUploadBytes = Int64(maxBytes)
        self.trashRetention = try Self.seconds(reader, "recording.trash.retention.seconds", "RECORDING_TRASH_RETENTION_SECONDS", default: 7 * 24 * 3600, minimum: 0)
        self.purgeInterval = try Self.seconds(reader, "recording.purge.interval.seconds", "RECORDING_PURGE_INTERVAL_SECONDS", default: 60, minimum: 1)
        self.sweepInterval = try Self.seconds(reader, "recording.sweep.interval.seconds", "RECORDING_SWEEP_INTERVAL_SECONDS", default: 3600, minimum: 1)
        self.orphanGrace = try Self.seconds(reader, "recording.orphan.grace.seconds", "RECORDING_ORPHAN_GRACE_SECONDS", default: 3600, minimum: 0)
    }

    static func seconds(_ reader: ConfigReader, _ key: ConfigKey, _ name: String, default value: Int, minimum: Int) throws -> Duration {
        let seconds = reader.int(forKey: key, default: value)
        guard seconds >= minimum else { throw ConfigurationError("\(name) must be at least \(minimum).") }
        return .seconds(seconds)
    }
}

/// The service's parts, built once; tests reach into them (run a sweep, look at the store).
struct RecordingComponents: Sendable {
    let configuration: RecordingConfiguration
    let postgres: PostgresClient
    let repository: any RecordingRepository
    let storage: any ObjectStorage
    let storageService: ObjectStorageService
    let purger: TrashPurger
    let sweeper: OrphanObjectSweeper
    let logger: Logger

    init(configuration: RecordingConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        self.postgres = PostgresClient(configuration: configuration.common.database, backgroundLogger: logger)
        let repository = PostgresRecordingRepository(client: postgres)
        self.repository = repository
        let (storage, storageService) = try configuration.storage.makeStorage(logger: logger)
        self.storage = storage
        self.storageService = storageService
        self.purger = TrashPurger(repository: repository, storage: storage, interval: configuration.purgeInterval, logger: logger)
        self.sweeper = OrphanObjectSweeper(
            storage: storage, prefix: "recordings/", interval: configuration.sweepInterval, grace: configuration.orphanGrace,
            logger: logger
        ) { keys in try await repository.existingObjectKeys(keys, logger: logger) }
    }
}

/// Builds the recording service: its Postgres client, object store, migrations, routes and
/// background actors.
public func buildApplication(configuration: RecordingConfiguration, logger: Logger) async throws -> some ApplicationProtocol {
    try buildApplication(RecordingComponents(configuration: configuration, logger: logger))
}

func buildApplication(_ components: RecordingComponents) throws -> some ApplicationProtocol {
    let postgres = components.postgres
    let storage = components.storage
    let router = try buildRouter(components, readiness: [
        ReadinessCheck("database") { try await postgres.ping() },
        ReadinessCheck("storage") { try await storage.prepare() },
    ])
    return makeServiceApplication(
        router: router, configuration: components.configuration.common, postgres: postgres,
        migrations: RecordingMigrations.all,
        services: [components.storageService, components.purger, components.sweeper],
        logger: components.logger)
}

func buildRouter(_ components: RecordingComponents, readiness: [ReadinessCheck]) throws -> Router<AppRequestContext> {
    let configuration = components.configuration
    let tokens = try AccessTokens(settings: configuration.common.tokens)
    let credentials = try ServiceCredentials(secret: configuration.common.serviceTokenSecret, serviceName: "recording")
    let controller = RecordingController(
        repository: components.repository, storage: components.storage,
        receiver: UploadReceiver(storage: components.storage, maxBytes: configuration.maxUploadBytes),
        purger: components.purger, trashRetention: configuration.trashRetention)

    let router = makeServiceRouter(
        configuration: configuration.common, tokens: tokens, readiness: readiness,
        openAPIDocument: RecordingOpenAPI.document)
    // Uploads stream `request.body` and count the bytes themselves (RECORDING_MAX_BYTES); the
    // context's maxUploadSize only limits `collect`, which these routes use for small JSON only.
    router.group("recordings", context: AuthenticatedContext.self).addRoutes(controller.endpoints)
    router.group("internal")
        .add(middleware: ServiceAuthMiddleware(credentials: credentials))
        .group(context: ServiceContext.self)
        .addRoutes(InternalUsersController(purger: components.purger).endpoints)
    return router
}

enum RecordingOpenAPI {
    /// Served at `/openapi.yaml`; the tests check it against the routes.
    static let document: String? = Bundle.module.url(forResource: "openapi", withExtension: "yaml")
        .flatMap { try? String(contentsOf: $0, encoding: .utf8) }
}
