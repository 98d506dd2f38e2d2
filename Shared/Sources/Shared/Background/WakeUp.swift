import ServiceLifecycle

/// Wakes a background worker (auth's outbox dispatcher, its mailer) when this process has
/// just committed work for it, so the work does not wait for the next poll. A buffer of
/// one: several signals before the worker looks make one round.
public final class WakeUp: Sendable {
    let signals: AsyncStream<Void>
    let continuation: AsyncStream<Void>.Continuation

    public init() {
        (signals, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    public func signal() { continuation.yield() }
}

extension PeriodicTask {
    /// Runs `round` whenever `wakeUp` is signalled and at least every `interval` (the poll
    /// picks up work written by other instances, and retries that fell due), and again at
    /// once while a round reports progress (> 0), until graceful shutdown. Call it once per
    /// `WakeUp`: it consumes the signals for its whole run.
    public static func run(every interval: Duration, wakeUp: WakeUp, _ round: @escaping @Sendable () async -> Int) async {
        let (signals, continuation) = (wakeUp.signals, wakeUp.continuation)
        // One consumer iterates the wake-ups for the whole run: the stream is never raced
        // against a timer per round (cancelling an iteration of an AsyncStream finishes the
        // stream; every later wait would then return at once and the loop would spin).
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    while (try? await Task.sleep(for: interval)) != nil { continuation.yield() }
                    continuation.finish()
                }
                group.addTask {
                    for await _ in signals {
                        while !Task.isCancelled, await round() > 0 {}
                    }
                }
                await group.waitForAll()
            }
        }
    }
}
