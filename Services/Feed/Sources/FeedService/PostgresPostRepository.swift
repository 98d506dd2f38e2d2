import Foundation
import Logging
import PostgresNIO
import ObjectStore
import Shared

struct PostgresPostRepository: PostRepository {
    let database: Database

    static let columns = "id, author_id, title, content, created_at, updated_at"
    typealias Row = (UUID, UUID, String, String, Date, Date)

    func insert(_ post: NewPost, logger: Logger) async throws -> PostRecord {
        try await database.transaction(logger: logger) { connection in
            let rows = try await connection.query(
                """
                INSERT INTO feeds (id, author_id, title, content) VALUES (\(post.id), \(post.authorID), \(post.title), \(post.content))
                RETURNING \(unescaped: Self.columns)
                """, logger: logger)
            guard var record = try await Self.records(rows).first else { throw MissingRowError() }
            try await Self.insertImages(post.images, postID: post.id, firstPosition: 0, on: connection, logger: logger)
            record.images = try await Self.images(of: [post.id], on: connection, logger: logger)[post.id] ?? []
            return record
        }
    }

    func post(id: UUID, logger: Logger) async throws -> PostRecord? {
        try await database.read(logger: logger) { connection in
            try await Self.post(id: id, lock: false, on: connection, logger: logger)
        }
    }

    func list(authorID: UUID?, page: PageRequest, logger: Logger) async throws -> [PostListRow] {
        try await database.read(logger: logger) { connection in
            // The hot path of the service: prepared statements, one for the page and one for
            // all its images. Without a cursor the keyset starts above every row.
            let after = page.cursor ?? .aboveAll
            let rows: [PostListRow]
            if let authorID {
                rows = try await connection.execute(
                    PostsOfAuthor(authorID: authorID, after: after, limit: page.limit + 1), logger: logger
                ).collect()
            } else {
                rows = try await connection.execute(PostsNewest(after: after, limit: page.limit + 1), logger: logger).collect()
            }
            let images = try await Self.images(of: rows.map(\.record.id), on: connection, logger: logger)
            return rows.map { row in
                var row = row
                row.record.images = images[row.record.id] ?? []
                return row
            }
        }
    }

    func update(_ change: PostChange, logger: Logger) async throws -> UpdateOutcome {
        try await database.transaction(logger: logger) { connection in
            // The row lock orders concurrent changes of one post (image positions, the image count).
            guard let current = try await Self.post(id: change.id, lock: true, on: connection, logger: logger) else {
                return .notFound
            }
            guard current.authorID == change.authorID else { return .notAuthor }
            let existing = Set(current.images.map(\.id))
            let removals = Set(change.removeImageIDs)
            let unknown = removals.subtracting(existing)
            guard unknown.isEmpty else { return .unknownImages(unknown.sorted { $0.apiString < $1.apiString }) }
            guard current.images.count - removals.count + change.addImages.count <= PostRules.maxImages else {
                return .tooManyImages
            }
            let removed = current.images.filter { removals.contains($0.id) }.map(\.objectKey)
            if !removals.isEmpty {
                try await connection.query(
                    "DELETE FROM feed_images WHERE feed_id = \(change.id) AND id = ANY(\(Array(removals)))", logger: logger
                ).consume()
            }
            let nextPosition = try await Self.nextPosition(postID: change.id, on: connection, logger: logger)
            try await Self.insertImages(change.addImages, postID: change.id, firstPosition: nextPosition, on: connection, logger: logger)
            let rows = try await connection.query(
                """
                UPDATE feeds SET title = coalesce(\(change.title), title), content = coalesce(\(change.content), content),
                    updated_at = now()
                WHERE id = \(change.id)
                RETURNING \(unescaped: Self.columns)
                """, logger: logger)
            guard var record = try await Self.records(rows).first else { throw MissingRowError() }
            record.images = try await Self.images(of: [change.id], on: connection, logger: logger)[change.id] ?? []
            return .updated(record, removedObjectKeys: removed)
        }
    }

    func delete(id: UUID, authorID: UUID, logger: Logger) async throws -> DeleteOutcome {
        try await database.transaction(logger: logger) { connection in
            guard let current = try await Self.post(id: id, lock: true, on: connection, logger: logger) else { return .notFound }
            guard current.authorID == authorID else { return .notAuthor }
            try await connection.query("DELETE FROM feeds WHERE id = \(id)", logger: logger).consume()
            return .deleted(removedObjectKeys: current.images.map(\.objectKey))
        }
    }

    func deleteAll(authorID: UUID, logger: Logger) async throws -> [String] {
        // One statement: the SELECT sees the image rows as they were before the cascade.
        try await database.write(logger: logger) { connection in
            let rows = try await connection.query(
                """
                WITH gone AS (DELETE FROM feeds WHERE author_id = \(authorID) RETURNING id)
                SELECT object_key FROM feed_images WHERE feed_id IN (SELECT id FROM gone)
                """, logger: logger)
            var keys: [String] = []
            for try await key in rows.decode(String.self) { keys.append(key) }
            return keys
        }
    }

    func image(postID: UUID, imageID: UUID, logger: Logger) async throws -> PostImageRecord? {
        try await database.read(logger: logger) { connection in
            let rows = try await connection.query(
                """
                SELECT id, feed_id, content_type, size_bytes, sha256, object_key FROM feed_images
                WHERE id = \(imageID) AND feed_id = \(postID)
                """, logger: logger)
            for try await row in rows.decode((UUID, UUID, String, Int64, String, String).self) {
                return PostImageRecord(id: row.0, postID: row.1, contentType: row.2, sizeBytes: row.3, sha256: row.4, objectKey: row.5)
            }
            return nil
        }
    }

