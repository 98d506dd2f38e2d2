import Shared

/// The recording database's schema, in order. Released steps never change.
enum RecordingMigrations {
    static let all: [Migration] = [
        Migration(version: 1, name: "recordings", statements: [
            """
            CREATE TABLE recordings (
                id uuid PRIMARY KEY,
                owner_id uuid NOT NULL,
                title text NOT NULL,
                file_name text NOT NULL,
                content_type text NOT NULL,
                size_bytes bigint NOT NULL CHECK (size_bytes >= 0),
                sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
                object_key text NOT NULL UNIQUE,
                created_at timestamptz NOT NULL DEFAULT now(),
                -- Trash: set together when deleted; the purge removes the row and its object
                -- once purge_after has passed.
                deleted_at timestamptz,
                purge_after timestamptz,
                CONSTRAINT recordings_trash_consistent CHECK ((deleted_at IS NULL) = (purge_after IS NULL))
            )
            """,
            // The owner's list and trash, newest first (keyset pagination).
            "CREATE INDEX recordings_owner_live ON recordings (owner_id, created_at DESC, id DESC) WHERE deleted_at IS NULL",
            "CREATE INDEX recordings_owner_trash ON recordings (owner_id, deleted_at DESC, id DESC) WHERE deleted_at IS NOT NULL",
            "CREATE INDEX recordings_purge_due ON recordings (purge_after) WHERE purge_after IS NOT NULL",
        ]),
        Migration(version: 2, name: "revoked tokens", statements: UserEvents.migration),
        Migration(version: 3, name: "per-user upload limit", statements: UserRateLimit.migration),
    ]
}
