import Foundation
import HTTPTypes
import Hummingbird
import Logging

extension HTTPField.Name {
    public static let requestID = Self("X-Request-ID")!
}

/// Takes the caller's `X-Request-ID` (when it is a sane token) or makes one, puts it in
/// the logger's metadata for every line of this request, and echoes it on the response.
public struct RequestIDMiddleware<Context: RequestContext>: RouterMiddleware {
    public static var metadataKey: String { "requestId" }

    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let requestID = request.headers[.requestID].flatMap(Self.acceptable) ?? UUID.random().apiString
        var context = context
        context.logger[metadataKey: Self.metadataKey] = .string(requestID)
        var response = try await next(request, context)
        response.headers[.requestID] = requestID
        return response
    }

    /// Ids are echoed into headers and logs, so only short printable tokens are kept.
    static func acceptable(_ value: String) -> String? {
        guard (1...128).contains(value.utf8.count),
            value.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") })
        else { return nil }
        return value
    }
}

/// Verifies a `Bearer` user token when one is sent and records the outcome in the
/// context; `AuthenticatedContext` / `OptionalAuthContext` turn it into a `401` where needed.
/// `/internal` requests are left to `ServiceAuthMiddleware`: their bearer is a service
/// credential, which read as a user token logged a "rejected access token" notice for
/// every outbox delivery (ci15).
public struct BearerAuthMiddleware: RouterMiddleware {
    public typealias Context = AppRequestContext
    let tokens: AccessTokens

    public init(tokens: AccessTokens) {
        self.tokens = tokens
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        if request.uri.path.hasPrefix("/internal/") {
            return try await next(request, context)
        }
        if let token = request.headers.bearerToken {
            do {
                context.credential = .valid(try tokens.verify(token))
            } catch {
                // Notice level: a run of these is someone trying tokens (the token itself is never logged).
                context.logger.notice("rejected access token", metadata: ["reason": "\(error)"])
                context.credential = .invalid
            }
        } else if request.headers[.authorization] != nil {
            // A scheme other than Bearer, or an empty token: not acceptable credentials.
            context.credential = .invalid
        }
        return try await next(request, context)
    }
}

/// Guards `/internal` routes: only a valid service credential passes.
public struct ServiceAuthMiddleware: RouterMiddleware {
    public typealias Context = AppRequestContext
    let credentials: ServiceCredentials

    public init(credentials: ServiceCredentials) {
        self.credentials = credentials
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let token = request.headers.bearerToken else {
            throw APIError(.unauthorized, code: "invalid_service_credential", detail: "A service credential is required.",
                           headers: [.wwwAuthenticate: "Bearer"])
        }
        var context = context
        do {
            context.callingService = try credentials.verify(token)
        } catch {
            context.logger.notice("rejected service credential", metadata: ["reason": "\(error)"])
            throw APIError(.unauthorized, code: "invalid_service_credential", detail: "The service credential is invalid.",
                           headers: [.wwwAuthenticate: #"Bearer error="invalid_token""#])
        }
        return try await next(request, context)
    }
}

extension HTTPFields {
    /// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
    public var bearerToken: Substring? {
        guard let value = self[.authorization] else { return nil }
        let parts = value.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        // Trimmed by hand: Foundation's trimmingCharacters bridges through NSString, a
        // measurable cost on every request.
        var token = parts[1]
        while let first = token.utf8.first, first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") { token.removeFirst() }
        while let last = token.utf8.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { token.removeLast() }
        return token.isEmpty ? nil : token
    }
}
