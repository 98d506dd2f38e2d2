import Foundation
import Logging
import Shared

enum DeletePollOutcome: Sendable, Equatable {
    case deleted
    case notFound
    /// The poll exists but the caller did not create it.
    case forbidden
}

enum CastVoteOutcome: Sendable, Equatable {
    case cast(createdAt: Date)
    case pollNotFound
    case candidateNotFound
    case pollClosed
    case alreadyVoted
}

enum RetractVoteOutcome: Sendable, Equatable {
    case retracted
    case pollNotFound
    case pollClosed
    case noVote
}

/// Storage of polls and votes. Counts are maintained by the database itself, in the
/// transaction of the vote that changes them. `Sendable` so handlers share one instance.
protocol VoteRepository: Sendable {
    func createPoll(_ poll: NewPoll, logger: Logger) async throws -> PollRecord
    /// Newest first, after `page.cursor`, at most `page.fetchLimit` polls, as seen by `viewer`.
    func polls(page: PageRequest, viewer: UUID?, logger: Logger) async throws -> [PollRecord]
    func poll(id: UUID, viewer: UUID?, logger: Logger) async throws -> PollRecord?
    func deletePoll(id: UUID, requestedBy userID: UUID, logger: Logger) async throws -> DeletePollOutcome
    func castVote(pollID: UUID, candidateID: UUID, userID: UUID, logger: Logger) async throws -> CastVoteOutcome
    func retractVote(pollID: UUID, userID: UUID, logger: Logger) async throws -> RetractVoteOutcome
    /// Current counts of the polls among `pollIDs` that exist.
    func counts(pollIDs: [UUID], logger: Logger) async throws -> [UUID: PollCounts]
    /// Removes the user's votes (counts go down) and the polls they created.
    func deleteUserData(userID: UUID, logger: Logger) async throws -> (votes: Int, polls: Int)
}
