import Foundation
@testable import Shared
import Synchronization
import Testing

@Suite("Database: deadlines of calls")
struct DatabaseDeadlinesTests {
    final class Fired: Sendable {
        let names = Mutex<[String]>([])
        func append(_ name: String) { names.withLock { $0.append(name) } }
        var value: [String] { names.withLock { $0 } }
    }

    /// Polls until `condition` holds or `timeout` passes (as generous as TestSupport's: the whole
    /// suite shares two cores, and the watcher is a task like any other).
    func eventually(_ timeout: Duration = .seconds(30), _ condition: () -> Bool) async throws -> Bool {
        let end = ContinuousClock.now + timeout
        while ContinuousClock.now < end {
            if condition() { return true }
            try await Task.sleep(for: .milliseconds(5))
        }
        return condition()
    }

    @Test func aDeadlineFiresOnceAfterItsDelayAndACancelledOneNever() async throws {
        let deadlines = DatabaseDeadlines(resolution: .milliseconds(10))
        let fired = Fired()
        let start = ContinuousClock.now
        let due = Mutex<ContinuousClock.Instant?>(nil)
        _ = deadlines.schedule(in: .milliseconds(100)) {
            due.withLock { $0 = ContinuousClock.now }
            fired.append("due")
        }
        let cancelled = deadlines.schedule(in: .milliseconds(50)) { fired.append("cancelled") }
        deadlines.cancel(cancelled)
        _ = deadlines.schedule(in: .seconds(3600)) { fired.append("far") }

        #expect(try await eventually { fired.value == ["due"] })
        // Not before its delay (lateness is bounded by the load of the machine, not asserted).
        let firedAt = try #require(due.withLock { $0 })
        #expect(firedAt - start >= .milliseconds(100))
        #expect(deadlines.pendingCount == 1)  // the far one
    }

    @Test func theWatcherStopsWhenIdleAndStartsAgain() async throws {
        let deadlines = DatabaseDeadlines(resolution: .milliseconds(10))
        let fired = Fired()
        _ = deadlines.schedule(in: .milliseconds(20)) { fired.append("first") }
        #expect(try await eventually { fired.value == ["first"] })
        #expect(try await eventually { !deadlines.isWatching })
        _ = deadlines.schedule(in: .milliseconds(20)) { fired.append("second") }
        #expect(try await eventually { fired.value == ["first", "second"] })
    }
}
