-- Dozor store, SQLite schema v2: agent enrollment tokens and the agent registry.
-- Times are milliseconds since the Unix epoch (UTC).

-- Enrollment tokens: only the SHA-256 of a secret (`dze_` + 32 random bytes) is stored.
CREATE TABLE enrollment_tokens (
    id           INTEGER PRIMARY KEY,
    name         TEXT    NOT NULL,
    secret_hash  BLOB    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    created_by   TEXT    NOT NULL,
    expires_at   INTEGER,
    max_uses     INTEGER CHECK (max_uses IS NULL OR max_uses > 0),   -- NULL = unlimited
    uses         INTEGER NOT NULL DEFAULT 0 CHECK (uses >= 0),
    last_used_at INTEGER,
    revoked_at   INTEGER
);

-- Enrolled agents. `hostname_key` is the hostname lower-cased by the store (Unicode-aware,
-- the same on both backends; SQLite's lower() folds ASCII only).
CREATE TABLE agents (
    id             TEXT    PRIMARY KEY,
    hostname       TEXT    NOT NULL,
    hostname_key   TEXT    NOT NULL,
    os_type        TEXT    NOT NULL,
    os_name        TEXT,
    os_version     TEXT,
    arch           TEXT,
    agent_version  TEXT    NOT NULL,
    ips            TEXT    NOT NULL DEFAULT '[]',   -- JSON array of strings
    enrolled_at    INTEGER NOT NULL,
    enrolled_by    TEXT    NOT NULL,
    cert_sha256    TEXT    NOT NULL,                -- lower-case hex of the DER client cert
    cert_not_after INTEGER NOT NULL,
    reenrolled_at  INTEGER,
    last_seen      INTEGER NOT NULL,
    last_heartbeat TEXT,                            -- the last heartbeat document (JSON)
    health         TEXT    NOT NULL DEFAULT '[]',   -- JSON array of strings
    offline_since  INTEGER,
    revoked_at     INTEGER,
    revoked_by     TEXT
);
-- Duplicate-hostname lookups and the listing order.
CREATE INDEX agents_hostname ON agents (hostname_key, hostname, id);
-- The offline sweep: live agents that are not yet marked offline, by last_seen.
CREATE INDEX agents_silent ON agents (last_seen)
    WHERE revoked_at IS NULL AND offline_since IS NULL;
