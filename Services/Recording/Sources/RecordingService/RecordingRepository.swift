import Foundation
import Logging
import ObjectStore
import Shared

/// A recording whose bytes are stored and whose row is about to be written.
struct NewRecording: Sendable {
    var id: UUID
    var ownerID: UUID
    var title: String
    var fileName: String
    var contentType: String
    var sizeBytes: Int64
    var sha256: String
    var objectKey: String
}

/// A row the purge is due to remove, with its object.
struct PurgeCandidate: Sendable, Equatable {
    var id: UUID
    var objectKey: String
}

/// Storage of recording metadata. `Sendable` so handlers and background actors share one instance.
/// Every method that takes an `ownerID` only ever sees that owner's rows.
protocol RecordingRepository: Sendable {
    func insert(_ recording: NewRecording, logger: Logger) async throws -> RecordingRecord
    /// A live (not trashed) recording of the owner.
    func recording(id: UUID, ownerID: UUID, logger: Logger) async throws -> RecordingRecord?
    /// `page.limit + 1` rows, newest first: live recordings by `created_at`, or the trash by
    /// `deleted_at` (only rows whose retention has not passed).
    func list(ownerID: UUID, trash: Bool, page: PageRequest, logger: Logger) async throws -> [RecordingListRow]
    func rename(id: UUID, ownerID: UUID, title: String, logger: Logger) async throws -> RecordingRecord?
    /// Moves a live recording to the trash, to be purged after `retention`.
    func trash(id: UUID, ownerID: UUID, retention: Duration, logger: Logger) async throws -> RecordingRecord?
    /// Takes a recording out of the trash while its retention lasts.
    func restore(id: UUID, ownerID: UUID, logger: Logger) async throws -> RecordingRecord?
    /// Rows whose retention has passed, oldest first.
    func purgeCandidates(limit: Int, logger: Logger) async throws -> [PurgeCandidate]
    /// Deletes the row if it is still due (a restore in between keeps it). Returns whether it went.
    @discardableResult
    func deletePurged(id: UUID, logger: Logger) async throws -> Bool
    /// Marks every recording of the owner due for purging now (account deletion).
    func schedulePurge(ownerID: UUID, logger: Logger) async throws
    /// Rows of the owner due for purging.
    func purgeCandidates(ownerID: UUID, limit: Int, logger: Logger) async throws -> [PurgeCandidate]
    /// Which of `objectKeys` have a row (live or trashed).
    func existingObjectKeys(_ objectKeys: [String], logger: Logger) async throws -> Set<String>
}
