import Configuration
import Foundation
import Hummingbird
import Logging
import NIOCore
import PostgresNIO
import Shared

/// Everything the feed service reads at start-up (names in the README).
public struct FeedConfiguration: Sendable {
    public var common: CommonConfiguration
    /// Base URL of the auth service, for author names (`AUTH_URL`).
    public var authURL: String
    /// Deadline of one call to auth (`AUTH_TIMEOUT_MS`).
    public var authTimeout: Duration
    /// How long a looked-up author name is used before asking again (`AUTHOR_CACHE_TTL_SECONDS`).
    public var authorCacheTTL: Duration
    /// Most author names kept (`AUTHOR_CACHE_SIZE`).
    public var authorCacheSize: Int
    public var storage: ObjectStorageConfiguration
    /// How often the orphan sweeper runs (`FEED_SWEEP_INTERVAL_SECONDS`).
    public var sweepInterval: Duration
    /// Age before an object without a row counts as orphaned (`FEED_ORPHAN_GRACE_SECONDS`).
    public var orphanGrace: Duration

    public init(reader: ConfigReader, logger: Logger) throws {
        self.common = try CommonConfiguration(reader: reader, serviceName: "feed", defaultPort: 8084, logger: logger)
        let authURL = reader.string(forKey: "auth.url", default: "http://127.0.0.1:8081")
        guard let url = URLComponents(string: authURL), ["http", "https"].contains(url.scheme ?? ""), url.host?.isEmpty == false else {
            throw ConfigurationError("AUTH_URL must be the auth service's base URL, e.g. http://127.0.0.1:8081.")
        }
        self.authURL = authURL
        self.authTimeout = .milliseconds(try Self.number(reader, "auth.timeout.ms", name: "AUTH_TIMEOUT_MS", default: 1000, range: 1...60_000))
        self.authorCacheTTL = .seconds(try Self.number(
            reader, "author.cache.ttl.seconds", name: "AUTHOR_CACHE_TTL_SECONDS", default: 60, range: 0...86_400))
        self.authorCacheSize = Int(try Self.number(
            reader, "author.cache.size", name: "AUTHOR_CACHE_SIZE", default: 10_000, range: 1...10_000_000))
        self.storage = try ObjectStorageConfiguration(reader: reader, serviceName: "feed")
        self.sweepInterval = .seconds(try Self.number(
            reader, "feed.sweep.interval.seconds", name: "FEED_SWEEP_INTERVAL_SECONDS", default: 600, range: 0.01...86_400))
        self.orphanGrace = .seconds(try Self.number(
            reader, "feed.orphan.grace.seconds", name: "FEED_ORPHAN_GRACE_SECONDS", default: 3600, range: 0...604_800))
    }

    /// A number setting; a value that is not a number in `range` stops the service rather than being ignored.
    static func number(_ reader: ConfigReader, _ key: ConfigKey, name: String, default value: Double, range: ClosedRange<Double>) throws -> Double {
        guard let text = reader.string(forKey: key), !text.isEmpty else { return value }
        guard let number = Double(text), range.contains(number) else {
            throw ConfigurationError("\(name) must be a number from \(range.lowerBound) to \(range.upperBound), not '\(text)'.")
        }
        return number
    }
}

/// Parts tests replace: the store (e.g. one that fails) and the author directory (e.g. one that counts calls).
struct FeedDependencies: Sendable {
    var wrapStorage: @Sendable (any ObjectStorage) -> any ObjectStorage = { $0 }
    var wrapDirectory: @Sendable (any AuthorDirectory) -> any AuthorDirectory = { $0 }
}

/// Builds the feed service: Postgres, the object store, the auth client, routes and the sweeper.
public func buildApplication(configuration: FeedConfiguration, logger: Logger) async throws -> some ApplicationProtocol {
    try await buildApplication(configuration: configuration, logger: logger, dependencies: FeedDependencies())
}

func buildApplication(
    configuration: FeedConfiguration, logger: Logger, dependencies: FeedDependencies
) async throws -> some ApplicationProtocol {
    let postgres = PostgresClient(configuration: configuration.common.database, backgroundLogger: logger)
    let repository = PostgresFeedRepository(client: postgres)
    let (store, storageService) = try configuration.storage.makeStorage(logger: logger)
    let storage = dependencies.wrapStorage(store)
    // One pool for calls to auth, sized for service-to-service traffic.
    let http = ServiceHTTPClient(maxConnectionsPerHost: 64, connectTimeout: .seconds(1), readTimeout: TimeAmount(configuration.authTimeout))
    let credentials = try ServiceCredentials(secret: configuration.common.serviceTokenSecret, serviceName: "feed")
    let directory = AuthServiceDirectory(client: ServiceClient(
        serviceName: "auth", baseURL: configuration.authURL, http: http.client, credentials: credentials,
        timeout: TimeAmount(configuration.authTimeout)))
    let authorNames = AuthorNames(
        directory: dependencies.wrapDirectory(directory),
        cache: AuthorNameCache(ttl: configuration.authorCacheTTL, capacity: configuration.authorCacheSize))
    let sweeper = OrphanObjectSweeper(
        storage: storage, prefix: FeedRules.objectPrefix, interval: configuration.sweepInterval, grace: configuration.orphanGrace,
        logger: logger
    ) { keys in
        try await repository.existingObjectKeys(keys, logger: logger)
    }
    let router = try buildRouter(
        configuration: configuration, repository: repository, storage: storage, authorNames: authorNames,
        readiness: [
            ReadinessCheck("database") { try await postgres.ping() },
            ReadinessCheck("storage") { try await storage.prepare() },
        ])
    return makeServiceApplication(
        router: router, configuration: configuration.common, postgres: postgres, migrations: FeedMigrations.all,
        services: [storageService, http, sweeper], logger: logger)
}

/// The feed routes over any repository and store (tests may pass others).
func buildRouter(
    configuration: FeedConfiguration, repository: any FeedRepository, storage: any ObjectStorage, authorNames: AuthorNames,
    readiness: [ReadinessCheck]
) throws -> Router<AppRequestContext> {
    let tokens = try AccessTokens(settings: configuration.common.tokens)
    let credentials = try ServiceCredentials(secret: configuration.common.serviceTokenSecret, serviceName: "feed")
    let controller = FeedController(
        repository: repository, storage: storage, receiver: PostFormReceiver(storage: storage), authorNames: authorNames)

    let router = makeServiceRouter(
        configuration: configuration.common, tokens: tokens, readiness: readiness, openAPIDocument: FeedOpenAPI.document)
    let feeds = router.group("feeds")
    feeds.addRoutes(controller.publicEndpoints)
    feeds.group(context: AuthenticatedContext.self).addRoutes(controller.authorEndpoints)
    router.internalRoutes(credentials: credentials).addRoutes(InternalUsersController(repository: repository, storage: storage).endpoints)
    return router
}

enum FeedOpenAPI {
    /// Served at `/openapi.yaml`; the tests check it against the routes.
    static let document: String? = Bundle.module.url(forResource: "openapi", withExtension: "yaml")
        .flatMap { try? String(contentsOf: $0, encoding: .utf8) }
}
