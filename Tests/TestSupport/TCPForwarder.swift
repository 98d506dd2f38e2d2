import NIOCore
import NIOPosix
import Synchronization

/// A TCP port that forwards every connection to a server, and that a test can stop (every
/// forwarded connection cut, and each new one closed as soon as it is accepted: to a client,
/// the server is gone) and start again. For "the server stopped" faults of a dependency the
/// whole suite shares (the test SeaweedFS), which a test cannot stop itself.
///
/// The port stays bound while stopped: binding it again later failed now and then on a busy
/// machine ("address already in use"), and a client sees a connection closed at once the way
/// it sees a refused one, as a server that is not there.
public final class TCPForwarder: Sendable {
    public let port: Int
    private let target: (host: String, port: Int)
    private struct State {
        var forwarding = true
        var lastID = 0
        /// The forwarded connections now open, to cut on `stop`.
        var connections: [Int: Task<Void, Never>] = [:]
        var server: Task<Void, Never>?
    }
    private let state = Mutex(State())

    /// Listens on a free port, forwarding to `host:port`.
    public init(to host: String, port: Int) async throws {
        self.target = (host, port)
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        self.port = server.channel.localAddress?.port ?? 0
        let task = Task { [self] in await accept(server) }
        state.withLock { $0.server = task }
    }

    /// Cuts every forwarded connection; connections accepted from now on are closed at once.
    public func stop() async {
        let open = state.withLock { state in
            state.forwarding = false
            defer { state.connections = [:] }
            return Array(state.connections.values)
        }
        for connection in open { connection.cancel() }
        for connection in open { await connection.value }
    }

    /// Forwards new connections again.
    public func start() {
        state.withLock { $0.forwarding = true }
    }

    /// Stops for good and closes the port.
    public func close() async {
        await stop()
        let server = state.withLock { $0.server }
        server?.cancel()
        await server?.value
    }

    private func accept(_ server: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>) async {
        let target = self.target
        try? await server.executeThenClose { connections in
            for try await connection in connections {
                state.withLock { state in
                    guard state.forwarding else {
                        // (An NIOAsyncChannel must be closed through executeThenClose.)
                        Task { try? await connection.executeThenClose { _, _ in } }
                        return
                    }
                    state.lastID += 1
                    let id = state.lastID
                    state.connections[id] = Task { [self] in
                        try? await Self.forward(connection, to: target)
                        _ = self.state.withLock { $0.connections.removeValue(forKey: id) }
                    }
                }
            }
        }
    }

    /// Copies bytes both ways until either side closes (or the forwarder stops).
    private static func forward(_ client: NIOAsyncChannel<ByteBuffer, ByteBuffer>, to target: (host: String, port: Int)) async throws {
        do {
            let server = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: target.host, port: target.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
            try await client.executeThenClose { clientIn, clientOut in
                try await server.executeThenClose { serverIn, serverOut in
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask { for try await bytes in clientIn { try await serverOut.write(bytes) } }
                        group.addTask { for try await bytes in serverIn { try await clientOut.write(bytes) } }
                        // The first direction to end ends the connection.
                        _ = try await group.next()
                        group.cancelAll()
                    }
                }
            }
        } catch {
            // The server could not be reached (or the forwarder stopped): the client's
            // connection goes too.
            try? await client.executeThenClose { _, _ in }
            throw error
        }
    }
}
