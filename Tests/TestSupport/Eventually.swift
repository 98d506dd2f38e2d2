import Testing

public struct NotYet: Error, CustomStringConvertible {
    public var description: String { "the condition did not hold in time" }
}

/// Polls `condition` until it holds, for asynchronous effects (outbox deliveries, sweeps,
/// live events). Fails the test if it never holds; it never asserts on how long it took. The
/// default bound is generous: the whole suite runs in parallel on two cores, where a service
/// that takes 0.5 s alone may take many seconds to start or answer.
public func eventually(
    timeout: Duration = .seconds(30), every interval: Duration = .milliseconds(50),
    _ condition: () async throws -> Bool, sourceLocation: SourceLocation = #_sourceLocation
) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: interval)
    }
    Issue.record("condition did not hold within \(timeout)", sourceLocation: sourceLocation)
    throw NotYet()
}