    func existingObjectKeys(_ objectKeys: [String], logger: Logger) async throws -> Set<String> {
        guard !objectKeys.isEmpty else { return [] }
        return try await database.read(logger: logger) { connection in
            var existing = Set<String>()
            let rows = try await connection.query(
                "SELECT object_key FROM feed_images WHERE object_key = ANY(\(objectKeys))", logger: logger)
            for try await key in rows.decode(String.self) { existing.insert(key) }
            return existing
        }
    }

    // MARK: helpers

    static func post(id: UUID, lock: Bool, on connection: PostgresConnection, logger: Logger) async throws -> PostRecord? {
        let rows = try await connection.query(
            "SELECT \(unescaped: columns) FROM feeds WHERE id = \(id) \(unescaped: lock ? "FOR UPDATE" : "")", logger: logger)
        guard var record = try await records(rows).first else { return nil }
        record.images = try await images(of: [id], on: connection, logger: logger)[id] ?? []
        return record
    }

    static func records(_ rows: PostgresRowSequence) async throws -> [PostRecord] {
        var records: [PostRecord] = []
        for try await row in rows.decode(Row.self) {
            records.append(PostRecord(
                id: row.0, authorID: row.1, title: row.2, content: row.3, createdAt: row.4, updatedAt: row.5, images: []))
        }
        return records
    }

    /// The images of each post, in their order.
    static func images(of postIDs: [UUID], on connection: PostgresConnection, logger: Logger) async throws -> [UUID: [PostImageRecord]] {
        guard !postIDs.isEmpty else { return [:] }
        var result: [UUID: [PostImageRecord]] = [:]
        for try await image in try await connection.execute(ImagesOfPosts(postIDs: postIDs), logger: logger) {
            result[image.postID, default: []].append(image)
        }
        return result
    }

    static func nextPosition(postID: UUID, on connection: PostgresConnection, logger: Logger) async throws -> Int {
        let rows = try await connection.query(
            "SELECT coalesce(max(position) + 1, 0)::bigint FROM feed_images WHERE feed_id = \(postID)", logger: logger)
        for try await position in rows.decode(Int.self) { return position }
        return 0
    }

    static func insertImages(
        _ images: [PostImageRecord], postID: UUID, firstPosition: Int, on connection: PostgresConnection, logger: Logger
    ) async throws {
        for (offset, image) in images.enumerated() {
            let position = Int32(firstPosition + offset)
            try await connection.query(
                """
                INSERT INTO feed_images (id, feed_id, position, content_type, size_bytes, sha256, object_key)
                VALUES (\(image.id), \(postID), \(position), \(image.contentType), \(image.sizeBytes), \(image.sha256),
                        \(image.objectKey))
                """, logger: logger
            ).consume()
        }
    }
}

// MARK: prepared statements (the list, prepared once per connection)

/// The newest posts below a keyset position; `PostsOfAuthor` is the same for one author.
struct PostsNewest: PostgresPreparedStatement {
    static let sql = """
        SELECT id, author_id, title, content, created_at, updated_at, created_at FROM feeds
        WHERE (created_at, id) < ($1, $2)
        ORDER BY created_at DESC, id DESC LIMIT $3
        """
    static let bindingDataTypes: [PostgresDataType] = [.timestamptz, .uuid, .int8]
    typealias Row = PostListRow

    var after: PageCursor
    var limit: Int

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 3)
        bindings.append(after.createdAt)
        bindings.append(after.id)
        bindings.append(limit)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        try PostListRow(row)
    }
}

struct PostsOfAuthor: PostgresPreparedStatement {
    static let sql = """
        SELECT id, author_id, title, content, created_at, updated_at, created_at FROM feeds
        WHERE author_id = $1 AND (created_at, id) < ($2, $3)
        ORDER BY created_at DESC, id DESC LIMIT $4
        """
    static let bindingDataTypes: [PostgresDataType] = [.uuid, .timestamptz, .uuid, .int8]
    typealias Row = PostListRow

    var authorID: UUID
    var after: PageCursor
    var limit: Int

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 4)
        bindings.append(authorID)
        bindings.append(after.createdAt)
        bindings.append(after.id)
        bindings.append(limit)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        try PostListRow(row)
    }
}

extension PostListRow {
    /// A row of `PostsNewest`/`PostsOfAuthor`: the post, then its exact `created_at` for the cursor.
    init(_ row: PostgresRow) throws {
        let (id, authorID, title, content, createdAt, updatedAt, exact) =
            try row.decode((UUID, UUID, String, String, Date, Date, PostgresTimestamp).self)
        self.init(
            record: PostRecord(id: id, authorID: authorID, title: title, content: content, createdAt: createdAt, updatedAt: updatedAt, images: []),
            cursor: PageCursor(createdAt: exact, id: id))
    }
}

/// The images of several posts, each post's in order.
struct ImagesOfPosts: PostgresPreparedStatement {
    static let sql = """
        SELECT id, feed_id, content_type, size_bytes, sha256, object_key FROM feed_images
        WHERE feed_id = ANY($1)
        ORDER BY feed_id, position
        """
    static let bindingDataTypes: [PostgresDataType] = [.uuidArray]
    typealias Row = PostImageRecord

    var postIDs: [UUID]

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 1)
        bindings.append(postIDs)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        let (id, postID, contentType, size, sha256, objectKey) = try row.decode((UUID, UUID, String, Int64, String, String).self)
        return PostImageRecord(id: id, postID: postID, contentType: contentType, sizeBytes: size, sha256: sha256, objectKey: objectKey)
    }
}
