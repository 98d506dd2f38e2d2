import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import Shared

/// How live counts are paced.
public struct PollEventsSettings: Sendable {
    /// Changes within this window reach a subscriber as one event.
    public var coalesceInterval: Duration
    /// A `: keepalive` comment goes out after this long without an event.
    public var heartbeatInterval: Duration

    public init(coalesceInterval: Duration = .milliseconds(250), heartbeatInterval: Duration = .seconds(15)) {
        self.coalesceInterval = coalesceInterval
        self.heartbeatInterval = heartbeatInterval
    }
}

/// Run by the application: one dedicated connection per instance LISTENs on
/// `poll_votes` (reconnecting with backoff when it drops), and the fan-out loop turns
/// the changed poll ids into fresh counts for this instance's subscribers.
struct PollEventsService: Service {
    /// The LISTEN connection comes from its pool (the pool of the moment: it is replaced after an outage).
    let database: Database
    let repository: any VoteRepository
    let hub: PollEventHub
    let settings: PollEventsSettings
    let logger: Logger

    func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.listen() }
            group.addTask { await self.fanOut() }
            // Until shutdown (graceful or not), then stop both loops.
            try? await gracefulShutdown()
            group.cancelAll()
        }
        await hub.finishAll()
    }

    /// LISTEN, forever: after a reconnection the hub reloads every watched poll, since
    /// notifications sent meanwhile are lost.
    func listen() async {
        await database.listen(
            on: VoteMigrations.notificationChannel, logger: logger,
            connected: { await hub.listenerConnected() },
            notification: { payload in
                guard let pollID = UUID(apiString: payload) else { return }
                await hub.pollChanged(pollID)
            },
            disconnected: { await hub.listenerDisconnected() })
    }

    /// One reload per wake-up for all changed polls, then a pause of one coalescing
    /// interval during which further changes only accumulate.
    func fanOut() async {
        for await _ in hub.wakeups {
            let pollIDs = await hub.takeDirty()
            guard !pollIDs.isEmpty else { continue }
            do {
                let counts = try await repository.counts(pollIDs: pollIDs, logger: logger)
                await hub.publish(counts, for: pollIDs)
                try await Task.sleep(for: settings.coalesceInterval)
            } catch {
                if Task.isCancelled { break }
                logger.warning("could not load poll counts; retrying", metadata: ["error": "\(String(reflecting: error))"])
                await hub.markDirty(pollIDs)
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }
}
