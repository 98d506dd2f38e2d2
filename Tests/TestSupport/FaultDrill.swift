import Foundation
import PostgresNIO
import Synchronization
import Testing

/// A PostgreSQL cluster of one test's own (`scripts/fault-postgres.sh`), which the test may
/// stop with a fast shutdown, crash with SIGKILL and start again while a service uses it.
/// The cluster every other test shares must stay up, so fault tests never touch it.
public final class FaultablePostgres: Sendable {
    public let directory: String
    public let port: Int

    /// The superuser's URL of database `name` (trust authentication, loopback only).
    public func url(database name: String = "postgres") -> String { "postgres://postgres@127.0.0.1:\(port)/\(name)" }

    private init(directory: String, port: Int) {
        self.directory = directory
        self.port = port
    }

    /// Creates, starts and returns a cluster, with one empty database `service`.
    public static func start() async throws -> FaultablePostgres {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fault-pg-\(UUID().uuidString.prefix(8))").path
        try await script("init", directory)
        // A random port below the kernel's ephemeral range; another one if it is taken.
        for _ in 0..<20 {
            let port = Int.random(in: 12_000..<15_000)
            do {
                try await script("start", directory, String(port))
                let cluster = FaultablePostgres(directory: directory, port: port)
                try await TestDatabase.withClient(cluster.url()) { client in
                    try await client.query("CREATE DATABASE service").consume()
                }
                return cluster
            } catch is ScriptFailed {
                continue
            }
        }
        try? await script("destroy", directory)
        throw ScriptFailed(arguments: ["start"], output: "no free port")
    }

    /// The environment a service under test gets to use database `service` of this cluster,
    /// with short bounds so a fault shows within seconds.
    public var serviceVariables: [String: String] {
        ["DATABASE_URL": url(database: "service"), "DATABASE_CONNECTION_WAIT_MS": "1000", "DATABASE_QUERY_TIMEOUT_MS": "2000"]
    }

    /// The longest a request may take against `serviceVariables`: the connection wait plus
    /// the query timeout, plus a margin for a test machine running the whole suite at once.
    public static let requestBound = Duration.seconds(1 + 2 + 4)

    /// The values of the first column of `sql` in database `service`.
    public func strings(_ sql: String) async throws -> Set<String> {
        try await TestDatabase.withClient(url(database: "service")) { client in
            var values = Set<String>()
            for try await value in try await client.query(PostgresQuery(unsafeSQL: sql)).decode(String.self) { values.insert(value) }
            return values
        }
    }

    /// Runs `sql` (one statement) in database `service`.
    public func execute(_ sql: String) async throws {
        try await TestDatabase.withClient(url(database: "service")) { client in
            try await client.query(PostgresQuery(unsafeSQL: sql)).consume()
        }
    }

    /// Makes each commit of a row in `table` take a while *after* the statement has
    /// completed: a deferred constraint trigger sleeps at commit time. For a statement sent
    /// outside `BEGIN … COMMIT`, that is after its `CommandComplete` went out and before the
    /// commit, the very window in which a service that answers at `CommandComplete`
    /// acknowledges a write that a crash then loses. The drill's faults land in it often.
    public func slowCommits(on table: String) async throws {
        try await execute("""
            CREATE OR REPLACE FUNCTION fault_slow_commit() RETURNS trigger LANGUAGE plpgsql AS
            $$ BEGIN PERFORM pg_sleep(0.05); RETURN NULL; END $$
            """)
        try await execute("""
            CREATE CONSTRAINT TRIGGER fault_slow_commit AFTER INSERT ON \(table)
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION fault_slow_commit()
            """)
    }

    /// Runs `body` with a fresh cluster, destroyed afterwards whatever happens.
    public static func with<T: Sendable>(_ body: (FaultablePostgres) async throws -> T) async throws -> T {
        let cluster = try await start()
        do {
            let result = try await body(cluster)
            await cluster.destroy()
            return result
        } catch {
            await cluster.destroy()
            throw error
        }
    }

    /// A fast shutdown (what `pg_ctl stop` and an orchestrator's SIGTERM do): sessions are
    /// ended with `57P01`, transactions in flight roll back.
    public func stopFast() async throws { try await Self.script("stop", directory) }
    /// SIGKILL of every server process: a crash; the next start recovers from the WAL.
    public func crash() async throws { try await Self.script("kill", directory) }
    /// SIGSTOP of every server process: connections stay open and nothing answers.
    public func freeze() async throws { try await Self.script("freeze", directory) }
    public func thaw() async throws { try await Self.script("thaw", directory) }
    public func restart() async throws { try await Self.script("start", directory, String(port)) }
    public func destroy() async { try? await Self.script("destroy", directory) }

    public struct ScriptFailed: Error, CustomStringConvertible {
        var arguments: [String]
        var output: String
        public var description: String { "fault-postgres.sh \(arguments.joined(separator: " ")) failed: \(output)" }
    }

    static let scriptPath = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/fault-postgres.sh").path

