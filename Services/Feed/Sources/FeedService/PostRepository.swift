import Foundation
import Logging
import ObjectStore
import Shared

/// A new post: its row and the images already in the store.
struct NewPost: Sendable {
    var id: UUID
    var authorID: UUID
    /// The name in the author's token, and its version (`UserEvent.nameVersion(issuedAt:)`).
    var authorName: String
    var authorNameVersion: Int64
    var title: String
    var content: String
    var images: [PostImageRecord]
}

/// One `PATCH`: what changes, checked and applied in one transaction.
struct PostChange: Sendable {
    var id: UUID
    var authorID: UUID
    var title: String?
    var content: String?
    /// Appended after the post's current images, in this order.
    var addImages: [PostImageRecord]
    var removeImageIDs: [UUID]
}

enum UpdateOutcome: Sendable {
    /// The post after the change, and the object keys of the images it no longer has.
    case updated(PostRecord, removedObjectKeys: [String])
    case notFound
    case notAuthor
    /// `removeImageIds` named images this post does not have.
    case unknownImages([UUID])
    /// The post would end up with more images than allowed.
    case tooManyImages
}

enum DeleteOutcome: Sendable {
    /// Gone, with the object keys of its images (to delete after the commit).
    case deleted(removedObjectKeys: [String])
    case notFound
    case notAuthor
}

/// Storage of posts and their image rows. `Sendable` so handlers share one instance.
protocol PostRepository: Sendable {
    /// Inserts the post and its image rows in one transaction.
    func insert(_ post: NewPost, logger: Logger) async throws -> PostRecord
    func post(id: UUID, logger: Logger) async throws -> PostRecord?
    /// Newest first, `page.limit + 1` rows (the extra one says another page follows).
    func list(authorID: UUID?, page: PageRequest, logger: Logger) async throws -> [PostListRow]
    /// Applies the change if the caller is the author and the result is valid; nothing changes otherwise.
    func update(_ change: PostChange, logger: Logger) async throws -> UpdateOutcome
    func delete(id: UUID, authorID: UUID, logger: Logger) async throws -> DeleteOutcome
    /// Deletes every post of the author and forgets their name for good; returns the object
    /// keys of their images.
    func deleteAll(authorID: UUID, logger: Logger) async throws -> [String]
    /// Sets the author's name unless the table has a newer one (`version`).
    func setAuthorName(_ name: String?, version: Int64, authorID: UUID, logger: Logger) async throws
    /// Remembers names looked up in auth for authors the table had no row for (version 0: any
    /// later name wins).
    func backfillAuthorNames(_ names: [UUID: String?], logger: Logger) async throws
    func image(postID: UUID, imageID: UUID, logger: Logger) async throws -> PostImageRecord?
    /// Which of these object keys image rows refer to (for the orphan sweeper).
    func existingObjectKeys(_ objectKeys: [String], logger: Logger) async throws -> Set<String>
}
