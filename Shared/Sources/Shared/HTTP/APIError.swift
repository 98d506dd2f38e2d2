import HTTPTypes
import Hummingbird

/// One invalid field of a request, reported in a problem's `errors[]`.
public struct FieldError: Codable, Sendable, Equatable {
    public var field: String
    public var message: String

    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }
}

/// An error a handler means to show the client. `ProblemMiddleware` renders it as
/// RFC 9457 `application/problem+json`; anything else becomes a generic `500`.
public struct APIError: Error, Sendable {
    public var status: HTTPResponse.Status
    /// Stable, machine-readable; clients switch on it.
    public var code: String
    public var detail: String
    public var errors: [FieldError]
    public var headers: HTTPFields

    public init(
        _ status: HTTPResponse.Status,
        code: String,
        detail: String,
        errors: [FieldError] = [],
        headers: HTTPFields = [:]
    ) {
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = errors
        self.headers = headers
    }
}

extension APIError {
    public static func validation(_ errors: [FieldError], detail: String = "The request is not valid.") -> APIError {
        APIError(.badRequest, code: "validation_failed", detail: detail, errors: errors)
    }

    public static func validation(field: String, _ message: String) -> APIError {
        .validation([FieldError(field: field, message: message)])
    }

    public static func notFound(_ code: String, _ detail: String) -> APIError {
        APIError(.notFound, code: code, detail: detail)
    }

    public static func forbidden(_ code: String, _ detail: String) -> APIError {
        APIError(.forbidden, code: code, detail: detail)
    }

    public static func conflict(_ code: String, _ detail: String) -> APIError {
        APIError(.conflict, code: code, detail: detail)
    }

    public static func unavailable(_ detail: String = "A dependency is unavailable. Try again shortly.") -> APIError {
        APIError(.serviceUnavailable, code: "service_unavailable", detail: detail, headers: [.retryAfter: "5"])
    }

    /// No credentials on a protected route (RFC 6750 §3: no error attribute).
    public static var missingToken: APIError {
        APIError(
            .unauthorized, code: "unauthorized", detail: "This route requires a bearer token.",
            headers: [.wwwAuthenticate: "Bearer"]
        )
    }

    /// Malformed, expired or forged credentials (RFC 6750 §3.1).
    public static func invalidToken(_ detail: String = "The access token is invalid or expired.") -> APIError {
        APIError(
            .unauthorized, code: "invalid_token", detail: detail,
            headers: [.wwwAuthenticate: #"Bearer error="invalid_token""#]
        )
    }
}
