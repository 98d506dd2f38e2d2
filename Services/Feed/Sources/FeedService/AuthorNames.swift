import Foundation
import Logging
import Metrics
import NIOHTTP1
import Shared

/// Where the current names of users come from. Tests may put another in front.
protocol AuthorDirectory: Sendable {
    /// The current names of the users among `ids` that exist, in one call. Throws when the
    /// directory cannot answer.
    func names(of ids: [UUID], requestID: String, logger: Logger) async throws -> [UUID: String]
}

/// The auth service's `GET /internal/users?ids=a,b,c`, with this service's credential, the
/// caller's request id and a short deadline (see `ServiceClient`). Auth takes at most 100 ids
/// a call, which is the largest page, so a page is one call.
struct AuthServiceDirectory: AuthorDirectory {
    static let maxIDsPerCall = 100
    let client: ServiceClient

    struct UnexpectedReply: Error, CustomStringConvertible {
        var status: Int
        var description: String { "auth answered HTTP \(status)" }
    }

    struct UserName: Decodable {
        var id: UUID
        var name: String
    }

    func names(of ids: [UUID], requestID: String, logger: Logger) async throws -> [UUID: String] {
        var names: [UUID: String] = [:]
        for start in stride(from: 0, to: ids.count, by: Self.maxIDsPerCall) {
            let list = ids[start..<min(start + Self.maxIDsPerCall, ids.count)].map(\.apiString).joined(separator: ",")
            let reply = try await client.send(.GET, "/internal/users?ids=\(list)", requestID: requestID, logger: logger)
            guard reply.status == .ok else { throw UnexpectedReply(status: Int(reply.status.code)) }
            for user in try JSONDecoder().decode([UserName].self, from: reply.body) {
                names[user.id] = user.name
            }
        }
        return names
    }
}

/// Recently seen author names, so pages do not wait on the auth service every time.
///
/// An entry is fresh for `ttl` (renames show after at most that long); older entries stay,
/// as a fallback while the auth service is unreachable, until the size bound pushes the
/// oldest out. Users the directory did not know are remembered too (as unknown).
actor AuthorNameCache {
    struct Entry {
        /// nil: the directory does not know this user (e.g. a deleted account).
        var name: String?
        var storedAt: ContinuousClock.Instant
    }

    let ttl: Duration
    let capacity: Int
    private let clock = ContinuousClock()
    private var entries: [UUID: Entry] = [:]

    init(ttl: Duration, capacity: Int) {
        precondition(capacity > 0)
        self.ttl = ttl
        self.capacity = capacity
    }

    var count: Int { entries.count }

    /// What the cache can say about `ids`: the names it holds, and every id it answers for
    /// (with or without a name). Only fresh entries unless `includingExpired`.
    func lookup(_ ids: Set<UUID>, includingExpired: Bool = false) -> (names: [UUID: String], answered: Set<UUID>) {
        let now = clock.now
        var names: [UUID: String] = [:]
        var answered = Set<UUID>()
        for id in ids {
            guard let entry = entries[id], includingExpired || entry.storedAt.duration(to: now) < ttl else { continue }
            answered.insert(id)
            if let name = entry.name { names[id] = name }
        }
        return (names, answered)
    }

    /// Remembers the answer to a lookup of `requested`: the names in `found`, and that the others are unknown.
    func store(requested: Set<UUID>, found: [UUID: String]) {
        let now = clock.now
        for id in requested {
            entries[id] = Entry(name: found[id], storedAt: now)
        }
        if entries.count > capacity {
            // Oldest first; a tenth more than needed, so a full cache does not sort on every store.
            let excess = entries.count - capacity + capacity / 10
            let oldest = entries.sorted { $0.value.storedAt < $1.value.storedAt }.prefix(excess)
            for (id, _) in oldest { entries[id] = nil }
        }
    }
}

/// Names for a page of posts: fresh cache entries, and ONE directory call for the rest.
/// When the directory cannot answer, the page still goes out: with names from the cache
/// when present (however old), otherwise without (`null`); each such degraded lookup is
/// logged and counted (`feed_author_names_degraded_total` in `/metrics`).
struct AuthorNames: Sendable {
    let directory: any AuthorDirectory
    let cache: AuthorNameCache
    let degraded: Counter

    static let degradedMetric = "feed_author_names_degraded_total"

    init(directory: any AuthorDirectory, cache: AuthorNameCache) {
        _ = ServiceMetrics.bootstrap
        self.directory = directory
        self.cache = cache
        self.degraded = Counter(label: Self.degradedMetric)
    }

    /// Names of the authors in `ids`; an author without a name here is shown with `null`.
    func names(for ids: Set<UUID>, requestID: String, logger: Logger) async -> [UUID: String] {
        guard !ids.isEmpty else { return [:] }
        let (cached, answered) = await cache.lookup(ids)
        let missing = ids.subtracting(answered)
        guard !missing.isEmpty else { return cached }
        do {
            let found = try await directory.names(
                of: missing.sorted { $0.apiString < $1.apiString }, requestID: requestID, logger: logger)
            await cache.store(requested: missing, found: found)
            return cached.merging(found.filter { missing.contains($0.key) }) { $1 }
        } catch {
            degraded.increment()
            let (stale, _) = await cache.lookup(missing, includingExpired: true)
            logger.warning(
                "author names unavailable; answering with cached names or none",
                metadata: ["error": "\(error)", "authors": "\(missing.count)", "fromCache": "\(stale.count)"])
            return cached.merging(stale) { $1 }
        }
    }
}
