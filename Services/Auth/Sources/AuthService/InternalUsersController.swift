import Foundation
import Hummingbird
import Shared

/// `/internal/users`: names for feed (authors it has never seen), one call per page; no other
/// service may read them.
struct InternalUsersController: Sendable {
    static let maxIDs = 100
    let repository: any AuthRepository

    var endpoints: RouteCollection<ServiceContext> {
        let routes = RouteCollection(context: ServiceContext.self)
        routes.get("users", use: names)
        return routes
    }

    /// `?ids=a,b,c` (or `ids` repeated): the users among them that exist, as `[{id, name}]`.
    @Sendable func names(request: Request, context: ServiceContext) async throws -> Response {
        try context.requireCaller("feed")
        let raw = request.uri.queryParameters.getAll("ids").flatMap { $0.split(separator: ",") }
        guard !raw.isEmpty else { throw APIError.validation(field: "ids", "is required (comma-separated user ids)") }
        guard raw.count <= Self.maxIDs else { throw APIError.validation(field: "ids", "at most \(Self.maxIDs) ids per call") }
        var ids: [UUID] = []
        for value in raw {
            guard let id = UUID(apiString: String(value).trimmingCharacters(in: .whitespaces)) else {
                throw APIError.validation(field: "ids", "'\(value.prefix(40))' is not a user id")
            }
            ids.append(id)
        }
        return try Response.json(try await repository.names(ids: Array(Set(ids)), logger: context.logger))
    }
}
