import Foundation
import Hummingbird
import Shared

/// `/auth`: sign-up, sessions and the caller's own account.
struct AuthController: Sendable {
    let repository: any AuthRepository
    let hasher: PasswordHasher
    let tokens: AccessTokens
    let refreshTokenTTL: Duration
    /// Verified against when the email is unknown, so both failures cost one bcrypt.
    let dummyPasswordHash: String
    let loginThrottle: LoginThrottle
    /// Links and token lifetimes of the messages; the queue `forgot` writes to.
    let mail: MailSettings
    let mailQueue: MailQueue
    let mailWakeUp: WakeUp
    /// The configured OpenID Connect providers, in configuration order.
    let socialProviders: [IDTokenVerifier]

    func socialProvider(named name: String) -> IDTokenVerifier? {
        socialProviders.first { $0.provider.name == name.lowercased() }
    }

    /// Routes that need no token.
    var publicEndpoints: RouteCollection<AppRequestContext> {
        let routes = RouteCollection(context: AppRequestContext.self)
        routes.post("signup", use: signup)
        routes.post("login", use: login)
        routes.post("refresh", use: refresh)
        routes.post("logout", use: logout)
        routes.post("email/verify", use: verifyEmail)
        routes.post("password/forgot", use: forgotPassword)
        routes.post("password/reset", use: resetPassword)
        routes.get("social/providers", use: listSocialProviders)
        routes.post("social/{provider}", use: socialSignIn)
        return routes
    }

    /// Routes of the authenticated caller.
    var userEndpoints: RouteCollection<AuthenticatedContext> {
        let routes = RouteCollection(context: AuthenticatedContext.self)
        routes.get("me", use: me)
        routes.patch("me", use: updateMe)
        routes.delete("me", use: deleteMe)
        routes.get("verify", use: verify)
        routes.post("email/verify/resend", use: resendVerification)
        routes.get("me/identities", use: identities)
        routes.delete("me/identities/{provider}", use: unlink)
        return routes
    }

    @Sendable func signup(request: Request, context: AppRequestContext) async throws -> Response {
        let body = try await request.decodeJSON(as: SignupRequest.self, context: context)
        let email = AuthRules.normalizedEmail(body.email)
        let name = AuthRules.normalizedName(body.name)
        let errors = [AuthRules.emailError(email), AuthRules.passwordError(body.password), AuthRules.nameError(name)].compactMap { $0 }
        guard errors.isEmpty else { throw APIError.validation(errors) }

        let passwordHash = try await hasher.hash(body.password)
        let (refreshToken, session) = newRefreshToken(sessionID: UUID.random())
        let user: UserRecord
        do {
            user = try await repository.createUser(
                id: UUID.random(), email: email, name: name, passwordHash: passwordHash, session: session,
                verification: newEmailProof(), logger: context.logger)
        } catch AuthRepositoryError.emailTaken {
            throw Self.emailTaken
        }
        context.logger.info("user signed up", metadata: ["userId": "\(user.id)"])
        return try sessionResponse(user, refreshToken: refreshToken, sessionID: session.sessionID).response(status: .created)
    }

