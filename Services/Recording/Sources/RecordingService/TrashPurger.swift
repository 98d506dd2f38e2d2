import Foundation
import Logging
import ServiceLifecycle
import ObjectStore
import Shared

/// Deletes recordings whose trash retention has passed: the object first, then the row, so
/// a failure in between leaves a row that is still due and is retried (deleting an object
/// twice is harmless). An actor, so a scheduled pass and an immediate purge (retention 0,
/// account deletion) never work on the same rows at once in this process; across
/// instances every step is idempotent.
actor TrashPurger: Service {
    let repository: any RecordingRepository
    let storage: any ObjectStorage
    let interval: Duration
    let logger: Logger
    static let batchSize = 100

    init(repository: any RecordingRepository, storage: any ObjectStorage, interval: Duration, logger: Logger) {
        self.repository = repository
        self.storage = storage
        self.interval = interval
        self.logger = logger
    }

    /// Every due row, in batches. Returns how many recordings were purged.
    @discardableResult
    func purgeDue() async throws -> Int {
        var total = 0
        while true {
            let due = try await repository.purgeCandidates(limit: Self.batchSize, logger: logger)
            let purged = try await purgeOrThrow(due)
            total += purged
            if due.count < Self.batchSize || purged == 0 { break }
        }
        if total > 0 { logger.info("purged trashed recordings", metadata: ["count": "\(total)"]) }
        return total
    }

    /// Every due row of one owner (account deletion); throws if any could not be removed,
    /// so the caller can answer `503` and be asked again.
    func purgeOwner(_ ownerID: UUID) async throws {
        try await repository.schedulePurge(ownerID: ownerID, logger: logger)
        while true {
            let due = try await repository.purgeCandidates(ownerID: ownerID, limit: Self.batchSize, logger: logger)
            if due.isEmpty { return }
            // Nothing this pass could remove (another instance is on it): do not spin.
            if try await purgeOrThrow(due) == 0 { return }
        }
    }

    /// Best effort (the scheduled pass retries what fails).
    func purge(_ candidates: [PurgeCandidate], logger: Logger) async {
        do {
            _ = try await purgeOrThrow(candidates)
        } catch {
            logger.warning("purge failed; will retry", metadata: ["error": "\(error)"])
        }
    }

    private func purgeOrThrow(_ candidates: [PurgeCandidate]) async throws -> Int {
        var purged = 0
        for candidate in candidates {
            if let key = try? ObjectKey(candidate.objectKey) {
                try await storage.delete(key)
            }
            if try await repository.deletePurged(id: candidate.id, logger: logger) { purged += 1 }
        }
        return purged
    }

    func run() async throws {
        await PeriodicTask.run(every: interval, logger: logger) {
            try await self.purgeDue()
        }
    }
}
