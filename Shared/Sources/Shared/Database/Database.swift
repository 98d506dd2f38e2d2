import Logging
import PostgresNIO
import Synchronization
import _ConnectionPoolModule

/// A service's PostgreSQL, with the promises every repository relies on:
///
/// - **A write is acknowledged only once committed.** PostgreSQL commits a statement sent
///   outside `BEGIN … COMMIT` (an implicit transaction) when it processes the `Sync` that
///   follows it, *after* the statement's rows and `CommandComplete` have gone out, and
///   postgres-nio ends a query at `CommandComplete`. A connection cut in between rolls the
///   statement back although the caller saw it succeed. `write` therefore proves the commit
///   with a second round trip on the same connection (the server answers it only after the
///   earlier `Sync`), and `transaction` is confirmed by its `COMMIT`, which PostgreSQL answers
///   after committing. Reads need neither.
/// - **No call waits without bound.** Waiting for a pooled connection is limited to
///   `connectionWait`, and the call once connected to `queryTimeout` (then
///   `DatabaseUnavailableError`, answered `503`); the server also ends each statement at
///   `queryTimeout` (`statement_timeout`, set for every connection in `CommonConfiguration`).
///   So a dead, frozen or overloaded database cannot hold a request, or the graceful
///   shutdown that waits for it, for ever.
///
/// Every repository goes through these three calls; none uses the client directly.
public struct Database: Sendable {
    /// The connection pool (run it as a service); replaced after an outage, see `DatabasePool`.
    public let pool: DatabasePool
    /// The pool to lease from now.
    public var client: PostgresClient { pool.current }
    /// Longest wait for a pooled connection (`DATABASE_CONNECTION_WAIT_MS`).
    public let connectionWait: Duration
    /// Longest one call may take once it has its connection (`DATABASE_QUERY_TIMEOUT_MS`,
    /// also each statement's `statement_timeout` on the server).
    public let queryTimeout: Duration

    public init(pool: DatabasePool, connectionWait: Duration, queryTimeout: Duration) {
        self.pool = pool
        self.connectionWait = connectionWait
        self.queryTimeout = queryTimeout
    }

    /// Around a client that someone else runs (tests).
    public init(client: PostgresClient, connectionWait: Duration, queryTimeout: Duration) {
        self.init(pool: DatabasePool(fixed: client, logger: Logger(label: "database")), connectionWait: connectionWait, queryTimeout: queryTimeout)
    }

    /// Statements whose effects need no commit: `SELECT`s.
    public func read<Result: Sendable>(
        logger: Logger, _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        try await withConnection(writes: false, body)
    }

    /// One statement that changes data, run as its own (implicit) transaction; returns only
    /// once the change is known to be committed.
    public func write<Result: Sendable>(
        logger: Logger, _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        try await withConnection(writes: true) { connection in
            let result = try await body(connection)
            do {
                for try await _ in try await connection.execute(CommitConfirmation(), logger: logger) {}
            } catch {
                // The statement succeeded but its commit cannot be confirmed: it may or may
                // not have taken effect. The client retries (every write is idempotent or
                // answers a retry with a conflict that says it was done).
                throw DatabaseUnavailableError(reason: "commit unconfirmed", mayHaveWritten: true, underlying: error)
            }
            return result
        }
    }

    /// Several statements that commit together (`BEGIN … COMMIT`). An error thrown by `body`
    /// rolls back and is rethrown as it is (not wrapped in `PostgresTransactionError`);
    /// a failed `BEGIN` or `COMMIT` is a `DatabaseUnavailableError`.
    public func transaction<Result: Sendable>(
        logger: Logger, _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        try await withConnection(writes: true) { connection in
            do {
                return try await connection.withTransaction(logger: logger) { connection in try await body(connection) }
            } catch let error as PostgresTransactionError {
                if let closureError = error.closureError { throw closureError }
                throw DatabaseUnavailableError(
                    reason: error.commitError != nil ? "commit failed" : "transaction failed",
                    mayHaveWritten: error.commitError != nil, underlying: error.commitError ?? error.beginError ?? error)
            }
        }
    }

    /// The readiness probe: one round trip, within the same bounds as any call.
    public func ping(logger: Logger) async throws {
        try await read(logger: logger) { connection in try await connection.query("SELECT 1", logger: logger).consume() }
    }

