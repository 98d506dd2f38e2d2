import Logging
import NIOCore
import ObjectStore
import PostgresNIO
import ServiceLifecycle
import Shared

/// The feed service's parts, built once from its configuration. Tests build them and replace
/// one (a store that fails, an author directory that counts its calls) before handing them
/// to `buildApplication(_:)`.
struct FeedDependencies: Sendable {
    var configuration: FeedConfiguration
    var logger: Logger
    var database: Database
    var repository: any PostRepository
    /// Minted for calls to auth, checked on feed's own `/internal` routes.
    var credentials: ServiceCredentials
    var storage: any ObjectStorage
    /// Runs the store's own background work (the S3 client's pool).
    var storageService: ObjectStorageService
    var sweeper: OrphanObjectSweeper
    /// The pool for calls to auth, sized for service-to-service traffic.
    var http: ServiceHTTPClient
    /// Where names of authors feed has never seen come from (auth's `/internal/users`).
    var authorDirectory: any AuthorDirectory
    /// Revoked tokens, deleted users and renames (`POST /internal/events`).
    var userEvents: UserEvents
    var postLimiter: UserRateLimiter

    /// What runs beside the HTTP server: the pools to shut down and the background workers.
    var backgroundServices: [any Service] { [storageService, http, sweeper] }

    init(configuration: FeedConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        self.database = configuration.common.makeDatabase(logger: logger)
        let credentials = try configuration.common.makeServiceCredentials()
        self.credentials = credentials
        let repository = PostgresPostRepository(database: database)
        self.repository = repository
        self.userEvents = UserEvents(database: database, tokens: configuration.common.tokens)
        self.postLimiter = UserRateLimiter(configuration.postLimit, database: database)
        (self.storage, self.storageService) = try configuration.storage.makeStorage(logger: logger)
        self.sweeper = OrphanObjectSweeper(
            storage: storage, prefix: PostRules.objectPrefix, interval: configuration.sweepInterval, grace: configuration.orphanGrace,
            logger: logger
        ) { keys in try await repository.existingObjectKeys(keys, logger: logger) }
        self.http = ServiceHTTPClient(
            maxConnectionsPerHost: 64, connectTimeout: .seconds(1), readTimeout: TimeAmount(configuration.authTimeout))
        self.authorDirectory = AuthServiceDirectory(client: ServiceClient(
            serviceName: "auth", baseURL: configuration.authURL, http: http.client, credentials: credentials,
            timeout: TimeAmount(configuration.authTimeout)))
    }
}
