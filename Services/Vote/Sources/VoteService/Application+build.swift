import Configuration
import Foundation
import Hummingbird
import Logging
import PostgresNIO
import Shared

/// Everything the vote service reads at start-up.
public struct VoteConfiguration: Sendable {
    public var common: CommonConfiguration
    public var events: PollEventsSettings

    public init(reader: ConfigReader, logger: Logger) throws {
        self.common = try CommonConfiguration(reader: reader, serviceName: "vote", defaultPort: 8082, logger: logger)
        let coalesce = reader.int(forKey: "vote.events.coalesce.ms", default: 250)  // VOTE_EVENTS_COALESCE_MS
        guard (0...10_000).contains(coalesce) else {
            throw ConfigurationError("VOTE_EVENTS_COALESCE_MS must be between 0 and 10000.")
        }
        let heartbeat = reader.int(forKey: "vote.events.heartbeat.seconds", default: 15)  // VOTE_EVENTS_HEARTBEAT_SECONDS
        guard (1...300).contains(heartbeat) else {
            throw ConfigurationError("VOTE_EVENTS_HEARTBEAT_SECONDS must be between 1 and 300.")
        }
        self.events = PollEventsSettings(coalesceInterval: .milliseconds(coalesce), heartbeatInterval: .seconds(heartbeat))
    }
}

/// Builds the vote service: its Postgres client, migrations, live-counts listener and routes.
public func buildApplication(configuration: VoteConfiguration, logger: Logger) async throws -> some ApplicationProtocol {
    try await buildApplication(configuration: configuration, logger: logger, hub: PollEventHub())
}

/// As above, around a given hub (tests watch its subscribers).
func buildApplication(configuration: VoteConfiguration, logger: Logger, hub: PollEventHub) async throws -> some ApplicationProtocol {
    let postgres = PostgresClient(configuration: configuration.common.database, backgroundLogger: logger)
    let repository = PostgresVoteRepository(client: postgres)
    let events = PollEventsService(
        postgres: postgres, repository: repository, hub: hub, settings: configuration.events, logger: logger)
    let router = try buildRouter(configuration: configuration, repository: repository, hub: hub, readiness: [
        ReadinessCheck("database") { try await postgres.ping() },
        ReadinessCheck("notifications") {
            guard await hub.isListening else { throw NotListeningError() }
        },
    ])
    return makeServiceApplication(
        router: router, configuration: configuration.common, postgres: postgres,
        migrations: VoteMigrations.all, services: [events], logger: logger)
}

/// The LISTEN connection is down: live counts may be late until it is back.
struct NotListeningError: Error {}

/// The vote routes over any repository (tests may pass another).
func buildRouter(
    configuration: VoteConfiguration, repository: any VoteRepository, hub: PollEventHub, readiness: [ReadinessCheck]
) throws -> Router<AppRequestContext> {
    let tokens = try AccessTokens(settings: configuration.common.tokens)
    let credentials = try ServiceCredentials(secret: configuration.common.serviceTokenSecret, serviceName: "vote")
    let polls = PollsController(repository: repository)
    let events = PollEventsController(repository: repository, hub: hub, settings: configuration.events)

    let router = makeServiceRouter(
        configuration: configuration.common, tokens: tokens, readiness: readiness,
        openAPIDocument: VoteOpenAPI.document)
    let pollsGroup = router.group("polls")
    pollsGroup.group(context: OptionalAuthContext.self).addRoutes(polls.readEndpoints).addRoutes(events.endpoints)
    pollsGroup.group(context: AuthenticatedContext.self).addRoutes(polls.writeEndpoints)
    router.internalRoutes(credentials: credentials).addRoutes(InternalUsersController(repository: repository).endpoints)
    return router
}

enum VoteOpenAPI {
    /// Served at `/openapi.yaml`; the tests check it against the routes.
    static let document: String? = Bundle.module.url(forResource: "openapi", withExtension: "yaml")
        .flatMap { try? String(contentsOf: $0, encoding: .utf8) }
}
