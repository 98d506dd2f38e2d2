import Configuration
import Foundation
import Logging
import Shared

/// Secrets and settings shared by every service under test, so a token minted by one
/// test service verifies in another, as in production.
public enum TestEnvironment {
    public static let jwtSecret = "test-jwt-secret-0123456789abcdef0123456789"
    public static let serviceTokenSecret = "test-service-secret-0123456789abcdef012345"
    public static let tokenSettings = TokenSettings(secret: jwtSecret, issuer: "backend-auth", audience: "backend")

    /// The environment variables a service would get, pointing at `databaseURL`.
    public static func variables(databaseURL: String, extra: [String: String] = [:]) -> [String: String] {
        [
            "APP_ENV": "development",
            "DATABASE_URL": databaseURL,
            "DATABASE_MAX_CONNECTIONS": "10",
            // The whole suite runs at once on two cores: a burst may queue for a connection, or
            // behind a row lock (five refreshes of one token), far longer than in production.
            // The fault tests set their own, short bounds.
            "DATABASE_CONNECTION_WAIT_MS": "30000",
            "DATABASE_QUERY_TIMEOUT_MS": "30000",
            "JWT_SECRET": jwtSecret,
            "SERVICE_TOKEN_SECRET": serviceTokenSecret,
            "LOG_LEVEL": "warning",
        ].merging(extra) { $1 }
    }

    public static func reader(databaseURL: String, extra: [String: String] = [:]) -> ConfigReader {
        ConfigReader(provider: EnvironmentVariablesProvider(environmentVariables: variables(databaseURL: databaseURL, extra: extra)))
    }

    public static var logger: Logger {
        var logger = Logger(label: "test")
        logger.logLevel = ProcessInfo.processInfo.environment["TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
        return logger
    }

    /// A service credential as `service` would present it to `target`.
    public static func serviceToken(from service: String = "auth", to target: String) throws -> String {
        try ServiceCredentials(secret: serviceTokenSecret, serviceName: service).token(for: target)
    }

    /// A user event as auth's outbox sends it to `POST /internal/events`.
    public static func userEventJSON(_ event: UserEvent) throws -> String {
        String(decoding: try APIJSONEncoder().encode(event), as: UTF8.self)
    }

    /// A user access token as the auth service would issue it.
    public static func accessToken(userID: UUID = UUID(), name: String = "Test User", sessionID: UUID = UUID()) throws -> String {
        try AccessTokens(settings: tokenSettings).issue(userID: userID, name: name, sessionID: sessionID).token
    }
}
