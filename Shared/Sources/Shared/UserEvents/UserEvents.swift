import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// What a service does with user events beyond revoking tokens: its own data (deletion,
/// names). Must be idempotent: an event may come again (auth delivers at least once, and
/// deletions twice on purpose).
public protocol UserEventHandler: Sendable {
    func apply(_ event: UserEvent, logger: Logger) async throws
}

/// One service's side of user events: the `revoked_tokens` table in its own database, the
/// in-memory `RevocationList` every token check consults, and the `NOTIFY` that carries a
/// revocation applied by one instance to all the others at once.
///
/// The table is the truth (an instance that starts, or whose LISTEN connection dropped,
/// loads it); notifications only make the other instances learn without delay.
public struct UserEvents: Sendable {
    public static let channel = "user_events"
    /// Ids per notification (a `NOTIFY` payload stays far below PostgreSQL's 8000 bytes).
    static let idsPerNotification = 100

    /// The table, added to every service's migrations (its own step number in each).
    public static let migration: [String] = [
        """
        CREATE TABLE revoked_tokens (
            kind text NOT NULL CHECK (kind IN ('user', 'session')),
            id uuid NOT NULL,
            expires_at timestamptz NOT NULL,
            PRIMARY KEY (kind, id)
        )
        """,
    ]

    public let revocations: RevocationList
    let database: Database
    /// How long a revocation is kept: a token issued just before it lives at most this long.
    public let retention: Duration
    let listener: ListenerState

    public init(database: Database, tokens: TokenSettings) {
        self.revocations = RevocationList()
        self.database = database
        self.retention = tokens.accessTokenTTL + tokens.leeway
        self.listener = ListenerState()
    }

    /// Access tokens that are checked against this service's revocations.
    public func accessTokens(settings: TokenSettings) throws -> AccessTokens {
        try AccessTokens(settings: settings, revocations: revocations)
    }

    /// What `event` revokes, if anything.
    static func revoked(by event: UserEvent) -> (RevocationList.Kind, [UUID])? {
        switch event.type {
        case .userDeleted: return (.user, [event.userId])
        case .sessionsRevoked: return (.session, event.sessionIds ?? [])
        case .userRenamed: return nil
        }
    }

    /// Records what `event` revokes on `connection`, inside the caller's transaction, and
    /// notifies every instance (PostgreSQL delivers the notification only on commit).
    /// Returns what to add to this instance's list once committed (`noteCommitted`).
    public func revoke(_ event: UserEvent, on connection: PostgresConnection, logger: Logger) async throws -> PendingRevocation? {
        guard let (kind, ids) = Self.revoked(by: event), !ids.isEmpty else { return nil }
        let expiry = Date().addingTimeInterval(retention.timeInterval)
        try await connection.query(
            """
            INSERT INTO revoked_tokens (kind, id, expires_at) SELECT \(kind.rawValue), id, \(expiry) FROM unnest(\(ids)::uuid[]) AS id
            ON CONFLICT (kind, id) DO UPDATE SET expires_at = greatest(revoked_tokens.expires_at, excluded.expires_at)
            """, logger: logger
        ).consume()
        for start in stride(from: 0, to: ids.count, by: Self.idsPerNotification) {
            let chunk = ids[start..<min(start + Self.idsPerNotification, ids.count)]
            let payload = "\(kind.rawValue) \(Int(expiry.timeIntervalSince1970)) " + chunk.map(\.apiString).joined(separator: ",")
            try await connection.query("SELECT pg_notify(\(Self.channel), \(payload))", logger: logger).consume()
        }
        return PendingRevocation(kind: kind, ids: ids, expiry: expiry)
    }

    /// A revocation written in a transaction, to apply here at once after its commit (the
    /// notification reaches this instance too, a little later).
    public struct PendingRevocation: Sendable {
        var kind: RevocationList.Kind
        var ids: [UUID]
        var expiry: Date
    }

    public func noteCommitted(_ pending: PendingRevocation?) {
        guard let pending else { return }
        revocations.add(pending.kind, pending.ids, until: pending.expiry)
    }

