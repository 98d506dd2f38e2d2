// The floors of `make bench`'s CPU table: what the services' building blocks cost on this
// machine with nothing of ours on top, so that a CPU target below them is seen to be out of
// reach of this stack rather than of this code.
//
//   micro-benchmarks serve-nio PORT          a bare SwiftNIO HTTP/1.1 server: every request
//                                            gets `200 ok` (2 bytes), nothing else
//   micro-benchmarks serve-hummingbird PORT  Hummingbird with one route (GET /health ->
//                                            "ok"), no middleware, no logging
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
        var logger = Logger(label: "floor")
        logger.logLevel = .critical
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)), logger: logger)
        try await app.runService()
    }

    static func postgres(seconds: Double, connections: Int, scripts paths: [String]) async throws {
        let environment = ProcessInfo.processInfo.environment
        let configuration = PostgresConnection.Configuration(
            host: environment["PGHOST"] ?? "127.0.0.1", port: Int(environment["PGPORT"] ?? "") ?? 5432,
            username: environment["PGUSER"] ?? "postgres", password: environment["PGPASSWORD"],
            database: environment["PGDATABASE"], tls: .disable)
        let scripts = try paths.map { path in
            try String(contentsOfFile: path, encoding: .utf8)
                .components(separatedBy: ";\n").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
                .filter { !$0.isEmpty }
        }
        var logger = Logger(label: "floor")
        logger.logLevel = .critical
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

    private static func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
            + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }
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
