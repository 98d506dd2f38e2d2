import Configuration
import Foundation
import Logging
import PostgresNIO

/// Whether weak or missing secrets are tolerated (development) or stop the service (production).
public enum AppEnvironment: String, Sendable {
    case development
    case production
}

public struct ConfigurationError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The environment-variable names every service reads; one place, documented in the README.
public enum ConfigurationKeys {
    public static let environment: ConfigKey = "app.env"  // APP_ENV
    public static let host: ConfigKey = "http.host"  // HTTP_HOST
    public static let port: ConfigKey = "http.port"  // HTTP_PORT
    public static let logLevel: ConfigKey = "log.level"  // LOG_LEVEL
    public static let corsAllowedOrigins: ConfigKey = "cors.allowed.origins"  // CORS_ALLOWED_ORIGINS
    public static let jwtSecret: ConfigKey = "jwt.secret"  // JWT_SECRET
    public static let jwtIssuer: ConfigKey = "jwt.issuer"  // JWT_ISSUER
    public static let jwtAudience: ConfigKey = "jwt.audience"  // JWT_AUDIENCE
    public static let jwtLeeway: ConfigKey = "jwt.leeway.seconds"  // JWT_LEEWAY_SECONDS
    public static let serviceTokenSecret: ConfigKey = "service.token.secret"  // SERVICE_TOKEN_SECRET
    public static let databaseURL: ConfigKey = "database.url"  // DATABASE_URL
    public static let databaseHost: ConfigKey = "database.host"  // DATABASE_HOST
    public static let databasePort: ConfigKey = "database.port"  // DATABASE_PORT
    public static let databaseUser: ConfigKey = "database.user"  // DATABASE_USER
    public static let databasePassword: ConfigKey = "database.password"  // DATABASE_PASSWORD
    public static let databaseName: ConfigKey = "database.name"  // DATABASE_NAME
    public static let databaseMaxConnections: ConfigKey = "database.max.connections"  // DATABASE_MAX_CONNECTIONS
}

/// Settings shared by every service, read once at start-up.
public struct CommonConfiguration: Sendable {
    public var serviceName: String
    public var environment: AppEnvironment
    public var host: String
    public var port: Int
    public var logLevel: Logger.Level
    public var corsAllowedOrigins: [String]
    public var tokens: TokenSettings
    public var serviceTokenSecret: String
    public var database: PostgresClient.Configuration
    /// Longest wait for a pooled database connection before a request is answered 503
    /// (`DATABASE_CONNECTION_WAIT_MS`).
    public var databaseConnectionWait: Duration
    /// Longest a database call may take once connected, and each statement on the server
    /// (`DATABASE_QUERY_TIMEOUT_MS`).
    public var databaseQueryTimeout: Duration
    /// Longest the service waits, after SIGTERM, for requests in flight and background work
    /// before it stops anyway (`SHUTDOWN_GRACE_SECONDS`); keep it below the orchestrator's.
    public var shutdownGrace: Duration
    /// A connection that sends nothing for this long is closed, mid-request (a stalled body)
    /// or between requests (`HTTP_IDLE_TIMEOUT_SECONDS`); above the gateway's upstream
    /// keep-alive (60 s), so nginx never reuses a connection the service is closing.
    public var httpIdleTimeout: Duration

    /// Development-only secrets, so `swift run` works out of the box; refused in production.
    static let developmentJWTSecret = "development-only-jwt-secret-do-not-deploy-0001"
    static let developmentServiceSecret = "development-only-service-secret-do-not-deploy-01"

    public init(reader: ConfigReader, serviceName: String, defaultPort: Int, logger: Logger) throws {
        let environmentName = reader.string(forKey: ConfigurationKeys.environment, default: "development")
        guard let environment = AppEnvironment(rawValue: environmentName.lowercased()) else {
            throw ConfigurationError("APP_ENV must be 'development' or 'production', not '\(environmentName)'.")
        }
        self.serviceName = serviceName
        self.environment = environment
        self.host = reader.string(forKey: ConfigurationKeys.host, default: "127.0.0.1")
        self.port = try reader.integer("HTTP_PORT", default: defaultPort, in: 0...65_535)
        self.logLevel = try Self.readLogLevel(reader)
        self.corsAllowedOrigins = reader.string(forKey: ConfigurationKeys.corsAllowedOrigins, default: "*")
            .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }

