import Synchronization

/// The deadlines of database calls (`Database`'s `connectionWait`, then `queryTimeout`),
/// watched for the whole process by one task that looks every `resolution`, instead of a
/// sleeping timer task per call: a call costs two dictionary updates under a lock rather
/// than a task and a timer (those were ~4 % of a poll read's CPU). A deadline fires up to
/// one `resolution` late, nothing next to deadlines of a second or more. The watching task
/// stops while no deadline is pending and starts again with the next one.
final class DatabaseDeadlines: Sendable {
    static let shared = DatabaseDeadlines(resolution: .milliseconds(50))

    struct Token: Hashable, Sendable {
        fileprivate let id: UInt64
    }

    private struct Entry {
        var deadline: ContinuousClock.Instant
        var expire: @Sendable () -> Void
    }

    private struct State {
        var lastID: UInt64 = 0
        var entries: [UInt64: Entry] = [:]
        var watching = false
    }

    private let state = Mutex(State())
    let resolution: Duration

    init(resolution: Duration) {
        self.resolution = resolution
    }

    /// Calls `expire` once `delay` has passed, unless `cancel` comes first.
    func schedule(in delay: Duration, _ expire: @escaping @Sendable () -> Void) -> Token {
        let deadline = ContinuousClock.now + delay
        let (id, startWatching) = state.withLock { state in
            state.lastID &+= 1
            state.entries[state.lastID] = Entry(deadline: deadline, expire: expire)
            defer { state.watching = true }
            return (state.lastID, !state.watching)
        }
        if startWatching { Task.detached { await self.watch() } }
        return Token(id: id)
    }

    func cancel(_ token: Token) {
        _ = state.withLock { $0.entries.removeValue(forKey: token.id) }
    }

    /// How many deadlines are pending, and whether the watching task runs (tests).
    var pendingCount: Int { state.withLock { $0.entries.count } }
    var isWatching: Bool { state.withLock { $0.watching } }

    private func watch() async {
        while true {
            try? await Task.sleep(for: resolution)
            let now = ContinuousClock.now
            let expired = state.withLock { state -> [Entry]? in
                guard !state.entries.isEmpty else {
                    state.watching = false
                    return nil
                }
                let due = state.entries.filter { $0.value.deadline <= now }
                for id in due.keys { state.entries.removeValue(forKey: id) }
                return Array(due.values)
            }
            guard let expired else { return }
            for entry in expired { entry.expire() }
        }
    }
}
