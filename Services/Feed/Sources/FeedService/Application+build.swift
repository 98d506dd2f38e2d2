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
    makeServiceApplication(
        router: try buildRouter(dependencies), configuration: dependencies.configuration.common, database: dependencies.database,
        migrations: FeedMigrations.all, userEvents: dependencies.userEvents, services: dependencies.backgroundServices,
        logger: dependencies.logger)
}

/// The feed routes (`/feeds` in the contract; posts inside).
func buildRouter(_ dependencies: FeedDependencies) throws -> Router<AppRequestContext> {
    let configuration = dependencies.configuration
    let tokens = try dependencies.userEvents.accessTokens(settings: configuration.common.tokens)
    let authorNames = AuthorNames(directory: dependencies.authorDirectory, repository: dependencies.repository)
    let controller = PostsController(
        repository: dependencies.repository, storage: dependencies.storage,
        receiver: PostFormReceiver(storage: dependencies.storage), authorNames: authorNames, tokens: tokens,
        postLimiter: dependencies.postLimiter)

    let router = makeServiceRouter(
        configuration: configuration.common, database: dependencies.database, tokens: tokens, userEvents: dependencies.userEvents,
        readiness: [.storage(dependencies.storage)], openAPIDocument: OpenAPIDocument.load(from: .module), logger: dependencies.logger)
    let posts = router.group("feeds")
    posts.addRoutes(controller.publicEndpoints)
    posts.group(context: AuthenticatedContext.self).addRoutes(controller.authorEndpoints)
    let userEventHandler = FeedUserEventHandler(
        repository: dependencies.repository, storage: dependencies.storage, postLimiter: dependencies.postLimiter)
    router.internalRoutes(credentials: dependencies.credentials)
        .addRoutes(UserEventsController(events: dependencies.userEvents, handler: userEventHandler).endpoints)
    return router
}
