import Foundation
import Hummingbird
import Shared

/// `/polls`: polls, votes and the caller's own vote.
struct PollsController: Sendable {
    let repository: any VoteRepository

    /// Routes where a token is optional (it only fills in `myVote`).
    var readEndpoints: RouteCollection<OptionalAuthContext> {
        let routes = RouteCollection(context: OptionalAuthContext.self)
        routes.get(use: list)
        routes.get(":pollId", use: read)
        return routes
    }

    /// Routes of the authenticated caller.
    var writeEndpoints: RouteCollection<AuthenticatedContext> {
        let routes = RouteCollection(context: AuthenticatedContext.self)
        routes.post(use: create)
        routes.delete(":pollId", use: delete)
        routes.post(":pollId/votes", use: vote)
        routes.delete(":pollId/votes/me", use: retract)
        return routes
    }

    @Sendable func create(request: Request, context: AuthenticatedContext) async throws -> Response {
        let body = try await request.decodeJSON(as: CreatePollRequest.self, context: context)
        let (title, names, closesAt) = try PollRules.validate(body, now: Date())
        let poll = try await repository.createPoll(
            NewPoll(id: UUID.random(), title: title, createdBy: context.user.id, closesAt: closesAt,
                    candidates: names.map { (id: UUID.random(), name: $0) }),
            logger: context.logger)
        context.logger.info("poll created", metadata: ["pollId": "\(poll.id)"])
        return try Response.json(PollResponse(poll), status: .created, headers: [.location: "/polls/\(poll.id.apiString)"])
    }

    @Sendable func list(request: Request, context: OptionalAuthContext) async throws -> Response {
        let page = try PageRequest(request: request)
        let polls = try await repository.polls(page: page, viewer: context.user?.id, logger: context.logger)
        return try Response.json(Page(rows: polls, request: page, cursor: \.cursor, item: PollResponse.init))
    }

    @Sendable func read(request: Request, context: OptionalAuthContext) async throws -> Response {
        let pollID = try context.parameters.id("pollId", orNotFound: PollsController.pollNotFound)
        guard let poll = try await repository.poll(id: pollID, viewer: context.user?.id, logger: context.logger) else {
            throw Self.pollNotFound
        }
        return try Response.json(PollResponse(poll))
    }

    @Sendable func delete(request: Request, context: AuthenticatedContext) async throws -> HTTPResponse.Status {
        let pollID = try context.parameters.id("pollId", orNotFound: PollsController.pollNotFound)
        switch try await repository.deletePoll(id: pollID, requestedBy: context.user.id, logger: context.logger) {
        case .deleted:
            context.logger.info("poll deleted", metadata: ["pollId": "\(pollID)"])
            return .noContent
        case .notFound:
            throw Self.pollNotFound
        case .forbidden:
            throw APIError.forbidden("forbidden", "Only the poll's creator may delete it.")
        }
    }

    @Sendable func vote(request: Request, context: AuthenticatedContext) async throws -> Response {
        let pollID = try context.parameters.id("pollId", orNotFound: PollsController.pollNotFound)
        let body = try await request.decodeJSON(as: CastVoteRequest.self, context: context)
        switch try await repository.castVote(
            pollID: pollID, candidateID: body.candidateId, userID: context.user.id, logger: context.logger)
        {
        case .cast(let createdAt):
            return try Response.json(VoteResponse(pollId: pollID, candidateId: body.candidateId, createdAt: createdAt), status: .created)
        case .pollNotFound:
            throw Self.pollNotFound
        case .candidateNotFound:
            throw APIError.notFound("candidate_not_found", "This poll has no such candidate.")
        case .pollClosed:
            throw Self.pollClosed
        case .alreadyVoted:
            throw APIError.conflict("already_voted", "You already voted in this poll; retract your vote to change it.")
        }
    }

    @Sendable func retract(request: Request, context: AuthenticatedContext) async throws -> HTTPResponse.Status {
        let pollID = try context.parameters.id("pollId", orNotFound: PollsController.pollNotFound)
        switch try await repository.retractVote(pollID: pollID, userID: context.user.id, logger: context.logger) {
        case .retracted:
            return .noContent
        case .pollNotFound:
            throw Self.pollNotFound
        case .pollClosed:
            throw Self.pollClosed
        case .noVote:
            throw APIError.notFound("vote_not_found", "You have not voted in this poll.")
        }
    }

    static let pollNotFound = APIError.notFound("poll_not_found", "No such poll.")
    static let pollClosed = APIError(.unprocessableContent, code: "poll_closed", detail: "This poll is closed.")
}
