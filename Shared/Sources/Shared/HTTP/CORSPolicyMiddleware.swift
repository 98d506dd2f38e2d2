import HTTPTypes
import Hummingbird

/// CORS from configuration: `*` allows any origin (tokens travel in headers, never
/// cookies, so no credentials are involved); otherwise only the listed origins.
public struct CORSPolicyMiddleware<Context: RequestContext>: RouterMiddleware {
    let allowAll: Bool
    let allowedOrigins: Set<String>
    let cors: CORSMiddleware<Context>

    public init(allowedOrigins: [String]) {
        self.allowAll = allowedOrigins.contains("*")
        self.allowedOrigins = Set(allowedOrigins)
        self.cors = CORSMiddleware(
            allowOrigin: allowAll ? .all : .originBased,
            allowHeaders: [.accept, .authorization, .contentType, .origin, .requestID, .range, .ifRange, .ifNoneMatch],
            allowMethods: [.get, .head, .post, .put, .patch, .delete, .options],
            exposedHeaders: ["X-Request-ID", "Location", "ETag", "Content-Length", "Content-Range", "Content-Disposition", "Accept-Ranges", "Retry-After"],
            maxAge: .seconds(600)
        )
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let origin = request.headers[.origin], allowAll || allowedOrigins.contains(origin) else {
            return try await next(request, context)
        }
        return try await cors.handle(request, context: context, next: next)
    }
}
