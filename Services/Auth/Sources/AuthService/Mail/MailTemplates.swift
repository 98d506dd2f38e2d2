import Foundation
import Mustache

/// The messages auth sends, each rendered from three swift-mustache templates next to the
/// service (`MailTemplates/<kind>.subject|text|html.mustache`; `MAIL_TEMPLATES_DIR` replaces
/// the folder). Values are escaped in HTML and left as they are in the text parts.
enum MailKind: String, CaseIterable, Sendable {
    case verify
    case reset
    case passwordChanged = "password-changed"
    case identityLinked = "identity-linked"
    case emailChanged = "email-changed"

    /// Values every message of this kind is rendered with (checked at start with samples).
    var requiredValues: [String] {
        switch self {
        case .verify: ["name", "email", "link", "validFor"]
        case .reset: ["name", "link", "validFor"]
        case .passwordChanged: ["name", "link"]
        case .identityLinked: ["name", "provider", "link"]
        case .emailChanged: ["name", "email", "newEmail", "link"]
        }
    }
}

struct RenderedMail: Sendable, Equatable {
    var subject: String
    var text: String
    var html: String
}

struct MailTemplates: Sendable {
    let library: MustacheLibrary
    /// Shown in every message (`appName`).
    let appName: String

    /// Loads the folder and renders every kind once with sample values: a missing or broken
    /// template stops the service at start, with a message that names it.
    init(directory: String, appName: String) async throws {
        guard FileManager.default.fileExists(atPath: directory) else {
            throw MailTemplateError("the mail templates folder \(directory) does not exist")
        }
        do {
            self.library = try await MustacheLibrary(directory: directory)
        } catch let error as MustacheLibrary.ParserError {
            throw MailTemplateError("mail template \(error.filename) does not parse: \(error.error) at line \(error.context.lineNumber)")
        }
        self.appName = appName
        for kind in MailKind.allCases {
            for part in ["subject", "text", "html"] where library.getTemplate(named: "\(kind.rawValue).\(part)") == nil {
                throw MailTemplateError("mail template \(kind.rawValue).\(part).mustache is missing from \(directory)")
            }
            let samples = Dictionary(uniqueKeysWithValues: kind.requiredValues.map { ($0, "sample-\($0)") })
            let rendered = try render(kind, values: samples)
            for value in ["link", "provider"] where kind.requiredValues.contains(value) {
                guard rendered.text.contains("sample-\(value)"), rendered.html.contains("sample-\(value)") else {
                    throw MailTemplateError("mail template \(kind.rawValue) does not show its {{\(value)}} in both parts")
                }
            }
        }
    }

    /// The bundled templates (the `MailTemplates` folder of this target).
    static var bundledDirectory: String? {
        Bundle.module.url(forResource: "MailTemplates", withExtension: nil)?.path
    }

    func render(_ kind: MailKind, values: [String: String]) throws -> RenderedMail {
        var context = values
        context["appName"] = appName
        func part(_ name: String) throws -> String {
            guard let text = library.render(context, withTemplate: "\(kind.rawValue).\(name)") else {
                throw MailTemplateError("mail template \(kind.rawValue).\(name) is missing")
            }
            return text
        }
        // A subject is one line, whatever the template's line ends.
        let subject = try part("subject").split(whereSeparator: \.isNewline).joined(separator: " ")
            .trimmingCharacters(in: .whitespaces)
        return RenderedMail(subject: subject, text: try part("text"), html: try part("html"))
    }
}

struct MailTemplateError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
