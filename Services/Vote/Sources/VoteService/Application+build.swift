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
    let events = PollEventsService(
        database: dependencies.database, repository: dependencies.repository, hub: dependencies.hub,
        announcer: dependencies.announcer, settings: dependencies.configuration.events, logger: dependencies.logger)
    return makeServiceApplication(
        router: try buildRouter(dependencies), configuration: dependencies.configuration.common, database: dependencies.database,
        migrations: VoteMigrations.all, userEvents: dependencies.userEvents, services: [events], logger: dependencies.logger)
}

/// The LISTEN connection is down: live counts may be late until it is back.
struct NotListeningError: Error {}

/// The vote routes.
func buildRouter(_ dependencies: VoteDependencies) throws -> Router<AppRequestContext> {
    let configuration = dependencies.configuration
    let tokens = try dependencies.userEvents.accessTokens(settings: configuration.common.tokens)
    let credentials = try ServiceCredentials(secret: configuration.common.serviceTokenSecret, serviceName: VoteConfiguration.serviceName)
    let polls = PollsController(repository: dependencies.repository)
    let events = PollEventsController(repository: dependencies.repository, hub: dependencies.hub, settings: configuration.events)

    let (database, hub, logger) = (dependencies.database, dependencies.hub, dependencies.logger)
    let router = makeServiceRouter(
        configuration: configuration.common, tokens: tokens, userEvents: dependencies.userEvents,
        readiness: [
            ReadinessCheck("database") { try await database.ping(logger: logger) },
            ReadinessCheck("notifications") {
                guard await hub.isListening else { throw NotListeningError() }
            },
        ],
        openAPIDocument: OpenAPIDocument.load(from: .module))
    let pollsGroup = router.group("polls")
    pollsGroup.group(context: OptionalAuthContext.self).addRoutes(polls.readEndpoints).addRoutes(events.endpoints)
    pollsGroup.group(context: AuthenticatedContext.self).addRoutes(polls.writeEndpoints)
    router.internalRoutes(credentials: credentials).addRoutes(
        UserEventsController(events: dependencies.userEvents, handler: VoteUserEventHandler(repository: dependencies.repository)).endpoints)
    return router
}
