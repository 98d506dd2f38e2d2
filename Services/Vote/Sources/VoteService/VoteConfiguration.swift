import Configuration
import Foundation
import Logging
import Shared

/// Everything the vote service reads at start-up.
public struct VoteConfiguration: ServiceConfiguration {
    public static let serviceName = "vote"
    public var common: CommonConfiguration
    public var events: PollEventsSettings

    public init(reader: ConfigReader, logger: Logger) throws {
        self.common = try CommonConfiguration(reader: reader, serviceName: Self.serviceName, defaultPort: 8082, logger: logger)
        self.events = PollEventsSettings(
            coalesceInterval: try reader.milliseconds("VOTE_EVENTS_COALESCE_MS", default: 250, in: 0...10_000),
            heartbeatInterval: try reader.seconds("VOTE_EVENTS_HEARTBEAT_SECONDS", default: 15, in: 1...300))
    }
}
