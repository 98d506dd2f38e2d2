import Foundation
import Logging
import Shared

/// User events in vote: a deleted user's votes go (their polls' counts go down) and so do
/// the polls they created. Renames and revocations need nothing here beyond the tokens.
struct VoteUserEventHandler: UserEventHandler {
    let repository: any VoteRepository

    func apply(_ event: UserEvent, logger: Logger) async throws {
        guard event.type == .userDeleted else { return }
        // Idempotent: an unknown user or a repeated event deletes nothing more.
        let (votes, polls) = try await repository.deleteUserData(userID: event.userId, logger: logger)
        logger.info("user data deleted", metadata: ["userId": "\(event.userId)", "votes": "\(votes)", "polls": "\(polls)"])
    }
}
