import Foundation

/// Claims of a user access token (the contract's list, plus `sid`: the session that
/// issued it, so that ending one session revokes exactly its tokens).
public struct AccessTokenClaims: Codable, Sendable, Equatable {
    public var sub: String
    public var name: String
    public var iss: String
    public var aud: String
    public var iat: Int
    public var exp: Int
    public var jti: String
    public var sid: String

    public init(sub: String, name: String, iss: String, aud: String, iat: Int, exp: Int, jti: String, sid: String) {
        self.sub = sub
        self.name = name
        self.iss = iss
        self.aud = aud
        self.iat = iat
        self.exp = exp
        self.jti = jti
        self.sid = sid
    }
}

extension AccessTokenClaims {
    /// From verified claims; the same outcome as decoding them with `JSONDecoder`: the
    /// claim that is missing or of the wrong type is named.
    init(claims: JWTClaims) throws(JWTError) {
        func string(_ name: String) throws(JWTError) -> String {
            guard let value = claims[name] else { throw .invalidClaim(name) }
            guard let string = value.stringValue else { throw .invalidClaim(name) }
            return string
        }
        func integer(_ name: String) throws(JWTError) -> Int {
            guard let number = claims[name]?.numberValue, let value = Int(exactly: number) else { throw .invalidClaim(name) }
            return value
        }
        self.init(
            sub: try string("sub"), name: try string("name"), iss: try string("iss"), aud: try string("aud"),
            iat: try integer("iat"), exp: try integer("exp"), jti: try string("jti"), sid: try string("sid"))
    }
}

/// The caller of a request, proven by a valid access token.
public struct AuthenticatedUser: Sendable, Equatable {
    public var id: UUID
    public var name: String
    public var sessionID: UUID
    public var claims: AccessTokenClaims
}

/// Signs (auth service) and verifies (every service) user access tokens locally:
/// no service calls auth to check a token. A token whose user or session was revoked
/// (`RevocationList`, kept current by user events) is refused after its signature checks.
public struct AccessTokens: Sendable {
    public let settings: TokenSettings
    let jwt: HS256JWT
    let clock: @Sendable () -> Date
    let revocations: RevocationList
    /// Made once: its set of required claims would otherwise be built (eight strings hashed)
    /// on every request.
    let validation: JWTValidation

    public init(settings: TokenSettings, revocations: RevocationList = RevocationList(), clock: @escaping @Sendable () -> Date = { Date() }) throws {
        self.settings = settings
        self.clock = clock
        self.revocations = revocations
        self.jwt = try HS256JWT(secret: settings.secret, clock: clock)
        self.validation = JWTValidation(
            issuer: settings.issuer, audience: settings.audience, leeway: settings.leeway,
            requiredClaims: ["sub", "name", "iss", "aud", "iat", "exp", "jti", "sid"])
    }

    public func issue(userID: UUID, name: String, sessionID: UUID) throws -> (token: String, claims: AccessTokenClaims) {
        let now = Int(clock().timeIntervalSince1970)
        let claims = AccessTokenClaims(
            sub: userID.apiString, name: name, iss: settings.issuer, aud: settings.audience,
            iat: now, exp: now + Int(settings.accessTokenTTL.components.seconds),
            jti: UUID.random().apiString, sid: sessionID.apiString)
        return (try jwt.sign(claims), claims)
    }

    public func verify(_ token: some StringProtocol) throws(JWTError) -> AuthenticatedUser {
        // Straight from the verified claims, without a second (Codable) decoding pass: this
        // runs on every authenticated request.
        let claims = try AccessTokenClaims(claims: jwt.verifyClaims(token, validation: validation))
        guard let id = UUID(apiString: claims.sub) else { throw .invalidClaim("sub") }
        guard let sessionID = UUID(apiString: claims.sid) else { throw .invalidClaim("sid") }
        guard !revocations.isRevoked(userID: id, sessionID: sessionID) else { throw .revoked }
        return AuthenticatedUser(id: id, name: claims.name, sessionID: sessionID, claims: claims)
    }

    /// Whether `user`'s token has been revoked since it was checked: long requests (an upload)
    /// ask again just before they commit.
    public func isRevoked(_ user: AuthenticatedUser) -> Bool {
        revocations.isRevoked(userID: user.id, sessionID: user.sessionID)
    }
}

/// Short-lived credentials that services present on `/internal` routes. Signed with a
/// secret of their own (so a user token never passes here), issued by the calling service
/// (`sub`) for one target service (`aud`): a target accepts only credentials minted for it,
/// and each of its routes names the callers it serves (`ServiceContext.requireCaller`).
public struct ServiceCredentials: Sendable {
    public static let issuer = "backend-services"
    /// This service: the subject of the credentials it mints, the audience of those it accepts.
    public let serviceName: String
    let jwt: HS256JWT
    let lifetime: Int
    let clock: @Sendable () -> Date

    struct Claims: Codable {
        var sub: String
        var iss: String
        var aud: String
        var iat: Int
        var exp: Int
        var jti: String
    }

    public init(secret: String, serviceName: String, lifetimeSeconds: Int = 60, clock: @escaping @Sendable () -> Date = { Date() }) throws {
        self.serviceName = serviceName
        self.lifetime = lifetimeSeconds
        self.jwt = try HS256JWT(secret: secret, clock: clock)
        self.clock = clock
    }

    /// A fresh token naming this service as the caller, good only at `target`.
    public func token(for target: String) throws -> String {
        let now = Int(clock().timeIntervalSince1970)
        return try jwt.sign(Claims(
            sub: serviceName, iss: Self.issuer, aud: target, iat: now, exp: now + lifetime,
            jti: UUID.random().apiString))
    }

    /// The calling service's name, if the token is a valid service credential for this service.
    public func verify(_ token: some StringProtocol) throws(JWTError) -> String {
        let validation = JWTValidation(
            issuer: Self.issuer, audience: serviceName, leeway: .seconds(5),
            requiredClaims: ["sub", "iss", "aud", "iat", "exp"])
        let claims = try jwt.verify(token, as: Claims.self, validation: validation)
        // A credential is short-lived by construction; refuse ones minted to live long.
        guard claims.exp - claims.iat <= 300 else { throw .invalidClaim("exp") }
        return claims.sub
    }
}
