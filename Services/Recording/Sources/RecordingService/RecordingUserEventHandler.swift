import Foundation
import Logging
import Shared

/// User events in recording: a deleted user's recordings go, objects and rows.
struct RecordingUserEventHandler: UserEventHandler {
    let purger: TrashPurger
    let uploadLimiter: UserRateLimiter

    /// Idempotent: after a partial failure the rows left are marked due, so a redelivery (or
    /// the purge actor) finishes the job.
    func apply(_ event: UserEvent, logger: Logger) async throws {
        guard event.type == .userDeleted else { return }
        try await purger.purgeOwner(event.userId)
        try await uploadLimiter.forget(userID: event.userId, logger: logger)
        logger.info("removed a deleted user's recordings", metadata: ["userId": "\(event.userId)"])
    }
}
