import HTTPTypes
import Hummingbird
import Logging

/// One log line per request once its response is ready: method, path, status and the
/// milliseconds it took (the request id comes with the logger's metadata).
///
/// The path is logged without its query: a query may carry a secret (the signed content
/// links' `?token=`), and logs are not a place for those. Probes that succeed (`/health`,
/// `/ready`, `/metrics`) log at `debug`: an orchestrator asks every few seconds, and the
/// line was a measurable share of their cost (`make bench`, `GET /health`).
public struct RequestLogMiddleware<Context: RequestContext>: RouterMiddleware {
    /// A switch, not a `Set`: a generic type has no stored statics, and a computed set
    /// would be built on every request.
    static func isProbe(_ path: String) -> Bool {
        switch path {
        case "/health", "/ready", "/metrics": true
        default: false
        }
    }

    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response: Response
        do {
            response = try await next(request, context)
        } catch {
            // Below the problem middleware only framework errors are left (e.g. no route).
            log(request, status: (error as? any HTTPResponseError)?.status ?? .internalServerError, since: start, context: context)
            throw error
        }
        log(request, status: response.status, since: start, context: context)
        return response
    }

    private func log(_ request: Request, status: HTTPResponse.Status, since start: ContinuousClock.Instant, context: Context) {
        let path = request.uri.path
        let level: Logger.Level = status.code < 400 && Self.isProbe(path) ? .debug : .info
        guard context.logger.logLevel <= level else { return }
        let elapsed = ContinuousClock.now - start
        let milliseconds = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds / 1_000_000_000_000) / 1000
        context.logger.log(level: level, "request", metadata: [
            "method": .string(request.method.rawValue),
            "path": .string(path),
            "status": .stringConvertible(status.code),
            "ms": .stringConvertible(milliseconds),
        ])
    }
}
