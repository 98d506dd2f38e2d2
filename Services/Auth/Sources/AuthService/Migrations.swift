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
        // The per-account login throttle (LoginThrottle): recent failures per e-mail.
        Migration(version: 5, name: "login failures", statements: [
            """
            CREATE TABLE login_failures (
                email text PRIMARY KEY,
                failures integer NOT NULL,
                last_failed_at timestamptz NOT NULL
            )
            """,
            "CREATE INDEX login_failures_last_failed_at ON login_failures (last_failed_at)",
        ]),
        // E-mail (Mail/): verified addresses, single-use tokens (only their SHA-256), and the
        // durable mail queue the mailer sends from.
        Migration(version: 6, name: "e-mail", statements: [
            "ALTER TABLE users ADD COLUMN email_verified boolean NOT NULL DEFAULT false",
            """
            CREATE TABLE email_tokens (
                token_hash bytea PRIMARY KEY,
                user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                purpose text NOT NULL CHECK (purpose IN ('verify', 'change', 'reset')),
                email text NOT NULL,
                expires_at timestamptz NOT NULL,
                used_at timestamptz
            )
            """,
            "CREATE INDEX email_tokens_user ON email_tokens (user_id)",
            """
            CREATE TABLE mail_outbox (
                id uuid PRIMARY KEY,
                kind text NOT NULL,
                recipient text NOT NULL,
                "values" jsonb,
                created_at timestamptz NOT NULL DEFAULT now(),
                attempts integer NOT NULL DEFAULT 0,
                next_attempt_at timestamptz NOT NULL DEFAULT now(),
                sent_at timestamptz,
                failed_at timestamptz,
                last_error text
            )
            """,
            "CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL",
        ]),
        // Social sign-in (SocialSignIn/): who signs in with which provider; accounts made
        // that way have no password until a reset sets one.
        Migration(version: 7, name: "identities", statements: [
            "ALTER TABLE users ALTER COLUMN password_hash DROP NOT NULL",
            """
            CREATE TABLE identities (
                provider text NOT NULL,
                subject text NOT NULL,
                user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                email text,
                linked_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (provider, subject),
                UNIQUE (user_id, provider)
            )
            """,
        ]),
    ]
}
