-- Dozor store, SQLite schema v3: operator accounts, web sessions, API token owners.
-- Times are milliseconds since the Unix epoch (UTC).

-- Operators. `username_key` is the (trimmed) user name lower-cased by the store (Unicode-aware,
-- the same on both backends; SQLite's lower() folds ASCII only): names are unique
-- case-insensitively. `password_hash` is the PHC string the server made; no password is stored.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT    NOT NULL,
    username_key  TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'analyst', 'viewer')),
    language      TEXT    CHECK (language IS NULL OR language IN ('en', 'ru')),
    created_at    INTEGER NOT NULL,
    created_by    TEXT    NOT NULL,
    updated_at    INTEGER NOT NULL,
    last_login_at INTEGER,
    disabled_at   INTEGER
);
-- The last-administrator guard counts the enabled admins.
CREATE INDEX users_enabled_role ON users (role) WHERE disabled_at IS NULL;

-- Web sessions: only the SHA-256 of the cookie secret is stored.
CREATE TABLE sessions (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    secret_hash  BLOB    NOT NULL UNIQUE,
    csrf_token   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    ip           TEXT,
    user_agent   TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- Per-user API tokens (NULL = a service token of no user).
ALTER TABLE api_tokens ADD COLUMN user_id INTEGER REFERENCES users (id);
CREATE INDEX api_tokens_user ON api_tokens (user_id, id) WHERE user_id IS NOT NULL;
