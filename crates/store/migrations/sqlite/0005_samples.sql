-- Dozor store, SQLite schema v5: file samples uploaded by agents. The bytes stay in the
-- server's samples directory (named by their SHA-256); this is their metadata and the last
-- scan verdict. Times are milliseconds since the Unix epoch (UTC).
CREATE TABLE samples (
    sha256         TEXT    PRIMARY KEY,                          -- lower-case hex
    size           INTEGER NOT NULL CHECK (size >= 0),           -- bytes
    first_seen     INTEGER NOT NULL,
    last_seen      INTEGER NOT NULL,
    uploads        INTEGER NOT NULL DEFAULT 1 CHECK (uploads >= 1),
    first_agent_id TEXT,                                         -- who uploaded it first
    last_agent_id  TEXT,
    last_path      TEXT    NOT NULL,                             -- its path on that host
    last_verdict   TEXT,                                         -- JSON: the last scan's result
    verdict_at     INTEGER
);
-- The listing: newest first.
CREATE INDEX samples_last_seen ON samples (last_seen, sha256);
