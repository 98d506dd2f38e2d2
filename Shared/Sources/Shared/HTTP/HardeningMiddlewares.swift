import HTTPTypes
import Hummingbird

/// `X-Content-Type-Options: nosniff` on every response: a browser must never guess that a
/// JSON body (or an uploaded file served back) is HTML or script.
public struct NoSniffMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        response.headers[.xContentTypeOptions] = "nosniff"
        return response
    }
}

/// Query strings are form-decoded, as browsers and HTTP libraries send them: `+` is a space
/// (`?fileName=raw+tone.wav`). Hummingbird decodes `%XX` only, so a `+` in the query is
/// rewritten as `%20` before any handler reads it; a literal plus arrives as `%2B`.
public struct FormDecodedQueryMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let path = request.head.path, let queryStart = path.utf8.firstIndex(of: UInt8(ascii: "?")),
            path.utf8[queryStart...].contains(UInt8(ascii: "+"))
        else {
            return try await next(request, context)
        }
        var head = request.head
        head.path = String(path[..<queryStart]) + path[queryStart...].replacingOccurrences(of: "+", with: "%20")
        return try await next(Request(head: head, body: request.body), context)
    }
}

extension HTTPField.Name {
    public static let xContentTypeOptions = Self("X-Content-Type-Options")!
}
