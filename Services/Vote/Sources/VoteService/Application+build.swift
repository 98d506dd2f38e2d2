import Foundation
import Hummingbird
import Logging
import Shared

/// Builds the vote service from its configuration.
public func buildApplication(configuration: VoteConfiguration, logger: Logger) async throws -> some ApplicationProtocol {
    try buildApplication(VoteDependencies(configuration: configuration, logger: logger))
}

/// Builds the vote service from its parts: routes, migrations and the live-counts listener.
func buildApplication(_ dependencies: VoteDependencies) throws -> some ApplicationProtocol {
    makeServiceApplication(
        router: try buildRouter(dependencies), configuration: dependencies.configuration.common, database: dependencies.database,
        migrations: VoteMigrations.all, userEvents: dependencies.userEvents, services: dependencies.backgroundServices,
        logger: dependencies.logger)
}

/// The vote routes.
func buildRouter(_ dependencies: VoteDependencies) throws -> Router<AppRequestContext> {
    let configuration = dependencies.configuration
    let tokens = try dependencies.userEvents.accessTokens(settings: configuration.common.tokens)
    let polls = PollsController(repository: dependencies.repository)
    let events = PollEventsController(repository: dependencies.repository, hub: dependencies.hub, settings: configuration.events)

    let hub = dependencies.hub
    let router = makeServiceRouter(
        configuration: configuration.common, database: dependencies.database, tokens: tokens, userEvents: dependencies.userEvents,
        readiness: [
            ReadinessCheck("notifications") {
                guard await hub.isListening else { throw NotListeningError() }
            }
        ],
        openAPIDocument: OpenAPIDocument.load(from: .module), logger: dependencies.logger)
    let pollsGroup = router.group("polls")
    pollsGroup.group(context: OptionalAuthContext.self).addRoutes(polls.readEndpoints).addRoutes(events.endpoints)
    pollsGroup.group(context: AuthenticatedContext.self).addRoutes(polls.writeEndpoints)
    router.internalRoutes(credentials: dependencies.credentials).addRoutes(
        UserEventsController(events: dependencies.userEvents, handler: VoteUserEventHandler(repository: dependencies.repository)).endpoints)
    return router
}
