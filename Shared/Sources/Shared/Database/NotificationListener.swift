import Logging
import PostgresNIO
import Synchronization

extension Database {
    /// `LISTEN`s on `channel` until the task is cancelled, on one dedicated connection from
    /// the pool of the moment, reconnecting with backoff (0.1 s doubling, at most 1 s) when
    /// the connection drops. Notifications sent while it is down are lost: `connected` runs
    /// after every (re)connection, once the `LISTEN` is in place, so the caller can reload
    /// what it may have missed; `disconnected` runs when the connection is lost.
    ///
    /// Like every call, it waits at most `connectionWait` for its connection (and counts a
    /// failed wait, so that a pool stuck after an outage is replaced): a wait left in the
    /// queue of a pool that is being replaced would end only when that pool goes, seconds
    /// after the database is back, and the service is not ready until it listens again.
    public func listen(
        on channel: String, logger: Logger,
        connected: @escaping @Sendable () async throws -> Void,
        notification: @escaping @Sendable (String) async -> Void,
        disconnected: @escaping @Sendable () async -> Void
    ) async {
        let minimumBackoff = Duration.milliseconds(100)
        var backoff = minimumBackoff
        let (pool, connectionWait) = (self.pool, self.connectionWait)
        while !Task.isCancelled {
            let client = self.client
            let progress = ListenerProgress()
            do {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        try await client.withConnection { connection in
                            progress.markLeased()
                            try await connection.listen(on: channel) { notifications in
                                try await connected()
                                progress.markListening()
                                logger.debug("listening", metadata: ["channel": "\(channel)"])
                                for try await received in notifications {
                                    await notification(received.payload)
                                }
                            }
                        }
                    }
                    group.addTask {
                        try await Task.sleep(for: connectionWait)
                        guard progress.wasLeased else {
                            pool.callFailedForWantOfConnection()
                            throw DatabaseUnavailableError(reason: "no connection within \(connectionWait)")
                        }
                    }
                    // The wait's end returns quietly once the connection is there; the first
                    // error (the wait's, or the connection's) ends both.
                    defer { group.cancelAll() }
                    while try await group.next() != nil {}
                }
            } catch {
                if Task.isCancelled { break }
                logger.warning("notification listener failed; reconnecting", metadata: [
                    "channel": "\(channel)", "error": "\(String(reflecting: error))",
                ])
            }
            await disconnected()
            guard !Task.isCancelled else { break }
            if progress.wasListening { backoff = minimumBackoff }
            try? await Task.sleep(for: backoff)
            backoff = min(backoff * 2, .seconds(1))
        }
        await disconnected()
    }
}

/// How far one connection attempt of `listen` got: whether it had its connection (the wait's
/// deadline then does nothing), and whether it was listening (the backoff then starts over).
private final class ListenerProgress: Sendable {
    private let steps = Mutex((leased: false, listening: false))
    func markLeased() { steps.withLock { $0.leased = true } }
    func markListening() { steps.withLock { $0.listening = true } }
    var wasLeased: Bool { steps.withLock { $0.leased } }
    var wasListening: Bool { steps.withLock { $0.listening } }
}