    @Sendable func login(request: Request, context: AppRequestContext) async throws -> SessionResponse {
        let body = try await request.decodeJSON(as: LoginRequest.self, context: context)
        if let error = AuthRules.passwordCharacterError(body.password) { throw APIError.validation([error]) }
        let email = AuthRules.normalizedEmail(body.email)
        let (user, failures) = try await repository.loginCandidate(email: email, logger: context.logger)
        // Throttled before bcrypt, and the same for an unknown e-mail: the answer tells nothing.
        if let wait = loginThrottle.wait(after: failures) {
            let seconds = max(1, Int(wait.timeInterval.rounded(.up)))
            context.logger.notice("login throttled", metadata: ["userId": "\(user.map { "\($0.id)" } ?? "none")", "failures": "\(failures.count)"])
            throw APIError(
                .tooManyRequests, code: "login_throttled",
                detail: "Too many failed sign-ins for this account. Try again in \(seconds) s.", headers: [.retryAfter: "\(seconds)"])
        }
        // Unknown email and wrong password take the same time and give the same answer.
        let passwordMatches = try await hasher.verify(body.password, hash: user?.passwordHash ?? dummyPasswordHash)
        guard let user, passwordMatches, AuthRules.passwordBytes.contains(body.password.utf8.count) else {
            try await repository.recordLoginFailure(email: email, window: loginThrottle.window, logger: context.logger)
            // Never the password; the account when there is one, so a guessing run shows.
            context.logger.notice("login failed", metadata: ["userId": "\(user.map { "\($0.id)" } ?? "none")"])
            throw APIError(.unauthorized, code: "invalid_credentials", detail: "The email or password is wrong.")
        }
        let (refreshToken, session) = newRefreshToken(sessionID: UUID.random())
        try await repository.createSession(
            userID: user.id, token: session, clearingLoginFailuresOf: failures.count > 0 ? email : nil, logger: context.logger)
        return try sessionResponse(user, refreshToken: refreshToken, sessionID: session.sessionID)
    }

    @Sendable func refresh(request: Request, context: AppRequestContext) async throws -> SessionResponse {
        let body = try await request.decodeJSON(as: RefreshRequest.self, context: context)
        let (replacement, replacementHash) = OpaqueToken.make()
        let outcome = try await repository.rotate(
            tokenHash: Crypto.sha256(body.refreshToken), replacement: replacementHash,
            expiresAt: Date.now.addingTimeInterval(Double(refreshTokenTTL.components.seconds)), logger: context.logger)
        switch outcome {
        case .rotated(let user, let sessionID):
            // The session id carries over, so the new access token names the same session.
            return try sessionResponse(user, refreshToken: replacement, sessionID: sessionID)
        case .reused(let userID):
            // A stolen token, or a client that kept an old one: the operator should see it.
            context.logger.notice("refresh token reused: all sessions of the user revoked", metadata: ["userId": "\(userID)"])
            throw Self.invalidRefreshToken
        case .invalid:
            throw Self.invalidRefreshToken
        }
    }

    @Sendable func logout(request: Request, context: AppRequestContext) async throws -> HTTPResponse.Status {
        let body = try await request.decodeJSON(as: RefreshRequest.self, context: context)
        try await repository.revoke(tokenHash: Crypto.sha256(body.refreshToken), logger: context.logger)
        return .noContent
    }

    @Sendable func me(request: Request, context: AuthenticatedContext) async throws -> UserResponse {
        UserResponse(try await currentUser(context))
    }

    /// A name, a new password, and/or a new address (the last two need the current password).
    /// A new address takes effect once the link sent to it is opened (`POST /auth/email/verify`).
    @Sendable func updateMe(request: Request, context: AuthenticatedContext) async throws -> UserResponse {
        let body = try await request.decodeJSON(as: UpdateMeRequest.self, context: context)
        let name = body.name.map(AuthRules.normalizedName)
        let email = body.email.map(AuthRules.normalizedEmail)
        var errors: [FieldError] = []
        if body.name == nil && body.email == nil && body.password == nil && body.currentPassword == nil {
            throw APIError.validation([FieldError(field: "body", message: "send name, email with currentPassword, or password with currentPassword")])
        }
        if let name, let error = AuthRules.nameError(name) { errors.append(error) }
        if let email, let error = AuthRules.emailError(email) { errors.append(error) }
        if let password = body.password, let error = AuthRules.passwordError(password) { errors.append(error) }
        if body.password != nil || body.email != nil {
            if body.currentPassword == nil {
                errors.append(FieldError(field: "currentPassword", message: "is required to change the password or the e-mail address"))
            }
        } else if body.currentPassword != nil {
            errors.append(FieldError(field: "password", message: "or email is required with currentPassword"))
        }
        if let current = body.currentPassword, let error = AuthRules.passwordCharacterError(current, field: "currentPassword") {
            errors.append(error)
        }
        guard errors.isEmpty else { throw APIError.validation(errors) }

        var newHash: String?
        if let currentPassword = body.currentPassword {
            let user = try await currentUser(context)
            guard let hash = user.passwordHash else { throw Self.noPassword }
            guard try await hasher.verify(currentPassword, hash: hash) else {
                throw APIError.forbidden("invalid_current_password", "The current password is wrong.")
            }
            if let password = body.password { newHash = try await hasher.hash(password) }
            if let email, email != user.email {
                try await repository.requestEmailChange(newEmailProof(), to: email, for: user, logger: context.logger)
                context.logger.info("e-mail change requested; a link went to the new address", metadata: ["userId": "\(user.id)"])
            }
        }
        guard name != nil || newHash != nil else { return UserResponse(try await currentUser(context)) }
        guard let updated = try await repository.updateUser(
            id: context.user.id, name: name, passwordHash: newHash, keepSession: context.user.sessionID,
            notice: securityNotice, logger: context.logger)
        else { throw Self.userGone }
        if newHash != nil { context.logger.info("password changed; other sessions ended", metadata: ["userId": "\(updated.id)"]) }
        return UserResponse(updated)
    }

