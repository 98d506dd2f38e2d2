import Foundation
import HummingbirdTesting
import PostgresNIO
import Shared
import TestSupport
import Testing

@testable import AuthService

/// E-mail against a real SMTP server (aiosmtpd with STARTTLS and AUTH, scripts/with-test-smtp.sh):
/// verification, password reset, and delivery through failures and restarts.
@Suite("Auth: e-mail")
struct AuthMailTests {
    static func address(_ prefix: String = "mail") -> String {
        "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())@example.com"
    }

    /// The mail_outbox row of `recipient`'s latest message: attempts, sent, failed, values kept.
    static func outboxRow(_ databaseURL: String, recipient: String) async throws -> (attempts: Int, sent: Bool, failed: Bool, hasValues: Bool)? {
        try await TestDatabase.withClient(databaseURL) { client in
            let rows = try await client.query(
                """
                SELECT attempts, sent_at IS NOT NULL, failed_at IS NOT NULL, "values" IS NOT NULL FROM mail_outbox
                WHERE recipient = \(recipient) ORDER BY created_at DESC LIMIT 1
                """)
            for try await row in rows.decode((Int, Bool, Bool, Bool).self) { return row }
            return nil
        }
    }

    @Test func signUpSendsAVerificationMessageWhoseLinkVerifiesOnce() async throws {
        try await withAuthService(extra: try TestMail.variables()) { client, _ in
            let email = Self.address("verify")
            let session = try await client.signup(email: email, name: "Zoë <b>")
            let stored = try #require(try await TestMail.waitForMessages(to: email).first)
            // Through STARTTLS, authenticated, from MAIL_FROM's address.
            #expect(stored.tls)
            #expect(stored.authUser == "mailer")
            #expect(stored.mailFrom == "no-reply@memos.example")
            let mail = try await TestMail.parse(stored)
            #expect(mail.defects.isEmpty, "\(mail.defects)")
            #expect(!mail.bareLF)
            #expect(mail.longestLine <= 78)
            #expect(mail.from == "Voice Memos <no-reply@memos.example>")
            #expect(mail.to == email)
            #expect(mail.subject == "Confirm your e-mail address for Voice Memos")
            #expect(mail.date != nil && mail.messageId?.hasSuffix("@memos.example>") == true && mail.mimeVersion == "1.0")
            #expect(mail.contentType == "multipart/alternative")
            #expect(mail.parts.map(\.contentType) == ["text/plain", "text/html"])
            #expect(mail.parts.allSatisfy { $0.charset == "utf-8" })
            // The name as it is in the text, escaped in the HTML.
            #expect(mail.part("text/plain")?.contains("Hello Zoë <b>,") == true)
            #expect(mail.part("text/html")?.contains("Hello Zoë &lt;b&gt;,") == true)
            let token = try #require(mail.token(route: "verify"))
            #expect(mail.part("text/plain")?.contains("https://memos.example/#/verify?token=\(token)") == true)

            let me = try await client.send(.get, "/auth/me", token: session.accessToken)
            #expect(try me.json["emailVerified"] == .bool(false))
            let verified = try await client.send(.post, "/auth/email/verify", json: #"{"token": "\#(token)"}"#)
            #expect(verified.status == .ok)
            #expect(try verified.json["emailVerified"] == .bool(true))
            #expect(try verified.json["hasPassword"] == .bool(true))
            let again = try await client.send(.post, "/auth/email/verify", json: #"{"token": "\#(token)"}"#)
            #expect(again.status == .badRequest)
            #expect(try again.problem.code == "invalid_token")
            // Verified: a resend sends nothing more.
            #expect(try await client.send(.post, "/auth/email/verify/resend", token: session.accessToken).status == .accepted)
            #expect(try TestMail.messages(to: email).count == 1)
        }
    }

    @Test func aResendSendsANewLinkAndTheOldOneStillWorksOnce() async throws {
        try await withAuthService(extra: try TestMail.variables()) { client, _ in
            let email = Self.address("resend")
            let session = try await client.signup(email: email)
            _ = try await TestMail.waitForMessages(to: email)
            #expect(try await client.send(.post, "/auth/email/verify/resend", token: session.accessToken).status == .accepted)
            let both = try await TestMail.waitForMessages(to: email, count: 2)
            let token = try #require(try await TestMail.parse(both[1]).token(route: "verify"))
            #expect(try await client.send(.post, "/auth/email/verify", json: #"{"token": "\#(token)"}"#).status == .ok)
        }
    }

    /// Forgot answers the same for an address with and without an account; the reset link
    /// sets the password, verifies the address, ends every session and works once.
    @Test func forgotAndResetEndEverySession() async throws {
        try await withAuthService(extra: try TestMail.variables()) { client, _ in
            let email = Self.address("reset")
            let unknown = Self.address("nobody")
            let first = try await client.signup(email: email, password: "old password 1")
            let second = try #require(try? await client.login(email: email, password: "old password 1").decode(Session.self))
            _ = try await TestMail.waitForMessages(to: email)

            let known = try await client.send(.post, "/auth/password/forgot", json: #"{"email": "  \#(email.uppercased()) "}"#)
            let none = try await client.send(.post, "/auth/password/forgot", json: #"{"email": "\#(unknown)"}"#)
            #expect(known.status == .accepted && none.status == .accepted)
            #expect(Array(buffer: known.body) == Array(buffer: none.body))
            #expect(known.headers[.contentType] == none.headers[.contentType])
            let messages = try await TestMail.waitForMessages(to: email, count: 2)
            let reset = try await TestMail.parse(messages[1])
            #expect(reset.subject == "Reset your Voice Memos password")
            let token = try #require(reset.token(route: "reset"))
            // The unknown address's request was handled in the same rounds: nothing was sent to it.
            #expect(try TestMail.messages(to: unknown).isEmpty)

            let tooShort = try await client.send(.post, "/auth/password/reset", json: #"{"token": "\#(token)", "password": "short"}"#)
            #expect(tooShort.status == .badRequest)
            let done = try await client.send(.post, "/auth/password/reset", json: #"{"token": "\#(token)", "password": "new password 2"}"#)
            #expect(done.status == .ok)
            #expect(done.headers[.cacheControl] == "no-store")
            let renewed = try done.decode(Session.self)
            #expect(try done.json["user"]?.objectValue?["emailVerified"] == .bool(true))
            // Every earlier session ends: refresh tokens and access tokens alike.
            for old in [first, second] {
                #expect(try await client.refresh(old.refreshToken).status == .unauthorized)
                #expect(try await client.send(.get, "/auth/me", token: old.accessToken).status == .unauthorized)
            }
            #expect(try await client.send(.get, "/auth/me", token: renewed.accessToken).status == .ok)
            #expect(try await client.login(email: email, password: "old password 1").status == .unauthorized)
            #expect(try await client.login(email: email, password: "new password 2").status == .ok)
            let reused = try await client.send(.post, "/auth/password/reset", json: #"{"token": "\#(token)", "password": "new password 3"}"#)
            #expect(reused.status == .badRequest)
            #expect(try reused.problem.code == "invalid_token")
            let changed = try await TestMail.parse(try #require(try await TestMail.waitForMessages(to: email, count: 3).last))
            #expect(changed.subject == "Your Voice Memos password was changed")
        }
    }

    /// A new address needs the current password, and takes effect only once the link sent
    /// to it is opened; the old address is told.
    @Test func changingTheAddressTakesEffectOnceTheNewOneIsProven() async throws {
        try await withAuthService(extra: try TestMail.variables()) { client, _ in
            let (old, new) = (Self.address("old"), Self.address("new"))
            let session = try await client.signup(email: old)
            _ = try await TestMail.waitForMessages(to: old)
            let unproven = try await client.send(.patch, "/auth/me", json: #"{"email": "\#(new)"}"#, token: session.accessToken)
            #expect(unproven.status == .badRequest)
            let wrong = try await client.send(
                .patch, "/auth/me", json: #"{"email": "\#(new)", "currentPassword": "wrong one"}"#, token: session.accessToken)
            #expect(wrong.status == .forbidden)
            let asked = try await client.send(
                .patch, "/auth/me", json: #"{"email": "\#(new)", "currentPassword": "correct horse"}"#, token: session.accessToken)
            #expect(asked.status == .ok)
            #expect(try asked.json["email"] == .string(old))
            let link = try await TestMail.parse(try #require(try await TestMail.waitForMessages(to: new).first))
            let token = try #require(link.token(route: "verify"))
            let switched = try await client.send(.post, "/auth/email/verify", json: #"{"token": "\#(token)"}"#)
            #expect(switched.status == .ok)
            #expect(try switched.json["email"] == .string(new))
            #expect(try switched.json["emailVerified"] == .bool(true))
            #expect(try await client.login(email: new, password: "correct horse").status == .ok)
            #expect(try await client.login(email: old, password: "correct horse").status == .unauthorized)
            let notice = try await TestMail.parse(try #require(try await TestMail.waitForMessages(to: old, count: 2).last))
            #expect(notice.subject == "Your Voice Memos e-mail address was changed")
            #expect(notice.part("text/plain")?.contains(new) == true)
        }
    }

    @Test func anAddressTakenMeanwhileIsAConflict() async throws {
        try await withAuthService(extra: try TestMail.variables()) { client, _ in
            let (mine, wanted) = (Self.address("mine"), Self.address("wanted"))
            let session = try await client.signup(email: mine)
            let asked = try await client.send(
                .patch, "/auth/me", json: #"{"email": "\#(wanted)", "currentPassword": "correct horse"}"#, token: session.accessToken)
            #expect(asked.status == .ok)
            let link = try await TestMail.parse(try #require(try await TestMail.waitForMessages(to: wanted).first))
            _ = try await client.signup(email: wanted)
            let token = try #require(link.token(route: "verify"))
            let taken = try await client.send(.post, "/auth/email/verify", json: #"{"token": "\#(token)"}"#)
            #expect(taken.status == .conflict)
            #expect(try taken.problem.code == "email_taken")
            #expect(try await client.login(email: mine, password: "correct horse").status == .ok)
        }
    }

    @Test func aServerThatSaysTryLaterGetsTheMessageOnceItAccepts() async throws {
        try await withAuthService(extra: try TestMail.variables()) { client, databaseURL in
            let email = Self.address("tempfail2")
            _ = try await client.signup(email: email)
            _ = try await TestMail.waitForMessages(to: email)
            try await eventually { try await Self.outboxRow(databaseURL, recipient: email)?.sent == true }
            let row = try #require(try await Self.outboxRow(databaseURL, recipient: email))
            #expect(row.attempts == 3)
            #expect(!row.hasValues)
            #expect(try TestMail.messages(to: email).count == 1)
        }
    }

    /// `421` (the server closes the connection) is temporary too: retried, delivered once.
    @Test func aServerThatIsBusyAndClosesIsTriedAgain() async throws {
        try await withAuthService(extra: try TestMail.variables()) { client, databaseURL in
            let email = Self.address("busy1")
            _ = try await client.signup(email: email)
            _ = try await TestMail.waitForMessages(to: email)
            try await eventually { try await Self.outboxRow(databaseURL, recipient: email)?.sent == true }
            #expect(try await Self.outboxRow(databaseURL, recipient: email)?.attempts == 2)
            #expect(try TestMail.messages(to: email).count == 1)
        }
    }

    @Test func aConnectionThatBreaksMidMessageIsRetried() async throws {
        try await withAuthService(extra: try TestMail.variables()) { client, databaseURL in
            let email = Self.address("close")
            _ = try await client.signup(email: email)
            _ = try await TestMail.waitForMessages(to: email)
            try await eventually { try await Self.outboxRow(databaseURL, recipient: email)?.sent == true }
            #expect(try await Self.outboxRow(databaseURL, recipient: email)?.attempts == 2)
            #expect(try TestMail.messages(to: email).count == 1)
        }
    }

    @Test func aPermanentRefusalIsFinal() async throws {
        try await withAuthService(extra: try TestMail.variables()) { client, databaseURL in
            let email = Self.address("reject")
            _ = try await client.signup(email: email)
            try await eventually { try await Self.outboxRow(databaseURL, recipient: email)?.failed == true }
            let row = try #require(try await Self.outboxRow(databaseURL, recipient: email))
            #expect(row.attempts == 1)
            #expect(!row.hasValues)
            #expect(try TestMail.messages(to: email).isEmpty)
        }
    }

    @Test func implicitTLSWorks() async throws {
        try await withAuthService(extra: try TestMail.variables(url: try TestMail.implicitTLSURL)) { client, _ in
            let email = Self.address("smtps")
            _ = try await client.signup(email: email)
            let stored = try #require(try await TestMail.waitForMessages(to: email).first)
            #expect(stored.tls)
        }
    }

    /// Messages queued while the server is unreachable, and auth restarted meanwhile: the
    /// next instance sends each one, once.
    @Test func messagesQueuedWhileTheServerIsDownGoOutOnceAfterARestart() async throws {
        let unreachable = try TestMail.variables(url: "smtp://127.0.0.1:9?tls=none")
        let emails = (0..<3).map { _ in Self.address("queued") }
        try await withAuthService(extra: unreachable) { client, databaseURL in
            for email in emails { _ = try await client.signup(email: email) }
            try await eventually {
                for email in emails where (try await Self.outboxRow(databaseURL, recipient: email)?.attempts ?? 0) < 2 { return false }
                return true
            }
            #expect(try emails.allSatisfy { try TestMail.messages(to: $0).isEmpty })
            try await withAuthService(databaseURL: databaseURL, extra: try TestMail.variables()) { _, _ in
                for email in emails { _ = try await TestMail.waitForMessages(to: email) }
            }
        }
        for email in emails { #expect(try TestMail.messages(to: email).count == 1) }
    }

    /// Two instances on one database, both sending: every message goes out exactly once.
    @Test func twoInstancesSendEachMessageOnce() async throws {
        try await withAuthService(extra: try TestMail.variables()) { first, databaseURL in
            try await withAuthService(databaseURL: databaseURL, extra: try TestMail.variables()) { second, _ in
                let emails = (0..<8).map { _ in Self.address("twice") }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for (index, email) in emails.enumerated() {
                        group.addTask { _ = try await (index.isMultiple(of: 2) ? first : second).signup(email: email) }
                    }
                    try await group.waitForAll()
                }
                for email in emails { _ = try await TestMail.waitForMessages(to: email) }
                try await eventually {
                    for email in emails where try await Self.outboxRow(databaseURL, recipient: email)?.sent != true { return false }
                    return true
                }
                for email in emails { #expect(try TestMail.messages(to: email).count == 1, "\(email)") }
            }
        }
    }
}

@Suite("Auth: mail encoding")
struct MailEncodingTests {
    @Test func encodedWordsFollowRFC2047() {
        #expect(MIMEEncoding.encodedWords("Hello") == ["Hello"])
        // RFC 2047 §8's example text, as UTF-8 base64.
        #expect(MIMEEncoding.encodedWords("Grüße") == ["=?utf-8?B?R3LDvMOfZQ==?="])
        let long = String(repeating: "한", count: 40)
        let words = MIMEEncoding.encodedWords(long)
        #expect(words.count == 3)
        #expect(words.allSatisfy { $0.count <= 75 })
        let decoded = words.map { word -> String in
            let base64 = word.dropFirst("=?utf-8?B?".count).dropLast(2)
            return String(decoding: Data(base64Encoded: String(base64))!, as: UTF8.self)
        }.joined()
        #expect(decoded == long)
    }

    @Test func quotedPrintableFollowsRFC2045() {
        #expect(MIMEEncoding.quotedPrintable("a=b") == "a=3Db")
        #expect(MIMEEncoding.quotedPrintable("café") == "caf=C3=A9")
        #expect(MIMEEncoding.quotedPrintable("trailing \nnext") == "trailing=20\r\nnext")
        #expect(MIMEEncoding.quotedPrintable(".dot") == "=2Edot")
        let long = MIMEEncoding.quotedPrintable(String(repeating: "x", count: 200))
        #expect(long.components(separatedBy: "\r\n").allSatisfy { $0.count <= 76 })
        #expect(long.replacingOccurrences(of: "=\r\n", with: "") == String(repeating: "x", count: 200))
    }

    @Test func datesAreRFC5322() {
        #expect(MIMEEncoding.rfc5322Date(Date(timeIntervalSince1970: 0)) == "Thu, 1 Jan 1970 00:00:00 +0000")
    }

    @Test func dataIsDotStuffedAndEnded() {
        let stuffed = SMTPSession.dotStuffed(Array("a\r\n.b\n..c".utf8))
        #expect(String(decoding: stuffed, as: UTF8.self) == "a\r\n..b\r\n...c\r\n.\r\n")
    }

    @Test func multiLineRepliesAreOneReply() throws {
        var parser = SMTPReplyParser()
        parser.append(Array("250-mail.example\r\n250-SIZE 1000\r\n250-AUTH PLAIN LOGIN\r\n".utf8))
        #expect(try parser.next() == nil)
        parser.append(Array("250 SMTPUTF8\r\n451 4.3.0 later\r\n".utf8))
        let ehlo = try #require(try parser.next())
        #expect(ehlo.code == 250 && ehlo.lines.count == 4)
        let offered = SMTPExtensions(ehlo: ehlo)
        #expect(offered.maxSize == 1000 && offered.smtpUTF8 && offered.authMechanisms == ["PLAIN", "LOGIN"] && !offered.startTLS)
        let later = try #require(try parser.next())
        #expect(later.error(during: "DATA") == .transient("DATA: 451 4.3.0 later"))
        parser.append(Array("nonsense\r\n".utf8))
        #expect(throws: SMTPError.self) { try parser.next() }
    }

    @Test func smtpURLs() throws {
        let starttls = try SMTPSettings(url: "smtp://u%40x:p%3Ass@mail.example:2525", caFile: nil, timeout: .seconds(1))
        #expect(starttls.security == .starttls && starttls.port == 2525 && starttls.username == "u@x" && starttls.password == "p:ss")
        #expect(starttls.redacted == "smtp://u@x:***@mail.example:2525?tls=starttls")
        #expect(try SMTPSettings(url: "smtps://mail.example", caFile: nil, timeout: .seconds(1)).port == 465)
        #expect(try SMTPSettings(url: "smtp://mail.example?tls=none", caFile: nil, timeout: .seconds(1)).port == 25)
        #expect(throws: SMTPSettingsError.self) { try SMTPSettings(url: "smtp://mail.example?tls=maybe", caFile: nil, timeout: .seconds(1)) }
        #expect(throws: SMTPSettingsError.self) { try SMTPSettings(url: "http://mail.example", caFile: nil, timeout: .seconds(1)) }
    }

    @Test func aMissingTemplateStopsTheService() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("templates-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let bundled = try #require(MailTemplates.bundledDirectory)
        for name in try FileManager.default.contentsOfDirectory(atPath: bundled) where name != "reset.html.mustache" {
            try FileManager.default.copyItem(atPath: "\(bundled)/\(name)", toPath: "\(folder)/\(name)")
        }
        await #expect(throws: MailTemplateError.self) { try await MailTemplates(directory: folder, appName: "Test") }
        try "{{#broken}}".write(toFile: "\(folder)/reset.html.mustache", atomically: true, encoding: .utf8)
        await #expect(throws: MailTemplateError.self) { try await MailTemplates(directory: folder, appName: "Test") }
        _ = try await MailTemplates(directory: bundled, appName: "Test")
    }
}
