import Foundation
import Hummingbird
import Logging
import ObjectStore
import Shared

/// `/feeds`: public reading, author-only changes.
struct PostsController: Sendable {
    let repository: any PostRepository
    let storage: any ObjectStorage
    let receiver: PostFormReceiver
    let authorNames: AuthorNames
    /// Asked again before a post commits (see `create`).
    let tokens: AccessTokens
    /// Taken from before the body is read: a refused post costs no bytes.
    let postLimiter: UserRateLimiter

    /// Routes anyone may call.
    var publicEndpoints: RouteCollection<AppRequestContext> {
        let routes = RouteCollection(context: AppRequestContext.self)
        routes.get(use: list)
        routes.get("{id}", use: get)
        routes.get("{id}/images/{imageId}", use: image)
        routes.head("{id}/images/{imageId}", use: image)
        return routes
    }

    /// Routes that need a signed-in user (and, but for create, the author).
    var authorEndpoints: RouteCollection<AuthenticatedContext> {
        let routes = RouteCollection(context: AuthenticatedContext.self)
        routes.post(use: create)
        routes.patch("{id}", use: update)
        routes.delete("{id}", use: delete)
        return routes
    }

    /// Stores the images first, then commits the row with them; on any failure the images go again.
    @Sendable func create(request: Request, context: AuthenticatedContext) async throws -> Response {
        try await postLimiter.take(for: context.user.id, logger: context.logger)
        let id = UUID.random()
        var stored: [PostImageRecord] = []
        let record: PostRecord
        do {
            let form = try await receiver.receive(request, context: context, postID: id, purpose: .create, stored: &stored)
            let title = PostRules.normalizedTitle(form.title ?? "")
            let content = form.content ?? ""
            let errors = [
                form.title == nil ? FieldError(field: "title", message: "is required") : PostRules.titleError(title),
                PostRules.contentError(content),
            ].compactMap { $0 }
            guard errors.isEmpty else { throw APIError.validation(errors) }
            // The form may take long to arrive: a token revoked meanwhile posts nothing.
            guard !tokens.isRevoked(context.user) else { throw APIError.invalidToken() }
            record = try await repository.insert(
                NewPost(
                    id: id, authorID: context.user.id,
                    authorName: context.user.name, authorNameVersion: UserEvent.nameVersion(issuedAt: context.user.claims.iat),
                    title: title, content: content, images: stored),
                logger: context.logger)
        } catch {
            // Kept when the row may have committed unconfirmed (the sweeper takes them if not).
            if !error.leavesWriteInDoubt {
                await removeObjects(stored.map(\.objectKey), context: context, reason: "failed create")
            }
            throw error
        }
        context.logger.info("post created", metadata: ["postId": "\(id)", "images": "\(record.images.count)"])
        return try Response.json(
            await response(record, context: context), status: .created, headers: [.location: "/feeds/\(id.apiString)"])
    }

    /// `?author=` narrows the list to one author; `limit` and `cursor` page it.
    @Sendable func list(request: Request, context: AppRequestContext) async throws -> Response {
        var authorID: UUID?
        if let raw = request.uri.queryParameters["author"] {
            guard let id = UUID(apiString: String(raw)) else { throw APIError.validation(field: "author", "is not a user id") }
            authorID = id
        }
        let page = try PageRequest(request: request)
        var rows = try await repository.list(authorID: authorID, page: page, logger: context.logger)
        if rows.contains(where: { !$0.record.authorKnown }) {
            let records = await authorNames.complete(rows.map(\.record), requestID: context.requestID, logger: context.logger)
            for index in rows.indices { rows[index].record = records[index] }
        }
        return try Response.json(Page(rows: rows, request: page, cursor: \.cursor, item: { PostResponse($0.record) }))
    }

    @Sendable func get(request: Request, context: AppRequestContext) async throws -> PostResponse {
        let id = try context.parameters.id("id", orNotFound: PostRules.notFound)
        guard let record = try await repository.post(id: id, logger: context.logger) else { throw PostRules.notFound }
        return await response(record, context: context)
    }

