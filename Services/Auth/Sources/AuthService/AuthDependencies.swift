import Logging
import PostgresNIO
import Shared

/// The auth service's parts, built once from its configuration. Tests build them, change
/// what they need (the outbox's poll interval), and hand them to `buildApplication(_:)`.
struct AuthDependencies: Sendable {
    var configuration: AuthConfiguration
    var logger: Logger
    var database: Database
    var repository: any AuthRepository
    /// The pool for calls to other services (the outbox's deliveries).
    var http: ServiceHTTPClient
    var credentials: ServiceCredentials
    /// How often the outbox looks for deliveries written by other instances or due for a retry.
    var outboxPollInterval: Duration = .seconds(1)

    init(configuration: AuthConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        self.database = configuration.common.makeDatabase(logger: logger)
        self.repository = PostgresAuthRepository(database: database, outboxTargets: configuration.outboxTargets.map(\.name))
        self.http = ServiceHTTPClient()
        self.credentials = try ServiceCredentials(secret: configuration.common.serviceTokenSecret, serviceName: AuthConfiguration.serviceName)
    }

    func makeOutboxDispatcher() -> OutboxDispatcher {
        OutboxDispatcher(
            repository: repository,
            targets: configuration.outboxTargets.map {
                ServiceClient(serviceName: $0.name, baseURL: $0.baseURL, http: http.client, credentials: credentials, timeout: .seconds(5))
            },
            logger: logger, pollInterval: outboxPollInterval)
    }
}
