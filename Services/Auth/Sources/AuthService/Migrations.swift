import Shared

/// The auth database's schema, in order. Released steps never change.
enum AuthMigrations {
    static let all: [Migration] = [
        Migration(version: 1, name: "users and refresh tokens", statements: [
            """
            CREATE TABLE users (
                id uuid PRIMARY KEY,
                email text NOT NULL,
                name text NOT NULL,
                password_hash text NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now(),
                CONSTRAINT users_email_lower CHECK (email = lower(email))
            )
            """,
            "CREATE UNIQUE INDEX users_email_key ON users (email)",
            """
            CREATE TABLE refresh_tokens (
                token_hash bytea PRIMARY KEY,
                user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                session_id uuid NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                expires_at timestamptz NOT NULL,
                rotated_at timestamptz,
                revoked_at timestamptz
            )
            """,
            "CREATE INDEX refresh_tokens_user_active ON refresh_tokens (user_id) WHERE revoked_at IS NULL",
        ]),
        Migration(version: 2, name: "outbox", statements: [
            // Written in the same transaction as the change it announces; delivered later.
            """
            CREATE TABLE outbox_events (
                id bigserial PRIMARY KEY,
                event_type text NOT NULL,
                aggregate_id uuid NOT NULL,
                payload jsonb NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now()
            )
            """,
        ]),
        Migration(version: 3, name: "outbox deliveries", statements: [
            // One row per (event, service): each service acknowledges on its own schedule.
            """
            CREATE TABLE outbox_deliveries (
                event_id bigint NOT NULL REFERENCES outbox_events (id) ON DELETE CASCADE,
                target text NOT NULL,
                attempts integer NOT NULL DEFAULT 0,
                next_attempt_at timestamptz NOT NULL DEFAULT now(),
                delivered_at timestamptz,
                last_error text,
                PRIMARY KEY (event_id, target)
            )
            """,
            "CREATE INDEX outbox_deliveries_due ON outbox_deliveries (next_attempt_at) WHERE delivered_at IS NULL",
        ]),
        Migration(version: 4, name: "revoked tokens", statements: UserEvents.migration),
    ]
}
