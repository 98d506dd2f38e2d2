import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import PostgresNIO
import Shared
import TestSupport
import Testing

/// A router with the shared middleware chain and routes that fail in each way a handler can.
private func withFailingRoutes(_ test: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
    struct Body: Decodable { var name: String; var count: Int }
    struct Secret: Error, CustomStringConvertible { var description: String { "SELECT * FROM users -- /srv/app/secret.swift:42" } }
    let settings = TestEnvironment.tokenSettings
    let reader = TestEnvironment.reader(databaseURL: "postgres://x@127.0.0.1/x", extra: ["CORS_ALLOWED_ORIGINS": "https://app.example"])
    let configuration = try CommonConfiguration(reader: reader, serviceName: "test", defaultPort: 0, logger: TestEnvironment.logger)
    let databaseURL = try await TestDatabase.create()
    let database = try CommonConfiguration(
        reader: TestEnvironment.reader(databaseURL: databaseURL), serviceName: "test", defaultPort: 0,
        logger: TestEnvironment.logger
    ).makeDatabase(logger: TestEnvironment.logger)
    try await TestDatabase.withClient(databaseURL) { client in
        for statement in UserEvents.migration { try await client.query(PostgresQuery(unsafeSQL: statement)).consume() }
    }
    let userEvents = UserEvents(database: database, tokens: settings)
    let router = makeServiceRouter(
        configuration: configuration, database: database, tokens: try userEvents.accessTokens(settings: settings), userEvents: userEvents,
        readiness: [ReadinessCheck("always") {}], openAPIDocument: "openapi: 3.1.0\n", logger: TestEnvironment.logger)
    router.get("api-error") { _, _ -> String in throw APIError.conflict("already_there", "It is already there.") }
    // Called by one test only, so that its count in the process-wide metrics is that test's alone.
    router.get("counted-error") { _, _ -> String in throw APIError.conflict("already_there", "It is already there.") }
    router.post("decode") { request, context -> String in
        let body = try await request.decodeJSON(as: Body.self, context: context)
        return body.name
    }
    let postgres = database.pool
    router.get("wrapped") { _, context -> String in
        try await database.transaction(logger: context.logger) { connection in
            try await connection.query("SELECT 1", logger: context.logger).consume()
            throw APIError.notFound("thing_not_found", "No such thing.")
        }
    }
    router.get("unexpected") { _, _ -> String in throw Secret() }
    router.get("database-down") { _, _ -> String in throw DatabaseUnavailableError(reason: "no connection", underlying: Secret()) }
    router.get("database-in-doubt") { _, _ -> String in
        throw DatabaseUnavailableError(reason: "commit not confirmed", mayHaveWritten: true, underlying: Secret())
    }
    router.get("http-error") { _, _ -> String in throw HTTPError(.badRequest, message: "internal detail") }
    router.get("parameter/{id}") { _, context -> String in
        try context.parameters.require("id", as: UUID.self).uuidString
    }
    router.group(context: AuthenticatedContext.self).get("private") { _, context -> String in context.user.name }
    router.group(context: OptionalAuthContext.self).get("public") { _, context -> String in context.user?.name ?? "anonymous" }
    var app = Application(router: router, services: [postgres, userEvents.makeService(logger: TestEnvironment.logger)], logger: TestEnvironment.logger)
    app.beforeServerStarts { try await userEvents.load(logger: TestEnvironment.logger) }
    try await app.test(.router, test)
}

