import Foundation
import Hummingbird
import Logging
import ObjectStore
import Shared

/// `/recordings`: the caller's recordings. Another user's recording is `404` on every route.
struct RecordingController: Sendable {
    let repository: any RecordingRepository
    let storage: any ObjectStorage
    let receiver: UploadReceiver
    let purger: TrashPurger
    let trashRetention: Duration
    /// Asked again before an upload commits: the body may take minutes, and a token revoked
    /// meanwhile (the account deleted) must not leave a recording behind.
    let tokens: AccessTokens
    /// Taken from before the body is read: a refused upload costs no bytes.
    let uploadLimiter: UserRateLimiter
    let contentLinks: ContentLinks

    var endpoints: RouteCollection<AuthenticatedContext> {
        let routes = RouteCollection(context: AuthenticatedContext.self)
        routes.post(use: upload)
        routes.get(use: list)
        routes.get(":id", use: get)
        routes.patch(":id", use: rename)
        routes.delete(":id", use: delete)
        routes.post(":id/restore", use: restore)
        routes.post(":id/link", use: link)
        return routes
    }

    /// The content: with the owner's token, or with a signed link's `?token=` and no header.
    var contentEndpoints: RouteCollection<OptionalAuthContext> {
        let routes = RouteCollection(context: OptionalAuthContext.self)
        routes.get(":id/content", use: content)
        routes.head(":id/content", use: content)
        return routes
    }

    /// Streams the file into the store, then commits the row; the object goes again if the row does not.
    @Sendable func upload(request: Request, context: AuthenticatedContext) async throws -> Response {
        try await uploadLimiter.take(for: context.user.id, logger: context.logger)
        let id = UUID.random()
        let objectKey = RecordingRules.objectKey(id)
        let key = try ObjectKey(objectKey)
        let received: ReceivedUpload
        do {
            received = try await receiver.receive(request, key: key, logger: context.logger)
        } catch UploadFailure.incomplete {
            context.logger.info("upload interrupted", metadata: ["recordingId": "\(id)"])
            throw APIError(.badRequest, code: "upload_incomplete", detail: "The request body ended before the file did.")
        }
        do {
            guard received.sizeBytes > 0 else { throw APIError.validation(field: "file", "is empty") }
            let title = RecordingRules.normalizedTitle(received.title ?? "")
            if !title.isEmpty, let error = RecordingRules.titleError(title) { throw APIError.validation([error]) }
            guard !tokens.isRevoked(context.user) else { throw APIError.invalidToken() }
            let record = try await repository.insert(
                NewRecording(
                    id: id, ownerID: context.user.id,
                    title: title.isEmpty ? String(received.fileName.prefix(RecordingRules.titleLength.upperBound)) : title,
                    fileName: received.fileName, contentType: received.contentType, sizeBytes: received.sizeBytes,
                    sha256: received.sha256, objectKey: objectKey),
                logger: context.logger)
            context.logger.info("recording uploaded", metadata: ["recordingId": "\(id)", "sizeBytes": "\(received.sizeBytes)"])
            return try Response.json(
                RecordingResponse(record), status: .created,
                headers: [.location: "/recordings/\(id.apiString)"])
        } catch {
            // The row may have committed although the database could not confirm it: keep the
            // object (the orphan sweeper removes it if there is no row after all).
            guard !error.leavesWriteInDoubt else { throw error }
            // No row, no object (if this delete fails too, the orphan sweeper takes it later).
            do {
                try await storage.delete(key)
            } catch let deleteError {
                context.logger.warning("could not remove the object of a failed upload", metadata: [
                    "recordingId": "\(id)", "error": "\(deleteError)",
                ])
            }
            throw error
        }
    }

    /// `?deleted=true` lists the trash instead.
    @Sendable func list(request: Request, context: AuthenticatedContext) async throws -> Response {
        let page = try PageRequest(request: request)
        let trash: Bool
        switch request.uri.queryParameters["deleted"].map(String.init) {
        case nil, "false": trash = false
        case "true": trash = true
        default: throw APIError.validation(field: "deleted", "must be true or false")
        }
        let rows = try await repository.list(ownerID: context.user.id, trash: trash, page: page, logger: context.logger)
        return try Response.json(Page(rows: rows, request: page, cursor: \.cursor, item: { RecordingResponse($0.record) }))
    }

