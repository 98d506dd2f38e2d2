import Foundation
import Metrics
import Shared
import Synchronization

/// One live-counts subscriber (one open event stream).
///
/// It holds at most one pending snapshot: a newer one replaces an unsent one, so a
/// slow client costs one snapshot of memory and never holds up the others. `signals`
/// wakes the writer (buffer of one) whenever there is something to send.
final class PollSubscription: Sendable {
    let id = UUID.random()
    let pollID: UUID
    let signals: AsyncStream<Void>
    private let signal: AsyncStream<Void>.Continuation
    private let pending = Mutex<PollCounts?>(nil)

    init(pollID: UUID) {
        self.pollID = pollID
        (signals, signal) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Latest value wins.
    func offer(_ counts: PollCounts) {
        pending.withLock { $0 = counts }
        signal.yield()
    }

    /// Offers `counts` unless a snapshot is already waiting (which is at least as new).
    func offerIfNothingPending(_ counts: PollCounts) {
        let offered = pending.withLock { pending in
            guard pending == nil else { return false }
            pending = counts
            return true
        }
        if offered { signal.yield() }
    }

    /// The snapshot to send, if any; a wake-up without one is a heartbeat.
    func take() -> PollCounts? {
        pending.withLock { pending in
            defer { pending = nil }
            return pending
        }
    }

    /// Wakes the writer without new counts (it then sends a keepalive comment).
    func wake() {
        signal.yield()
    }

    /// Ends the stream: the poll is gone or the instance is shutting down.
    func finish() {
        signal.finish()
    }
}

/// This instance's live-counts subscribers, per poll. The notification listener tells it
/// which polls changed; the fan-out loop reloads those (each at most once per coalescing
/// interval, however many votes and subscribers) and hands the counts to every subscriber.
actor PollEventHub {
    private var subscribers: [UUID: [UUID: PollSubscription]] = [:]
    /// Polls with subscribers whose counts changed since the fan-out loop last read them.
    private var dirty: Set<UUID> = []
    /// The counts last handed to each watched poll's subscribers: a reload that finds them
    /// unchanged (the periodic refresh, a reconnection) sends nothing.
    private var published: [UUID: PollCounts] = [:]
    /// Whether the LISTEN connection is up; while it is not, changes may be missed.
    private(set) var isListening = false

    /// Wakes the fan-out loop (buffer of one: several changes, one wake-up).
    nonisolated let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation
    private let subscriberGauge: Gauge

    init() {
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        // The hub may be made before the router; a gauge made before bootstrapping is lost.
        _ = ServiceMetrics.bootstrap
        subscriberGauge = Gauge(label: "vote_event_subscribers")
    }

    var subscriberCount: Int {
        subscribers.values.reduce(0) { $0 + $1.count }
    }

    func subscribe(pollID: UUID) -> PollSubscription {
        let subscription = PollSubscription(pollID: pollID)
        subscribers[pollID, default: [:]][subscription.id] = subscription
        subscriberGauge.record(subscriberCount)
        return subscription
    }

    /// A new subscriber's first counts, read after it subscribed. They are also what the
    /// next reload is compared with, when nothing was sent to this poll's subscribers yet.
    func offerFirst(_ counts: PollCounts, to subscription: PollSubscription) {
        if published[subscription.pollID] == nil { published[subscription.pollID] = counts }
        subscription.offerIfNothingPending(counts)
    }

    func unsubscribe(_ subscription: PollSubscription) {
        subscription.finish()
        subscribers[subscription.pollID]?[subscription.id] = nil
        if subscribers[subscription.pollID]?.isEmpty == true {
            subscribers[subscription.pollID] = nil
            dirty.remove(subscription.pollID)
            published[subscription.pollID] = nil
        }
        subscriberGauge.record(subscriberCount)
    }

    /// Votes, retractions or a deletion touched these polls (from any instance).
    func markDirty(_ pollIDs: [UUID]) {
        let watched = pollIDs.filter { subscribers[$0] != nil }
        guard !watched.isEmpty else { return }
        dirty.formUnion(watched)
        wake.yield()
    }

    /// The listener (re)connected: anything may have changed while it was away.
    func listenerConnected() {
        isListening = true
        markAllDirty()
    }

    /// Every watched poll is reloaded at the next fan-out.
    func markAllDirty() {
        markDirty(Array(subscribers.keys))
    }

    func listenerDisconnected() {
        isListening = false
    }

    /// The polls to reload now; the set starts empty again.
    func takeDirty() -> [UUID] {
        defer { dirty.removeAll() }
        return Array(dirty)
    }

    /// Hands fresh counts to the subscribers of `pollIDs`; a poll missing from `counts`
    /// was deleted, and its streams end.
    func publish(_ counts: [UUID: PollCounts], for pollIDs: [UUID]) {
        for pollID in pollIDs {
            guard let pollSubscribers = subscribers[pollID]?.values else { continue }
            if let counts = counts[pollID] {
                // New subscribers read their first counts themselves, so these are news only
                // when they differ from the last ones sent.
                guard published.updateValue(counts, forKey: pollID) != counts else { continue }
                for subscriber in pollSubscribers { subscriber.offer(counts) }
            } else {
                for subscriber in pollSubscribers { subscriber.finish() }
                subscribers[pollID] = nil
                published[pollID] = nil
            }
        }
        subscriberGauge.record(subscriberCount)
    }

    /// Shutdown: every stream ends and the fan-out loop stops.
    func finishAll() {
        for subscriber in subscribers.values.flatMap(\.values) { subscriber.finish() }
        subscribers.removeAll()
        dirty.removeAll()
        published.removeAll()
        wake.finish()
        subscriberGauge.record(0)
    }
}
