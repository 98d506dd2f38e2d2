import Foundation
import Shared

extension OpenAPIContract {
    /// Checks a JSON document against one of `components/schemas`, for payloads that are
    /// not a response body of their own (e.g. the `data` of a Server-Sent Event).
    public func validate(json: Data, againstSchema name: String) -> [String] {
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: json) else {
            return ["\(name): not JSON"]
        }
        let reference = ["$ref": "#/components/schemas/\(name)"]
        guard !resolve(reference).isEmpty else { return ["\(name): no such schema"] }
        return check(value, against: reference, at: "\(name) $")
    }
}
