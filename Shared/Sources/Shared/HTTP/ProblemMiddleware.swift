import Foundation
import Hummingbird
import Logging
import NIOHTTP1
import PostgresNIO

/// RFC 9457 problem details body.
public struct ProblemDetails: Codable, Sendable, Equatable {
    public var type: String
    public var title: String
    public var status: Int
    public var detail: String
    public var code: String
    public var requestId: String
    public var errors: [FieldError]?

    public init(type: String, title: String, status: Int, detail: String, code: String, requestId: String, errors: [FieldError]?) {
        self.type = type
        self.title = title
        self.status = status
        self.detail = detail
        self.code = code
        self.requestId = requestId
        self.errors = errors
    }
}

/// Turns every error thrown below it into an `application/problem+json` response,
/// so no handler has to format errors and no internal detail reaches a client.
public struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let apiError = Self.apiError(for: error, context: context)
            return Self.response(for: apiError, request: request, requestID: context.requestID)
        }
    }

    /// Maps any error to the one the client sees; logs the ones that are our fault.
    static func apiError(for error: any Error, context: Context) -> APIError {
        switch error {
        case let error as APIError:
            return error
        case let error as DatabaseUnavailableError:
            context.logger.error("database unavailable", metadata: ["error": "\(error)"])
            if error.mayHaveWritten {
                // The statement reached the database but its commit could not be confirmed.
                return APIError(
                    .serviceUnavailable, code: "write_outcome_unknown",
                    detail: "The database became unavailable during this change: it may or may not have been saved. Check its state before repeating it.",
                    headers: [.retryAfter: "1"])
            }
            return .unavailable("The database is unavailable; nothing was changed. Try again shortly.")
        case let error as DecodingError:
            return .validation([Self.fieldError(for: error)], detail: "The request body is not valid JSON for this route.")
        case let error as PSQLError where error.sqlState?.hasPrefix("22") == true:
            // Data exceptions: a value the database cannot store (NUL in text, out-of-range numbers).
            context.logger.notice("value refused by the database", metadata: ["sqlState": "\(error.sqlState ?? "")"])
            return .validation([FieldError(field: "body", message: "contains a value that cannot be stored (e.g. a NUL character)")])
        case let error as PSQLError where error.meansUnavailable:
            context.logger.error("database unavailable", metadata: ["error": "\(String(reflecting: error))"])
            return .unavailable("The database is unavailable. Try again shortly.")
        case let error as any HTTPResponseError:
            return Self.fromHTTPError(error)
        case let error as HTTPParserError:
            // The request itself is broken; most often the client left before its body was
            // complete (`invalidEOFState`). Its fault, so a 400 (if anyone is still there to
            // read it), never the 500 path.
            context.logger.notice("malformed or truncated request", metadata: ["error": "\(error)"])
            return error == .invalidEOFState
                ? APIError(.badRequest, code: "incomplete_body", detail: "The request ended before its body was complete.")
                : APIError(.badRequest, code: "bad_request", detail: "The request is not valid HTTP.")
        default:
            context.logger.error("unexpected error", metadata: ["error": "\(String(reflecting: error))"])
            return APIError(.internalServerError, code: "internal_error", detail: "An unexpected error occurred.")
        }
    }

    /// Hummingbird's own errors (unknown route, body too large, bad parameter) carry only a status.
    static func fromHTTPError(_ error: any HTTPResponseError) -> APIError {
        let status = error.status
        let code: String
        let detail: String
        switch status.code {
        case 400: (code, detail) = ("bad_request", "The request is not valid.")
        case 404: (code, detail) = ("not_found", "No such resource.")
        case 405: (code, detail) = ("method_not_allowed", "This method is not allowed here.")
        case 413: (code, detail) = ("payload_too_large", "The request body is too large.")
        case 415: (code, detail) = ("unsupported_media_type", "This media type is not supported here.")
        default:
            code = status.reasonPhrase.lowercased().replacingOccurrences(of: " ", with: "_")
            detail = status.reasonPhrase
        }
        var headers = HTTPFields()
        if let httpError = error as? HTTPError { headers = httpError.headers }
        return APIError(status, code: code.isEmpty ? "error" : code, detail: detail, headers: headers)
    }

    static func fieldError(for error: DecodingError) -> FieldError {
        func path(_ codingPath: [any CodingKey]) -> String {
            let path = codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
            return path.isEmpty ? "body" : path
        }
        switch error {
        case .keyNotFound(let key, let context):
            return FieldError(field: path(context.codingPath + [key]), message: "is required")
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return FieldError(field: path(context.codingPath), message: "has the wrong type")
        case .dataCorrupted(let context):
            return FieldError(field: path(context.codingPath), message: context.codingPath.isEmpty ? "is not valid JSON" : "is not valid")
        @unknown default:
            return FieldError(field: "body", message: "is not valid")
        }
    }

    public static func response(for error: APIError, request: Request, requestID: String) -> Response {
        let status = error.status
        let problem = ProblemDetails(
            type: "about:blank",
            title: status.reasonPhrase,
            status: status.code,
            detail: error.detail,
            code: error.code,
            requestId: requestID,
            errors: error.errors.isEmpty ? nil : error.errors
        )
        var headers = error.headers
        headers[.contentType] = "application/problem+json"
        // HEAD answers carry no body (RFC 9110 §9.3.2).
        if request.method == .head {
            return Response(status: status, headers: headers)
        }
        let data = (try? APIJSONEncoder().encode(problem)) ?? []
        headers[.contentLength] = String(data.count)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

extension PSQLError {
    /// SQLSTATE of the server's error, e.g. `23505` for a unique violation.
    public var sqlState: String? { self.serverInfo?[.sqlState] }

    public var isUniqueViolation: Bool { self.sqlState == "23505" }
}