    // MARK: e-mail

    @Sendable func verifyEmail(request: Request, context: AppRequestContext) async throws -> UserResponse {
        let body = try await request.decodeJSON(as: EmailTokenRequest.self, context: context)
        switch try await repository.verifyEmail(tokenHash: Crypto.sha256(body.token), notice: securityNotice, logger: context.logger) {
        case .verified(let user):
            context.logger.info("e-mail verified", metadata: ["userId": "\(user.id)"])
            return UserResponse(user)
        case .invalid:
            throw Self.invalidEmailToken
        case .emailTaken:
            throw Self.emailTaken
        }
    }

    /// `202` whether or not a message goes out (none when the address is already verified).
    @Sendable func resendVerification(request: Request, context: AuthenticatedContext) async throws -> HTTPResponse.Status {
        let user = try await currentUser(context)
        if !user.emailVerified {
            try await repository.sendVerification(newEmailProof(), to: user, logger: context.logger)
        }
        return .accepted
    }

    /// The same one write and the same `202` whether or not the address has an account: the
    /// mailer looks it up later (`MailQueue.enqueueResetRequest`).
    @Sendable func forgotPassword(request: Request, context: AppRequestContext) async throws -> HTTPResponse.Status {
        let body = try await request.decodeJSON(as: ForgotPasswordRequest.self, context: context)
        let email = AuthRules.normalizedEmail(body.email)
        if let error = AuthRules.emailError(email) { throw APIError.validation([error]) }
        try await mailQueue.enqueueResetRequest(email: email, logger: context.logger)
        mailWakeUp.signal()
        return .accepted
    }

    @Sendable func resetPassword(request: Request, context: AppRequestContext) async throws -> Response {
        let body = try await request.decodeJSON(as: ResetPasswordRequest.self, context: context)
        if let error = AuthRules.passwordError(body.password) { throw APIError.validation([error]) }
        let passwordHash = try await hasher.hash(body.password)
        let (refreshToken, session) = newRefreshToken(sessionID: UUID.random())
        guard let user = try await repository.resetPassword(
            tokenHash: Crypto.sha256(body.token), passwordHash: passwordHash, session: session, notice: securityNotice,
            logger: context.logger)
        else { throw Self.invalidEmailToken }
        context.logger.info("password reset; every session ended", metadata: ["userId": "\(user.id)"])
        return try sessionResponse(user, refreshToken: refreshToken, sessionID: session.sessionID).response(status: .ok)
    }

    static let emailTaken = APIError.conflict("email_taken", "An account with this email already exists.")

    static let invalidEmailToken = APIError(.badRequest, code: "invalid_token", detail: "The link is invalid, used or expired.")

