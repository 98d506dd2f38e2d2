import HummingbirdBcrypt
import NIOPosix

/// bcrypt on NIO's blocking thread pool: a verification takes tens to hundreds of
/// milliseconds and must never run on the cooperative pool or an event loop.
struct PasswordHasher: Sendable {
    let cost: UInt8
    let threadPool: NIOThreadPool

    init(cost: UInt8, threadPool: NIOThreadPool = .singleton) {
        self.cost = cost
        self.threadPool = threadPool
    }

    func hash(_ password: String) async throws -> String {
        let cost = self.cost
        return try await threadPool.runIfActive { Bcrypt.hash(password, cost: cost) }
    }

    func verify(_ password: String, hash: String) async throws -> Bool {
        try await threadPool.runIfActive { Bcrypt.verify(password, hash: hash) }
    }
}
