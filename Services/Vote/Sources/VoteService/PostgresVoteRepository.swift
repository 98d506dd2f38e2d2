import Foundation
import Logging
import PostgresNIO
import Shared

struct PostgresVoteRepository: VoteRepository {
    let database: Database
    /// Told of every committed change to counts, for the live subscribers of every instance.
    let announcer: PollChangeAnnouncer

    func createPoll(_ poll: NewPoll, logger: Logger) async throws -> PollRecord {
        let candidateIDs = poll.candidates.map(\.id)
        let names = poll.candidates.map(\.name)
        let createdAt = try await database.transaction(logger: logger) { connection in
            let rows = try await connection.query(
                """
                INSERT INTO polls (id, title, created_by, closes_at)
                VALUES (\(poll.id), \(poll.title), \(poll.createdBy), \(poll.closesAt))
                RETURNING created_at
                """, logger: logger)
            var createdAt: PostgresTimestamp?
            for try await value in rows.decode(PostgresTimestamp.self) { createdAt = value }
            try await connection.query(
                """
                INSERT INTO candidates (id, poll_id, position, name)
                SELECT c.id, \(poll.id), (c.ordinal - 1)::smallint, c.name
                FROM unnest(\(candidateIDs)::uuid[], \(names)::text[]) WITH ORDINALITY AS c (id, name, ordinal)
                """, logger: logger
            ).consume()
            guard let createdAt else { throw MissingRowError() }
            return createdAt
        }
        return PollRecord(
            id: poll.id, title: poll.title, createdBy: poll.createdBy, createdAt: createdAt, closesAt: poll.closesAt,
            candidates: poll.candidates.map { CandidateRecord(id: $0.id, name: $0.name, voteCount: 0) }, myVote: nil)
    }

