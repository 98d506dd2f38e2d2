import Foundation
import Shared
import Yams

/// A service's OpenAPI 3.1 document, used to check real responses against it: each
/// response's status must be documented for its operation, and its JSON body must match
/// the documented schema (a JSON-Schema subset: type, required, properties,
/// additionalProperties, items, enum, min/max length, minProperties, format uuid/date-time, $ref).
public final class OpenAPIContract: @unchecked Sendable {
    let root: [String: Any]
    let paths: [(template: String, pattern: NSRegularExpression, item: [String: Any])]
    private let lock = NSLock()
    private var exercised: Set<String> = []

    public init(yaml: String) throws {
        guard let root = try Yams.load(yaml: yaml) as? [String: Any], let paths = root["paths"] as? [String: Any] else {
            throw ContractError("not an OpenAPI document")
        }
        self.root = root
        self.paths = try paths.map { template, item in
            let regex = "^" + NSRegularExpression.escapedPattern(for: template)
                .replacingOccurrences(of: #"\\\{[^}]+\\\}"#, with: "[^/]+", options: .regularExpression) + "$"
            return (template, try NSRegularExpression(pattern: regex), item as? [String: Any] ?? [:])
        }
        // OpenAPI: a concrete path matches before a templated one (`/auth/social/providers`
        // before `/auth/social/{provider}`); fewer templated segments first, whatever order
        // the document's dictionary came in.
        .sorted { $0.template.filter { $0 == "{" }.count < $1.template.filter { $0 == "{" }.count }
    }

    public struct ContractError: Error, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    /// Every documented operation, as `METHOD /template`.
    public var operations: Set<String> {
        var result = Set<String>()
        for (template, _, item) in paths {
            for method in item.keys where ["get", "put", "post", "patch", "delete", "head", "options"].contains(method) {
                result.insert("\(method.uppercased()) \(template)")
            }
        }
        return result
    }

    /// Operations that `validate` has seen so far.
    public var exercisedOperations: Set<String> { lock.withLock { exercised } }

    /// Problems with one real response; empty when it matches the document.
    public func validate(method: String, path: String, status: Int, contentType: String?, body: Data) -> [String] {
        let path = String(path.split(separator: "?", maxSplits: 1).first ?? "")
        guard let (template, item) = paths.first(where: { $0.pattern.firstMatch(in: path, range: NSRange(path.startIndex..., in: path)) != nil }).map({ ($0.template, $0.item) }) else {
            return ["\(method) \(path): path not documented"]
        }
        guard let operation = item[method.lowercased()] as? [String: Any] else {
            return ["\(method) \(template): method not documented"]
        }
        lock.withLock { _ = exercised.insert("\(method.uppercased()) \(template)") }
        guard let responses = operation["responses"] as? [String: Any],
            let documented = responses[String(status)] ?? responses["default"]
        else {
            return ["\(method) \(template): status \(status) not documented"]
        }
        let response = resolve(documented)
        guard let content = response["content"] as? [String: Any] else {
            return body.isEmpty ? [] : ["\(method) \(template) \(status): body sent but none documented"]
        }
        let mediaType = contentType.map { String($0.split(separator: ";")[0]).trimmingCharacters(in: .whitespaces) } ?? ""
        // Media type ranges (`audio/*`, `*/*`) document any matching type.
        let range = (mediaType.split(separator: "/").first.map { "\($0)/*" }) ?? ""
        guard let media = (content[mediaType] ?? content[range] ?? content["*/*"]) as? [String: Any] else {
            return ["\(method) \(template) \(status): content type '\(mediaType)' not documented"]
        }
        guard mediaType.hasSuffix("json"), let schema = media["schema"] else { return [] }
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: body) else {
            return ["\(method) \(template) \(status): body is not JSON"]
        }
        return check(value, against: schema, at: "\(method) \(template) \(status) $")
    }

    func resolve(_ node: Any) -> [String: Any] {
        guard var object = node as? [String: Any] else { return [:] }
        while let ref = object["$ref"] as? String {
            var target: Any = root
            for part in ref.dropFirst(2).split(separator: "/") {
                target = (target as? [String: Any])?[String(part)] ?? [:]
            }
            object = target as? [String: Any] ?? [:]
        }
        return object
    }

    func check(_ value: JSONValue, against schemaNode: Any, at path: String) -> [String] {
        let schema = resolve(schemaNode)
        var errors: [String] = []
        if let types = schema["type"] {
            let allowed = (types as? [String]) ?? [types as? String ?? ""]
            guard allowed.contains(where: { Self.matches(value, type: $0) }) else {
                return ["\(path): expected \(allowed), got \(value)"]
            }
        }
        if let options = schema["enum"] as? [Any], case .string(let string) = value, !options.contains(where: { "\($0)" == string }) {
            errors.append("\(path): \(string) not in enum \(options)")
        }
        switch value {
        case .string(let string):
            if let min = schema["minLength"] as? Int, string.count < min { errors.append("\(path): shorter than \(min)") }
            if let max = schema["maxLength"] as? Int, string.count > max { errors.append("\(path): longer than \(max)") }
            switch schema["format"] as? String {
            case "uuid" where UUID(uuidString: string) == nil: errors.append("\(path): not a uuid")
            case "date-time" where (try? Date(string, strategy: .iso8601)) == nil: errors.append("\(path): not RFC 3339")
            default: break
            }
        case .object(let object):
            for key in schema["required"] as? [String] ?? [] where object[key] == nil {
                errors.append("\(path).\(key): required but missing")
            }
            if let min = schema["minProperties"] as? Int, object.count < min { errors.append("\(path): fewer than \(min) properties") }
            let properties = schema["properties"] as? [String: Any] ?? [:]
            for (key, child) in object {
                if let propertySchema = properties[key] {
                    errors += check(child, against: propertySchema, at: "\(path).\(key)")
                } else if let additional = schema["additionalProperties"] {
                    if let allowed = additional as? Bool, !allowed {
                        errors.append("\(path).\(key): not documented")
                    } else if !(additional is Bool) {
                        errors += check(child, against: additional, at: "\(path).\(key)")
                    }
                }
            }
        case .array(let array):
            if let items = schema["items"] {
                for (index, element) in array.enumerated() {
                    errors += check(element, against: items, at: "\(path)[\(index)]")
                }
            }
        default:
            break
        }
        return errors
    }

    static func matches(_ value: JSONValue, type: String) -> Bool {
        switch (type, value) {
        case ("null", .null), ("boolean", .bool), ("number", .number), ("string", .string), ("array", .array), ("object", .object):
            return true
        case ("integer", .number(let number)):
            return number.rounded() == number
        default:
            return false
        }
    }
}
