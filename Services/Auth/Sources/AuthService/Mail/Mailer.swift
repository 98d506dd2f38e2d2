import Foundation
import Logging
import ServiceLifecycle
import Shared

/// Sends the queued mail over SMTP, a batch per connection. A message that the server
/// refuses for now (4xx), or that meets a connection failure or timeout, is tried again with
/// exponential backoff; a 5xx is final and logged; either way its state is in the database,
/// so a restart loses nothing, and a claim under `SKIP LOCKED` keeps two instances from
/// sending one message twice (delivery is at least once: a crash between the server's
/// acceptance and the row's update sends that one message again).
struct Mailer: Service {
    let queue: MailQueue
    let settings: MailSettings
    let templates: MailTemplates
    let wakeUp: WakeUp
    let logger: Logger
    static let batchSize = 20

    func run() async throws {
        guard let smtp = settings.smtp else {
            logger.warning("SMTP_URL is not set: e-mail is queued in the database and not sent")
            return try await gracefulShutdown()
        }
        logger.info("mailer started", metadata: ["smtp": "\(smtp.redacted)"])
        await PeriodicTask.run(every: settings.pollInterval, wakeUp: wakeUp) { await self.round(smtp) }
    }

    /// One round: claim what is due, prepare reset requests, send the rest over one
    /// connection. Returns how much progressed (another round follows at once if any did).
    func round(_ smtp: SMTPSettings) async -> Int {
        do {
            let due = try await queue.claimDue(limit: Self.batchSize, lease: smtp.timeout * 10, logger: logger)
            var progressed = 0
            var toSend: [QueuedMail] = []
            for mail in due {
                if mail.kind == MailQueue.resetRequest {
                    // The reset message it becomes is due at once: the next round sends it.
                    try await prepareReset(mail)
                    progressed += 1
                } else {
                    toSend.append(mail)
                }
            }
            if !toSend.isEmpty { progressed += await send(toSend, smtp) }
            return progressed
        } catch {
            logger.warning("mail round failed", metadata: ["error": "\(String(reflecting: error))"])
            return 0
        }
    }

    private func prepareReset(_ request: QueuedMail) async throws {
        let (token, tokenHash) = OpaqueToken.make()
        let prepared = try await queue.prepareReset(
            request, tokenHash: tokenHash, validFor: settings.resetTokenTTL,
            values: ["link": settings.link("reset", token: token), "validFor": MailSettings.describe(settings.resetTokenTTL)],
            logger: logger)
        // Whether the address has an account is logged nowhere (the request id is enough).
        logger.debug("password reset request handled", metadata: ["requestId": "mail-\(request.id)", "prepared": "\(prepared)"])
    }

    private enum Outcome {
        case sent
        case failed(SMTPError)
    }

    /// Sends `batch` over one connection; returns how many went out.
    private func send(_ batch: [QueuedMail], _ smtp: SMTPSettings) async -> Int {
        var outcomes: [UUID: Outcome] = [:]
        do {
            try await SMTPClient.withSession(smtp, logger: logger) { session in
                for mail in batch {
                    do {
                        let message = try self.message(for: mail)
                        try await session.send(from: settings.from.address, to: mail.recipient, data: message.bytes)
                        outcomes[mail.id] = .sent
                    } catch let error as SMTPError {
                        outcomes[mail.id] = .failed(error)
                        // The connection broke: what is left waits for the next attempt.
                        guard session.isOpen else { break }
                    }
                }
            }
        } catch {
            let failure = (error as? SMTPError) ?? .transient("\(error)")
            for mail in batch where outcomes[mail.id] == nil { outcomes[mail.id] = .failed(failure) }
        }
        var sent = 0
        for mail in batch {
            var logger = self.logger
            logger[metadataKey: "requestId"] = "mail-\(mail.id)"
            do {
                switch outcomes[mail.id] ?? .failed(.transient("not attempted: the connection ended")) {
                case .sent:
                    try await queue.markSent(mail, logger: logger)
                    logger.info("mail sent", metadata: ["kind": "\(mail.kind)", "attempt": "\(mail.attempts)"])
                    sent += 1
                case .failed(let error) where error.isPermanent || Date().timeIntervalSince(mail.createdAt) > settings.giveUpAfter.timeInterval:
                    try await queue.markFailed(mail, error: error.description, logger: logger)
                    logger.error("mail not delivered, for good", metadata: [
                        "kind": "\(mail.kind)", "attempt": "\(mail.attempts)", "error": "\(error)",
                    ])
                case .failed(let error):
                    let backoff = min(settings.retryMax.timeInterval, settings.retryBase.timeInterval * pow(2, Double(mail.attempts - 1)))
                        * Double.random(in: 0.8...1.2)
                    try await queue.scheduleRetry(mail, after: .milliseconds(Int64(backoff * 1000)), error: error.description, logger: logger)
                    logger.notice("mail not delivered; will retry", metadata: [
                        "kind": "\(mail.kind)", "attempt": "\(mail.attempts)", "error": "\(error)",
                        "retryInSeconds": "\(String(format: "%.1f", backoff))",
                    ])
                }
            } catch {
                // The lease runs out and the row is claimed again.
                logger.warning("could not record a mail outcome", metadata: ["error": "\(String(reflecting: error))"])
            }
        }
        return sent
    }

    /// The message a queued row stands for; a template that cannot render is final.
    private func message(for mail: QueuedMail) throws -> MailMessage {
        guard let kind = MailKind(rawValue: mail.kind) else { throw SMTPError.permanent("unknown mail kind \(mail.kind)") }
        let rendered: RenderedMail
        do {
            rendered = try templates.render(kind, values: mail.values)
        } catch {
            throw SMTPError.permanent("template \(kind.rawValue): \(error)")
        }
        return MailMessage(
            from: settings.from, to: MailAddress(address: mail.recipient), subject: rendered.subject,
            text: rendered.text, html: rendered.html, id: mail.id)
    }
}
