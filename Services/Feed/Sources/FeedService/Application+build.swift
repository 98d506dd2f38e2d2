import Foundation
import Hummingbird
import Logging
import ObjectStore
import Shared

/// Builds the feed service from its configuration.
public func buildApplication(configuration: FeedConfiguration, logger: Logger) async throws -> some ApplicationProtocol {
    try buildApplication(FeedDependencies(configuration: configuration, logger: logger))
}

/// Builds the feed service from its parts: routes, migrations and the orphan sweeper.
func buildApplication(_ dependencies: FeedDependencies) throws -> some ApplicationProtocol {
    let (repository, logger) = (dependencies.repository, dependencies.logger)
    let sweeper = OrphanObjectSweeper(
        storage: dependencies.storage, prefix: PostRules.objectPrefix, interval: dependencies.configuration.sweepInterval,
        grace: dependencies.configuration.orphanGrace, logger: logger
    ) { keys in
        try await repository.existingObjectKeys(keys, logger: logger)
    }
    return makeServiceApplication(
        router: try buildRouter(dependencies), configuration: dependencies.configuration.common, database: dependencies.database,
        migrations: FeedMigrations.all, userEvents: dependencies.userEvents, services: [dependencies.storageService, dependencies.http, sweeper], logger: logger)
}

/// The feed routes (`/feeds` in the contract; posts inside).
func buildRouter(_ dependencies: FeedDependencies) throws -> Router<AppRequestContext> {
    let configuration = dependencies.configuration
    let tokens = try dependencies.userEvents.accessTokens(settings: configuration.common.tokens)
    let credentials = try ServiceCredentials(secret: configuration.common.serviceTokenSecret, serviceName: FeedConfiguration.serviceName)
    let authorNames = AuthorNames(directory: dependencies.authorDirectory, repository: dependencies.repository)
    let controller = PostsController(
        repository: dependencies.repository, storage: dependencies.storage,
        receiver: PostFormReceiver(storage: dependencies.storage), authorNames: authorNames, tokens: tokens,
        postLimiter: dependencies.postLimiter)

    let (database, logger) = (dependencies.database, dependencies.logger)
    let storageProbe = StorageWriteProbe(storage: dependencies.storage)
    let router = makeServiceRouter(
        configuration: configuration.common, tokens: tokens, userEvents: dependencies.userEvents,
        readiness: [
            ReadinessCheck("database") { try await database.ping(logger: logger) },
            ReadinessCheck("storage") { try await storageProbe.check() },
        ],
        openAPIDocument: OpenAPIDocument.load(from: .module))
    let posts = router.group("feeds")
    posts.addRoutes(controller.publicEndpoints)
    posts.group(context: AuthenticatedContext.self).addRoutes(controller.authorEndpoints)
    let userEventHandler = FeedUserEventHandler(
        repository: dependencies.repository, storage: dependencies.storage, postLimiter: dependencies.postLimiter)
    router.internalRoutes(credentials: credentials)
        .addRoutes(UserEventsController(events: dependencies.userEvents, handler: userEventHandler).endpoints)
    return router
}
