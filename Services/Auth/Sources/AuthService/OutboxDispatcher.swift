import Foundation
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Shared

/// Delivers each user event to every service (`POST /internal/events`), until each one
/// acknowledges.
///
/// All state lives in the auth database (`outbox_deliveries`, through the repository), so deliveries survive a
/// restart of any party. Due rows are claimed with a short lease under `SKIP LOCKED`, so
/// several auth replicas never deliver the same row at once. A failed delivery backs off
/// exponentially per (event, service); other services are not held up by it.
actor OutboxDispatcher: Service {
    let repository: any AuthRepository
    /// Each target service's instances: a delivery goes to the first that acknowledges it
    /// (each instance applies an event for all of them).
    let targets: [String: [ServiceClient]]
    let logger: Logger
    let pollInterval: Duration
    let maxBackoffSeconds: Double
    let wakeUp: WakeUp
    static let maxConcurrentDeliveries = 4
    /// Rounds run so far (each one query when nothing is due).
    private(set) var rounds = 0

    init(
        repository: any AuthRepository, targets: [[ServiceClient]], wakeUp: WakeUp, logger: Logger,
        pollInterval: Duration = .seconds(1), maxBackoffSeconds: Double = 10
    ) {
        self.wakeUp = wakeUp
        self.repository = repository
        self.targets = Dictionary(uniqueKeysWithValues: targets.compactMap { instances in instances.first.map { ($0.serviceName, instances) } })
        self.logger = logger
        self.pollInterval = pollInterval
        self.maxBackoffSeconds = maxBackoffSeconds
    }

    func run() async throws {
        // A service that returns ends the whole group: with nothing to deliver, just idle.
        guard !targets.isEmpty else { return try await gracefulShutdown() }
        await PeriodicTask.run(every: pollInterval, wakeUp: wakeUp) { await self.deliverRound() }
    }

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
        logger[metadataKey: "requestId"] = "outbox-\(delivery.event.id)-\(delivery.target)-\(delivery.attempts)"
        var failure: String?
        if let instances = targets[delivery.target], !instances.isEmpty {
            // Instances in turn, starting at a different one per attempt: one that is down
            // (or answers an error) holds nothing up while another can take the event.
            let start = (delivery.attempts - 1) % instances.count
            for offset in 0..<instances.count {
                let client = instances[(start + offset) % instances.count]
                do {
                    let reply = try await client.send(
                        .POST, "/internal/events", body: ByteBuffer(bytes: try APIJSONEncoder().encode(delivery.event)),
                        requestID: logger[metadataKey: "requestId"]?.description, logger: logger)
                    if (200..<300).contains(reply.status.code) {
                        failure = nil
                        break
                    }
                    failure = "\(client.baseURL): HTTP \(reply.status.code)"
                } catch {
                    failure = "\(client.baseURL): \(error)"
                }
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
            logger.info("outbox event delivered", metadata: [
                "target": "\(delivery.target)", "event": "\(delivery.event.type.rawValue)", "userId": "\(delivery.event.userId)",
            ])
            return true
        } catch {
            // The lease expires and the row is claimed again: delivery is at-least-once and the targets are idempotent.
            logger.warning("could not record outbox outcome", metadata: ["error": "\(String(reflecting: error))"])
            return false
        }
    }
}
