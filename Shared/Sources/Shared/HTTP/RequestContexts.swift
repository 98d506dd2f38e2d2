import Foundation
import Hummingbird
import Logging

/// What the bearer middleware found on a request; the child contexts below decide
/// whether it is enough for a route.
public enum BearerCredential: Sendable {
    case none
    case valid(AuthenticatedUser)
    case invalid
}

/// The request context of every service.
public struct AppRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var credential: BearerCredential = .none
    /// The calling service on `/internal` routes, set by `ServiceAuthMiddleware`.
    public var callingService: String?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
    }

    /// JSON bodies are small; routes that stream uploads do not collect the body.
    public var maxUploadSize: Int { 1 << 20 }
    public var responseEncoder: APIJSONEncoder { APIJSONEncoder() }
}

extension RequestContext {
    /// The request id set by `RequestIDMiddleware` (also in every log line's metadata).
    public var requestID: String {
        logger[metadataKey: RequestIDMiddleware<Self>.metadataKey]?.description ?? "-"
    }
}

/// Context of routes that require a user: handlers get a non-optional `user`.
public struct AuthenticatedContext: ChildRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let user: AuthenticatedUser

    public init(context: AppRequestContext) throws {
        switch context.credential {
        case .valid(let user): self.user = user
        case .none: throw APIError.missingToken
        case .invalid: throw APIError.invalidToken()
        }
        self.coreContext = context.coreContext
    }

    public var maxUploadSize: Int { 1 << 20 }
    public var responseEncoder: APIJSONEncoder { APIJSONEncoder() }
}

/// Context of routes where a token is optional; a token that is sent must be valid.
public struct OptionalAuthContext: ChildRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let user: AuthenticatedUser?

    public init(context: AppRequestContext) throws {
        switch context.credential {
        case .valid(let user): self.user = user
        case .none: self.user = nil
        case .invalid: throw APIError.invalidToken()
        }
        self.coreContext = context.coreContext
    }

    public var maxUploadSize: Int { 1 << 20 }
    public var responseEncoder: APIJSONEncoder { APIJSONEncoder() }
}

/// Context of `/internal` routes: the caller is a service, proven by its credential.
public struct ServiceContext: ChildRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let callingService: String

    public init(context: AppRequestContext) throws {
        guard let service = context.callingService else {
            throw APIError(.unauthorized, code: "invalid_service_credential", detail: "A service credential is required.",
                           headers: [.wwwAuthenticate: #"Bearer error="invalid_token""#])
        }
        self.callingService = service
        self.coreContext = context.coreContext
    }

    public var responseEncoder: APIJSONEncoder { APIJSONEncoder() }

    /// Refuses (`403`) a calling service this route does not serve: each `/internal` route
    /// names the services that may call it (least privilege between services).
    public func requireCaller(_ allowed: String...) throws {
        guard allowed.contains(callingService) else {
            throw APIError.forbidden("caller_not_allowed", "This service may not call this route.")
        }
    }
}
