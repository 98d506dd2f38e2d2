import Configuration
import Foundation
import Logging
import ObjectStore
import Shared

/// Everything the feed service reads at start-up (names in the README).
public struct FeedConfiguration: ServiceConfiguration {
    public static let serviceName = "feed"
    public static var secretVariables: [String] { ObjectStorageConfiguration.secretVariables }
    public var common: CommonConfiguration
    /// Base URL of the auth service, for names of authors feed has never seen (`AUTH_URL`).
    public var authURL: String
    /// Deadline of one call to auth (`AUTH_TIMEOUT_MS`).
    public var authTimeout: Duration
    public var storage: ObjectStorageConfiguration
    /// How often the orphan sweeper runs (`FEED_SWEEP_INTERVAL_SECONDS`).
    public var sweepInterval: Duration
    /// Age before an object without a row counts as orphaned (`FEED_ORPHAN_GRACE_SECONDS`).
    public var orphanGrace: Duration
    /// Posts per user (`FEED_POSTS_PER_HOUR`, `FEED_POST_BURST`).
    public var postLimit: UserRateLimit

    public init(reader: ConfigReader, logger: Logger) throws {
        self.common = try CommonConfiguration(reader: reader, serviceName: Self.serviceName, defaultPort: 8084, logger: logger)
        let authURL = reader.string(forKey: "auth.url", default: "http://127.0.0.1:8081")
        guard let url = URLComponents(string: authURL), ["http", "https"].contains(url.scheme ?? ""), url.host?.isEmpty == false else {
            throw ConfigurationError("AUTH_URL must be the auth service's base URL, e.g. http://127.0.0.1:8081.")
        }
        self.authURL = authURL
        self.authTimeout = try reader.milliseconds("AUTH_TIMEOUT_MS", default: 1000, in: 1...60_000)
        self.storage = try ObjectStorageConfiguration(reader: reader, serviceName: Self.serviceName)
        self.sweepInterval = try reader.seconds("FEED_SWEEP_INTERVAL_SECONDS", default: 600, in: 0.01...86_400)
        self.orphanGrace = try reader.seconds("FEED_ORPHAN_GRACE_SECONDS", default: 3600, in: 0...604_800)
        self.postLimit = try UserRateLimit(
            action: "post", reader: reader, perHour: "FEED_POSTS_PER_HOUR", burst: "FEED_POST_BURST",
            defaultPerHour: 60, defaultBurst: 20)
    }
}
