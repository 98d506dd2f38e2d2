import Logging
import ServiceLifecycle

/// Background work that repeats until the application shuts down.
public enum PeriodicTask {
    /// Runs `work` every `interval` (the first time after one interval, so after start-up
    /// and migrations) until graceful shutdown; failures are logged and retried next turn.
    public static func run(every interval: Duration, logger: Logger, _ work: @escaping @Sendable () async throws -> Void) async {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await Task.sleep(for: interval)
                } catch {
                    return
                }
                do {
                    try await work()
                } catch is CancellationError {
                    return
                } catch {
                    logger.warning("background task failed; retrying later", metadata: ["error": "\(error)"])
                }
            }
        }
    }
}
