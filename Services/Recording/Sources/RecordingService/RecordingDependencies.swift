import Logging
import ObjectStore
import PostgresNIO
import ServiceLifecycle
import Shared

/// The recording service's parts, built once from its configuration. Tests build them and
/// reach into one (run a purge or a sweep, look at the store) before handing them to
/// `buildApplication(_:)`.
struct RecordingDependencies: Sendable {
    var configuration: RecordingConfiguration
    var logger: Logger
    var database: Database
    var repository: any RecordingRepository
    /// Checked on recording's `/internal` routes.
    var credentials: ServiceCredentials
    var storage: any ObjectStorage
    /// Runs the store's own background work (the S3 client's pool).
    var storageService: ObjectStorageService
    var purger: TrashPurger
    var sweeper: OrphanObjectSweeper
    /// Revoked tokens and deleted users (`POST /internal/events`).
    var userEvents: UserEvents
    var uploadLimiter: UserRateLimiter

    /// What runs beside the HTTP server: the store's pool and the background workers.
    var backgroundServices: [any Service] { [storageService, purger, sweeper] }

    init(configuration: RecordingConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        self.database = configuration.common.makeDatabase(logger: logger)
        self.credentials = try configuration.common.makeServiceCredentials()
        let repository = PostgresRecordingRepository(database: database)
        self.repository = repository
        (self.storage, self.storageService) = try configuration.storage.makeStorage(logger: logger)
        self.userEvents = UserEvents(database: database, tokens: configuration.common.tokens)
        self.uploadLimiter = UserRateLimiter(configuration.uploadLimit, database: database)
        self.purger = TrashPurger(repository: repository, storage: storage, interval: configuration.purgeInterval, logger: logger)
        self.sweeper = OrphanObjectSweeper(
            storage: storage, prefix: "recordings/", interval: configuration.sweepInterval, grace: configuration.orphanGrace,
            logger: logger
        ) { keys in try await repository.existingObjectKeys(keys, logger: logger) }
    }
}
