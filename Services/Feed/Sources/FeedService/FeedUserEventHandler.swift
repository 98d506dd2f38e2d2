import Foundation
import Logging
import ObjectStore
import Shared

/// User events in feed: a deleted user's posts and images go (and their name, for good); a
/// rename replaces the name unless a newer one is already here.
struct FeedUserEventHandler: UserEventHandler {
    let repository: any PostRepository
    let storage: any ObjectStorage
    let postLimiter: UserRateLimiter

    func apply(_ event: UserEvent, logger: Logger) async throws {
        switch event.type {
        case .userDeleted:
            // Idempotent: a redelivery finds nothing, or a post written in the window before
            // the deletion reached this service, and removes it.
            let keys = try await repository.deleteAll(authorID: event.userId, logger: logger)
            await PostImageObjects.remove(keys, from: storage, logger: logger, reason: "account deleted")
            try await postLimiter.forget(userID: event.userId, logger: logger)
            logger.info("deleted the posts of a deleted account", metadata: ["userId": "\(event.userId)", "images": "\(keys.count)"])
        case .userRenamed:
            guard let name = event.name, let version = event.version else {
                throw APIError.validation(field: "name", "a user.renamed event carries name and version")
            }
            try await repository.setAuthorName(name, version: version, authorID: event.userId, logger: logger)
        case .sessionsRevoked:
            break
        }
    }
}
