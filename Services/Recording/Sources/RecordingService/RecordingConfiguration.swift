import Configuration
import Foundation
import Logging
import ObjectStore
import Shared

/// Everything the recording service reads at start-up.
public struct RecordingConfiguration: ServiceConfiguration {
    public static let serviceName = "recording"
    public static var secretVariables: [String] { ObjectStorageConfiguration.secretVariables }
    public var common: CommonConfiguration
    public var storage: ObjectStorageConfiguration
    /// Largest file accepted (`RECORDING_MAX_BYTES`).
    public var maxUploadBytes: Int64
    /// How long a deleted recording stays restorable (`RECORDING_TRASH_RETENTION_SECONDS`; 0 purges at once).
    public var trashRetention: Duration
    /// How often the purge looks for recordings past their retention (`RECORDING_PURGE_INTERVAL_SECONDS`).
    public var purgeInterval: Duration
    /// How often the sweeper looks for objects without a row (`RECORDING_SWEEP_INTERVAL_SECONDS`).
    public var sweepInterval: Duration
    /// How old an object without a row must be before the sweeper removes it (`RECORDING_ORPHAN_GRACE_SECONDS`).
    public var orphanGrace: Duration
    /// Uploads per user (`RECORDING_UPLOADS_PER_HOUR`, `RECORDING_UPLOAD_BURST`).
    public var uploadLimit: UserRateLimit
    /// How long a signed content link works (`RECORDING_LINK_TTL_SECONDS`).
    public var contentLinkLifetime: Duration

    public init(reader: ConfigReader, logger: Logger) throws {
        self.common = try CommonConfiguration(reader: reader, serviceName: Self.serviceName, defaultPort: 8083, logger: logger)
        self.storage = try ObjectStorageConfiguration(reader: reader, serviceName: "recording")
        self.maxUploadBytes = Int64(try reader.integer("RECORDING_MAX_BYTES", default: 100 * 1024 * 1024, in: 1...(1 << 40)))
        self.trashRetention = try reader.seconds("RECORDING_TRASH_RETENTION_SECONDS", default: 7 * 24 * 3600, in: 0...(365 * 24 * 3600))
        self.purgeInterval = try reader.seconds("RECORDING_PURGE_INTERVAL_SECONDS", default: 60, in: 0.01...86_400)
        self.sweepInterval = try reader.seconds("RECORDING_SWEEP_INTERVAL_SECONDS", default: 3600, in: 0.01...86_400)
        self.orphanGrace = try reader.seconds("RECORDING_ORPHAN_GRACE_SECONDS", default: 3600, in: 0...604_800)
        self.contentLinkLifetime = try reader.seconds("RECORDING_LINK_TTL_SECONDS", default: 600, in: 10...86_400)
        self.uploadLimit = try UserRateLimit(
            action: "upload", reader: reader, perHour: "RECORDING_UPLOADS_PER_HOUR", burst: "RECORDING_UPLOAD_BURST",
            defaultPerHour: 120, defaultBurst: 30)
    }
}
