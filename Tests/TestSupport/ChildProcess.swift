import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A program started by a test: the fault scripts, a service's own executable.
///
/// Spawned and reaped with `posix_spawn`/`waitpid` rather than Foundation's `Process`, whose
/// termination handler on Linux was seen never to fire in this test process (the child left
/// as a zombie, the test waiting for ever).
public final class ChildProcess: Sendable {
    public let pid: pid_t

    /// Starts `arguments[0]` (an absolute path) with `environment` (nil: ours), its output
    /// appended to `outputPath`.
    public init(_ arguments: [String], environment: [String: String]? = nil, outputPath: String) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let environmentLines = environment.map { $0.map { "\($0.key)=\($0.value)" } }
        let envp = environmentLines.map { $0.map { strdup($0) } + [nil] }
        defer { envp?.forEach { free($0) } }
        var pid: pid_t = 0
        let status = envp.map { posix_spawn(&pid, arguments[0], &actions, nil, argv, $0) }
            ?? posix_spawn(&pid, arguments[0], &actions, nil, argv, environ)
        guard status == 0 else { throw SpawnFailed(path: arguments[0], code: status) }
        self.pid = pid
    }

    public struct SpawnFailed: Error, CustomStringConvertible {
        var path: String
        var code: Int32
        public var description: String { "could not start \(path): \(String(cString: strerror(code)))" }
    }

    /// Whether the process has ended (and been reaped); never waits.
    public var hasExited: Bool {
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        return result == pid || (result == -1 && errno == ECHILD)
    }

    /// Waits for the process to end; its exit code (128 + n when killed by signal n).
    public func exitCode() async -> Int32 {
        let pid = self.pid
        return await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                var status: Int32 = 0
                while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
                let signal = status & 0x7f
                continuation.resume(returning: signal == 0 ? (status >> 8) & 0xff : 128 + signal)
            }
        }
    }

    public func signal(_ number: Int32) { kill(pid, number) }
}
