import Foundation
import Hummingbird
import Shared

/// `/internal/users`: what other services (account deletion) call.
struct InternalUsersController: Sendable {
    let repository: any VoteRepository

    var endpoints: RouteCollection<ServiceContext> {
        let routes = RouteCollection(context: ServiceContext.self)
        routes.delete("users/:userId", use: deleteUser)
        return routes
    }

    /// Removes the user's votes (their polls' counts go down) and the polls they created.
    /// Idempotent: an unknown user or a repeated call is also `204`.
    @Sendable func deleteUser(request: Request, context: ServiceContext) async throws -> HTTPResponse.Status {
        let userID = try context.parameters.id("userId")
        let (votes, polls) = try await repository.deleteUserData(userID: userID, logger: context.logger)
        context.logger.info(
            "user data deleted",
            metadata: ["userId": "\(userID)", "votes": "\(votes)", "polls": "\(polls)", "caller": "\(context.callingService)"])
        return .noContent
    }
}
