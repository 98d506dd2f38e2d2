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
    /// Each attempt runs in a task of its own that the loop never waits for past that
    /// deadline or its own cancellation: neither a queued lease nor a `LISTEN` sent to a
    /// server that went away is sure to end when cancelled, and the listener must not hang
    /// on one (nor hold up the service's shutdown).
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
            let attempt = ListenerAttempt()
            let (ends, end) = AsyncStream.makeStream(of: (any Error)?.self)
            let work = Task {
                do {
                    try await client.withConnection { connection in
                        guard attempt.lease() else { throw CancellationError() }  // given up on
                        try await connection.listen(on: channel) { notifications in
                            try await connected()
                            attempt.markListening()
                            logger.debug("listening", metadata: ["channel": "\(channel)"])
                            for try await received in notifications {
                                await notification(received.payload)
                            }
                        }
                    }
                    end.yield(nil)
                } catch {
                    end.yield(error)
                }
            }
            let deadline = DatabaseDeadlines.shared.schedule(in: connectionWait) {
                guard attempt.giveUpUnlessLeased() else { return }
                pool.callFailedForWantOfConnection()
                end.yield(DatabaseUnavailableError(reason: "no connection within \(connectionWait)"))
            }
            var iterator = ends.makeAsyncIterator()
            // nil: this task was cancelled (an `AsyncStream` ends its wait then).
            let outcome = await iterator.next()
            DatabaseDeadlines.shared.cancel(deadline)
            _ = attempt.giveUpUnlessLeased()  // a connection that comes later is not used
            work.cancel()
            end.finish()
            if case .some(.some(let error)) = outcome, !Task.isCancelled {
                logger.warning("notification listener failed; reconnecting", metadata: [
                    "channel": "\(channel)", "error": "\(String(reflecting: error))",
                ])
            }
            await disconnected()
            guard !Task.isCancelled else { break }
            if attempt.wasListening { backoff = minimumBackoff }
            try? await Task.sleep(for: backoff)
            backoff = min(backoff * 2, .seconds(1))
        }
        await disconnected()
    }
}

/// One connection attempt of `listen`: whether it got its connection before the loop gave up
/// on it (exactly one of the two happens), and whether it was listening (the backoff then
/// starts over).
private final class ListenerAttempt: Sendable {
    private enum Lease { case waiting, leased, givenUp }
    private let state = Mutex((lease: Lease.waiting, listening: false))

    /// The connection came: false when the loop had given up on this attempt already.
    func lease() -> Bool {
        state.withLock { state in
            guard state.lease == .waiting else { return false }
            state.lease = .leased
            return true
        }
    }

    /// The wait's deadline: true when it ends the attempt (no connection came).
    func giveUpUnlessLeased() -> Bool {
        state.withLock { state in
            guard state.lease == .waiting else { return false }
            state.lease = .givenUp
            return true
        }
    }

    func markListening() { state.withLock { $0.listening = true } }
    var wasListening: Bool { state.withLock { $0.listening } }
}
