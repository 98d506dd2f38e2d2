import Logging
import PostgresNIO
import ServiceLifecycle
import Shared

/// The auth service's parts, built once from its configuration. Tests build them (with the
/// outbox's poll interval they need) and reach into one (the outbox dispatcher) before
/// handing them to `buildApplication(_:)`.
struct AuthDependencies: Sendable {
    var configuration: AuthConfiguration
    var logger: Logger
    var database: Database
    var repository: any AuthRepository
    /// The pool for calls to other services (the outbox's deliveries).
    var http: ServiceHTTPClient
    /// Minted for the outbox's deliveries, checked on auth's own `/internal` routes.
    var credentials: ServiceCredentials
    /// Auth's own revocations, and the table every token check of auth's routes consults.
    var userEvents: UserEvents
    /// Wakes the outbox dispatcher once the repository commits an event.
    var outboxWakeUp: WakeUp
    var mailQueue: MailQueue
    /// Wakes the mailer once a message is committed.
    var mailWakeUp: WakeUp
    /// Delivers user events to every service in `OUTBOX_TARGETS`.
    var outboxDispatcher: OutboxDispatcher
    var mailer: Mailer

    /// What runs beside the HTTP server: the pools to shut down and the background workers.
    var backgroundServices: [any Service] { [http, outboxDispatcher, mailer] }

    /// - Parameter outboxPollInterval: how often the outbox looks for deliveries written by
    ///   other instances or due for a retry (tests set their own).
    init(configuration: AuthConfiguration, logger: Logger, outboxPollInterval: Duration = .seconds(1)) async throws {
        self.configuration = configuration
        self.logger = logger
        self.database = configuration.common.makeDatabase(logger: logger)
        let credentials = try configuration.common.makeServiceCredentials()
        self.credentials = credentials
        self.userEvents = UserEvents(database: database, tokens: configuration.common.tokens)
        self.outboxWakeUp = WakeUp()
        self.mailWakeUp = WakeUp()
        self.mailQueue = MailQueue(database: database)
        self.repository = PostgresAuthRepository(
            database: database, outboxTargets: configuration.outboxTargets.map(\.name), userEvents: userEvents,
            deletionRedeliveryDelay: configuration.deletionRedeliveryDelay, outboxWakeUp: outboxWakeUp, mailWakeUp: mailWakeUp)
        self.mailer = try await Self.makeMailer(configuration.mail, queue: mailQueue, wakeUp: mailWakeUp, logger: logger)
        // The pool once nothing can throw: an HTTP client must be shut down, by running it.
        let http = ServiceHTTPClient()
        self.http = http
        self.outboxDispatcher = OutboxDispatcher(
            repository: repository,
            targets: configuration.outboxTargets.map { target in
                target.baseURLs.map {
                    ServiceClient(serviceName: target.name, baseURL: $0, http: http.client, credentials: credentials, timeout: .seconds(5))
                }
            },
            wakeUp: outboxWakeUp, logger: logger, pollInterval: outboxPollInterval)
    }

    /// Loads and checks the templates (a broken one stops the service here).
    private static func makeMailer(_ settings: MailSettings, queue: MailQueue, wakeUp: WakeUp, logger: Logger) async throws -> Mailer {
        guard let directory = settings.templatesDirectory ?? MailTemplates.bundledDirectory else {
            throw MailTemplateError("the service's bundled mail templates are missing; set MAIL_TEMPLATES_DIR")
        }
        let templates = try await MailTemplates(directory: directory, appName: settings.appName)
        return Mailer(queue: queue, settings: settings, templates: templates, wakeUp: wakeUp, logger: logger)
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
}
