import Logging
import PostgresNIO
import ServiceLifecycle
import Shared

/// The vote service's parts, built once from its configuration. Tests build them and reach
/// into one (the hub, to watch its subscribers) before handing them to `buildApplication(_:)`.
struct VoteDependencies: Sendable {
    var configuration: VoteConfiguration
    var logger: Logger
    var database: Database
    var repository: any VoteRepository
    /// Checked on vote's `/internal` routes.
    var credentials: ServiceCredentials
    /// This instance's live-count subscribers, fed by the LISTEN connection.
    var hub: PollEventHub
    /// Announces this instance's changes to every instance's LISTEN connection.
    var announcer: PollChangeAnnouncer
    /// The LISTEN connection, the fan-out to the hub and the announcer, run beside the server.
    var pollEvents: PollEventsService
    /// Revoked tokens and deleted users (`POST /internal/events`).
    var userEvents: UserEvents

    /// What runs beside the HTTP server: the background workers.
    var backgroundServices: [any Service] { [pollEvents] }

    init(configuration: VoteConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        self.database = configuration.common.makeDatabase(logger: logger)
        self.credentials = try configuration.common.makeServiceCredentials()
        self.announcer = PollChangeAnnouncer()
        self.repository = PostgresVoteRepository(database: database, announcer: announcer)
        self.hub = PollEventHub()
        self.userEvents = UserEvents(database: database, tokens: configuration.common.tokens)
        self.pollEvents = PollEventsService(
            database: database, repository: repository, hub: hub, announcer: announcer, settings: configuration.events, logger: logger)
    }
}
