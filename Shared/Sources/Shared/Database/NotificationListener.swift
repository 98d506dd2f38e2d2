import Logging
import PostgresNIO

extension Database {
    /// `LISTEN`s on `channel` until the task is cancelled, on one dedicated connection from
    /// the pool of the moment, reconnecting with backoff (0.1 s doubling, at most 1 s) when
    /// the connection drops. Notifications sent while it is down are lost: `connected` runs
    /// after every (re)connection, once the `LISTEN` is in place, so the caller can reload
    /// what it may have missed; `disconnected` runs when the connection is lost.
    /// The cap is short because the service is not ready while it does not listen: after
    /// an outage it should be back within a second or two of the database (the fault tests).
    public func listen(
        on channel: String, logger: Logger,
        connected: @escaping @Sendable () async throws -> Void,
        notification: @escaping @Sendable (String) async -> Void,
        disconnected: @escaping @Sendable () async -> Void
    ) async {
        let minimumBackoff = Duration.milliseconds(100)
        var backoff = minimumBackoff
        while !Task.isCancelled {
            do {
                try await client.withConnection { connection in
                    try await connection.listen(on: channel) { notifications in
                        try await connected()
                        logger.debug("listening", metadata: ["channel": "\(channel)"])
                        backoff = minimumBackoff
                        for try await received in notifications {
                            await notification(received.payload)
                        }
                    }
                }
            } catch {
                if Task.isCancelled { break }
                logger.warning("notification listener failed; reconnecting", metadata: [
                    "channel": "\(channel)", "error": "\(String(reflecting: error))",
                ])
            }
            await disconnected()
            guard !Task.isCancelled else { break }
            try? await Task.sleep(for: backoff)
            backoff = min(backoff * 2, .seconds(1))
        }
        await disconnected()
    }
}