@Suite("Problem details")
struct ProblemMiddlewareTests {
    @Test func apiErrorsBecomeProblemJSON() async throws {
        try await withFailingRoutes { client in
            let response = try await client.send(.get, "/api-error", headers: [.requestID: "req-123"])
            #expect(response.status == .conflict)
            #expect(response.headers[.contentType] == "application/problem+json")
            #expect(response.headers[.requestID] == "req-123")
            let problem = try response.problem
            #expect(problem == ProblemDetails(
                type: "about:blank", title: "Conflict", status: 409, detail: "It is already there.", code: "already_there",
                requestId: "req-123", errors: nil))
        }
    }

    @Test func decodingErrorsAreValidationProblems() async throws {
        try await withFailingRoutes { client in
            let missing = try await client.send(.post, "/decode", json: #"{"name": "x"}"#)
            #expect(missing.status == .badRequest)
            #expect(try missing.problem.errors == [FieldError(field: "count", message: "is required")])
            let wrongType = try await client.send(.post, "/decode", json: #"{"name": "x", "count": "three"}"#)
            #expect(try wrongType.problem.errors == [FieldError(field: "count", message: "has the wrong type")])
            let garbage = try await client.send(.post, "/decode", json: "][")
            #expect(garbage.status == .badRequest)
            #expect(try garbage.problem.errors?.first?.field == "body")
        }
    }

    @Test func transactionWrappedErrorsAreUnwrapped() async throws {
        try await withFailingRoutes { client in
            let response = try await client.send(.get, "/wrapped")
            #expect(response.status == .notFound)
            #expect(try response.problem.code == "thing_not_found")
        }
    }

    /// The database down is a 503 that says whether the change may have been saved, with
    /// Retry-After and nothing of the cause.
    @Test func databaseUnavailabilityIsA503ThatSaysWhetherTheChangeMayHaveBeenSaved() async throws {
        try await withFailingRoutes { client in
            for (path, code) in [("/database-down", "service_unavailable"), ("/database-in-doubt", "write_outcome_unknown")] {
                let response = try await client.send(.get, path)
                #expect(response.status == .serviceUnavailable)
                #expect(try response.problem.code == code)
                #expect(response.headers[.retryAfter] != nil)
                #expect(!String(buffer: response.body).contains("SELECT"))
            }
        }
    }

    @Test func unexpectedErrorsAreAGeneric500WithoutInternals() async throws {
        try await withFailingRoutes { client in
            let response = try await client.send(.get, "/unexpected")
            #expect(response.status == .internalServerError)
            let body = String(buffer: response.body)
            #expect(!body.contains("SELECT"))
            #expect(!body.contains("/srv"))
            let problem = try response.problem
            #expect(problem.code == "internal_error")
            #expect(!problem.requestId.isEmpty)
            #expect(response.headers[.requestID] == problem.requestId)

            let httpError = try await client.send(.get, "/http-error")
            #expect(httpError.status == .badRequest)
            #expect(!String(buffer: httpError.body).contains("internal detail"))
        }
    }

    @Test func unknownRoutesAndBadParametersAreProblems() async throws {
        try await withFailingRoutes { client in
            let unknown = try await client.send(.get, "/nowhere")
            #expect(unknown.status == .notFound)
            #expect(try unknown.problem.code == "not_found")
            let badID = try await client.send(.get, "/parameter/not-a-uuid")
            #expect(badID.status == .badRequest)
            #expect(try badID.problem.code == "bad_request")
            let head = try await client.send(.head, "/nowhere")
            #expect(head.status == .notFound)
            #expect(head.body.readableBytes == 0)
        }
    }

    @Test func requestIDsAreGeneratedOrSanitized() async throws {
        try await withFailingRoutes { client in
            let generated = try await client.send(.get, "/health")
            #expect(UUID(uuidString: generated.headers[.requestID] ?? "") != nil)
            let hostile = try await client.send(.get, "/health", headers: [.requestID: String(repeating: "x", count: 500)])
            #expect(hostile.headers[.requestID]?.count == 36)
        }
    }
}

@Suite("Authenticated contexts")
struct AuthContextTests {
    @Test func requiredAndOptionalTokens() async throws {
        try await withFailingRoutes { client in
            let token = try TestEnvironment.accessToken(name: "Tess")
            #expect(String(buffer: try await client.send(.get, "/private", token: token).body) == "Tess")
            let missing = try await client.send(.get, "/private")
            #expect(missing.status == .unauthorized)
            #expect(missing.headers[.wwwAuthenticate] == "Bearer")
            let invalid = try await client.send(.get, "/private", token: token + "x")
            #expect(invalid.headers[.wwwAuthenticate] == #"Bearer error="invalid_token""#)

            #expect(String(buffer: try await client.send(.get, "/public").body) == "anonymous")
            #expect(String(buffer: try await client.send(.get, "/public", token: token).body) == "Tess")
            // On optional routes a token that is sent must still be valid.
            #expect(try await client.send(.get, "/public", token: "garbage").status == .unauthorized)
        }
    }
}

@Suite("Operations and CORS")
struct OperationsTests {
    @Test func healthReadyMetricsAndOpenAPI() async throws {
        try await withFailingRoutes { client in
            #expect(try await client.send(.get, "/health").status == .ok)
            // Ready once the user-event listener is up.
            try await eventually { try await client.send(.get, "/ready").status == .ok }
            let ready = try await client.send(.get, "/ready")
            #expect(ready.status == .ok)
            #expect(try ready.json["status"] == .string("ready"))
            // The request counter is process-wide; no other test calls `/counted-error`, so it
            // grows by exactly the requests sent here.
            func countedErrors() async throws -> Double {
                let metrics = try await client.send(.get, "/metrics")
                #expect(metrics.status == .ok)
                return requestCount(in: String(buffer: metrics.body), route: "/counted-error", status: 409)
            }
            let before = try await countedErrors()
            for _ in 0..<3 { #expect(try await client.send(.get, "/counted-error").status == .conflict) }
            try await eventually { try await countedErrors() == before + 3 }
            #expect(String(buffer: try await client.send(.get, "/openapi.yaml").body).hasPrefix("openapi: 3.1.0"))
        }
    }

    @Test func preflightForAllowedOriginsOnly() async throws {
        try await withFailingRoutes { client in
            let preflight = try await client.send(.options, "/private", headers: [
                .origin: "https://app.example", .accessControlRequestMethod: "PATCH",
            ])
            #expect(preflight.status == .noContent)
            #expect(preflight.headers[.accessControlAllowOrigin] == "https://app.example")
            #expect(preflight.headers[.accessControlAllowMethods]?.contains("PATCH") == true)
            #expect(preflight.headers[.accessControlAllowHeaders]?.lowercased().contains("authorization") == true)

            let other = try await client.send(.options, "/private", headers: [.origin: "https://evil.example"])
            #expect(other.headers[.accessControlAllowOrigin] == nil)

            let simple = try await client.send(.get, "/api-error", headers: [.origin: "https://app.example"])
            #expect(simple.headers[.accessControlAllowOrigin] == "https://app.example")
        }
    }
}

/// The `hb_requests` count of one route and status in a Prometheus text exposition.
private func requestCount(in exposition: String, route: String, status: Int) -> Double {
    exposition.split(separator: "\n")
        .filter { $0.hasPrefix("hb_requests{") && $0.contains(#""\#(route)""#) && $0.contains(#""\#(status)""#) }
        .compactMap { Double($0.split(separator: " ").last ?? "") }
        .reduce(0, +)
}
