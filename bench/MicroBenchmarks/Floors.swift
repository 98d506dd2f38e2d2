// The floors of `make bench`'s CPU table: what the services' building blocks cost on this
// machine with nothing of ours on top, so that a CPU target below them is seen to be out of
// reach of this stack rather than of this code.
//
//   micro-benchmarks serve-nio PORT          a bare SwiftNIO HTTP/1.1 server: every request
//                                            gets `200 ok` (2 bytes), nothing else
//   micro-benchmarks serve-hummingbird PORT  Hummingbird with one route (GET /health ->
//                                            "ok"), no middleware, no logging
//   micro-benchmarks serve-hummingbird-postgres PORT SCRIPT...
//                                            the same route running the next of bench.py's
//                                            pgbench scripts (one or two statements), prepared, through
//                                            postgres-nio's pool (configured as the services
//                                            configure theirs), every cell read, then "ok":
//                                            the two together, with the hops between them
//                                            that a service pays
//   micro-benchmarks postgres SECONDS CONNECTIONS SCRIPT...
//                                            postgres-nio running bench.py's pgbench scripts
//                                            (each a transaction of `;`-ended statements,
//                                            prepared, in turn) on CONNECTIONS connections;
//                                            PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE.
//                                            Prints {"transactions", "seconds", "cpuSeconds"}:
//                                            this process's CPU, i.e. the client side alone.
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import PostgresNIO
import Shared
import Synchronization

enum Floors {
    static func serveNIO(port: Int) async throws {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(FixedResponder())
                }
            }
            .bind(host: "127.0.0.1", port: port).get()
        try await channel.closeFuture.get()
    }

    static func serveHummingbird(port: Int) async throws {
        let router = Router()
        router.get("health") { _, _ in "ok" }
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)), logger: quietLogger)
        try await app.runService()
    }

    static func serveHummingbirdPostgres(port: Int, scripts paths: [String]) async throws {
        let environment = ProcessInfo.processInfo.environment
        var configuration = PostgresClient.Configuration(
            host: environment["PGHOST"] ?? "127.0.0.1", port: Int(environment["PGPORT"] ?? "") ?? 5432,
            username: environment["PGUSER"] ?? "postgres", password: environment["PGPASSWORD"],
            database: environment["PGDATABASE"], tls: .disable)
        // As CommonConfiguration.database sets them for the services.
        configuration.options.maximumConnections = 20
        configuration.options.connectionIdleTimeout = .seconds(10)
        configuration.options.keepAliveBehavior = nil
        let client = PostgresClient(configuration: configuration, backgroundLogger: quietLogger)
        // The scripts differ only in their literals: each statement prepared once per pooled
        // connection with those as parameters (as the services' statements are).
        let calls = try loadScripts(paths).map { script in script.map(ParameterizedStatement.init) }
        let shapes = Set(calls.map { $0.map(\.sql) })
        guard shapes.count == 1, let shape = shapes.first, (1...2).contains(shape.count) else {
            throw FloorError("serve-hummingbird-postgres takes scripts of one or two statements that differ only in their literals")
        }
        scriptStatements.withLock { $0 = shape }
        let next = Atomic<Int>(0)
        let router = Router()
        router.get("health") { _, _ in
            let call = calls[next.add(1, ordering: .relaxed).oldValue % calls.count]
            var sink = 0
            for (index, statement) in call.enumerated() {
                let rows = index == 0
                    ? try await client.execute(ScriptStatement<FirstStatement>(values: statement.values), logger: quietLogger)
                    : try await client.execute(ScriptStatement<SecondStatement>(values: statement.values), logger: quietLogger)
                for try await row in rows {
                    for cell in row { sink &+= cell.bytes?.readableBytes ?? 0 }
                }
            }
            return sink == -1 ? "" : "ok"
        }
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)),
            services: [client], logger: quietLogger)
        try await app.runService()
    }

    static func postgres(seconds: Double, connections: Int, scripts paths: [String]) async throws {
        let environment = ProcessInfo.processInfo.environment
        let configuration = PostgresConnection.Configuration(
            host: environment["PGHOST"] ?? "127.0.0.1", port: Int(environment["PGPORT"] ?? "") ?? 5432,
            username: environment["PGUSER"] ?? "postgres", password: environment["PGPASSWORD"],
            database: environment["PGDATABASE"], tls: .disable)
        let scripts = try loadScripts(paths)
        let logger = quietLogger
        // One connection per task, every statement prepared on it once (as pgbench -M prepared
        // and the services' prepared statements): each transaction is then Bind/Execute/Sync.
        var sessions: [[[PreparedQuery]]] = []
        var opened: [PostgresConnection] = []
        for id in 0..<connections {
            let connection = try await PostgresConnection.connect(configuration: configuration, id: id, logger: logger)
            opened.append(connection)
            var prepared: [[PreparedQuery]] = []
            for script in scripts {
                var statements: [PreparedQuery] = []
                for statement in script { statements.append(try await connection.prepare(query: statement).get()) }
                prepared.append(statements)
            }
            sessions.append(prepared)
        }
        let prepared = sessions
        let cpuBefore = processCPUSeconds()
        let start = ContinuousClock.now
        let deadline = start + .seconds(seconds)
        let transactions = try await withThrowingTaskGroup(of: Int.self) { group in
            for (index, session) in prepared.enumerated() {
                group.addTask {
                    var count = 0
                    var next = index
                    var sink = 0
                    while ContinuousClock.now < deadline {
                        for statement in session[next % session.count] {
                            // Every cell of every row read, as a service's decoding would.
                            for row in try await statement.execute().get() {
                                for cell in row { sink &+= cell.bytes?.readableBytes ?? 0 }
                            }
                        }
                        count += 1
                        next += prepared.count
                    }
                    return count + (sink == -1 ? 1 : 0)
                }
            }
            return try await group.reduce(0, +)
        }
        let elapsed = ContinuousClock.now - start
        let cpu = processCPUSeconds() - cpuBefore
        for connection in opened { try? await connection.close() }
        print("{\"transactions\": \(transactions), \"seconds\": \(elapsed.timeInterval), \"cpuSeconds\": \(cpu)}")
    }

    private static let quietLogger: Logger = {
        var logger = Logger(label: "floor")
        logger.logLevel = .critical
        return logger
    }()

    /// bench.py's pgbench scripts: each a transaction of `;`-ended statements.
    private static func loadScripts(_ paths: [String]) throws -> [[String]] {
        try paths.map { path in
            try String(contentsOfFile: path, encoding: .utf8)
                .components(separatedBy: ";\n").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
                .filter { !$0.isEmpty }
        }
    }

    private static func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
            + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }
}

