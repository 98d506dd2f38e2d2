import Foundation
import Hummingbird

extension Parameters {
    /// The UUID in path parameter `name` (e.g. `{pollId}`); a malformed one is a `400`
    /// problem naming the parameter, like any other invalid input.
    public func id(_ name: String) throws -> UUID {
        guard let raw = get(name), let id = UUID(apiString: raw) else {
            throw APIError.validation(field: name, "must be a UUID")
        }
        return id
    }
}
