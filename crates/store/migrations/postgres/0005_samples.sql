-- Dozor store, PostgreSQL schema v5: file samples uploaded by agents. The bytes stay in the
-- server's samples directory (named by their SHA-256); this is their metadata and the last
-- scan verdict. Times are milliseconds since the Unix epoch (UTC) as BIGINT.
CREATE TABLE samples (
    sha256         TEXT    COLLATE "C" PRIMARY KEY,              -- lower-case hex
    size           BIGINT  NOT NULL CHECK (size >= 0),           -- bytes
    first_seen     BIGINT  NOT NULL,
    last_seen      BIGINT  NOT NULL,
    uploads        BIGINT  NOT NULL DEFAULT 1 CHECK (uploads >= 1),
    first_agent_id TEXT,                                         -- who uploaded it first
    last_agent_id  TEXT,
    last_path      TEXT    NOT NULL,                             -- its path on that host
    last_verdict   JSONB,                                        -- the last scan's result
    verdict_at     BIGINT
);
-- The listing: newest first.
CREATE INDEX samples_last_seen ON samples (last_seen, sha256);