/// A pgbench script's statement with its quoted literals taken out as parameters, sent as
/// text: the server infers each parameter's type from its place and parses the text as it
/// would have parsed the literal.
private struct ParameterizedStatement: Sendable {
    var sql = ""
    var values: [String] = []

    init(_ statement: String) {
        var rest = Substring(statement)
        while let open = rest.firstIndex(of: "'") {
            sql += rest[..<open]
            var literal = ""
            var index = rest.index(after: open)
            while index < rest.endIndex {
                if rest[index] == "'" {
                    let after = rest.index(after: index)
                    if after < rest.endIndex, rest[after] == "'" { literal.append("'"); index = rest.index(after: after); continue }
                    break
                }
                literal.append(rest[index])
                index = rest.index(after: index)
            }
            values.append(literal)
            sql += "$\(values.count)"
            rest = index < rest.endIndex ? rest[rest.index(after: index)...] : ""
        }
        sql += rest
    }
}

/// The scripts' statements in order, set once before the first request.
private let scriptStatements = Mutex<[String]>([])

protocol StatementPosition { static var index: Int { get } }
enum FirstStatement: StatementPosition { static let index = 0 }
enum SecondStatement: StatementPosition { static let index = 1 }

/// A script's statement at `Position`: a type of its own, since postgres-nio names (and
/// prepares) a statement by its type. Not private: a private type's name has an
/// "(unknown context at $…)" part, and PostgreSQL cuts names at 63 bytes, where these two
/// would become one.
struct ScriptStatement<Position: StatementPosition>: PostgresPreparedStatement {
    static var sql: String { scriptStatements.withLock { $0[Position.index] } }
    typealias Row = PostgresRow

    var values: [String]

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: values.count)
        for value in values { bindings.append(TextParameter(text: value)) }
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> PostgresRow { row }
}

/// A parameter sent in text format, of the type the server inferred for it.
struct TextParameter: PostgresNonThrowingEncodable {
    static var psqlType: PostgresDataType { .unknown }
    static var psqlFormat: PostgresFormat { .text }
    var text: String

    func encode<JSONEncoder: PostgresJSONEncoder>(into byteBuffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) {
        byteBuffer.writeString(text)
    }
}

private struct FloorError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Answers every request with `200 ok` once its end has arrived.
private final class FixedResponder: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let body = ByteBuffer(string: "ok")
    private let head = HTTPResponseHead(
        version: .http1_1, status: .ok, headers: ["content-length": "2", "content-type": "text/plain"])

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .end = unwrapInboundIn(data) else { return }
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}