    /// Leases a connection for `body`, waiting at most `connectionWait` for it. (postgres-nio's
    /// pool queues a request until a connection frees up or can be made, for as long as the
    /// database stays away; a cancelled wait leaves the queue at once.)
    /// `writes`: whether `body` changes data. When such a call fails for the database's sake
    /// after it had its connection, its statements may have been applied: the error says so.
    private func withConnection<Result: Sendable>(
        writes: Bool, _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        let call = DatabaseCall<Result>()
        do {
            return try await withDeadlines(call, body)
        } catch var error as DatabaseUnavailableError {
            if writes && call.wasLeased { error.mayHaveWritten = true }
            throw error
        } catch let error as PSQLError where error.meansUnavailable {
            // An error the server sent (`57P01` on a fast shutdown) ended the statement, which
            // then rolled back; a connection that broke may have done so after the commit.
            let inDoubt = writes && call.wasLeased && error.code != .server
            throw DatabaseUnavailableError(reason: "server unavailable", mayHaveWritten: inDoubt, underlying: error)
        } catch let error as ConnectionPoolError {
            // `connectionCreationCircuitBreakerTripped`: the pool gave up reaching the server.
            pool.callFailedForWantOfConnection()
            throw DatabaseUnavailableError(reason: "no connection", underlying: error)
        } catch let error as CancellationError where writes && call.wasLeased {
            // The caller went away (a shutdown past its grace) after the write was sent: it may
            // still commit, so what it refers to (an uploaded object) must stay.
            throw DatabaseUnavailableError(reason: "cancelled", mayHaveWritten: true, underlying: error)
        }
    }

    /// Runs `body` on a leased connection within both deadlines: `connectionWait` for the
    /// lease, then `queryTimeout` for `body`. The work runs in a task of its own and the caller
    /// waits on a continuation, so a deadline answers the caller even when the work cannot be
    /// interrupted (postgres-nio does not cancel a query in flight, and a frozen server never
    /// answers it): abandoned work ends when its connection answers or dies, and returns the
    /// connection to the pool then. The deadlines are entries in `DatabaseDeadlines`, not
    /// timers of their own.
    private func withDeadlines<Result: Sendable>(
        _ call: DatabaseCall<Result>, _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        let (pool, client, connectionWait, queryTimeout) = (self.pool, self.client, self.connectionWait, self.queryTimeout)
        let deadlines = DatabaseDeadlines.shared
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                call.start(continuation)
                // Before the work starts, so that the lease deadline cannot replace the query's.
                call.setDeadline(deadlines.schedule(in: connectionWait) {
                    guard call.expireLease() else { return }
                    pool.callFailedForWantOfConnection()
                    call.cancelWork()  // leaves the pool's queue at once
                    call.finish(.failure(DatabaseUnavailableError(reason: "no connection within \(connectionWait)")))
                })
                call.setWork(Task {
                    do {
                        let result = try await client.withConnection { connection in
                            guard call.leased() else { throw CancellationError() }
                            pool.connectionTaken()
                            defer { pool.connectionReturned() }
                            call.setDeadline(deadlines.schedule(in: queryTimeout) {
                                call.finish(.failure(DatabaseUnavailableError(reason: "no answer within \(queryTimeout)")))
                            })
                            return try await body(connection)
                        }
                        call.finish(.success(result))
                    } catch {
                        call.finish(.failure(error))
                    }
                })
            }
        } onCancel: {
            // A caller that gave up waiting for a connection (a readiness probe's own deadline,
            // shorter than the wait) counts as a failed wait: an idle service with only probes
            // must notice a database that is back as well as a busy one does.
            if call.expireLease() { pool.callFailedForWantOfConnection() }
            call.cancel()
        }
    }
}

/// One database call's race between its work, its deadline and its caller's cancellation:
/// whichever ends it first resumes the caller, exactly once; the end removes the deadline.
final class DatabaseCall<Result: Sendable>: Sendable {
    private enum Lease { case waiting, leased, expired }
    private struct State {
        var continuation: CheckedContinuation<Result, any Error>?
        /// Set once; kept for a `start` that comes after the end (the caller was cancelled first).
        var outcome: Swift.Result<Result, any Error>?
        var lease = Lease.waiting
        /// The deadline now running: the lease's, then the query's.
        var deadline: DatabaseDeadlines.Token?
        var work: Task<Void, Never>?
        var workCancelled = false
    }
    private let state = Mutex(State())

    func start(_ continuation: CheckedContinuation<Result, any Error>) {
        let outcome = state.withLock { state in
            if state.outcome == nil { state.continuation = continuation }
            return state.outcome
        }
        if let outcome { continuation.resume(with: outcome) }
    }

    var wasLeased: Bool { state.withLock { $0.lease == .leased } }

