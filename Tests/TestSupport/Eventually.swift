import Testing

public struct NotYet: Error, CustomStringConvertible {
    public var description: String { "the condition did not hold in time" }
}

/// Polls `condition` until it holds, for asynchronous effects (outbox deliveries, sweeps,
/// live events). Fails the test if it never holds; it never asserts on how long it took. The
/// default bound is generous: the whole suite runs in parallel on two cores, where a service
/// that takes 0.5 s alone may take many seconds to start or answer.
///
/// It fails only on a check that began at or after the deadline: the state it saw is the
/// state after the bound. A check that began earlier and ended after the deadline (a starved
/// test process, ci15) says nothing about the state at the deadline, so one more is made.
public func eventually(
    timeout: Duration = .seconds(30), every interval: Duration = .milliseconds(50),
    _ condition: () async throws -> Bool, sourceLocation: SourceLocation = #_sourceLocation
) async throws {
    let deadline = ContinuousClock.now + timeout
    while true {
        let began = ContinuousClock.now
        if try await condition() { return }
        if began >= deadline { break }
        try await Task.sleep(for: min(interval, max(deadline - ContinuousClock.now, .zero)))
    }
    Issue.record("condition did not hold within \(timeout)", sourceLocation: sourceLocation)
    throw NotYet()
}
