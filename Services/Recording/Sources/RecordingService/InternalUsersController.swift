import Foundation
import Hummingbird
import Shared

/// `/internal/users/{userId}`: account deletion reaches the recordings (service credential only).
struct InternalUsersController: Sendable {
    let purger: TrashPurger

    var endpoints: RouteCollection<ServiceContext> {
        let routes = RouteCollection(context: ServiceContext.self)
        routes.delete("users/:userId", use: deleteUser)
        return routes
    }

    /// Removes every recording of the user, objects and rows. Idempotent: after a partial
    /// failure (`503`) the rows left are marked due, so a repeat (or the purge actor)
    /// finishes the job.
    @Sendable func deleteUser(request: Request, context: ServiceContext) async throws -> HTTPResponse.Status {
        let userID = try context.parameters.id("userId")
        try await purger.purgeOwner(userID)
        context.logger.info("removed a deleted user's recordings", metadata: ["userId": "\(userID)", "caller": "\(context.callingService)"])
        return .noContent
    }
}
