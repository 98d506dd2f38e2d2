import Shared

/// The post database's schema, in order. Released steps never change.
enum FeedMigrations {
    static let all: [Migration] = [
        Migration(version: 1, name: "feeds and images", statements: [
            // Only the author's id: names live in the auth service.
            """
            CREATE TABLE feeds (
                id uuid PRIMARY KEY,
                author_id uuid NOT NULL,
                title text NOT NULL,
                content text NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            // Keyset pagination, newest first: (created_at, id) DESC, overall and per author.
            "CREATE INDEX feeds_newest ON feeds (created_at DESC, id DESC)",
            "CREATE INDEX feeds_author_newest ON feeds (author_id, created_at DESC, id DESC)",
            """
            CREATE TABLE feed_images (
                id uuid PRIMARY KEY,
                feed_id uuid NOT NULL REFERENCES feeds (id) ON DELETE CASCADE,
                position integer NOT NULL,
                content_type text NOT NULL,
                size_bytes bigint NOT NULL CHECK (size_bytes > 0),
                sha256 text NOT NULL,
                object_key text NOT NULL UNIQUE,
                created_at timestamptz NOT NULL DEFAULT now(),
                UNIQUE (feed_id, position)
            )
            """,
        ]),
        Migration(version: 2, name: "revoked tokens", statements: UserEvents.migration),
        Migration(version: 3, name: "authors", statements: [
            // Authors' names, kept here so a page of posts is one local query: set from the
            // token's name when a post is created and from `user.renamed` events; `version`
            // orders them (microseconds; a token's name counts as of its `iat`). A null name:
            // auth did not know the user when feed asked (backfill of older posts).
            """
            CREATE TABLE authors (
                id uuid PRIMARY KEY,
                name text,
                version bigint NOT NULL
            )
            """,
        ]),
        Migration(version: 4, name: "per-user post limit", statements: UserRateLimit.migration),
    ]
}
