import Foundation
import Hummingbird
import Logging
import ObjectStore
import Shared

/// Builds the recording service from its configuration.
public func buildApplication(configuration: RecordingConfiguration, logger: Logger) async throws -> some ApplicationProtocol {
    try buildApplication(RecordingDependencies(configuration: configuration, logger: logger))
}

/// Builds the recording service from its parts: routes, migrations, the trash purge and the
/// orphan sweeper.
func buildApplication(_ dependencies: RecordingDependencies) throws -> some ApplicationProtocol {
    makeServiceApplication(
        router: try buildRouter(dependencies), configuration: dependencies.configuration.common, database: dependencies.database,
        migrations: RecordingMigrations.all, userEvents: dependencies.userEvents, services: dependencies.backgroundServices,
        logger: dependencies.logger)
}

/// The recording routes.
func buildRouter(_ dependencies: RecordingDependencies) throws -> Router<AppRequestContext> {
    let configuration = dependencies.configuration
    let tokens = try dependencies.userEvents.accessTokens(settings: configuration.common.tokens)
    let controller = RecordingController(
        repository: dependencies.repository, storage: dependencies.storage,
        receiver: UploadReceiver(storage: dependencies.storage, maxBytes: configuration.maxUploadBytes),
        purger: dependencies.purger, trashRetention: configuration.trashRetention, tokens: tokens,
        uploadLimiter: dependencies.uploadLimiter,
        contentLinks: ContentLinks(
            serviceTokenSecret: configuration.common.serviceTokenSecret, lifetime: configuration.contentLinkLifetime))

    let router = makeServiceRouter(
        configuration: configuration.common, database: dependencies.database, tokens: tokens, userEvents: dependencies.userEvents,
        readiness: [.storage(dependencies.storage)], openAPIDocument: OpenAPIDocument.load(from: .module), logger: dependencies.logger)
    // Uploads stream `request.body` and count the bytes themselves (RECORDING_MAX_BYTES); the
    // context's maxUploadSize only limits `collect`, which these routes use for small JSON only.
    router.group("recordings", context: AuthenticatedContext.self).addRoutes(controller.endpoints)
    router.group("recordings", context: OptionalAuthContext.self).addRoutes(controller.contentEndpoints)
    router.internalRoutes(credentials: dependencies.credentials).addRoutes(
        UserEventsController(events: dependencies.userEvents, handler: RecordingUserEventHandler(purger: dependencies.purger, uploadLimiter: dependencies.uploadLimiter)).endpoints)
    return router
}
