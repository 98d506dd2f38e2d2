import Logging
import PostgresNIO
import Shared

/// The vote service's parts, built once from its configuration. Tests build them and reach
/// into one (the hub, to watch its subscribers) before handing them to `buildApplication(_:)`.
struct VoteDependencies: Sendable {
    var configuration: VoteConfiguration
    var logger: Logger
    var database: Database
    var repository: any VoteRepository
    /// This instance's live-count subscribers, fed by the LISTEN connection.
    var hub: PollEventHub
    /// Announces this instance's changes to every instance's LISTEN connection.
    var announcer: PollChangeAnnouncer
    /// Revoked tokens and deleted users (`POST /internal/events`).
    var userEvents: UserEvents

    init(configuration: VoteConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.database = configuration.common.makeDatabase(logger: logger)
        self.announcer = PollChangeAnnouncer()
        self.repository = PostgresVoteRepository(database: database, announcer: announcer)
        self.hub = PollEventHub()
        self.userEvents = UserEvents(database: database, tokens: configuration.common.tokens)
    }
}
