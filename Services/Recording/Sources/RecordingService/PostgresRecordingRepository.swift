import Foundation
import Logging
import PostgresNIO
import ObjectStore
import Shared

struct PostgresRecordingRepository: RecordingRepository {
    let database: Database

    static let columns = "id, owner_id, title, file_name, content_type, size_bytes, sha256, object_key, created_at, deleted_at"

    func insert(_ recording: NewRecording, logger: Logger) async throws -> RecordingRecord {
        let record = try await database.write(logger: logger) { connection in
            try await Self.first(connection.query(
                """
                INSERT INTO recordings (id, owner_id, title, file_name, content_type, size_bytes, sha256, object_key)
                VALUES (\(recording.id), \(recording.ownerID), \(recording.title), \(recording.fileName),
                        \(recording.contentType), \(recording.sizeBytes), \(recording.sha256), \(recording.objectKey))
                RETURNING \(unescaped: Self.columns)
                """, logger: logger))
        }
        guard let record else { throw MissingRowError() }
        return record
    }

    func recording(id: UUID, ownerID: UUID, logger: Logger) async throws -> RecordingRecord? {
        try await database.read(logger: logger) { connection in try await Self.first(connection.query(
            """
            SELECT \(unescaped: Self.columns) FROM recordings
            WHERE id = \(id) AND owner_id = \(ownerID) AND deleted_at IS NULL
            """, logger: logger)) }
    }

    func list(ownerID: UUID, trash: Bool, page: PageRequest, logger: Logger) async throws -> [RecordingListRow] {
        // Constant SQL fragments only; every value is a bound parameter.
        let order = trash ? "deleted_at" : "created_at"
        let filter = trash ? "deleted_at IS NOT NULL AND purge_after > now()" : "deleted_at IS NULL"
        return try await database.read(logger: logger) { connection in
            let rows: PostgresRowSequence
            if let cursor = page.cursor {
                rows = try await connection.query(
                    """
                    SELECT \(unescaped: Self.columns), \(unescaped: order)
                    FROM recordings
                    WHERE owner_id = \(ownerID) AND \(unescaped: filter)
                      AND (\(unescaped: order), id) < (\(cursor.createdAt), \(cursor.id))
                    ORDER BY \(unescaped: order) DESC, id DESC
                    LIMIT \(page.limit + 1)
                    """, logger: logger)
            } else {
                rows = try await connection.query(
                    """
                    SELECT \(unescaped: Self.columns), \(unescaped: order)
                    FROM recordings
                    WHERE owner_id = \(ownerID) AND \(unescaped: filter)
                    ORDER BY \(unescaped: order) DESC, id DESC
                    LIMIT \(page.limit + 1)
                    """, logger: logger)
            }
            var result: [RecordingListRow] = []
            for try await row in rows.decode((UUID, UUID, String, String, String, Int64, String, String, Date, Date?, PostgresTimestamp).self) {
                let record = RecordingRecord(
                    id: row.0, ownerID: row.1, title: row.2, fileName: row.3, contentType: row.4, sizeBytes: row.5,
                    sha256: row.6, objectKey: row.7, createdAt: row.8, deletedAt: row.9)
                result.append(RecordingListRow(record: record, cursor: PageCursor(createdAt: row.10, id: row.0)))
            }
            return result
        }
    }

    func rename(id: UUID, ownerID: UUID, title: String, logger: Logger) async throws -> RecordingRecord? {
        try await database.write(logger: logger) { connection in try await Self.first(connection.query(
            """
            UPDATE recordings SET title = \(title)
            WHERE id = \(id) AND owner_id = \(ownerID) AND deleted_at IS NULL
            RETURNING \(unescaped: Self.columns)
            """, logger: logger)) }
    }

    func trash(id: UUID, ownerID: UUID, retention: Duration, logger: Logger) async throws -> RecordingRecord? {
        let seconds = Double(retention.components.seconds) + Double(retention.components.attoseconds) / 1e18
        return try await database.write(logger: logger) { connection in try await Self.first(connection.query(
            """
            UPDATE recordings SET deleted_at = now(), purge_after = now() + \(seconds) * interval '1 second'
            WHERE id = \(id) AND owner_id = \(ownerID) AND deleted_at IS NULL
            RETURNING \(unescaped: Self.columns)
            """, logger: logger)) }
    }

    func restore(id: UUID, ownerID: UUID, logger: Logger) async throws -> RecordingRecord? {
        try await database.write(logger: logger) { connection in try await Self.first(connection.query(
            """
            UPDATE recordings SET deleted_at = NULL, purge_after = NULL
            WHERE id = \(id) AND owner_id = \(ownerID) AND deleted_at IS NOT NULL AND purge_after > now()
            RETURNING \(unescaped: Self.columns)
            """, logger: logger)) }
    }

    func purgeCandidates(limit: Int, logger: Logger) async throws -> [PurgeCandidate] {
        try await database.read(logger: logger) { connection in try await Self.candidates(connection.query(
            """
            SELECT id, object_key FROM recordings
            WHERE purge_after <= now()
            ORDER BY purge_after
            LIMIT \(limit)
            """, logger: logger)) }
    }

    func deletePurged(id: UUID, logger: Logger) async throws -> Bool {
        try await database.write(logger: logger) { connection in
            try await connection.query(
                "DELETE FROM recordings WHERE id = \(id) AND purge_after <= now() RETURNING id", logger: logger
            ).count() > 0
        }
    }

    func schedulePurge(ownerID: UUID, logger: Logger) async throws {
        try await database.write(logger: logger) { connection in
            try await connection.query(
                """
                UPDATE recordings SET deleted_at = coalesce(deleted_at, now()), purge_after = now()
                WHERE owner_id = \(ownerID) AND (purge_after IS NULL OR purge_after > now())
                """, logger: logger
            ).consume()
        }
    }

    func purgeCandidates(ownerID: UUID, limit: Int, logger: Logger) async throws -> [PurgeCandidate] {
        try await database.read(logger: logger) { connection in try await Self.candidates(connection.query(
            """
            SELECT id, object_key FROM recordings
            WHERE owner_id = \(ownerID) AND purge_after <= now()
            ORDER BY purge_after
            LIMIT \(limit)
            """, logger: logger)) }
    }

    func existingObjectKeys(_ objectKeys: [String], logger: Logger) async throws -> Set<String> {
        guard !objectKeys.isEmpty else { return [] }
        return try await database.read(logger: logger) { connection in
            var existing = Set<String>()
            let rows = try await connection.query(
                "SELECT object_key FROM recordings WHERE object_key = ANY(\(objectKeys))", logger: logger)
            for try await key in rows.decode(String.self) { existing.insert(key) }
            return existing
        }
    }

    private static func first(_ rows: PostgresRowSequence) async throws -> RecordingRecord? {
        var record: RecordingRecord?
        for try await row in rows.decode((UUID, UUID, String, String, String, Int64, String, String, Date, Date?).self) {
            record = RecordingRecord(
                id: row.0, ownerID: row.1, title: row.2, fileName: row.3, contentType: row.4, sizeBytes: row.5,
                sha256: row.6, objectKey: row.7, createdAt: row.8, deletedAt: row.9)
        }
        return record
    }

    private static func candidates(_ rows: PostgresRowSequence) async throws -> [PurgeCandidate] {
        var result: [PurgeCandidate] = []
        for try await (id, key) in rows.decode((UUID, String).self) {
            result.append(PurgeCandidate(id: id, objectKey: key))
        }
        return result
    }
}
