import Foundation
import Hummingbird
import Shared

/// A user as stored, with the password hash that never leaves this service.
struct UserRecord: Sendable {
    var id: UUID
    var email: String
    var name: String
    /// nil for an account made by social sign-in that never set a password.
    var passwordHash: String?
    var createdAt: Date
    /// Whether the owner proved the address (a verification link, or a password reset).
    var emailVerified: Bool
}

/// A random opaque token (refresh, e-mail verification, password reset): 32 random bytes in
/// base64url, of which only the SHA-256 is ever stored.
enum OpaqueToken {
    static func make() -> (token: String, hash: [UInt8]) {
        let token = Base64URL.encode(Crypto.randomBytes(32))
        return (token, Crypto.sha256(token))
    }
}

/// The contract's `user`.
struct UserResponse: ResponseCodable, Sendable {
    var id: String
    var email: String
    var emailVerified: Bool
    var name: String
    /// False for an account made by social sign-in that has not set a password (a reset sets one).
    var hasPassword: Bool
    var createdAt: Date

    init(_ record: UserRecord) {
        self.id = record.id.apiString
        self.email = record.email
        self.emailVerified = record.emailVerified
        self.name = record.name
        self.hasPassword = record.passwordHash != nil
        self.createdAt = record.createdAt
    }
}

/// The contract's `session`. It carries tokens, so no cache may keep it.
struct SessionResponse: ResponseCodable, Sendable {
    var user: UserResponse
    var accessToken: String
    var refreshToken: String
    var tokenType = "Bearer"
    var expiresIn: Int
}

struct SignupRequest: Decodable {
    var email: String
    var password: String
    var name: String
}

struct LoginRequest: Decodable {
    var email: String
    var password: String
}

struct RefreshRequest: Decodable {
    var refreshToken: String
}

/// `POST /auth/email/verify`.
struct EmailTokenRequest: Decodable {
    var token: String
}

/// `POST /auth/password/forgot`.
struct ForgotPasswordRequest: Decodable {
    var email: String
}

/// `POST /auth/password/reset`.
struct ResetPasswordRequest: Decodable {
    var token: String
    var password: String
}

struct UpdateMeRequest: Decodable {
    var name: String?
    /// A new address: it replaces the current one once the link sent to it is opened.
    var email: String?
    var password: String?
    var currentPassword: String?
}

/// `DELETE /auth/me`: proof that the owner, not only a token, asks.
struct DeleteMeRequest: Decodable {
    var currentPassword: String?
    /// Without a password: a fresh ID token of a linked provider.
    var provider: String?
    var idToken: String?
    /// Checked against the token's `nonce` when sent (the web app sends the one it made).
    var nonce: String?
}

/// `GET /auth/social/providers`.
struct SocialProvidersResponse: ResponseEncodable, Sendable {
    var items: [SocialProviderResponse]
}

struct SocialProviderResponse: Encodable, Sendable {
    var name: String
    var clientId: String
    var authorizationEndpoint: String
}

/// `POST /auth/social/{provider}`.
struct SocialSignInRequest: Decodable {
    var idToken: String
    var nonce: String?
}

/// A linked sign-in method.
struct IdentityRecord: Sendable {
    var provider: String
    var email: String?
    var linkedAt: Date
}

struct IdentityResponse: Codable, Sendable {
    var provider: String
    var email: String?
    var linkedAt: Date
}

struct IdentityList: ResponseCodable, Sendable {
    var items: [IdentityResponse]
}

struct UserName: Codable, Sendable, Equatable {
    var id: String
    var name: String
}

/// The input rules of the contract, in one place.
enum AuthRules {
    static let passwordBytes = 8...72
    static let nameLength = 1...50

    /// Trimmed and lower-cased; the stored and compared form.
    static func normalizedEmail(_ email: String) -> String {
        email.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
    }

    static func emailError(_ email: String) -> FieldError? {
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        let valid = email.utf8.count <= 254 && parts.count == 2 && !parts[0].isEmpty && parts[0].utf8.count <= 64
            && parts[1].contains(".") && !parts[1].hasPrefix(".") && !parts[1].hasSuffix(".")
            && !email.contains(where: { $0.isWhitespace || $0.isNewline })
        return valid ? nil : FieldError(field: "email", message: "must be a valid email address")
    }

    /// bcrypt only reads 72 bytes, so longer passwords are refused rather than silently cut.
    static func passwordError(_ password: String, field: String = "password") -> FieldError? {
        if let error = passwordCharacterError(password, field: field) { return error }
        return passwordBytes.contains(password.utf8.count)
            ? nil : FieldError(field: field, message: "must be 8 to 72 bytes long (UTF-8)")
    }

    /// bcrypt reads a password as a C string: a NUL ends it, so `"\u{0}anything"` would match
    /// an empty password and `"hunter22\u{0}x"` would match `"hunter22\u{0}y"`. Control
    /// characters (U+0000-U+001F, U+007F) are refused wherever a password comes in, login too.
    static func passwordCharacterError(_ password: String, field: String = "password") -> FieldError? {
        password.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }
            ? FieldError(field: field, message: "must not contain control characters") : nil
    }

    static func normalizedName(_ name: String) -> String {
        name.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func nameError(_ name: String) -> FieldError? {
        nameLength.contains(name.count) ? nil : FieldError(field: "name", message: "must be 1 to 50 characters after trimming")
    }
}

extension SessionResponse {
    /// The session as a response: JSON with `Cache-Control: no-store`.
    func response(status: HTTPResponse.Status = .ok) throws -> Response {
        try Response.json(self, status: status, headers: [.cacheControl: "no-store"])
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        try response()
    }
}
