import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import Shared

/// How live counts are paced.
public struct PollEventsSettings: Sendable {
    /// Changes within this window reach a subscriber as one event.
    public var coalesceInterval: Duration
    /// A `: keepalive` comment goes out after this long without an event; the watched polls
    /// are also reloaded this often, whatever was announced.
    public var heartbeatInterval: Duration
    /// Changes of this instance go out to all instances at most this often (one NOTIFY).
    public var announceInterval: Duration

    public init(
        coalesceInterval: Duration = .milliseconds(250), heartbeatInterval: Duration = .seconds(15),
        announceInterval: Duration = .milliseconds(50)
    ) {
        self.coalesceInterval = coalesceInterval
        self.heartbeatInterval = heartbeatInterval
        self.announceInterval = announceInterval
    }
}

/// Run by the application: one dedicated connection per instance LISTENs on
/// `poll_votes` (reconnecting with backoff when it drops), the fan-out loop turns the
/// changed poll ids into fresh counts for this instance's subscribers, and the announcer
/// sends this instance's changes to every instance.
struct PollEventsService: Service {
    /// The LISTEN connection comes from its pool (the pool of the moment: it is replaced after an outage).
    let database: Database
    let repository: any VoteRepository
    let hub: PollEventHub
    let announcer: PollChangeAnnouncer
    let settings: PollEventsSettings
    let logger: Logger

    func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.listen() }
            group.addTask { await self.fanOut() }
            group.addTask { await announcer.run(database: database, interval: settings.announceInterval, logger: logger) }
            group.addTask { await self.refresh() }
            // Until shutdown (graceful or not), then stop the loops; the HTTP server has
            // stopped by now, so the last changes are announced once more, here.
            try? await gracefulShutdown()
            await announcer.flush(database: database, logger: logger)
            group.cancelAll()
        }
        await hub.finishAll()
    }

    /// Every heartbeat interval, the watched polls are reloaded whatever was announced: a
    /// change whose announcement was lost reaches subscribers within that interval.
    func refresh() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: settings.heartbeatInterval)
            await hub.markAllDirty()
        }
    }

    /// LISTEN, forever: after a reconnection the hub reloads every watched poll, since
    /// notifications sent meanwhile are lost.
    func listen() async {
        await database.listen(
            on: VoteMigrations.notificationChannel, logger: logger,
            connected: { await hub.listenerConnected() },
            notification: { payload in
                await hub.markDirty(PollChangeAnnouncer.pollIDs(in: payload))
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
