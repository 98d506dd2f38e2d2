import Foundation
import Hummingbird
import ObjectStore
import Shared

/// `/internal/users`: what the auth service's outbox calls when an account is deleted.
struct InternalUsersController: Sendable {
    let repository: any PostRepository
    let storage: any ObjectStorage

    var endpoints: RouteCollection<ServiceContext> {
        let routes = RouteCollection(context: ServiceContext.self)
        routes.delete("users/{userId}", use: deleteUser)
        return routes
    }

    /// Removes every post of the user and their images. Idempotent: `204` also when there is nothing left.
    @Sendable func deleteUser(request: Request, context: ServiceContext) async throws -> HTTPResponse.Status {
        let userID = try context.parameters.id("userId")
        let keys = try await repository.deleteAll(authorID: userID, logger: context.logger)
        await PostImageObjects.remove(keys, from: storage, logger: context.logger, reason: "account deleted")
        context.logger.info(
            "deleted the feeds of a deleted account",
            metadata: ["userId": "\(userID)", "images": "\(keys.count)", "caller": "\(context.callingService)"])
        return .noContent
    }
}