    static func script(_ arguments: String...) async throws {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("fault-pg-\(UUID().uuidString).out").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        let process = try ChildProcess(["/bin/bash", scriptPath] + arguments, outputPath: output)
        if await process.exitCode() != 0 {
            throw ScriptFailed(arguments: arguments, output: (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
        }
    }
}

/// What one write of a drill came to.
public enum DrillWrite: Sendable {
    /// A 2xx: the service says the write is committed; `key` finds it in the database.
    case acknowledged(key: String)
    /// Anything else (the drill expects `503` while the database is away).
    case refused(status: Int)
}

/// A bounded storm of writes against a service while its database is stopped with a fast
/// shutdown and started again, then crashed with SIGKILL and started again. Afterwards:
/// every write the service acknowledged is in the database, no request took longer than
/// `bound`, refusals were `503` only, and the service answers normally again without a
/// restart.
public struct FaultDrill: Sendable {
    public var writers = 6
    /// Writes each writer makes at most (the storm is bounded in count as well as in time).
    public var maxWritesPerWriter = 2000
    /// Pause between one writer's writes: a steady load rather than a spin.
    public var pace: Duration = .milliseconds(10)
    /// Longest a single request may take: the service's connection wait plus its query
    /// timeout plus a margin for a loaded test machine.
    public var bound: Duration

    public init(bound: Duration) {
        self.bound = bound
    }

    public struct Report: Sendable {
        public var acknowledged: [String]
        public var refusals: [Int]
        public var slowest: Duration

        /// The drill's promises: nothing acknowledged is missing from `stored`, every refusal
        /// was a `503`, and no request outlasted `bound`.
        public func check(stored: Set<String>, bound: Duration, sourceLocation: SourceLocation = #_sourceLocation) {
            let lost = Set(acknowledged).subtracting(stored)
            #expect(lost.isEmpty, "\(lost.count) of \(acknowledged.count) acknowledged writes are not in the database", sourceLocation: sourceLocation)
            #expect(!refusals.isEmpty, "the faults were never seen", sourceLocation: sourceLocation)
            #expect(refusals.allSatisfy { $0 == 503 }, "refusals other than 503: \(Set(refusals))", sourceLocation: sourceLocation)
            #expect(slowest <= bound, "a request took \(slowest)", sourceLocation: sourceLocation)
        }
    }

    private final class Tally: Sendable {
        private struct State {
            var acknowledged: [String] = []
            var refusals: [Int] = []
            var slowest: Duration = .zero
            var stop = false
            var issued = 0
        }
        private let state = Mutex(State())

        func record(_ outcome: DrillWrite, took: Duration) {
            state.withLock { state in
                switch outcome {
                case .acknowledged(let key): state.acknowledged.append(key)
                case .refused(let status): state.refusals.append(status)
                }
                state.slowest = max(state.slowest, took)
            }
        }
        var counts: (acknowledged: Int, refused: Int) { state.withLock { ($0.acknowledged.count, $0.refusals.count) } }
        func nextIndex() -> Int {
            state.withLock { state in
                state.issued += 1
                return state.issued
            }
        }
        var shouldStop: Bool { state.withLock { $0.stop } }
        func stop() { state.withLock { $0.stop = true } }
        var report: Report { state.withLock { Report(acknowledged: $0.acknowledged, refusals: $0.refusals, slowest: $0.slowest) } }
    }

    /// Runs the storm against `database`; `write(n)` makes the n-th write through the service.
    /// Returns once the service has taken a write after the last restart.
    public func run(
        on database: FaultablePostgres,
        write: @escaping @Sendable (Int) async throws -> DrillWrite
    ) async throws -> Report {
        let tally = Tally()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<writers {
                group.addTask {
                    for _ in 0..<maxWritesPerWriter where !tally.shouldStop {
                        let index = tally.nextIndex()
                        let start = ContinuousClock.now
                        let outcome = try await write(index)
                        tally.record(outcome, took: ContinuousClock.now - start)
                        try await Task.sleep(for: pace)
                    }
                }
            }
            group.addTask {
                defer { tally.stop() }
                for fault in [Fault.fastShutdown, .crash] {
                    // Writes flowing, then the fault, then refusals seen, then the database back
                    // and writes flowing again.
                    let before = tally.counts.acknowledged
                    try await eventually(timeout: .seconds(30)) { tally.counts.acknowledged >= before + 20 }
                    switch fault {
                    case .fastShutdown: try await database.stopFast()
                    case .crash: try await database.crash()
                    }
                    let refusedBefore = tally.counts.refused
                    try await eventually(timeout: .seconds(30)) { tally.counts.refused >= refusedBefore + 3 }
                    try await database.restart()
                }
                let after = tally.counts.acknowledged
                // Recovery without a restart of the service, within seconds.
                try await eventually(timeout: .seconds(10)) { tally.counts.acknowledged >= after + 10 }
            }
            try await group.waitForAll()
        }
        return tally.report
    }

    private enum Fault { case fastShutdown, crash }
}
