import Logging
import NIOCore
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// The service's connection pool, replaced by a fresh one when the database is back but the
/// pool has not noticed.
///
/// postgres-nio's pool retries a failing server with a backoff that grows by a quarter per
/// attempt up to a minute: after an outage of a minute or more it can take that long again to
/// try once more, while every request is refused. So while calls fail for want of a
/// connection, a supervisor tries a connection of its own twice a second; the moment one
/// succeeds, a new pool takes over (at once, for every later call) and the old one is shut
/// down. Run it as a service (it runs the pools); `current` is the pool to lease from.
///
/// A pool that is merely busy (every connection held by calls that take long, a lock queue
/// say) also makes calls wait in vain, but replacing it would only open more connections to a
/// database that is working: so a pool is replaced only while no call holds a connection.
public final class DatabasePool: Service, Sendable {
    private struct State {
        var client: PostgresClient
        var running: Task<Void, Never>?
        var failingSince: ContinuousClock.Instant?
        /// Calls holding a connection now (of this pool or a replaced one that still drains).
        var held = 0
        var replacements = 0
        /// Checks that found calls failing but connections held: a busy pool, kept.
        var keptBusy = 0
    }
    private let state: Mutex<State>
    /// nil: a fixed pool (tests), never replaced.
    private let configuration: PostgresClient.Configuration?
    private let logger: Logger

    /// How long a replaced pool keeps running, so that calls that got a connection from it
    /// finish (their own deadlines are shorter) before it is shut down.
    private let drainTime: Duration

    /// A pool for `configuration`, replaced after outages; `drainTime`: the longest a call may
    /// hold a connection (the connection wait plus the query timeout).
    public init(configuration: PostgresClient.Configuration, drainTime: Duration, logger: Logger) {
        self.configuration = configuration
        self.drainTime = drainTime
        self.logger = logger
        self.state = Mutex(State(client: PostgresClient(configuration: configuration, backgroundLogger: logger)))
    }

    /// A fixed pool that someone else runs.
    public init(fixed client: PostgresClient, logger: Logger) {
        self.configuration = nil
        self.drainTime = .zero
        self.logger = logger
        self.state = Mutex(State(client: client))
    }

    public var current: PostgresClient { state.withLock { $0.client } }

    /// How many times the pool was replaced (for tests and logs).
    public var replacements: Int { state.withLock { $0.replacements } }

    /// How many supervisor checks saw calls failing for want of a connection while others held
    /// connections, and so kept the pool (for tests).
    public var keptBusy: Int { state.withLock { $0.keptBusy } }

    /// A call found no connection in time (or gave up waiting): the database may be down.
    func callFailedForWantOfConnection() {
        state.withLock { state in
            if state.failingSince == nil { state.failingSince = .now }
        }
    }

    /// A call got its connection: the pool works. Pair with `connectionReturned()`.
    func connectionTaken() {
        state.withLock { state in
            state.failingSince = nil
            state.held += 1
        }
    }

    /// A call's work is done with its connection.
    func connectionReturned() {
        state.withLock { $0.held -= 1 }
    }

    public func run() async throws {
        guard let configuration else { return }
        let first = state.withLock { state in
            let client = state.client
            // An unstructured task inherits the graceful-shutdown signal: the pool stops with the service.
            state.running = Task { await client.run() }
            return state.running
        }
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do { try await Task.sleep(for: .milliseconds(500)) } catch { return }
                await self.replaceIfStuck(configuration)
            }
        }
        // Shutting down: the current pool finishes its own graceful shutdown, which waits for
        // every leased connection. Calls end within their deadlines, so that takes at most
        // `drainTime`; a connection that neither answers nor dies (a frozen server) must not
        // hold the shutdown for ever, so after that the wait ends (the process is leaving).
        let last = state.withLock { $0.running } ?? first
        let finished = await Self.waitAtMost(drainTime + .seconds(1)) { await last?.value }
        if !finished { logger.warning("database pool did not drain in time; leaving it") }
    }

    private func replaceIfStuck(_ configuration: PostgresClient.Configuration) async {
        let stuck = state.withLock { state -> Bool in
            guard let since = state.failingSince, since.duration(to: .now) > .milliseconds(500) else { return false }
            if state.held > 0 {
                state.keptBusy += 1
                return false
            }
            return true
        }
        guard stuck, await Self.serverAnswers(configuration, logger: logger) else { return }
        let fresh = PostgresClient(configuration: configuration, backgroundLogger: logger)
        let (old, count) = state.withLock { state in
            let old = state.running
            state.client = fresh
            state.running = Task { await fresh.run() }
            state.failingSince = nil
            state.replacements += 1
            return (old, state.replacements)
        }
        // Calls already on the old pool finish within their deadlines; then it goes.
        let drainTime = self.drainTime
        Task {
            try? await Task.sleep(for: drainTime)
            old?.cancel()
        }
        logger.notice("database reachable again; connection pool replaced", metadata: ["replacements": "\(count)"])
    }

    /// One connection of our own, opened and closed: is the server back?
    static func serverAnswers(_ configuration: PostgresClient.Configuration, logger: Logger) async -> Bool {
        guard let host = configuration.host, let port = configuration.port else { return false }
        var connectionConfiguration = PostgresConnection.Configuration(
            host: host, port: port, username: configuration.username, password: configuration.password,
            database: configuration.database, tls: .disable)
        connectionConfiguration.options.connectTimeout = .seconds(1)
        // The connect timeout covers TCP only: a frozen server accepts the connection and never
        // answers the start-up, so the whole attempt has a deadline of its own.
        let answered = Mutex(false)
        let attempt = connectionConfiguration
        let finished = await waitAtMost(.seconds(2)) {
            guard let connection = try? await PostgresConnection.connect(configuration: attempt, id: 0, logger: logger) else {
                return
            }
            answered.withLock { $0 = true }
            try? await connection.close()
        }
        return finished && answered.withLock { $0 }
    }

    /// Runs `work` in a task of its own and waits for it at most `limit`: whether it finished.
    /// The caller is answered at the deadline even when `work` cannot be interrupted (it then
    /// ends on its own, or never).
    static func waitAtMost(_ limit: Duration, _ work: @escaping @Sendable () async -> Void) async -> Bool {
        let (events, continuation) = AsyncStream.makeStream(of: Bool.self)
        let worker = Task {
            await work()
            continuation.yield(true)
        }
        let timer = Task {
            if (try? await Task.sleep(for: limit)) != nil { continuation.yield(false) }
        }
        var iterator = events.makeAsyncIterator()
        let finished = await iterator.next() ?? false
        timer.cancel()
        if !finished { worker.cancel() }
        continuation.finish()
        return finished
    }
}
