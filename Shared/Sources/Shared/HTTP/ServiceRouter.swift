import Hummingbird
import NIOCore
import Logging
import PostgresNIO
import ServiceLifecycle

/// The router every service starts from: the same middleware chain in the same order,
/// and the operational routes. Services add their controllers to it.
///
/// Order matters: the request id is set first so every log line and error body carries it;
/// the request's log line is written once everything below has answered (its status and
/// time); metrics and CORS see the final response; every response gets `nosniff`; the query is
/// form-decoded before anything reads it; the problem middleware sits inside them and turns
/// every error below into problem+json.
///
/// `/ready` checks the database and the user-event listener of every service, then the
/// service's own `readiness` checks (its object store, say).
public func makeServiceRouter(
    configuration: CommonConfiguration,
    database: Database,
    tokens: AccessTokens,
    userEvents: UserEvents,
    readiness: [ReadinessCheck] = [],
    openAPIDocument: String?,
    logger: Logger
) -> Router<AppRequestContext> {
    _ = ServiceMetrics.bootstrap
    let router = Router(context: AppRequestContext.self)
    router.add(middleware: RequestIDMiddleware())
    router.add(middleware: RequestLogMiddleware())
    router.add(middleware: MetricsMiddleware())
    router.add(middleware: CORSPolicyMiddleware(allowedOrigins: configuration.corsAllowedOrigins))
    router.add(middleware: NoSniffMiddleware())
    router.add(middleware: FormDecodedQueryMiddleware())
    router.add(middleware: ProblemMiddleware())
    router.add(middleware: BearerAuthMiddleware(tokens: tokens))
    let checks: [ReadinessCheck] = [.database(database, logger: logger), userEvents.readiness] + readiness
    router.addRoutes(OperationsController(checks: checks, openAPIDocument: openAPIDocument).endpoints)
    return router
}

/// The application around a service's router: its address from configuration, the
/// database client run as a service, migrations applied and the live revocations loaded
/// before the server takes traffic, the user-event listener beside it.
public func makeServiceApplication(
    router: Router<AppRequestContext>,
    configuration: CommonConfiguration,
    database: Database,
    migrations: [Migration],
    userEvents: UserEvents,
    services: [any Service] = [],
    logger: Logger
) -> some ApplicationProtocol {
    var app = Application(
        router: router,
        server: .http1(configuration: .init(idleTimeout: TimeAmount(configuration.httpIdleTimeout))),
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: nil),
        services: [database.pool, userEvents.makeService(logger: logger)] + services,
        logger: logger
    )
    let runner = MigrationRunner(migrations: migrations)
    app.beforeServerStarts {
        try await runner.run(on: database.client, logger: logger)
        // As patient as the migrations (which wait for a connection as long as it takes): a
        // database slow to answer at start (a loaded machine, a restart) delays the start
        // rather than ending the process.
        while true {
            do {
                try await userEvents.load(logger: logger)
                break
            } catch let error as DatabaseUnavailableError {
                logger.warning("loading revocations at start: \(error.reason); trying again")
                try await Task.sleep(for: .milliseconds(500))
            }
        }
    }
    return app
}