    @Sendable func get(request: Request, context: AuthenticatedContext) async throws -> RecordingResponse {
        RecordingResponse(try await ownRecording(context))
    }

    @Sendable func rename(request: Request, context: AuthenticatedContext) async throws -> RecordingResponse {
        let id = try Self.recordingID(context)
        let body = try await request.decodeJSON(as: RenameRequest.self, context: context)
        let title = RecordingRules.normalizedTitle(body.title)
        if let error = RecordingRules.titleError(title) { throw APIError.validation([error]) }
        guard let record = try await repository.rename(id: id, ownerID: context.user.id, title: title, logger: context.logger) else {
            throw RecordingRules.notFound
        }
        return RecordingResponse(record)
    }

    /// Into the trash at once; with a retention of 0 the bytes go at once too.
    @Sendable func delete(request: Request, context: AuthenticatedContext) async throws -> HTTPResponse.Status {
        let id = try Self.recordingID(context)
        guard let record = try await repository.trash(id: id, ownerID: context.user.id, retention: trashRetention, logger: context.logger)
        else { throw RecordingRules.notFound }
        if trashRetention <= .zero {
            // Best effort: a failure leaves the row due, and the purge actor retries.
            await purger.purge([PurgeCandidate(id: record.id, objectKey: record.objectKey)], logger: context.logger)
        }
        return .noContent
    }

    @Sendable func restore(request: Request, context: AuthenticatedContext) async throws -> RecordingResponse {
        let id = try Self.recordingID(context)
        guard let record = try await repository.restore(id: id, ownerID: context.user.id, logger: context.logger) else {
            throw RecordingRules.notFound
        }
        return RecordingResponse(record)
    }

    /// A signed link to the content for a player that cannot send the token (see `ContentLinks`).
    @Sendable func link(request: Request, context: AuthenticatedContext) async throws -> ContentLinkResponse {
        let record = try await ownRecording(context)
        let link = contentLinks.make(recordingID: record.id, ownerID: record.ownerID)
        return ContentLinkResponse(
            url: "/recordings/\(record.id.apiString)/content?token=\(link.token)", expiresAt: link.expiresAt)
    }

    /// The bytes, streamed from the store: `Range`, `If-None-Match`, `HEAD`. The owner's
    /// bearer token, or a signed link's `?token=` (a forged one is `404`, like any recording
    /// the caller may not see; an expired one `403 link_expired`: ask for a new link).
    @Sendable func content(request: Request, context: OptionalAuthContext) async throws -> Response {
        let id = try context.parameters.id("id", orNotFound: RecordingRules.notFound)
        let ownerID: UUID
        if let token = request.uri.queryParameters["token"].map(String.init) {
            switch contentLinks.check(token: token, recordingID: id) {
            case .valid(let owner): ownerID = owner
            case .expired: throw APIError.forbidden("link_expired", "This link has expired. Ask for a new one.")
            case .invalid: throw RecordingRules.notFound
            }
        } else if let user = context.user {
            ownerID = user.id
        } else {
            throw APIError.missingToken
        }
        guard let record = try await repository.recording(id: id, ownerID: ownerID, logger: context.logger) else {
            throw RecordingRules.notFound
        }
        let download = ObjectDownload(
            key: try ObjectKey(record.objectKey), size: record.sizeBytes, contentType: record.contentType,
            entityTag: record.sha256, contentDisposition: ContentDisposition.attachment(fileName: record.fileName))
        do {
            return try await download.response(to: request, storage: storage)
        } catch ObjectStorageError.notFound {
            // A row without its object: purged in between, or lost. Either way there is nothing to send.
            context.logger.error("recording object missing", metadata: ["recordingId": "\(record.id)"])
            throw RecordingRules.notFound
        }
    }

    // MARK: helpers

    static func recordingID(_ context: AuthenticatedContext) throws -> UUID {
        try context.parameters.id("id", orNotFound: RecordingRules.notFound)
    }

    func ownRecording(_ context: AuthenticatedContext) async throws -> RecordingRecord {
        let id = try Self.recordingID(context)
        guard let record = try await repository.recording(id: id, ownerID: context.user.id, logger: context.logger) else {
            throw RecordingRules.notFound
        }
        return record
    }
}
