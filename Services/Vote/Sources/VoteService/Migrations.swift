import Shared

/// The vote database's schema, in order. Released steps never change.
enum VoteMigrations {
    /// The channel every change of a poll's counts is announced on (payload: poll ids,
    /// comma-separated; `PollChangeAnnouncer`, and the trigger of a deleted poll); spelled
    /// out in the migrations below, which never change.
    static let notificationChannel = "poll_votes"

    static let all: [Migration] = [
        Migration(version: 1, name: "polls, candidates and votes", statements: [
            """
            CREATE TABLE polls (
                id uuid PRIMARY KEY,
                title text NOT NULL,
                created_by uuid NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                closes_at timestamptz
            )
            """,
            // Keyset pagination, newest first.
            "CREATE INDEX polls_newest ON polls (created_at DESC, id DESC)",
            "CREATE INDEX polls_created_by ON polls (created_by)",
            """
            CREATE TABLE candidates (
                id uuid PRIMARY KEY,
                poll_id uuid NOT NULL REFERENCES polls (id) ON DELETE CASCADE,
                position smallint NOT NULL,
                name text NOT NULL,
                vote_count integer NOT NULL DEFAULT 0,
                CONSTRAINT candidates_vote_count_not_negative CHECK (vote_count >= 0),
                CONSTRAINT candidates_poll_position UNIQUE (poll_id, position),
                -- Target of the votes foreign key: a vote's candidate belongs to the vote's poll.
                CONSTRAINT candidates_poll_candidate UNIQUE (poll_id, id)
            )
            """,
            "CREATE UNIQUE INDEX candidates_poll_name ON candidates (poll_id, lower(name))",
            """
            CREATE TABLE votes (
                poll_id uuid NOT NULL,
                user_id uuid NOT NULL,
                candidate_id uuid NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                -- One vote per user per poll.
                PRIMARY KEY (poll_id, user_id),
                FOREIGN KEY (poll_id, candidate_id) REFERENCES candidates (poll_id, id) ON DELETE CASCADE
            )
            """,
            "CREATE INDEX votes_user ON votes (user_id)",
            // Counts follow the votes table in the same transaction, whoever changes it
            // (a vote, a retraction, a user's data being removed), and every change is
            // announced to the instances' listeners at commit. Concurrent increments of one
            // candidate serialise on its row, so none is lost.
            """
            CREATE FUNCTION votes_maintain_counts() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP IN ('DELETE', 'UPDATE') THEN
                    UPDATE candidates SET vote_count = vote_count - 1 WHERE id = OLD.candidate_id;
                    PERFORM pg_notify('poll_votes', OLD.poll_id::text);
                END IF;
                IF TG_OP IN ('INSERT', 'UPDATE') THEN
                    UPDATE candidates SET vote_count = vote_count + 1 WHERE id = NEW.candidate_id;
                    PERFORM pg_notify('poll_votes', NEW.poll_id::text);
                END IF;
                RETURN NULL;
            END
            $$
            """,
            """
            CREATE TRIGGER votes_maintain_counts AFTER INSERT OR DELETE OR UPDATE OF poll_id, candidate_id ON votes
            FOR EACH ROW EXECUTE FUNCTION votes_maintain_counts()
            """,
            // Subscribers of a deleted poll learn it from the same channel.
            """
            CREATE FUNCTION polls_announce_delete() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM pg_notify('poll_votes', OLD.id::text);
                RETURN NULL;
            END
            $$
            """,
            "CREATE TRIGGER polls_announce_delete AFTER DELETE ON polls FOR EACH ROW EXECUTE FUNCTION polls_announce_delete()",
        ]),
        Migration(version: 2, name: "revoked tokens", statements: UserEvents.migration),
        // Counts still follow the votes in the same transaction; the announcement moves to the
        // service (`PollChangeAnnouncer`: one NOTIFY for many votes), since a NOTIFY per vote
        // made every commit take PostgreSQL's notification queue lock.
        Migration(version: 3, name: "votes announced by the service", statements: [
            """
            CREATE OR REPLACE FUNCTION votes_maintain_counts() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP IN ('DELETE', 'UPDATE') THEN
                    UPDATE candidates SET vote_count = vote_count - 1 WHERE id = OLD.candidate_id;
                END IF;
                IF TG_OP IN ('INSERT', 'UPDATE') THEN
                    UPDATE candidates SET vote_count = vote_count + 1 WHERE id = NEW.candidate_id;
                END IF;
                RETURN NULL;
            END
            $$
            """,
        ]),
    ]
}
