import Foundation
import Logging
import ServiceLifecycle
import Shared

/// Removes stored objects that no database row refers to once they are older than a grace
/// period: what a crash between storing an object and committing its row, or a clean-up
/// that failed after a row went, leaves behind. Also clears abandoned partial uploads.
///
/// An actor, so passes never overlap in one process; across instances every step is
/// idempotent (deleting an object twice is harmless). The grace period must be longer than
/// the slowest upload, since an object is stored before its row commits.
public actor OrphanObjectSweeper: Service {
    /// Which of the given object keys rows still refer to.
    public typealias KnownKeys = @Sendable (_ keys: [String]) async throws -> Set<String>

    let storage: any ObjectStorage
    let prefix: String
    let knownKeys: KnownKeys
    let interval: Duration
    let grace: Duration
    let logger: Logger
    static let pageSize = 500

    /// - Parameters:
    ///   - prefix: the keys this service owns, e.g. `feeds/`.
    ///   - knownKeys: looks the keys up in the service's database.
    public init(
        storage: any ObjectStorage, prefix: String, interval: Duration, grace: Duration, logger: Logger,
        knownKeys: @escaping KnownKeys
    ) {
        self.storage = storage
        self.prefix = prefix
        self.knownKeys = knownKeys
        self.interval = interval
        self.grace = grace
        self.logger = logger
    }

    /// One pass over the store. Returns how many orphaned objects it removed.
    @discardableResult
    public func sweep() async throws -> Int {
        let cutoff = Date().addingTimeInterval(-grace.timeInterval)
        try await storage.removeAbandonedUploads(olderThan: cutoff)
        var removed = 0
        var after: ObjectKey?
        while true {
            let page = try await storage.list(prefix: prefix, startAfter: after, limit: Self.pageSize)
            guard let last = page.last else { break }
            after = last.key
            // Younger objects may belong to an upload whose row is being committed right now.
            let old = page.filter { $0.lastModified < cutoff }
            guard !old.isEmpty else { continue }
            let known = try await knownKeys(old.map(\.key.rawValue))
            for object in old where !known.contains(object.key.rawValue) {
                try await storage.delete(object.key)
                removed += 1
            }
        }
        if removed > 0 { logger.notice("removed orphaned objects", metadata: ["count": "\(removed)", "prefix": "\(prefix)"]) }
        return removed
    }

    public func run() async throws {
        await PeriodicTask.run(every: interval, logger: logger) {
            try await self.sweep()
        }
    }
}
