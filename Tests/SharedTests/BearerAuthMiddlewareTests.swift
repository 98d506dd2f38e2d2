import Hummingbird
import HummingbirdTesting
import Logging
import Shared
import Synchronization
import Testing
import TestSupport

/// User tokens on public routes, service credentials on `/internal` ones: each checked by
/// its own middleware, and a rejected user token logged once, never a service credential.
@Suite("HTTP: bearer user tokens and service credentials")
struct BearerAuthMiddlewareTests {
    final class Notices: Sendable {
        let messages = Mutex<[String]>([])
    }

    struct Capture: LogHandler {
        let notices: Notices
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .notice
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            notices.messages.withLock { $0.append("\(event.message)") }
        }
    }

    @Test func eachBearerIsCheckedByItsOwnMiddlewareAndOnlyBadUserTokensAreLogged() async throws {
        let notices = Notices()
        let router = Router(context: AppRequestContext.self)
        router.add(middleware: ProblemMiddleware())
        router.add(middleware: BearerAuthMiddleware(tokens: try AccessTokens(settings: TestEnvironment.tokenSettings)))
        router.group("polls", context: AuthenticatedContext.self).post { _, context in context.user.name }
        router.internalRoutes(credentials: try ServiceCredentials(secret: TestEnvironment.serviceTokenSecret, serviceName: "vote"))
            .post("events") { _, context in context.callingService }
        let app = Application(router: router, logger: Logger(label: "test") { _ in Capture(notices: notices) })
        let service = try TestEnvironment.serviceToken(from: "auth", to: "vote")
        let user = try TestEnvironment.accessToken(name: "Ada")
        try await app.test(.router) { client in
            let delivered = try await client.execute(uri: "/internal/events", method: .post, headers: [.authorization: "Bearer \(service)"])
            #expect(delivered.status == .ok)
            #expect(String(buffer: delivered.body) == "auth")
            #expect(notices.messages.withLock { $0 }.isEmpty, "a service credential is not a rejected user token")

            let asUser = try await client.execute(uri: "/internal/events", method: .post, headers: [.authorization: "Bearer \(user)"])
            #expect(asUser.status == .unauthorized)
            #expect(notices.messages.withLock { $0 } == ["rejected service credential"])

            let created = try await client.execute(uri: "/polls", method: .post, headers: [.authorization: "Bearer \(user)"])
            #expect(String(buffer: created.body) == "Ada")
            let asService = try await client.execute(uri: "/polls", method: .post, headers: [.authorization: "Bearer \(service)"])
            #expect(asService.status == .unauthorized)
            #expect(notices.messages.withLock { $0 } == ["rejected service credential", "rejected access token"])
        }
    }
}
