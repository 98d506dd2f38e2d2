import Configuration
import Foundation
import Shared

/// The per-account login throttle. The gateway limits attempts per client address; this
/// limits them per account, whatever the address (a guessing run spread over many):
/// after `freeFailures` failed logins for one e-mail, each next attempt waits `baseDelay`,
/// doubled per further failure, never more than `maxDelay`, so the owner is never locked
/// out for long. A successful login clears it; so does `window` without a failure. Kept in
/// auth's database (`login_failures`), so every instance applies the same count.
struct LoginThrottle: Sendable {
    var freeFailures: Int
    var baseDelay: Duration
    var maxDelay: Duration
    var window: Duration

    init(freeFailures: Int, baseDelay: Duration, maxDelay: Duration, window: Duration) {
        self.freeFailures = freeFailures
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.window = window
    }

    init(reader: ConfigReader) throws {
        self.freeFailures = try reader.integer("LOGIN_THROTTLE_FREE_FAILURES", default: 5, in: 1...1_000_000)
        self.baseDelay = try reader.seconds("LOGIN_THROTTLE_BASE_DELAY_SECONDS", default: 1, in: 0.001...3600)
        self.maxDelay = try reader.seconds("LOGIN_THROTTLE_MAX_DELAY_SECONDS", default: 60, in: 0.001...3600)
        self.window = try reader.seconds("LOGIN_THROTTLE_WINDOW_SECONDS", default: 900, in: 1...86_400)
        guard baseDelay <= maxDelay, maxDelay <= window else {
            throw ConfigurationError(
                "LOGIN_THROTTLE_BASE_DELAY_SECONDS <= LOGIN_THROTTLE_MAX_DELAY_SECONDS <= LOGIN_THROTTLE_WINDOW_SECONDS must hold.")
        }
    }

    /// How long the account must still wait before its password is checked again, or nil.
    func wait(after failures: LoginFailures) -> Duration? {
        guard failures.count >= freeFailures else { return nil }
        let doublings = min(failures.count - freeFailures, 30)
        let delay = min(baseDelay * (1 << doublings), maxDelay)
        let remaining = failures.last.addingTimeInterval(delay.timeInterval).timeIntervalSince(failures.now)
        return remaining > 0 ? .milliseconds(Int64((remaining * 1000).rounded(.up))) : nil
    }
}

/// Recent failed logins of one e-mail, with the database's clock (one clock for every instance).
struct LoginFailures: Sendable {
    var count: Int
    var last: Date
    var now: Date

    static func none(now: Date) -> LoginFailures { LoginFailures(count: 0, last: now, now: now) }
}