    func polls(page: PageRequest, viewer: UUID?, logger: Logger) async throws -> [PollRecord] {
        // The page of polls first, then their candidates and the viewer's votes, in one
        // statement and so one snapshot. Two texts so each keeps a plain index scan.
        let after = page.cursor.map { _ in "WHERE (created_at, id) < ($3, $4)" } ?? ""
        var bindings = PostgresBindings()
        bindings.append(page.fetchLimit)
        bindings.append(viewer)
        if let cursor = page.cursor {
            bindings.append(cursor.createdAt)
            bindings.append(cursor.id)
        }
        let sql = """
            WITH page AS (
                SELECT id, title, created_by, created_at, closes_at FROM polls
                \(after)
                ORDER BY created_at DESC, id DESC
                LIMIT $1
            )
            SELECT p.id, p.title, p.created_by, p.created_at, p.closes_at, c.id, c.name, c.vote_count, v.candidate_id
            FROM page p
            JOIN candidates c ON c.poll_id = p.id
            LEFT JOIN votes v ON v.poll_id = p.id AND v.user_id = $2::uuid
            ORDER BY p.created_at DESC, p.id DESC, c.position
            """
        return try await database.read(logger: logger) { [bindings] connection in
            let rows = try await connection.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger)
            return try await Self.polls(from: rows.decode(PollRow.self))
        }
    }

    func poll(id: UUID, viewer: UUID?, logger: Logger) async throws -> PollRecord? {
        try await database.read(logger: logger) { connection in
            let rows = try await connection.execute(PollByID(pollID: id, viewer: viewer), logger: logger)
            return try await Self.polls(from: rows).first
        }
    }

    func deletePoll(id: UUID, requestedBy userID: UUID, logger: Logger) async throws -> DeletePollOutcome {
        // Candidates and votes go by cascade; the trigger on polls tells the listeners.
        let deleted = try await database.write(logger: logger) { connection in
            try await connection.query(
                "DELETE FROM polls WHERE id = \(id) AND created_by = \(userID) RETURNING id", logger: logger
            ).count()
        }
        if deleted > 0 { return .deleted }
        let exists = try await database.read(logger: logger) { connection in
            try await connection.query("SELECT 1 FROM polls WHERE id = \(id)", logger: logger).count()
        }
        return exists > 0 ? .forbidden : .notFound
    }

    func castVote(pollID: UUID, candidateID: UUID, userID: UUID, logger: Logger) async throws -> CastVoteOutcome {
        // The insert is the whole vote: the unique key lets one row per (poll, user) in,
        // the trigger counts it and announces it, all in this statement's transaction.
        // Only when nothing was inserted do we look at why.
        for _ in 0..<3 {
            do {
                let inserted = try await database.write(logger: logger) { connection in
                    try await connection.execute(
                        InsertVote(pollID: pollID, candidateID: candidateID, userID: userID), logger: logger
                    ).collect()
                }
                if let createdAt = inserted.first {
                    announcer.changed(CollectionOfOne(pollID))
                    return .cast(createdAt: createdAt)
                }
            } catch let error as PSQLError where error.sqlState == Self.foreignKeyViolation {
                // The poll (or candidate) was deleted while we voted.
                return .pollNotFound
            }
            guard let state = try await pollState(pollID: pollID, candidateID: candidateID, userID: userID, logger: logger) else {
                return .pollNotFound
            }
            if state.closed { return .pollClosed }
            if !state.candidateExists { return .candidateNotFound }
            if state.voted { return .alreadyVoted }
            // The conflicting vote was retracted in between: try again.
        }
        return .alreadyVoted
    }

    func retractVote(pollID: UUID, userID: UUID, logger: Logger) async throws -> RetractVoteOutcome {
        let deleted = try await database.write(logger: logger) { connection in
            try await connection.execute(DeleteVote(pollID: pollID, userID: userID), logger: logger).collect()
        }
        if !deleted.isEmpty {
            announcer.changed(CollectionOfOne(pollID))
            return .retracted
        }
        guard let state = try await pollState(pollID: pollID, candidateID: nil, userID: userID, logger: logger) else {
            return .pollNotFound
        }
        return state.closed ? .pollClosed : .noVote
    }

    func counts(pollIDs: [UUID], logger: Logger) async throws -> [UUID: PollCounts] {
        guard !pollIDs.isEmpty else { return [:] }
        let candidates = try await database.read(logger: logger) { connection in
            var candidates: [UUID: [PollCounts.Candidate]] = [:]
            for try await (pollID, candidateID, count) in try await connection.execute(CountsOfPolls(pollIDs: pollIDs), logger: logger) {
                candidates[pollID, default: []].append(PollCounts.Candidate(id: candidateID, voteCount: count))
            }
            return candidates
        }
        return candidates.reduce(into: [:]) { result, entry in
            result[entry.key] = PollCounts(pollId: entry.key, candidates: entry.value)
        }
    }

    func deleteUserData(userID: UUID, logger: Logger) async throws -> (votes: Int, polls: Int) {
        let (votedPolls, polls) = try await database.transaction(logger: logger) { connection in
            // Every candidate row this changes (the user's votes' candidates, the user's polls'
            // candidates) is locked first, in id order: the triggers below then update rows we
            // already hold, so two deletions, each touching many candidates, cannot deadlock.
            try await connection.query(
                """
                SELECT 1 FROM candidates
                WHERE id IN (SELECT candidate_id FROM votes WHERE user_id = \(userID))
                   OR poll_id IN (SELECT id FROM polls WHERE created_by = \(userID))
                ORDER BY id FOR UPDATE
                """, logger: logger
            ).consume()
            // Votes first: the trigger takes each out of its candidate's count.
            var votedPolls: [UUID] = []
            for try await pollID in try await connection.query(
                "DELETE FROM votes WHERE user_id = \(userID) RETURNING poll_id", logger: logger
            ).decode(UUID.self) {
                votedPolls.append(pollID)
            }
            let polls = try await connection.query(
                "DELETE FROM polls WHERE created_by = \(userID) RETURNING id", logger: logger
            ).count()
            return (votedPolls, polls)
        }
        announcer.changed(votedPolls)
        return (votedPolls.count, polls)
    }

    // MARK: helpers

    static let foreignKeyViolation = "23503"

    struct PollState {
        var closed: Bool
        var candidateExists: Bool
        var voted: Bool
    }

    /// Why a vote or retraction changed nothing; `nil` when the poll does not exist.
    private func pollState(pollID: UUID, candidateID: UUID?, userID: UUID, logger: Logger) async throws -> PollState? {
        try await database.read(logger: logger) { connection in
            let rows = try await connection.query(
                """
                SELECT p.closes_at IS NOT NULL AND p.closes_at <= now(),
                       EXISTS (SELECT 1 FROM candidates c WHERE c.poll_id = p.id AND c.id = \(candidateID)::uuid),
                       EXISTS (SELECT 1 FROM votes v WHERE v.poll_id = p.id AND v.user_id = \(userID))
                FROM polls p WHERE p.id = \(pollID)
                """, logger: logger)
            var state: PollState?
            for try await (closed, candidateExists, voted) in rows.decode((Bool, Bool, Bool).self) {
                state = PollState(closed: closed, candidateExists: candidateExists, voted: voted)
            }
            return state
        }
    }

    /// One row per candidate: the poll's columns, the candidate's, and the viewer's vote.
    typealias PollRow = (UUID, String, UUID, PostgresTimestamp, Date?, UUID, String, Int, UUID?)

    /// Folds candidate rows, ordered by poll then position, into polls (order kept).
    static func polls(from rows: some AsyncSequence<PollRow, any Error>) async throws -> [PollRecord] {
        var polls: [PollRecord] = []
        for try await (id, title, createdBy, createdAt, closesAt, candidateID, name, voteCount, myVote) in rows {
            let candidate = CandidateRecord(id: candidateID, name: name, voteCount: voteCount)
            if polls.last?.id == id {
                polls[polls.count - 1].candidates.append(candidate)
            } else {
                polls.append(PollRecord(
                    id: id, title: title, createdBy: createdBy, createdAt: createdAt, closesAt: closesAt,
                    candidates: [candidate], myVote: myVote))
            }
        }
        return polls
    }
}

