import Configuration
import Foundation
import Hummingbird
import Logging
import PostgresNIO
import Shared

/// Everything the auth service reads at start-up.
public struct AuthConfiguration: Sendable {
    public var common: CommonConfiguration
    public var bcryptCost: UInt8
    public var refreshTokenTTL: Duration
    /// Services told of deleted accounts: `OUTBOX_TARGETS=vote=http://host:port,recording=…,feed=…`.
    public var outboxTargets: [(name: String, baseURL: String)]

    public init(reader: ConfigReader, logger: Logger) throws {
        self.common = try CommonConfiguration(reader: reader, serviceName: "auth", defaultPort: 8081, logger: logger)
        let cost = reader.int(forKey: "bcrypt.cost", default: 12)  // BCRYPT_COST
        let minimum = common.environment == .production ? 10 : 4
        guard (minimum...16).contains(cost) else {
            throw ConfigurationError("BCRYPT_COST must be between \(minimum) and 16 (\(common.environment.rawValue)).")
        }
        self.bcryptCost = UInt8(cost)
        self.refreshTokenTTL = .seconds(reader.int(forKey: "refresh.token.ttl.seconds", default: 30 * 24 * 3600))
        self.outboxTargets = try reader.string(forKey: "outbox.targets", default: "").split(separator: ",").map { entry in
            let parts = entry.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[0].isEmpty, parts[1].hasPrefix("http") else {
                throw ConfigurationError("OUTBOX_TARGETS entries look like name=http://host:port, not '\(entry)'.")
            }
            return (parts[0], parts[1])
        }
    }
}

/// Builds the auth service: its Postgres client, migrations and routes.
public func buildApplication(configuration: AuthConfiguration, logger: Logger) async throws -> some ApplicationProtocol {
    let postgres = PostgresClient(configuration: configuration.common.database, backgroundLogger: logger)
    let repository = PostgresAuthRepository(client: postgres, outboxTargets: configuration.outboxTargets.map(\.name))
    let http = ServiceHTTPClient()
    let credentials = try ServiceCredentials(secret: configuration.common.serviceTokenSecret, serviceName: "auth")
    let dispatcher = OutboxDispatcher(
        postgres: postgres,
        targets: configuration.outboxTargets.map {
            ServiceClient(serviceName: $0.name, baseURL: $0.baseURL, http: http.client, credentials: credentials, timeout: .seconds(5))
        },
        logger: logger)
    let router = try await buildRouter(
        configuration: configuration, repository: repository, onUserDeleted: { dispatcher.notifyNewEvent() },
        readiness: [ReadinessCheck("database") { try await postgres.ping() }])
    return makeServiceApplication(
        router: router, configuration: configuration.common, postgres: postgres,
        migrations: AuthMigrations.all, services: [http, dispatcher], logger: logger)
}

/// The auth routes over any repository (tests may pass another).
func buildRouter(
    configuration: AuthConfiguration, repository: any AuthRepository, onUserDeleted: @escaping @Sendable () -> Void,
    readiness: [ReadinessCheck]
) async throws -> Router<AppRequestContext> {
    let tokens = try AccessTokens(settings: configuration.common.tokens)
    let credentials = try ServiceCredentials(secret: configuration.common.serviceTokenSecret, serviceName: "auth")
    let hasher = PasswordHasher(cost: configuration.bcryptCost)
    let controller = AuthController(
        repository: repository, hasher: hasher, tokens: tokens, refreshTokenTTL: configuration.refreshTokenTTL,
        dummyPasswordHash: try await hasher.hash("not-a-real-password-\(UUID())"), onUserDeleted: onUserDeleted)

    let router = makeServiceRouter(
        configuration: configuration.common, tokens: tokens, readiness: readiness,
        openAPIDocument: AuthOpenAPI.document)
    let auth = router.group("auth")
    auth.addRoutes(controller.publicEndpoints)
    auth.group(context: AuthenticatedContext.self).addRoutes(controller.userEndpoints)
    router.internalRoutes(credentials: credentials).addRoutes(InternalUsersController(repository: repository).endpoints)
    return router
}

enum AuthOpenAPI {
    /// Served at `/openapi.yaml`; the tests check it against the routes.
    static let document: String? = Bundle.module.url(forResource: "openapi", withExtension: "yaml")
        .flatMap { try? String(contentsOf: $0, encoding: .utf8) }
}
