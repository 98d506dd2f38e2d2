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
    /// Auth's own revocations, and the table every token check of auth's routes consults.
    var userEvents: UserEvents
    /// Wakes the outbox dispatcher once the repository commits an event.
    var outboxWakeUp: WakeUp
    /// How often the outbox looks for deliveries written by other instances or due for a retry.
    var outboxPollInterval: Duration = .seconds(1)
    var mailQueue: MailQueue
    /// Wakes the mailer once a message is committed.
    var mailWakeUp: WakeUp

    init(configuration: AuthConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        self.database = configuration.common.makeDatabase(logger: logger)
        self.userEvents = UserEvents(database: database, tokens: configuration.common.tokens)
        self.outboxWakeUp = WakeUp()
        self.mailWakeUp = WakeUp()
        self.mailQueue = MailQueue(database: database)
        self.repository = PostgresAuthRepository(
            database: database, outboxTargets: configuration.outboxTargets.map(\.name), userEvents: userEvents,
            deletionRedeliveryDelay: configuration.deletionRedeliveryDelay, outboxWakeUp: outboxWakeUp, mailWakeUp: mailWakeUp)
        self.http = ServiceHTTPClient()
        self.credentials = try ServiceCredentials(secret: configuration.common.serviceTokenSecret, serviceName: AuthConfiguration.serviceName)
    }

    /// Loads and checks the templates (a broken one stops the service here).
    func makeMailer() async throws -> Mailer {
        let settings = configuration.mail
        guard let directory = settings.templatesDirectory ?? MailTemplates.bundledDirectory else {
            throw MailTemplateError("the service's bundled mail templates are missing; set MAIL_TEMPLATES_DIR")
        }
        let templates = try await MailTemplates(directory: directory, appName: settings.appName)
        return Mailer(queue: mailQueue, settings: settings, templates: templates, wakeUp: mailWakeUp, logger: logger)
    }

    /// One verifier (and key cache) per configured provider; their fetches use the service pool.
    func socialProviders() -> [IDTokenVerifier] {
        configuration.oidcProviders.map { provider in
            IDTokenVerifier(
                provider: provider, keys: JWKSCache(
                    provider: provider, http: http.client, logger: logger, refetchInterval: configuration.oidcKeysRefetch.timeInterval),
                leeway: configuration.common.tokens.leeway)
        }
    }

    func makeOutboxDispatcher() -> OutboxDispatcher {
        OutboxDispatcher(
            repository: repository,
            targets: configuration.outboxTargets.map { target in
                target.baseURLs.map {
                    ServiceClient(serviceName: target.name, baseURL: $0, http: http.client, credentials: credentials, timeout: .seconds(5))
                }
            },
            wakeUp: outboxWakeUp, logger: logger, pollInterval: outboxPollInterval)
    }
}
