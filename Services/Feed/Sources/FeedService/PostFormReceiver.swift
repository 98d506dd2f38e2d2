import Foundation
import Hummingbird
import Logging
import NIOCore
import ObjectStore
import Shared

/// What a create or update request carried. Its images are already in the store.
struct PostForm: Sendable {
    var title: String?
    var content: String?
    var removeImageIDs: [UUID] = []
}

/// Reads the body of `POST /feeds` and `PATCH /feeds/{id}`: JSON (`{title, content}`), or
/// `multipart/form-data` with `title`, `content`, up to 10 `images` parts and (for updates)
/// one `removeImageIds` part per id.
///
/// Each image streams into the store under `feeds/<postId>/<imageId>` as it arrives, once
/// its first bytes prove it a PNG, JPEG, GIF or WebP (`415` otherwise); more than 10 MiB is
/// `413`. Every image stored is appended to `stored` at once, so that the caller can remove
/// them all again when the request fails later, wherever it fails.
struct PostFormReceiver: Sendable {
    let storage: any ObjectStorage

    /// Largest text fields read (UTF-8 bytes); the character limits are checked afterwards.
    static let maxTitleBytes = 8 * 1024
    static let maxContentBytes = 256 * 1024
    static let maxIDBytes = 64
    /// Removals listed in one request (a post holds at most 10 images).
    static let maxRemovals = 100

    enum Purpose {
        case create
        case update
    }

    func receive(
        _ request: Request, context: some RequestContext, postID: UUID, purpose: Purpose, stored: inout [PostImageRecord]
    ) async throws -> PostForm {
        if let boundary = try MultipartFormReader.boundary(in: request.headers[.contentType]) {
            let reader = MultipartFormReader(body: request.body, boundary: boundary)
            return try await receiveMultipart(reader, postID: postID, purpose: purpose, stored: &stored)
        }
        let body = try await request.decodeJSON(as: PostJSON.self, context: context)
        return PostForm(title: body.title, content: body.content)
    }

    func receiveMultipart(
        _ reader: MultipartFormReader, postID: UUID, purpose: Purpose, stored: inout [PostImageRecord]
    ) async throws -> PostForm {
        var form = PostForm()
        var imageCount = 0
        while let part = try await reader.nextPart() {
            switch part.name {
            case "title":
                guard form.title == nil else { throw Self.repeated("title") }
                form.title = try await reader.text(maxBytes: Self.maxTitleBytes, field: "title")
            case "content":
                guard form.content == nil else { throw Self.repeated("content") }
                form.content = try await reader.text(maxBytes: Self.maxContentBytes, field: "content")
            case "images":
                imageCount += 1
                guard imageCount <= PostRules.maxImages else { throw PostRules.tooManyImages }
                stored.append(try await receiveImage(reader, part: part, postID: postID))
            case "removeImageIds" where purpose == .update:
                let text = try await reader.text(maxBytes: Self.maxIDBytes, field: "removeImageIds")
                guard let id = UUID(apiString: text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
                    throw APIError.validation(field: "removeImageIds", "'\(text.prefix(40))' is not an image id")
                }
                guard form.removeImageIDs.count < Self.maxRemovals else {
                    throw APIError.validation(field: "removeImageIds", "at most \(Self.maxRemovals) ids per request")
                }
                form.removeImageIDs.append(id)
            default:
                let name = part.name ?? "(unnamed)"
                throw APIError.validation(field: String(name.prefix(40)), "is not a field of a post")
            }
        }
        return form
    }

    /// Checks the image's first bytes, then streams it into the store.
    func receiveImage(_ reader: MultipartFormReader, part: MultipartFormReader.Part, postID: UUID) async throws -> PostImageRecord {
        // A declared type is a hint only, but a declared non-image is refused outright.
        if let declared = part.contentType.map(MultipartFormReader.mediaType),
            !declared.hasPrefix("image/"), declared != "application/octet-stream"
        {
            throw PostRules.unsupportedImage
        }
        var head = ByteBuffer()
        while head.readableBytes < ImageFormat.sniffLength, var chunk = try await reader.nextChunk() {
            head.writeBuffer(&chunk)
        }
        guard let format = ImageFormat(sniffing: head.readableBytesView) else { throw PostRules.unsupportedImage }
        let imageID = UUID.random()
        let key = try PostRules.objectKey(postID: postID, imageID: imageID)
        let upload = try await StreamingUpload.put(
            into: storage, key: key, maxBytes: PostRules.maxImageBytes, tooLarge: PostRules.imageTooLarge
        ) { sink in
            try await sink.write(head)
            while let chunk = try await reader.nextChunk() {
                try await sink.write(chunk)
            }
        }
        return PostImageRecord(
            id: imageID, postID: postID, contentType: format.contentType, sizeBytes: upload.sizeBytes, sha256: upload.sha256,
            objectKey: key.rawValue)
    }

    static func repeated(_ field: String) -> APIError {
        APIError.validation(field: field, "is sent more than once")
    }
}
