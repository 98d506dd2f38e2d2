import Foundation
import Hummingbird
import Logging
import Shared

/// Builds the auth service from its configuration.
public func buildApplication(configuration: AuthConfiguration, logger: Logger) async throws -> some ApplicationProtocol {
    try await buildApplication(AuthDependencies(configuration: configuration, logger: logger))
}

/// Builds the auth service from its parts: routes, migrations, and the outbox dispatcher and
/// mailer beside them.
func buildApplication(_ dependencies: AuthDependencies) async throws -> some ApplicationProtocol {
    makeServiceApplication(
        router: try await buildRouter(dependencies), configuration: dependencies.configuration.common, database: dependencies.database,
        migrations: AuthMigrations.all, userEvents: dependencies.userEvents, services: dependencies.backgroundServices,
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

    let router = makeServiceRouter(
        configuration: configuration.common, database: dependencies.database, tokens: tokens, userEvents: dependencies.userEvents,
        openAPIDocument: OpenAPIDocument.load(from: .module), logger: dependencies.logger)
    let auth = router.group("auth")
    auth.addRoutes(controller.publicEndpoints)
    auth.group(context: AuthenticatedContext.self).addRoutes(controller.userEndpoints)
    router.internalRoutes(credentials: dependencies.credentials)
        .addRoutes(InternalUsersController(repository: dependencies.repository).endpoints)
    return router
}
