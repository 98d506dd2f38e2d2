import Foundation
import Logging
import PostgresNIO
import Shared
import Synchronization

/// Tells every instance whose counts changed (`NOTIFY poll_votes`), for their live-count
/// subscribers: committed votes, retractions and removed user data report their polls
/// here, and one notification carries all the polls changed since the last one, at most one
/// per `interval`. (The trigger used to notify once per vote: every commit then took
/// PostgreSQL's notification queue lock. The same INSERT ran at ~2,850/s with it and
/// 6,700–8,600/s without, at ~420 against ~190–250 µs of PostgreSQL CPU each.) Deleted
/// polls are still announced by their trigger. A change whose announcement is lost (the
/// instance stopped within `interval` of the commit, or PostgreSQL refused the NOTIFY)
/// reaches subscribers at the hub's next refresh (`PollEventsService`).
final class PollChangeAnnouncer: Sendable {
    /// Poll ids per notification: 200 × 37 bytes stays under PostgreSQL's 8000-byte payload.
    static let pollsPerNotification = 200

    private let pending = Mutex<Set<UUID>>([])
    /// Wakes the loop (buffer of one: many changes, one wake-up).
    private let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation

    init() {
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// After the commit of a change to these polls' counts.
    func changed(_ pollIDs: some Sequence<UUID>) {
        let added = pending.withLock { pending in
            let before = pending.count
            pending.formUnion(pollIDs)
            return pending.count > before
        }
        if added { wake.yield() }
    }

    /// Sends what is pending at once, then at most once per `interval`, until cancelled.
    func run(database: Database, interval: Duration, logger: Logger) async {
        for await _ in wakeups {
            await flush(database: database, logger: logger)
            try? await Task.sleep(for: interval)
            if Task.isCancelled { return }
        }
    }

    /// Sends the pending polls now (also at shutdown, for the last changes).
    func flush(database: Database, logger: Logger) async {
        let pollIDs = pending.withLock { pending in
            defer { pending.removeAll() }
            return Array(pending)
        }
        guard !pollIDs.isEmpty else { return }
        do {
            for start in stride(from: 0, to: pollIDs.count, by: Self.pollsPerNotification) {
                let payload = Self.payload(pollIDs[start..<min(start + Self.pollsPerNotification, pollIDs.count)])
                try await database.write(logger: logger) { connection in
                    try await connection.query(
                        "SELECT pg_notify(\(VoteMigrations.notificationChannel), \(payload))", logger: logger
                    ).consume()
                }
            }
        } catch {
            // The hub's periodic refresh covers what this leaves unannounced.
            logger.warning("could not announce changed polls", metadata: [
                "polls": "\(pollIDs.count)", "error": "\(String(reflecting: error))",
            ])
        }
    }

    /// Poll ids, comma-separated (a deleted poll's trigger sends one id: the same format).
    static func payload(_ pollIDs: some Sequence<UUID>) -> String {
        pollIDs.map(\.apiString).joined(separator: ",")
    }

    /// The poll ids of a notification; ids that do not parse are skipped.
    static func pollIDs(in payload: String) -> [UUID] {
        payload.split(separator: ",").compactMap { UUID(apiString: String($0)) }
    }
}
