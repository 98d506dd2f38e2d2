import Foundation
import Logging
import ServiceLifecycle
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
        await runPeriodically(every: interval, logger: logger) {
            try await self.purgeDue()
        }
    }
}

/// Removes objects that have no row once they are older than the grace period: what a
/// crash between storing an object and committing its row (or a failed clean-up) leaves.
/// Also clears abandoned partial uploads. An actor, so passes never overlap.
actor OrphanSweeper: Service {
    let repository: any RecordingRepository
    let storage: any ObjectStorage
    let interval: Duration
    let grace: Duration
    let logger: Logger
    static let prefix = "recordings/"
    static let pageSize = 500

    init(repository: any RecordingRepository, storage: any ObjectStorage, interval: Duration, grace: Duration, logger: Logger) {
        self.repository = repository
        self.storage = storage
        self.interval = interval
        self.grace = grace
        self.logger = logger
    }

    /// One pass over the store. Returns how many orphaned objects it removed.
    @discardableResult
    func sweep() async throws -> Int {
        let cutoff = Date().addingTimeInterval(-(Double(grace.components.seconds) + Double(grace.components.attoseconds) / 1e18))
        try await storage.removeAbandonedUploads(olderThan: cutoff)
        var removed = 0
        var after: ObjectKey?
        while true {
            let page = try await storage.list(prefix: Self.prefix, startAfter: after, limit: Self.pageSize)
            guard let last = page.last else { break }
            after = last.key
            // Younger objects may belong to an upload whose row is being committed right now.
            let old = page.filter { $0.lastModified < cutoff }
            let known = try await repository.existingObjectKeys(old.map(\.key.rawValue), logger: logger)
            for object in old where !known.contains(object.key.rawValue) {
                try await storage.delete(object.key)
                removed += 1
            }
        }
        if removed > 0 { logger.notice("removed orphaned objects", metadata: ["count": "\(removed)"]) }
        return removed
    }

    func run() async throws {
        await runPeriodically(every: interval, logger: logger) {
            try await self.sweep()
        }
    }
}

/// Runs `work` every `interval` (first after one interval, once migrations have run) until
/// graceful shutdown; failures are logged and retried on the next turn.
func runPeriodically(every interval: Duration, logger: Logger, _ work: @escaping @Sendable () async throws -> Void) async {
    await cancelWhenGracefulShutdown {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: interval)
            } catch {
                return
            }
            do {
                try await work()
            } catch is CancellationError {
                return
            } catch {
                logger.warning("background task failed; retrying later", metadata: ["error": "\(error)"])
            }
        }
    }
}
