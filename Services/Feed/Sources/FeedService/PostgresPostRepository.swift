import Foundation
import Logging
import PostgresNIO
import ObjectStore
import Shared

struct PostgresPostRepository: PostRepository {
    let database: Database

    /// A post with its author's name from the `authors` table.
    static let selectPosts = """
        SELECT f.id, f.author_id, f.title, f.content, f.created_at, f.updated_at, a.name, a.id IS NOT NULL
        FROM feeds f LEFT JOIN authors a ON a.id = f.author_id
        """
    typealias Row = (UUID, UUID, String, String, Date, Date, String?, Bool)

    func insert(_ post: NewPost, logger: Logger) async throws -> PostRecord {
        try await database.transaction(logger: logger) { connection in
            try await Self.setAuthorName(
                post.authorName, version: post.authorNameVersion, authorID: post.authorID, on: connection, logger: logger)
            try await connection.query(
                "INSERT INTO feeds (id, author_id, title, content) VALUES (\(post.id), \(post.authorID), \(post.title), \(post.content))",
                logger: logger
            ).consume()
            try await Self.insertImages(post.images, postID: post.id, firstPosition: 0, on: connection, logger: logger)
            guard let record = try await Self.post(id: post.id, lock: false, on: connection, logger: logger) else { throw MissingRowError() }
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
            try await connection.query(
                """
                UPDATE feeds SET title = coalesce(\(change.title), title), content = coalesce(\(change.content), content),
                    updated_at = now()
                WHERE id = \(change.id)
                """, logger: logger
            ).consume()
            guard let record = try await Self.post(id: change.id, lock: false, on: connection, logger: logger) else { throw MissingRowError() }
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
        try await database.transaction(logger: logger) { connection in
            try await Self.setAuthorName(nil, version: .max, authorID: authorID, on: connection, logger: logger)
            // One statement: the SELECT sees the image rows as they were before the cascade.
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

    func setAuthorName(_ name: String?, version: Int64, authorID: UUID, logger: Logger) async throws {
        try await database.write(logger: logger) { connection in
            try await Self.setAuthorName(name, version: version, authorID: authorID, on: connection, logger: logger)
        }
    }

    func backfillAuthorNames(_ names: [UUID: String?], logger: Logger) async throws {
        guard !names.isEmpty else { return }
        let ids = Array(names.keys)
        // '' stands for "unknown" (no name is empty): arrays bind without nulls.
        let values = ids.map { (names[$0] ?? nil) ?? "" }
        try await database.write(logger: logger) { connection in
            try await connection.query(
                """
                INSERT INTO authors (id, name, version)
                SELECT id, nullif(name, ''), 0 FROM unnest(\(ids)::uuid[], \(values)::text[]) AS given (id, name)
                ON CONFLICT (id) DO NOTHING
                """, logger: logger
            ).consume()
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

    /// A name is replaced only by a newer one; a deleted author's row holds the highest
    /// version, so no late event or token brings the name back.
    static func setAuthorName(
        _ name: String?, version: Int64, authorID: UUID, on connection: PostgresConnection, logger: Logger
    ) async throws {
        try await connection.query(
            """
            INSERT INTO authors (id, name, version) VALUES (\(authorID), \(name), \(version))
            ON CONFLICT (id) DO UPDATE SET name = excluded.name, version = excluded.version
            WHERE authors.version < excluded.version
            """, logger: logger
        ).consume()
    }

    static func post(id: UUID, lock: Bool, on connection: PostgresConnection, logger: Logger) async throws -> PostRecord? {
        let rows = try await connection.query(
            "\(unescaped: selectPosts) WHERE f.id = \(id) \(unescaped: lock ? "FOR UPDATE OF f" : "")", logger: logger)
        guard var record = try await records(rows).first else { return nil }
        record.images = try await images(of: [id], on: connection, logger: logger)[id] ?? []
        return record
    }

    static func records(_ rows: PostgresRowSequence) async throws -> [PostRecord] {
        var records: [PostRecord] = []
        for try await row in rows.decode(Row.self) {
            records.append(PostRecord(
                id: row.0, authorID: row.1, title: row.2, content: row.3, createdAt: row.4, updatedAt: row.5, images: [],
                authorName: row.6, authorKnown: row.7))
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
        SELECT f.id, f.author_id, f.title, f.content, f.created_at, f.updated_at, a.name, a.id IS NOT NULL, f.created_at
        FROM feeds f LEFT JOIN authors a ON a.id = f.author_id
        WHERE (f.created_at, f.id) < ($1, $2)
        ORDER BY f.created_at DESC, f.id DESC LIMIT $3
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
        SELECT f.id, f.author_id, f.title, f.content, f.created_at, f.updated_at, a.name, a.id IS NOT NULL, f.created_at
        FROM feeds f LEFT JOIN authors a ON a.id = f.author_id
        WHERE f.author_id = $1 AND (f.created_at, f.id) < ($2, $3)
        ORDER BY f.created_at DESC, f.id DESC LIMIT $4
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
    /// A row of `PostsNewest`/`PostsOfAuthor`: the post and its author's name, then its exact
    /// `created_at` for the cursor.
    init(_ row: PostgresRow) throws {
        let (id, authorID, title, content, createdAt, updatedAt, authorName, authorKnown, exact) =
            try row.decode((UUID, UUID, String, String, Date, Date, String?, Bool, PostgresTimestamp).self)
        self.init(
            record: PostRecord(
                id: id, authorID: authorID, title: title, content: content, createdAt: createdAt, updatedAt: updatedAt, images: [],
                authorName: authorName, authorKnown: authorKnown),
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