    /// A verification token and its message's values.
    func newEmailProof() -> EmailProof {
        let (token, hash) = OpaqueToken.make()
        return EmailProof(
            tokenHash: hash, validFor: mail.verifyTokenTTL,
            values: ["link": mail.link("verify", token: token), "validFor": MailSettings.describe(mail.verifyTokenTTL)])
    }

    /// The values of a security notice ("your password / address was changed"): where to
    /// reset the password if that was not the owner.
    var securityNotice: [String: String] { ["link": "\(mail.publicBaseURL)/#/forgot"] }

    /// Needs the current password, or without one a fresh ID token of a linked provider
    /// (`400` without either, `403` when wrong): a token alone (a stolen one, a device left
    /// signed in) must not be able to close the account.
    @Sendable func deleteMe(request: Request, context: AuthenticatedContext) async throws -> HTTPResponse.Status {
        let body = try await request.decodeJSON(as: DeleteMeRequest.self, context: context)
        let user = try await currentUser(context)
        if let currentPassword = body.currentPassword {
            if let error = AuthRules.passwordCharacterError(currentPassword, field: "currentPassword") { throw APIError.validation([error]) }
            guard let hash = user.passwordHash else { throw Self.noPassword }
            guard try await hasher.verify(currentPassword, hash: hash) else {
                throw APIError.forbidden("invalid_current_password", "The current password is wrong.")
            }
        } else if let providerName = body.provider, let idToken = body.idToken {
            guard let verifier = socialProvider(named: providerName) else { throw Self.providerNotFound }
            let claims: IDTokenClaims
            do {
                claims = try await verifier.verify(idToken, nonce: body.nonce)
            } catch let error as IDTokenError {
                context.logger.notice("ID token refused", metadata: ["provider": "\(providerName)", "reason": "\(error)"])
                throw APIError.forbidden("invalid_id_token", "The ID token is not valid for this account.")
            }
            guard try await repository.identityOwner(provider: verifier.provider.name, subject: claims.subject, logger: context.logger) == user.id else {
                throw APIError.forbidden("invalid_id_token", "The ID token is not valid for this account.")
            }
        } else {
            throw APIError.validation([FieldError(field: "currentPassword", message: "or provider with idToken is required to delete the account")])
        }
        guard try await repository.deleteUser(id: context.user.id, logger: context.logger) else { throw Self.userGone }
        context.logger.info("account deleted", metadata: ["userId": "\(context.user.id)"])
        return .noContent
    }

    // MARK: social sign-in

    /// The providers a browser can sign in with: those whose authorization endpoint is known
    /// (asked of all at once: one provider that is down delays the list by its fetch only).
    @Sendable func listSocialProviders(request: Request, context: AppRequestContext) async throws -> SocialProvidersResponse {
        let endpoints = await withTaskGroup(of: (Int, String?).self) { group in
            for (index, verifier) in socialProviders.enumerated() {
                group.addTask { (index, await verifier.keys.authorizationEndpoint()) }
            }
            var found: [Int: String] = [:]
            for await (index, endpoint) in group { found[index] = endpoint }
            return found
        }
        return SocialProvidersResponse(items: socialProviders.indices.compactMap { index in
            let provider = socialProviders[index].provider
            return endpoints[index].map { SocialProviderResponse(name: provider.name, clientId: provider.clientIDs[0], authorizationEndpoint: $0) }
        })
    }