        let jwtSecret = try Self.secret(
            reader, key: ConfigurationKeys.jwtSecret, name: "JWT_SECRET",
            developmentDefault: Self.developmentJWTSecret, environment: environment, logger: logger)
        self.serviceTokenSecret = try Self.secret(
            reader, key: ConfigurationKeys.serviceTokenSecret, name: "SERVICE_TOKEN_SECRET",
            developmentDefault: Self.developmentServiceSecret, environment: environment, logger: logger)
        guard jwtSecret != serviceTokenSecret else {
            throw ConfigurationError("JWT_SECRET and SERVICE_TOKEN_SECRET must differ: user tokens must never pass as service credentials.")
        }
        self.tokens = TokenSettings(
            secret: jwtSecret,
            issuer: reader.string(forKey: ConfigurationKeys.jwtIssuer, default: "backend-auth"),
            audience: reader.string(forKey: ConfigurationKeys.jwtAudience, default: "backend"),
            leeway: try reader.seconds("JWT_LEEWAY_SECONDS", default: 30, in: 0...300),
            accessTokenTTL: try reader.seconds("ACCESS_TOKEN_TTL_SECONDS", default: 900, in: 60...86_400)
        )
        self.database = try Self.database(reader, serviceName: serviceName)
        self.databaseConnectionWait = try reader.milliseconds("DATABASE_CONNECTION_WAIT_MS", default: 5000, in: 1...60_000)
        self.databaseQueryTimeout = try reader.milliseconds("DATABASE_QUERY_TIMEOUT_MS", default: 5000, in: 100...600_000)
        self.shutdownGrace = try reader.seconds("SHUTDOWN_GRACE_SECONDS", default: 25, in: 1...600)
        self.httpIdleTimeout = try reader.seconds("HTTP_IDLE_TIMEOUT_SECONDS", default: 75, in: 0.1...3600)
    }

    /// The service's database, with the bounds above; run its `pool` as a service.
    public func makeDatabase(logger: Logger) -> Database {
        Database(
            pool: DatabasePool(configuration: database, drainTime: databaseConnectionWait + databaseQueryTimeout, logger: logger),
            connectionWait: databaseConnectionWait, queryTimeout: databaseQueryTimeout)
    }

    /// The service's credentials for `/internal` calls: minted for the services it calls,
    /// checked on its own `/internal` routes.
    public func makeServiceCredentials() throws -> ServiceCredentials {
        try ServiceCredentials(secret: serviceTokenSecret, serviceName: serviceName)
    }

    /// `LOG_LEVEL` (`info`), in any case. The one reading of it: logging is set up with it
    /// before the rest of the configuration is read (`ServiceLogging.bootstrap`).
    static func readLogLevel(_ reader: ConfigReader) throws -> Logger.Level {
        let level = reader.string(forKey: ConfigurationKeys.logLevel, default: "info")
        guard let logLevel = Logger.Level(rawValue: level.lowercased()) else {
            throw ConfigurationError("LOG_LEVEL must be one of trace, debug, info, notice, warning, error, critical, not '\(level)'.")
        }
        return logLevel
    }

    /// A secret must be at least 32 bytes (RFC 7518 §3.2); production refuses defaults and weak values.
    static func secret(
        _ reader: ConfigReader, key: ConfigKey, name: String, developmentDefault: String,
        environment: AppEnvironment, logger: Logger
    ) throws -> String {
        guard let value = reader.string(forKey: key, isSecret: true), !value.isEmpty else {
            if environment == .production {
                throw ConfigurationError("\(name) is required in production (at least 32 random bytes).")
            }
            logger.warning("\(name) is not set; using the development default. Never do this in production.")
            return developmentDefault
        }
        if value.utf8.count < 32 {
            throw ConfigurationError("\(name) is too short: it needs at least 32 bytes.")
        }
        if environment == .production, value == developmentDefault || Set(value).count < 8 {
            throw ConfigurationError("\(name) is a development or low-entropy value; set a random secret in production.")
        }
        return value
    }

    /// `DATABASE_URL` (postgres://user:password@host:port/name) or its parts.
    static func database(_ reader: ConfigReader, serviceName: String) throws -> PostgresClient.Configuration {
        var host = reader.string(forKey: ConfigurationKeys.databaseHost, default: "127.0.0.1")
        var port = try reader.integer("DATABASE_PORT", default: 5432, in: 1...65_535)
        var user = reader.string(forKey: ConfigurationKeys.databaseUser, default: serviceName)
        var password = reader.string(forKey: ConfigurationKeys.databasePassword, isSecret: true)
        var name = reader.string(forKey: ConfigurationKeys.databaseName, default: serviceName)
        if let urlString = reader.string(forKey: ConfigurationKeys.databaseURL, isSecret: true), !urlString.isEmpty {
            guard let url = URLComponents(string: urlString), ["postgres", "postgresql"].contains(url.scheme ?? ""),
                let urlHost = url.host, !urlHost.isEmpty
            else {
                throw ConfigurationError("DATABASE_URL must look like postgres://user:password@host:port/database.")
            }
            host = urlHost
            port = url.port ?? 5432
            user = url.user?.removingPercentEncoding ?? user
            password = url.password?.removingPercentEncoding ?? password
            let path = url.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
            if !path.isEmpty { name = path }
        }
        var configuration = PostgresClient.Configuration(
            host: host, port: port, username: user, password: password, database: name, tls: .disable)
        configuration.options.maximumConnections = try reader.integer("DATABASE_MAX_CONNECTIONS", default: 20, in: 1...1000)
        configuration.options.connectTimeout = .seconds(5)
        // Every statement of every connection is bounded on the server, so a stuck query (or a
        // lock held by someone else) cannot hold a request, or the shutdown that waits for it.
        let statementTimeout = try reader.integer("DATABASE_QUERY_TIMEOUT_MS", default: 5000, in: 100...600_000)
        configuration.options.additionalStartupParameters = [("statement_timeout", "\(statementTimeout)")]
        // The pool arms an idle timer (and a keep-alive timer) each time a connection goes
        // back idle, and a cancelled Task.sleep keeps its memory until its deadline: at a few
        // thousand requests a second, the defaults (60 s, 30 s) held ~100 MB per service.
        // A short idle timeout and no keep-alive pings (a connection idle for 10 s is closed,
        // so it never sits long enough to go stale) keep that to a few MB.
        configuration.options.connectionIdleTimeout = .seconds(10)
        configuration.options.keepAliveBehavior = nil
        return configuration
    }
}

/// How user access tokens are signed and checked (shared by every service).
public struct TokenSettings: Sendable {
    public var secret: String
    public var issuer: String
    public var audience: String
    public var leeway: Duration
    public var accessTokenTTL: Duration

    public init(secret: String, issuer: String, audience: String, leeway: Duration = .seconds(30), accessTokenTTL: Duration = .seconds(900)) {
        self.secret = secret
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.accessTokenTTL = accessTokenTTL
    }
}
