import Foundation
import Hummingbird
import Logging
import Shared

/// Builds the auth service from its configuration.
public func buildApplication(configuration: AuthConfiguration, logger: Logger) async throws -> some ApplicationProtocol {
    try await buildApplication(AuthDependencies(configuration: configuration, logger: logger))
}

/// Builds the auth service from its parts: routes, migrations and the outbox dispatcher.
func buildApplication(_ dependencies: AuthDependencies) async throws -> some ApplicationProtocol {
    let router = try await buildRouter(dependencies)
    return makeServiceApplication(
        router: router, configuration: dependencies.configuration.common, database: dependencies.database,
        migrations: AuthMigrations.all, userEvents: dependencies.userEvents,
        services: [dependencies.http, dependencies.makeOutboxDispatcher(), try await dependencies.makeMailer()],
        logger: dependencies.logger)
}

/// The auth routes.
func buildRouter(_ dependencies: AuthDependencies) async throws -> Router<AppRequestContext> {
    let configuration = dependencies.configuration
    let tokens = try dependencies.userEvents.accessTokens(settings: configuration.common.tokens)
    let hasher = PasswordHasher(cost: configuration.bcryptCost)
    let controller = AuthController(
        repository: dependencies.repository, hasher: hasher, tokens: tokens, refreshTokenTTL: configuration.refreshTokenTTL,
        dummyPasswordHash: try await hasher.hash("not-a-real-password-\(UUID.random())"), loginThrottle: configuration.loginThrottle,
        mail: configuration.mail, mailQueue: dependencies.mailQueue, mailWakeUp: dependencies.mailWakeUp,
        socialProviders: dependencies.socialProviders())

    let (database, logger) = (dependencies.database, dependencies.logger)
    let router = makeServiceRouter(
        configuration: configuration.common, tokens: tokens, userEvents: dependencies.userEvents,
        readiness: [ReadinessCheck("database") { try await database.ping(logger: logger) }],
        openAPIDocument: OpenAPIDocument.load(from: .module))
    let auth = router.group("auth")
    auth.addRoutes(controller.publicEndpoints)
    auth.group(context: AuthenticatedContext.self).addRoutes(controller.userEndpoints)
    router.internalRoutes(credentials: dependencies.credentials)
        .addRoutes(InternalUsersController(repository: dependencies.repository).endpoints)
    return router
}
