import Foundation
import Hummingbird

extension Parameters {
    /// The UUID in path parameter `name` of a public route (e.g. `{pollId}`). A malformed id
    /// names no resource, so it is answered like an unknown one: `notFound`.
    public func id(_ name: String, orNotFound notFound: @autoclosure () -> APIError) throws -> UUID {
        guard let raw = get(name), let id = UUID(apiString: raw) else { throw notFound() }
        return id
    }

    /// The UUID in path parameter `name` of an internal route (`/internal/users/{userId}`):
    /// a malformed one is the calling service's bug, a `400` naming the parameter.
    public func id(_ name: String) throws -> UUID {
        guard let raw = get(name), let id = UUID(apiString: raw) else {
            throw APIError.validation(field: name, "must be a UUID")
        }
        return id
    }
}
