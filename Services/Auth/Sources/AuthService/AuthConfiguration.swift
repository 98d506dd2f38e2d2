import Configuration
import Foundation
import Logging
import Shared

/// Everything the auth service reads at start-up.
public struct AuthConfiguration: ServiceConfiguration {
    public static let serviceName = "auth"
    /// SMTP_URL may carry the server's password.
    public static var secretVariables: [String] { ["SMTP_URL"] }
    public var common: CommonConfiguration
    public var bcryptCost: UInt8
    public var refreshTokenTTL: Duration
    /// Services told of user events: `OUTBOX_TARGETS=vote=http://host:port,recording=…,feed=…`;
    /// several instances of one service as `vote=http://a:8082|http://b:8082` (tried in turn).
    public var outboxTargets: [(name: String, baseURLs: [String])]
    /// When an account deletion is delivered the second time (`USER_DELETION_REDELIVERY_SECONDS`):
    /// longer than any write in flight when the first one arrived may take.
    public var deletionRedeliveryDelay: Duration
    /// `LOGIN_THROTTLE_*`: the per-account login throttle.
    var loginThrottle: LoginThrottle
    /// `SMTP_URL`, `MAIL_FROM`, `PUBLIC_BASE_URL`, ...: e-mail.
    var mail: MailSettings
    /// `OIDC_PROVIDERS` and each one's `OIDC_<NAME>_*`: social sign-in.
    var oidcProviders: [OIDCProvider]
    /// `OIDC_KEYS_REFETCH_SECONDS`: the least time between two key fetches for an unknown `kid`.
    var oidcKeysRefetch: Duration

    public init(reader: ConfigReader, logger: Logger) throws {
        self.common = try CommonConfiguration(reader: reader, serviceName: Self.serviceName, defaultPort: 8081, logger: logger)
        // Production refuses cheap hashes; tests and development may go down to 4.
        self.bcryptCost = UInt8(try reader.integer("BCRYPT_COST", default: 12, in: (common.environment == .production ? 10 : 4)...16))
        self.refreshTokenTTL = try reader.seconds("REFRESH_TOKEN_TTL_SECONDS", default: 30 * 24 * 3600, in: 60...(365 * 24 * 3600))
        self.deletionRedeliveryDelay = try reader.seconds("USER_DELETION_REDELIVERY_SECONDS", default: 60, in: 1...86_400)
        self.loginThrottle = try LoginThrottle(reader: reader)
        self.mail = try MailSettings(reader: reader)
        self.oidcProviders = try OIDCProvider.all(reader: reader)
        self.oidcKeysRefetch = try reader.seconds("OIDC_KEYS_REFETCH_SECONDS", default: 60, in: 0.01...3600)
        self.outboxTargets = try reader.string(forKey: "outbox.targets", default: "").split(separator: ",").map { entry in
            let parts = entry.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            let urls = parts.count == 2 ? parts[1].split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) } : []
            guard parts.count == 2, !parts[0].isEmpty, !urls.isEmpty, urls.allSatisfy({ $0.hasPrefix("http://") || $0.hasPrefix("https://") }) else {
                throw ConfigurationError("OUTBOX_TARGETS entries look like name=http://host:port (or name=URL|URL), not '\(entry)'.")
            }
            return (parts[0], urls)
        }
    }
}
