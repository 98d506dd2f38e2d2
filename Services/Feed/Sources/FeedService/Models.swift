import Foundation
import Hummingbird
import ObjectStore
import Shared

/// A post as stored, with its images in order.
struct PostRecord: Sendable, Equatable {
    var id: UUID
    var authorID: UUID
    var title: String
    var content: String
    var createdAt: Date
    var updatedAt: Date
    var images: [PostImageRecord]
    /// The author's name in feed's `authors` table (nil: unknown, or auth did not know them).
    var authorName: String?
    /// Whether the `authors` table has a row for the author (if not, auth is asked once).
    var authorKnown: Bool = true
}

/// One image of a post; its bytes are the object under `objectKey`. (An uploaded image has
/// its object before its row.)
struct PostImageRecord: Sendable, Equatable {
    var id: UUID
    var postID: UUID
    var contentType: String
    var sizeBytes: Int64
    var sha256: String
    var objectKey: String
}

/// A list row: the post and its position for the next page's cursor.
struct PostListRow: Sendable {
    var record: PostRecord
    var cursor: PageCursor
}

/// The contract's `post`.
struct PostResponse: ResponseEncodable, Sendable {
    var id: String
    var title: String
    var content: String
    var author: AuthorResponse
    var images: [ImageResponse]
    var createdAt: Date
    var updatedAt: Date

    init(_ record: PostRecord) {
        self.id = record.id.apiString
        self.title = record.title
        self.content = record.content
        self.author = AuthorResponse(id: record.authorID.apiString, name: record.authorName)
        self.images = record.images.map { ImageResponse($0) }
        self.createdAt = record.createdAt
        self.updatedAt = record.updatedAt
    }
}

/// `{id, name}`; `name` is `null` (written out) when feed does not know it (auth could not say).
struct AuthorResponse: Encodable, Sendable {
    var id: String
    var name: String?

    enum CodingKeys: String, CodingKey {
        case id, name
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(name, forKey: .name)
    }
}

struct ImageResponse: Encodable, Sendable {
    var id: String
    /// The gateway path of the image's bytes.
    var url: String
    var contentType: String
    var sizeBytes: Int64

    init(_ image: PostImageRecord) {
        self.id = image.id.apiString
        self.url = PostRules.imagePath(postID: image.postID, imageID: image.id)
        self.contentType = image.contentType
        self.sizeBytes = image.sizeBytes
    }
}

/// The JSON body of `POST /feeds` and `PATCH /feeds/{id}`.
struct PostJSON: Decodable {
    var title: String?
    var content: String?
}

/// The input rules of the contract, in one place.
enum PostRules {
    static let titleLength = 1...200
    static let maxContentLength = 20_000
    static let maxImages = 10
    static let maxImageBytes: Int64 = 10 * 1024 * 1024
    /// Images are served from immutable URLs (a new image gets a new id).
    static let imageCacheControl = "public, max-age=31536000, immutable"
    static let objectPrefix = "feeds/"

    static func objectKey(postID: UUID, imageID: UUID) throws -> ObjectKey {
        try ObjectKey("\(objectPrefix)\(postID.apiString)/\(imageID.apiString)")
    }

    static func imagePath(postID: UUID, imageID: UUID) -> String {
        "/feeds/\(postID.apiString)/images/\(imageID.apiString)"
    }

    static func normalizedTitle(_ title: String) -> String {
        title.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Lengths count Unicode code points, as JSON Schema's `maxLength` does. NUL cannot be stored.
    static func titleError(_ title: String) -> FieldError? {
        guard titleLength.contains(title.unicodeScalars.count) else {
            return FieldError(field: "title", message: "must be 1 to 200 characters after trimming")
        }
        return title.contains("\u{0}") ? FieldError(field: "title", message: "must not contain NUL characters") : nil
    }

    static func contentError(_ content: String) -> FieldError? {
        guard content.unicodeScalars.count <= maxContentLength else {
            return FieldError(field: "content", message: "must be at most 20000 characters")
        }
        return content.contains("\u{0}") ? FieldError(field: "content", message: "must not contain NUL characters") : nil
    }

    static let tooManyImages = APIError.validation(field: "images", "a post has at most \(maxImages) images")

    static let imageTooLarge = APIError(
        .contentTooLarge, code: "image_too_large", detail: "An image is larger than \(maxImageBytes) bytes (10 MiB).")

    static let unsupportedImage = APIError(
        .unsupportedMediaType, code: "unsupported_image_type",
        detail: "Images must be PNG, JPEG, GIF or WebP files (checked by their contents).")

    static let notFound = APIError.notFound("feed_not_found", "No such feed.")
    static let imageNotFound = APIError.notFound("image_not_found", "No such image.")
    static let notAuthor = APIError.forbidden("not_author", "Only the author may change or delete this feed.")
}

/// The image formats a post may carry, recognised by their first bytes (magic numbers),
/// whatever type the client declared.
enum ImageFormat: String, Sendable, CaseIterable {
    case png = "image/png"
    case jpeg = "image/jpeg"
    case gif = "image/gif"
    case webp = "image/webp"

    var contentType: String { rawValue }

    /// Bytes needed to tell the formats apart (WebP's `RIFF????WEBP`).
    static let sniffLength = 12

    init?(sniffing bytes: some Collection<UInt8>) {
        let head = Array(bytes.prefix(Self.sniffLength))
        func starts(_ magic: [UInt8], at offset: Int = 0) -> Bool {
            head.count >= offset + magic.count && Array(head[offset..<(offset + magic.count)]) == magic
        }
        if starts([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) {
            self = .png
        } else if starts([0xFF, 0xD8, 0xFF]) {
            self = .jpeg
        } else if starts(Array("GIF87a".utf8)) || starts(Array("GIF89a".utf8)) {
            self = .gif
        } else if starts(Array("RIFF".utf8)) && starts(Array("WEBP".utf8), at: 8) {
            self = .webp
        } else {
            return nil
        }
    }
}
