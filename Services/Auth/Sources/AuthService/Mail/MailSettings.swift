import Configuration
import Foundation
import Shared

/// E-mail settings (names in the README): the SMTP server, the sender, where links point,
/// token lifetimes and the retry policy.
struct MailSettings: Sendable {
    /// nil when `SMTP_URL` is not set: messages are queued and kept, not sent.
    var smtp: SMTPSettings?
    var from: MailAddress
    /// Links in messages start with this (`PUBLIC_BASE_URL`): the web app's address.
    var publicBaseURL: String
    /// `MAIL_TEMPLATES_DIR`, or nil for the templates bundled with the service.
    var templatesDirectory: String?
    var appName: String
    var verifyTokenTTL: Duration
    var resetTokenTTL: Duration
    /// First retry after a temporary failure; doubled per attempt up to `retryMax`.
    var retryBase: Duration
    var retryMax: Duration
    /// A message still not sent this long after it was queued fails for good.
    var giveUpAfter: Duration
    /// How often the mailer looks for messages queued by other instances or due for a retry.
    var pollInterval: Duration

    init(reader: ConfigReader) throws {
        let timeout = try reader.seconds("SMTP_TIMEOUT_SECONDS", default: 30, in: 0.1...600)
        if let url = reader.string(forKey: ConfigReader.key(forVariable: "SMTP_URL")), !url.isEmpty {
            do {
                self.smtp = try SMTPSettings(
                    url: url, caFile: reader.string(forKey: ConfigReader.key(forVariable: "SMTP_CA_FILE")).flatMap { $0.isEmpty ? nil : $0 },
                    timeout: timeout)
            } catch let error as SMTPSettingsError {
                throw ConfigurationError(error.description)
            }
        }
        let from = reader.string(forKey: ConfigReader.key(forVariable: "MAIL_FROM"), default: "Voice Memos <no-reply@localhost>")
        guard let sender = MailAddress(parsing: from) else {
            throw ConfigurationError("MAIL_FROM must be an address, optionally with a name: 'Name <no-reply@example.com>', not '\(from)'.")
        }
        self.from = sender
        var base = reader.string(forKey: ConfigReader.key(forVariable: "PUBLIC_BASE_URL"), default: "http://localhost:8080")
        while base.hasSuffix("/") { base.removeLast() }
        guard let url = URLComponents(string: base), ["http", "https"].contains(url.scheme ?? ""), url.host?.isEmpty == false else {
            throw ConfigurationError("PUBLIC_BASE_URL must be the web app's address, e.g. https://memos.example.com, not '\(base)'.")
        }
        self.publicBaseURL = base
        self.templatesDirectory = reader.string(forKey: ConfigReader.key(forVariable: "MAIL_TEMPLATES_DIR")).flatMap { $0.isEmpty ? nil : $0 }
        self.appName = reader.string(forKey: ConfigReader.key(forVariable: "MAIL_APP_NAME"), default: "Voice Memos")
        self.verifyTokenTTL = try reader.seconds("EMAIL_VERIFY_TOKEN_TTL_SECONDS", default: 86_400, in: 60...(30 * 86_400))
        self.resetTokenTTL = try reader.seconds("PASSWORD_RESET_TOKEN_TTL_SECONDS", default: 1800, in: 60...86_400)
        self.retryBase = try reader.seconds("MAIL_RETRY_BASE_SECONDS", default: 5, in: 0.01...3600)
        self.retryMax = try reader.seconds("MAIL_RETRY_MAX_SECONDS", default: 600, in: 0.01...86_400)
        self.giveUpAfter = try reader.seconds("MAIL_GIVE_UP_SECONDS", default: 2 * 86_400, in: 1...(30 * 86_400))
        self.pollInterval = try reader.seconds("MAIL_POLL_INTERVAL_SECONDS", default: 5, in: 0.01...3600)
    }

    /// `https://app.example.com/#/reset?token=...` (the web app's client-side routes).
    func link(_ route: String, token: String) -> String {
        "\(publicBaseURL)/#/\(route)?token=\(token)"
    }

    /// "24 hours", "30 minutes": how long a link works, for the message text.
    static func describe(_ duration: Duration) -> String {
        let seconds = Int(duration.components.seconds)
        if seconds % 3600 == 0 { return seconds == 3600 ? "1 hour" : "\(seconds / 3600) hours" }
        let minutes = max(1, seconds / 60)
        return minutes == 1 ? "1 minute" : "\(minutes) minutes"
    }
}