// MARK: prepared statements (the hot paths: prepared once per connection)

/// A vote, if the poll is open, the candidate is the poll's and the user has not voted.
struct InsertVote: PostgresPreparedStatement {
    static let sql = """
        INSERT INTO votes (poll_id, user_id, candidate_id)
        SELECT c.poll_id, $3, c.id
        FROM candidates c JOIN polls p ON p.id = c.poll_id
        WHERE c.poll_id = $1 AND c.id = $2 AND (p.closes_at IS NULL OR p.closes_at > now())
        ON CONFLICT (poll_id, user_id) DO NOTHING
        RETURNING created_at
        """
    static let bindingDataTypes: [PostgresDataType] = [.uuid, .uuid, .uuid]
    typealias Row = Date

    var pollID: UUID
    var candidateID: UUID
    var userID: UUID

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 3)
        bindings.append(pollID)
        bindings.append(candidateID)
        bindings.append(userID)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        try row.decode(Date.self)
    }
}

/// Takes back a user's vote while the poll is open.
struct DeleteVote: PostgresPreparedStatement {
    static let sql = """
        DELETE FROM votes v USING polls p
        WHERE v.poll_id = $1 AND v.user_id = $2 AND p.id = v.poll_id
          AND (p.closes_at IS NULL OR p.closes_at > now())
        RETURNING v.candidate_id
        """
    static let bindingDataTypes: [PostgresDataType] = [.uuid, .uuid]
    typealias Row = UUID

    var pollID: UUID
    var userID: UUID

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 2)
        bindings.append(pollID)
        bindings.append(userID)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        try row.decode(UUID.self)
    }
}

/// A poll with its candidates in order and the viewer's vote (`$2` may be null).
struct PollByID: PostgresPreparedStatement {
    static let sql = """
        SELECT p.id, p.title, p.created_by, p.created_at, p.closes_at, c.id, c.name, c.vote_count, v.candidate_id
        FROM polls p
        JOIN candidates c ON c.poll_id = p.id
        LEFT JOIN votes v ON v.poll_id = p.id AND v.user_id = $2
        WHERE p.id = $1
        ORDER BY c.position
        """
    static let bindingDataTypes: [PostgresDataType] = [.uuid, .uuid]
    typealias Row = PostgresVoteRepository.PollRow

    var pollID: UUID
    var viewer: UUID?

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 2)
        bindings.append(pollID)
        bindings.append(viewer)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        try row.decode(Row.self)
    }
}

/// The counts of several polls, for the live event streams.
struct CountsOfPolls: PostgresPreparedStatement {
    static let sql = """
        SELECT poll_id, id, vote_count FROM candidates
        WHERE poll_id = ANY($1)
        ORDER BY poll_id, position
        """
    static let bindingDataTypes: [PostgresDataType] = [.uuidArray]
    typealias Row = (UUID, UUID, Int)

    var pollIDs: [UUID]

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 1)
        bindings.append(pollIDs)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        try row.decode(Row.self)
    }
}