    /// Title and content, images added and removed: all or nothing. Removed images' objects
    /// are deleted once the change is committed.
    @Sendable func update(request: Request, context: AuthenticatedContext) async throws -> PostResponse {
        let id = try context.parameters.id("id", orNotFound: PostRules.notFound)
        // Refuse before reading (and storing) anything; the transaction checks again.
        guard let current = try await repository.post(id: id, logger: context.logger) else { throw PostRules.notFound }
        guard current.authorID == context.user.id else { throw PostRules.notAuthor }

        var stored: [PostImageRecord] = []
        let record: PostRecord
        let removedKeys: [String]
        do {
            let form = try await receiver.receive(request, context: context, postID: id, purpose: .update, stored: &stored)
            guard form.title != nil || form.content != nil || !stored.isEmpty || !form.removeImageIDs.isEmpty else {
                throw APIError.validation(field: "body", "send title, content, images or removeImageIds")
            }
            let title = form.title.map(PostRules.normalizedTitle)
            let errors = [title.flatMap(PostRules.titleError), form.content.flatMap(PostRules.contentError)].compactMap { $0 }
            guard errors.isEmpty else { throw APIError.validation(errors) }
            let change = PostChange(
                id: id, authorID: context.user.id, title: title, content: form.content, addImages: stored,
                removeImageIDs: form.removeImageIDs)
            switch try await repository.update(change, logger: context.logger) {
            case .updated(let updated, let removed):
                (record, removedKeys) = (updated, removed)
            case .notFound:
                throw PostRules.notFound
            case .notAuthor:
                throw PostRules.notAuthor
            case .unknownImages(let ids):
                throw APIError.validation(
                    ids.map { FieldError(field: "removeImageIds", message: "\($0.apiString) is not an image of this feed") })
            case .tooManyImages:
                throw PostRules.tooManyImages
            }
        } catch {
            // Kept when the row may have committed unconfirmed (the sweeper takes them if not).
            if !error.leavesWriteInDoubt {
                await removeObjects(stored.map(\.objectKey), context: context, reason: "failed update")
            }
            throw error
        }
        await removeObjects(removedKeys, context: context, reason: "images removed")
        return await response(record, context: context)
    }

    @Sendable func delete(request: Request, context: AuthenticatedContext) async throws -> HTTPResponse.Status {
        let id = try context.parameters.id("id", orNotFound: PostRules.notFound)
        switch try await repository.delete(id: id, authorID: context.user.id, logger: context.logger) {
        case .deleted(let removedKeys):
            await removeObjects(removedKeys, context: context, reason: "post deleted")
            context.logger.info("post deleted", metadata: ["postId": "\(id)"])
            return .noContent
        case .notFound:
            throw PostRules.notFound
        case .notAuthor:
            throw PostRules.notAuthor
        }
    }

    /// The bytes, streamed from the store, with long-lived cache headers (image URLs never change content).
    @Sendable func image(request: Request, context: AppRequestContext) async throws -> Response {
        let postID = try context.parameters.id("id", orNotFound: PostRules.imageNotFound)
        let imageID = try context.parameters.id("imageId", orNotFound: PostRules.imageNotFound)
        guard let image = try await repository.image(postID: postID, imageID: imageID, logger: context.logger) else {
            throw PostRules.imageNotFound
        }
        let download = ObjectDownload(
            key: try ObjectKey(image.objectKey), size: image.sizeBytes, contentType: image.contentType, entityTag: image.sha256,
            cacheControl: PostRules.imageCacheControl)
        do {
            return try await download.response(to: request, storage: storage)
        } catch ObjectStorageError.notFound {
            // A row without its object: deleted in between, or lost. Either way there is nothing to send.
            context.logger.error("post image object missing", metadata: ["postId": "\(postID)", "imageId": "\(imageID)"])
            throw PostRules.imageNotFound
        }
    }

    /// One post with its author's current name.
    func response(_ record: PostRecord, context: some RequestContext) async -> PostResponse {
        guard !record.authorKnown else { return PostResponse(record) }
        let completed = await authorNames.complete([record], requestID: context.requestID, logger: context.logger)
        return PostResponse(completed[0])
    }

    /// Best effort: what cannot be deleted now, the orphan sweeper deletes later.
    func removeObjects(_ keys: [String], context: some RequestContext, reason: String) async {
        await PostImageObjects.remove(keys, from: storage, logger: context.logger, reason: reason)
    }
}
