import Foundation
import NIOCore
import Shared

/// Readiness of an object store: whether it takes writes now. `prepare()` alone only shows
/// that the folder or bucket exists; a store made read-only, a full disk or a stopped S3
/// server still passes it while every upload fails. The probe writes a tiny object and
/// deletes it, at most once per `interval` (concurrent checks share one probe, and the
/// result is kept that long), so `/ready` follows the store within seconds and costs it
/// almost nothing.
public actor StorageWriteProbe {
    let storage: any ObjectStorage
    let key: ObjectKey
    let interval: Duration
    private var last: (at: ContinuousClock.Instant, failure: (any Error)?)?
    private var running: Task<Void, any Error>?

    public init(storage: any ObjectStorage, interval: Duration = .seconds(2)) {
        self.storage = storage
        // One key per instance: replicas probing one bucket never race on an object.
        self.key = try! ObjectKey("readiness/probe-\(UUID.random().uuidString.lowercased())")
        self.interval = interval
    }

    /// Throws when the store did not take the last probe write.
    public func check() async throws {
        if let last, last.at.duration(to: .now) < interval {
            if let failure = last.failure { throw failure }
            return
        }
        if let running { return try await running.value }
        let task = Task { [storage, key] in
            try await storage.prepare()
            let body = AsyncStream<ByteBuffer> { continuation in
                continuation.yield(ByteBuffer(string: "ok"))
                continuation.finish()
            }
            try await storage.put(key, body: body, length: 2)
            try await storage.delete(key)
        }
        running = task
        defer { running = nil }
        do {
            try await task.value
            last = (.now, nil)
        } catch {
            last = (.now, error)
            throw error
        }
    }
}

extension ReadinessCheck {
    /// `storage`: whether the store takes writes now, by a write probe of its own.
    public static func storage(_ storage: any ObjectStorage) -> ReadinessCheck {
        let probe = StorageWriteProbe(storage: storage)
        return ReadinessCheck("storage") { try await probe.check() }
    }
}
