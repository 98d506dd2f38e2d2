import Foundation
import Hummingbird
import Shared

/// A candidate as stored, with its maintained count.
struct CandidateRecord: Sendable, Equatable {
    var id: UUID
    var name: String
    var voteCount: Int
}

/// A poll as stored, seen by one caller (`myVote` is that caller's vote).
struct PollRecord: Sendable {
    var id: UUID
    var title: String
    var createdBy: UUID
    /// Exact, so it can become a keyset cursor.
    var createdAt: PostgresTimestamp
    var closesAt: Date?
    var candidates: [CandidateRecord]
    var myVote: UUID?

    var cursor: PageCursor { PageCursor(createdAt: createdAt, id: id) }
}

/// A poll about to be stored.
struct NewPoll: Sendable {
    var id: UUID
    var title: String
    var createdBy: UUID
    var closesAt: Date?
    /// In the order given; ids are made by the service.
    var candidates: [(id: UUID, name: String)]
}

/// The contract's `poll`.
struct PollResponse: ResponseEncodable, Sendable {
    struct Candidate: Encodable, Sendable {
        var id: UUID
        var name: String
        var voteCount: Int

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id.apiString, forKey: .id)
            try container.encode(name, forKey: .name)
            try container.encode(voteCount, forKey: .voteCount)
        }

        enum CodingKeys: String, CodingKey { case id, name, voteCount }
    }

    var id: UUID
    var title: String
    var createdBy: UUID
    var createdAt: Date
    var closesAt: Date?
    var candidates: [Candidate]
    var totalVotes: Int
    var myVote: UUID?

    init(_ record: PollRecord) {
        self.id = record.id
        self.title = record.title
        self.createdBy = record.createdBy
        self.createdAt = record.createdAt.date
        self.closesAt = record.closesAt
        self.candidates = record.candidates.map { Candidate(id: $0.id, name: $0.name, voteCount: $0.voteCount) }
        self.totalVotes = record.candidates.reduce(0) { $0 + $1.voteCount }
        self.myVote = record.myVote
    }

    enum CodingKeys: String, CodingKey {
        case id, title, createdBy, createdAt, closesAt, candidates, totalVotes, myVote
    }

    /// `closesAt` and `myVote` are always present, `null` when unset.
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id.apiString, forKey: .id)
        try container.encode(title, forKey: .title)
        try container.encode(createdBy.apiString, forKey: .createdBy)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(closesAt, forKey: .closesAt)
        try container.encode(candidates, forKey: .candidates)
        try container.encode(totalVotes, forKey: .totalVotes)
        try container.encode(myVote?.apiString, forKey: .myVote)
    }
}

/// The live counts of one poll: the payload of an `event: counts`.
struct PollCounts: Encodable, Sendable, Equatable {
    struct Candidate: Encodable, Sendable, Equatable {
        var id: UUID
        var voteCount: Int

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id.apiString, forKey: .id)
            try container.encode(voteCount, forKey: .voteCount)
        }

        enum CodingKeys: String, CodingKey { case id, voteCount }
    }

    var pollId: UUID
    var candidates: [Candidate]
    var totalVotes: Int

    enum CodingKeys: String, CodingKey { case pollId, candidates, totalVotes }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(pollId.apiString, forKey: .pollId)
        try container.encode(candidates, forKey: .candidates)
        try container.encode(totalVotes, forKey: .totalVotes)
    }

    init(pollId: UUID, candidates: [Candidate]) {
        self.pollId = pollId
        self.candidates = candidates
        self.totalVotes = candidates.reduce(0) { $0 + $1.voteCount }
    }
}

/// `201` answer of a vote.
struct VoteResponse: Encodable, Sendable {
    var pollId: UUID
    var candidateId: UUID
    var createdAt: Date

    enum CodingKeys: String, CodingKey { case pollId, candidateId, createdAt }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(pollId.apiString, forKey: .pollId)
        try container.encode(candidateId.apiString, forKey: .candidateId)
        try container.encode(createdAt, forKey: .createdAt)
    }
}

struct CreatePollRequest: Decodable {
    var title: String
    var candidates: [String]
    /// Parsed by hand: RFC 3339 with or without fractional seconds.
    var closesAt: String?
}

struct CastVoteRequest: Decodable {
    var candidateId: UUID
}

/// The input rules of the contract, in one place.
enum PollRules {
    static let titleLength = 1...200
    static let candidateCount = 2...50
    static let candidateNameLength = 1...100

    static func trimmed(_ value: String) -> String {
        value.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Checks and normalises a create request: trimmed title and names, parsed `closesAt`.
    static func validate(_ body: CreatePollRequest, now: Date) throws -> (title: String, candidates: [String], closesAt: Date?) {
        var errors: [FieldError] = []
        let title = trimmed(body.title)
        if !titleLength.contains(title.count) {
            errors.append(FieldError(field: "title", message: "must be 1 to 200 characters after trimming"))
        }

        let names = body.candidates.map(trimmed)
        if !candidateCount.contains(names.count) {
            errors.append(FieldError(field: "candidates", message: "must list 2 to 50 candidates"))
        }
        for (index, name) in names.enumerated() where !candidateNameLength.contains(name.count) {
            errors.append(FieldError(field: "candidates.\(index)", message: "must be 1 to 100 characters after trimming"))
        }
        var seen = Set<String>()
        var duplicates: [String] = []
        for name in names where !name.isEmpty && !seen.insert(name.lowercased()).inserted {
            duplicates.append(name)
        }
        if !duplicates.isEmpty {
            errors.append(FieldError(
                field: "candidates",
                message: "must be distinct ignoring case; repeated: \(duplicates.map { "'\($0.prefix(100))'" }.joined(separator: ", "))"))
        }

        var closesAt: Date?
        if let raw = body.closesAt {
            if let date = parseTimestamp(raw) {
                if date > now {
                    closesAt = date
                } else {
                    errors.append(FieldError(field: "closesAt", message: "must be in the future"))
                }
            } else {
                errors.append(FieldError(field: "closesAt", message: "must be an RFC 3339 date-time, e.g. 2026-11-23T15:04:05Z"))
            }
        }
        guard errors.isEmpty else { throw APIError.validation(errors) }
        return (title, names, closesAt)
    }

    /// RFC 3339 with or without fractional seconds.
    static func parseTimestamp(_ value: String) -> Date? {
        let plain = Date.ISO8601FormatStyle()
        let fractional = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        return (try? plain.parse(value)) ?? (try? fractional.parse(value))
    }
}