    /// Applies an event delivered to this instance: the revocation first (committed and
    /// notified, so no instance accepts the tokens any more), then the service's own work.
    public func apply(_ event: UserEvent, handler: any UserEventHandler, logger: Logger) async throws {
        let pending = try await database.transaction(logger: logger) { connection in
            try await revoke(event, on: connection, logger: logger)
        }
        noteCommitted(pending)
        try await handler.apply(event, logger: logger)
    }

    /// Loads the live revocations before the service takes traffic (after the migrations),
    /// and lets the listener start.
    public func load(logger: Logger) async throws {
        try await reload(logger: logger)
        listener.markTableReady()
    }

    /// Loads every live revocation from the table, and forgets expired ones there and here.
    public func reload(logger: Logger) async throws {
        try await database.write(logger: logger) { connection in
            try await connection.query("DELETE FROM revoked_tokens WHERE expires_at <= now()", logger: logger).consume()
        }
        let loaded = try await database.read(logger: logger) { connection in
            var loaded: [(RevocationList.Kind, UUID, Date)] = []
            let rows = try await connection.query("SELECT kind, id, expires_at FROM revoked_tokens", logger: logger)
            for try await (kind, id, expiry) in rows.decode((String, UUID, Date).self) {
                if let kind = RevocationList.Kind(rawValue: kind) { loaded.append((kind, id, expiry)) }
            }
            return loaded
        }
        revocations.replace(with: loaded)
    }

    /// Applies one notification's payload (`kind expiry id,id,…`).
    func receive(_ payload: String) {
        let parts = payload.split(separator: " ")
        guard parts.count == 3, let kind = RevocationList.Kind(rawValue: String(parts[0])), let seconds = Double(parts[1]) else { return }
        let ids = parts[2].split(separator: ",").compactMap { UUID(apiString: String($0)) }
        revocations.add(kind, ids, until: Date(timeIntervalSince1970: seconds))
    }

    /// `/ready` fails while revocations may be missed (the LISTEN connection is down).
    public var readiness: ReadinessCheck {
        let listener = listener
        return ReadinessCheck("userEvents") {
            guard listener.isListening else { throw NotListeningError() }
        }
    }

    struct NotListeningError: Error, CustomStringConvertible {
        var description: String { "not listening for user events" }
    }

    /// The background work: the LISTEN connection, and pruning.
    public func makeService(logger: Logger) -> some Service { UserEventListener(events: self, logger: logger) }
}

/// Whether the LISTEN connection is up, and whether the table exists yet (the listener
/// starts with the application, before the migrations have run).
final class ListenerState: Sendable {
    private struct State {
        var listening = false
        var tableReady = false
    }
    private let state = Mutex(State())

    var isListening: Bool { state.withLock { $0.listening } }
    func set(_ value: Bool) { state.withLock { $0.listening = value } }
    func markTableReady() { state.withLock { $0.tableReady = true } }

    /// Returns once `markTableReady` has been called, or when the task is cancelled. (A poll:
    /// it ends with the task however it is stopped, and start-up is its only wait.)
    func tableReady() async {
        while !state.withLock({ $0.tableReady }) {
            guard (try? await Task.sleep(for: .milliseconds(50))) != nil else { return }
        }
    }
}

/// One LISTEN connection per instance on `user_events`, reconnected with backoff; after every
/// (re)connection the whole table is loaded again, since notifications sent meanwhile are
/// lost. Expired revocations are pruned every few minutes.
struct UserEventListener: Service {
    let events: UserEvents
    let logger: Logger

    func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask { await listen() }
            group.addTask {
                await events.listener.tableReady()
                await PeriodicTask.run(every: .seconds(300), logger: logger) { try await events.reload(logger: logger) }
            }
            try? await gracefulShutdown()
            group.cancelAll()
        }
        events.listener.set(false)
    }

    func listen() async {
        // The table exists once the migrations have run.
        await events.listener.tableReady()
        await events.database.listen(
            on: UserEvents.channel, logger: logger,
            connected: {
                try await events.reload(logger: logger)
                events.listener.set(true)
            },
            notification: { payload in events.receive(payload) },
            disconnected: { events.listener.set(false) })
    }
}
