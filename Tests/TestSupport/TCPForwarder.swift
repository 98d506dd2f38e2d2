import NIOCore
import NIOPosix
import Synchronization

/// A TCP port that forwards every connection to a server, and that a test can stop (the
/// port closed, every forwarded connection cut: to the client, the server is gone) and start
/// again on the same port. For "the server stopped" faults of a dependency the whole suite
/// shares (the test SeaweedFS), which a test cannot stop itself.
public final class TCPForwarder: Sendable {
    public let port: Int
    private let target: (host: String, port: Int)
    private let running = Mutex<Task<Void, Never>?>(nil)

    /// Listens on a free port, forwarding to `host:port`. The port is picked below the
    /// kernel's ephemeral range (and away from FaultablePostgres's 12000-14999): a port
    /// inside it can be given to an outgoing connection while the forwarder is stopped,
    /// and `start` could not have it back.
    public init(to host: String, port: Int) async throws {
        self.target = (host, port)
        var attempt = 0
        while true {
            attempt += 1
            do {
                let server = try await Self.bind(port: Int.random(in: 15_000..<18_000))
                self.port = server.channel.localAddress?.port ?? 0
                running.withLock { $0 = serve(server) }
                return
            } catch let error as IOError where attempt < 20 {
                _ = error  // taken: another one
            }
        }
    }

    /// Closes the port and cuts every forwarded connection.
    public func stop() async {
        let task = running.withLock { task in
            defer { task = nil }
            return task
        }
        task?.cancel()
        await task?.value
    }

    /// Listens again on the same port.
    public func start() async throws {
        let server = try await Self.bind(port: port)
        running.withLock { $0 = serve(server) }
    }

    private static func bind(port: Int) async throws -> NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never> {
        try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
    }

    private func serve(_ server: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>) -> Task<Void, Never> {
        let target = self.target
        return Task {
            try? await server.executeThenClose { connections in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await connection in connections {
                        group.addTask { try? await Self.forward(connection, to: target) }
                    }
                }
            }
        }
    }

    /// Copies bytes both ways until either side closes (or the forwarder stops).
    private static func forward(_ client: NIOAsyncChannel<ByteBuffer, ByteBuffer>, to target: (host: String, port: Int)) async throws {
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
    }
}
