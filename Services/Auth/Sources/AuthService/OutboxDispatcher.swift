import Foundation
import Logging
import NIOHTTP1
import ServiceLifecycle
import Shared

/// Delivers each `user_deleted` event to every service that holds user data
/// (`DELETE /internal/users/{id}`), until each one acknowledges.
///
/// All state lives in the auth database (`outbox_deliveries`, through the repository), so deliveries survive a
/// restart of any party. Due rows are claimed with a short lease under `SKIP LOCKED`, so
/// several auth replicas never deliver the same row at once. A failed delivery backs off
/// exponentially per (event, service); other services are not held up by it.
actor OutboxDispatcher: Service {
    let repository: any AuthRepository
    let targets: [String: ServiceClient]
    let logger: Logger
    let pollInterval: Duration
    let maxBackoffSeconds: Double
    private var wake: AsyncStream<Void>.Continuation?
    static let maxConcurrentDeliveries = 4
    /// Rounds run so far (each one query when nothing is due).
    private(set) var rounds = 0

    init(repository: any AuthRepository, targets: [ServiceClient], logger: Logger, pollInterval: Duration = .seconds(1), maxBackoffSeconds: Double = 10) {
        self.repository = repository
        self.targets = Dictionary(uniqueKeysWithValues: targets.map { ($0.serviceName, $0) })
        self.logger = logger
        self.pollInterval = pollInterval
        self.maxBackoffSeconds = maxBackoffSeconds
    }

    func run() async throws {
        // A service that returns ends the whole group: with nothing to deliver, just idle.
        guard !targets.isEmpty else { return try await gracefulShutdown() }
        let (signals, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        wake = continuation
        let pollInterval = self.pollInterval
        // One consumer iterates the wake-ups for the whole run: a local event (notifyNewEvent)
        // or the ticker, whose poll picks up events written by other replicas and retries
        // that fell due. (Cancelling an iteration of an AsyncStream finishes the stream, so
        // the stream must not be raced against a timer per round: once finished, every later
        // wait returned at once and the loop hammered the database.)
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    while (try? await Task.sleep(for: pollInterval)) != nil { continuation.yield() }
                    continuation.finish()
                }
                group.addTask {
                    for await _ in signals {
                        // Drain: a full round may leave more due.
                        while !Task.isCancelled, await self.deliverRound() > 0 {}
                    }
                }
                await group.waitForAll()
            }
        }
    }

    /// Called after an event is written by this process, to deliver it without waiting for the poll.
    nonisolated func notifyNewEvent() {
        Task { await self.signal() }
    }

    private func signal() { wake?.yield() }

    private func deliverRound() async -> Int {
        rounds += 1
        do {
            return try await deliverDue()
        } catch {
            logger.warning("outbox round failed", metadata: ["error": "\(String(reflecting: error))"])
            return 0
        }
    }

    /// One round: claim what is due, deliver concurrently, record the outcomes.
    /// Returns how many deliveries were acknowledged.
    func deliverDue() async throws -> Int {
        let due = try await repository.claimDueDeliveries(limit: 20, lease: .seconds(30), logger: logger)
        guard !due.isEmpty else { return 0 }
        // A few at a time: a burst of deletions (many accounts closed at once) must not take
        // every database connection of the services it reaches from their users' requests.
        return await withTaskGroup(of: Bool.self) { group in
            var acknowledged = 0
            for (index, delivery) in due.enumerated() {
                if index >= Self.maxConcurrentDeliveries, let ok = await group.next(), ok { acknowledged += 1 }
                group.addTask { await self.deliver(delivery) }
            }
            for await ok in group where ok { acknowledged += 1 }
            return acknowledged
        }
    }

    private func deliver(_ delivery: OutboxDelivery) async -> Bool {
        var logger = self.logger
        logger[metadataKey: "requestId"] = "outbox-\(delivery.eventID)-\(delivery.target)-\(delivery.attempts)"
        var failure: String?
        if let client = targets[delivery.target] {
            do {
                let reply = try await client.send(
                    .DELETE, "/internal/users/\(delivery.userID.apiString)",
                    requestID: logger[metadataKey: "requestId"]?.description, logger: logger)
                if !(200..<300).contains(reply.status.code) { failure = "HTTP \(reply.status.code)" }
            } catch {
                failure = "\(error)"
            }
        } else {
            failure = "no such target configured"
        }
        do {
            if let failure {
                let backoff = min(maxBackoffSeconds, 0.5 * pow(2, Double(max(0, delivery.attempts - 1)))) * Double.random(in: 0.8...1.2)
                logger.notice("outbox delivery failed; will retry", metadata: [
                    "target": "\(delivery.target)", "attempt": "\(delivery.attempts)", "error": "\(failure)",
                    "retryInSeconds": "\(String(format: "%.1f", backoff))",
                ])
                try await repository.scheduleRetry(delivery, after: .milliseconds(Int64(backoff * 1000)), error: failure, logger: logger)
                return false
            }
            try await repository.markDelivered(delivery, logger: logger)
            logger.info("outbox event delivered", metadata: ["target": "\(delivery.target)", "userId": "\(delivery.userID)"])
            return true
        } catch {
            // The lease expires and the row is claimed again: delivery is at-least-once and the targets are idempotent.
            logger.warning("could not record outbox outcome", metadata: ["error": "\(String(reflecting: error))"])
            return false
        }
    }
}
