import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus

/// Process-wide metrics: swift-metrics (Hummingbird's request metrics, our counters)
/// feed one Prometheus registry that `/metrics` renders.
public enum ServiceMetrics {
    public static let registry = PrometheusCollectorRegistry()

    /// Bootstraps swift-metrics once per process, however many applications it builds.
    public static let bootstrap: Void = {
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
    }()
}

/// A dependency `/ready` must reach before the instance takes traffic.
public struct ReadinessCheck: Sendable {
    public var name: String
    public var check: @Sendable () async throws -> Void

    public init(_ name: String, check: @escaping @Sendable () async throws -> Void) {
        self.name = name
        self.check = check
    }

    /// `database`: one round trip, within the same bounds as any call. Every service's
    /// router has it (`makeServiceRouter`).
    public static func database(_ database: Database, logger: Logger) -> ReadinessCheck {
        ReadinessCheck("database") { try await database.ping(logger: logger) }
    }
}

struct ReadinessReport: Encodable {
    var status: String
    var checks: [String: String]
}

/// `/health`, `/ready` and `/metrics` (not routed by the gateway).
public struct OperationsController<Context: RequestContext>: Sendable {
    let checks: [ReadinessCheck]
    let openAPIDocument: String?

    public init(checks: [ReadinessCheck], openAPIDocument: String?) {
        self.checks = checks
        self.openAPIDocument = openAPIDocument
    }

    public var endpoints: RouteCollection<Context> {
        let routes = RouteCollection(context: Context.self)
        // The same bytes every time: made once (probes come every few seconds, benches faster).
        let healthy = ByteBuffer(string: #"{"status":"ok"}"#)
        routes.get("health") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8", .contentLength: "15"], body: .init(byteBuffer: healthy))
        }
        routes.get("ready") { _, context in try await self.ready(context: context) }
        routes.get("metrics") { _, _ in
            var buffer = [UInt8]()
            ServiceMetrics.registry.emit(into: &buffer)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: buffer)))
        }
        if let openAPIDocument {
            routes.get("openapi.yaml") { _, _ in
                Response(
                    status: .ok, headers: [.contentType: "application/yaml; charset=utf-8"],
                    body: .init(byteBuffer: ByteBuffer(string: openAPIDocument)))
            }
        }
        return routes
    }

    func ready(context: Context) async throws -> Response {
        var results: [String: String] = [:]
        await withTaskGroup(of: (String, Bool).self) { group in
            for check in checks {
                group.addTask {
                    do {
                        try await withTimeout(.seconds(2)) { try await check.check() }
                        return (check.name, true)
                    } catch {
                        return (check.name, false)
                    }
                }
            }
            for await (name, ok) in group { results[name] = ok ? "ok" : "unavailable" }
        }
        let ready = results.values.allSatisfy { $0 == "ok" }
        if !ready {
            context.logger.warning("not ready", metadata: ["checks": "\(results)"])
        }
        return try Response.json(
            ReadinessReport(status: ready ? "ready" : "unavailable", checks: results),
            status: ready ? .ok : .serviceUnavailable)
    }
}

public struct TimeoutError: Error {}

/// Runs `operation`, giving up after `duration` (the operation is cancelled).
public func withTimeout<T: Sendable>(_ duration: Duration, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: duration)
            throw TimeoutError()
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}
