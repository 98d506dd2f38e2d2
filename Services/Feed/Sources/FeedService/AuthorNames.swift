import Foundation
import Logging
import Metrics
import NIOHTTP1
import Shared

/// Where the names of users feed has never seen come from. Tests may put another in front.
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

/// Names of authors the `authors` table has no row for: posts written before feed kept
/// names (a row is written with every new post and every rename). Asked of the directory once
/// per author, in one call per page, and remembered; a page whose authors are all known (the
/// normal case) costs no call. When the directory cannot answer, the page still goes out with
/// `null` names, and the lookup is logged and counted (`feed_author_names_degraded_total`).
struct AuthorNames: Sendable {
    let directory: any AuthorDirectory
    let repository: any PostRepository
    let degraded: Counter

    static let degradedMetric = "feed_author_names_degraded_total"

    init(directory: any AuthorDirectory, repository: any PostRepository) {
        _ = ServiceMetrics.bootstrap
        self.directory = directory
        self.repository = repository
        self.degraded = Counter(label: Self.degradedMetric)
    }

    /// `records`, with the names of unknown authors filled in where the directory knows them.
    func complete(_ records: [PostRecord], requestID: String, logger: Logger) async -> [PostRecord] {
        let unknown = Set(records.lazy.filter { !$0.authorKnown }.map(\.authorID))
        guard !unknown.isEmpty else { return records }
        let found: [UUID: String]
        do {
            found = try await directory.names(of: unknown.sorted { $0.apiString < $1.apiString }, requestID: requestID, logger: logger)
        } catch {
            degraded.increment()
            logger.warning("author names unavailable; answering without them", metadata: ["error": "\(error)", "authors": "\(unknown.count)"])
            return records
        }
        do {
            // Users auth does not know are remembered too (name null): not asked again.
            try await repository.backfillAuthorNames(Dictionary(uniqueKeysWithValues: unknown.map { ($0, found[$0]) }), logger: logger)
        } catch {
            logger.warning("could not store looked-up author names", metadata: ["error": "\(error)"])
        }
        return records.map { record in
            guard !record.authorKnown else { return record }
            var record = record
            record.authorName = found[record.authorID]
            return record
        }
    }
}