    /// The work got its connection; false when the lease deadline passed first.
    func leased() -> Bool { moveLease(to: .leased) }
    /// The lease deadline passed; false when the work already has its connection.
    func expireLease() -> Bool { moveLease(to: .expired) }

    private func moveLease(to next: Lease) -> Bool {
        state.withLock { state in
            guard state.lease == .waiting else { return false }
            state.lease = next
            return true
        }
    }

    /// Replaces the running deadline; dropped at once when the call has already ended.
    func setDeadline(_ token: DatabaseDeadlines.Token) {
        let stale = state.withLock { state -> DatabaseDeadlines.Token? in
            if state.outcome != nil { return token }
            defer { state.deadline = token }
            return state.deadline
        }
        if let stale { DatabaseDeadlines.shared.cancel(stale) }
    }

    func setWork(_ work: Task<Void, Never>) {
        let cancelNow = state.withLock { state in
            state.work = work
            return state.workCancelled
        }
        if cancelNow { work.cancel() }
    }

    /// Stops the work (a lease that expired, a caller that went away).
    func cancelWork() {
        let work = state.withLock { state in
            state.workCancelled = true
            return state.work
        }
        work?.cancel()
    }

    func finish(_ outcome: Swift.Result<Result, any Error>) {
        let ended = state.withLock { state -> (CheckedContinuation<Result, any Error>?, DatabaseDeadlines.Token?)? in
            guard state.outcome == nil else { return nil }
            state.outcome = outcome
            defer {
                state.continuation = nil
                state.deadline = nil
            }
            return (state.continuation, state.deadline)
        }
        guard let (continuation, deadline) = ended else { return }
        if let deadline { DatabaseDeadlines.shared.cancel(deadline) }
        continuation?.resume(with: outcome)
    }

    /// The caller went away (its request was cancelled): stop waiting, stop the work.
    func cancel() {
        cancelWork()
        finish(.failure(CancellationError()))
    }
}

extension Error {
    /// Whether this failure leaves a write in doubt (see `DatabaseUnavailableError.mayHaveWritten`):
    /// what the write refers to (an uploaded object) must then stay, for the row may exist.
    /// The orphan sweepers remove it later if the row never committed.
    public var leavesWriteInDoubt: Bool { (self as? DatabaseUnavailableError)?.mayHaveWritten == true }
}

extension PSQLError {
    /// The database is down, restarting or unreachable (not a statement it refused): the
    /// connection failed or closed, the server is shutting down or crashed (SQLSTATE class 57,
    /// `57P01` admin shutdown; `57014` also covers the statement timeout), the connection
    /// broke (class 08), or it is out of connections or memory (class 53).
    public var meansUnavailable: Bool {
        switch code {
        case .connectionError, .serverClosedConnection, .clientClosedConnection, .poolClosed, .queryCancelled, .uncleanShutdown:
            return true
        default:
            guard let state = sqlState else { return false }
            return state.hasPrefix("57") || state.hasPrefix("08") || state.hasPrefix("53")
        }
    }
}

/// The database could not serve the call (down, restarting, every connection busy past the
/// wait, or a commit that could not be confirmed): answered `503` with `Retry-After`.
public struct DatabaseUnavailableError: Error, CustomStringConvertible {
    public var reason: String
    /// True when a write had reached the database before it failed (its commit could not be
    /// confirmed): it may or may not have been applied. False: nothing was written.
    public var mayHaveWritten: Bool
    public var underlying: (any Error)?

    public init(reason: String, mayHaveWritten: Bool = false, underlying: (any Error)? = nil) {
        self.reason = reason
        self.mayHaveWritten = mayHaveWritten
        self.underlying = underlying
    }

    public var description: String {
        underlying.map { "database unavailable (\(reason)): \(String(reflecting: $0))" } ?? "database unavailable (\(reason))"
    }
}

/// `SELECT 1` after a write: postgres-nio sends it only once the write's `ReadyForQuery` has
/// arrived, i.e. once the implicit transaction committed, so its answer confirms the commit.
/// Prepared (once per connection): each confirmation is a Bind/Execute/Sync, with nothing for
/// the server to parse or plan.
struct CommitConfirmation: PostgresPreparedStatement {
    static let sql = "SELECT 1"
    static let bindingDataTypes: [PostgresDataType] = []
    typealias Row = Int32

    func makeBindings() throws -> PostgresBindings { PostgresBindings() }
    func decodeRow(_ row: PostgresRow) throws -> Int32 { try row.decode(Int32.self) }
}