    /// Verifies the provider's ID token and signs in, links or creates per the contract.
    @Sendable func socialSignIn(request: Request, context: AppRequestContext) async throws -> Response {
        let name = try context.parameters.require("provider").lowercased()
        guard let verifier = socialProvider(named: name) else { throw Self.providerNotFound }
        let body = try await request.decodeJSON(as: SocialSignInRequest.self, context: context)
        let claims: IDTokenClaims
        do {
            claims = try await verifier.verify(body.idToken, nonce: body.nonce)
        } catch let error as IDTokenError {
            // The reason for the operator, never the token.
            context.logger.notice("ID token refused", metadata: ["provider": "\(name)", "reason": "\(error)"])
            throw APIError(.unauthorized, code: "invalid_id_token", detail: "The ID token is not valid.")
        }
        let displayName = AuthRules.normalizedName(claims.name ?? claims.email.map { String($0.prefix { $0 != "@" }) } ?? "")
        let (refreshToken, session) = newRefreshToken(sessionID: UUID.random())
        let outcome = try await repository.socialSignIn(
            provider: name, claims: claims, name: AuthRules.nameError(displayName) == nil ? displayName : "User", session: session,
            notice: securityNotice, logger: context.logger)
        switch outcome {
        case .signedIn(let user), .linked(let user):
            if case .linked = outcome { context.logger.info("sign-in method linked", metadata: ["userId": "\(user.id)", "provider": "\(name)"]) }
            return try sessionResponse(user, refreshToken: refreshToken, sessionID: session.sessionID).response(status: .ok)
        case .created(let user):
            context.logger.info("user signed up with a provider", metadata: ["userId": "\(user.id)", "provider": "\(name)"])
            return try sessionResponse(user, refreshToken: refreshToken, sessionID: session.sessionID).response(status: .created)
        case .accountExists:
            throw APIError.conflict(
                "account_exists",
                "An account with this e-mail exists. Sign in with its password (or reset it), then sign in with the provider again to link it.")
        case .emailRequired:
            throw APIError(.unprocessableContent, code: "email_required", detail: "The provider did not share an e-mail address, which a new account needs.")
        }
    }

    @Sendable func identities(request: Request, context: AuthenticatedContext) async throws -> IdentityList {
        let found = try await repository.identities(userID: context.user.id, logger: context.logger)
        return IdentityList(items: found.map { IdentityResponse(provider: $0.provider, email: $0.email, linkedAt: $0.linkedAt) })
    }

    @Sendable func unlink(request: Request, context: AuthenticatedContext) async throws -> HTTPResponse.Status {
        let provider = try context.parameters.require("provider").lowercased()
        switch try await repository.unlink(userID: context.user.id, provider: provider, logger: context.logger) {
        case .unlinked: return .noContent
        case .notLinked: throw APIError.notFound("identity_not_found", "No sign-in method of this provider is linked.")
        case .lastSignInMethod:
            throw APIError.conflict("last_sign_in_method", "This is the account's only way to sign in. Set a password (password reset) first.")
        }
    }

    static let providerNotFound = APIError.notFound("provider_not_found", "No such sign-in provider.")
    static let noPassword = APIError.conflict(
        "no_password", "This account has no password. Set one through the password reset e-mail (POST /auth/password/forgot).")

    /// The verified claims of the caller's token, as issued.
    @Sendable func verify(request: Request, context: AuthenticatedContext) async throws -> Response {
        try Response.json(context.user.claims)
    }

    // MARK: helpers

    static let invalidRefreshToken = APIError(
        .unauthorized, code: "invalid_refresh_token", detail: "The refresh token is invalid, expired or revoked.")

    /// A valid token whose user no longer exists (deleted account): the token is no longer good.
    static let userGone = APIError.invalidToken("The account of this token no longer exists.")

    func currentUser(_ context: AuthenticatedContext) async throws -> UserRecord {
        guard let user = try await repository.user(id: context.user.id, logger: context.logger) else { throw Self.userGone }
        return user
    }

    func newRefreshToken(sessionID: UUID) -> (String, NewRefreshToken) {
        let (token, hash) = OpaqueToken.make()
        let expiresAt = Date.now.addingTimeInterval(Double(refreshTokenTTL.components.seconds))
        return (token, NewRefreshToken(hash: hash, sessionID: sessionID, expiresAt: expiresAt))
    }

    func sessionResponse(_ user: UserRecord, refreshToken: String, sessionID: UUID) throws -> SessionResponse {
        let (accessToken, _) = try tokens.issue(userID: user.id, name: user.name, sessionID: sessionID)
        return SessionResponse(
            user: UserResponse(user), accessToken: accessToken, refreshToken: refreshToken,
            expiresIn: Int(tokens.settings.accessTokenTTL.components.seconds))
    }
}
