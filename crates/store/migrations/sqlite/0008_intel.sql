-- Dozor store, SQLite schema v8: threat intelligence (issue 14): indicators, their sources'
-- settings and sync status, and the matches found in events.
-- Times are milliseconds since the Unix epoch (UTC).

-- Indicator ids are handed out by the store from this counter, a block per insert under the
-- upsert's lock: an upsert knows its new rows' ids (in the order given) without reading them
-- back, and ids are never reused, so keyset paging by id and a deleted indicator's matches
-- stay exact.
CREATE TABLE ioc_ids (issued INTEGER NOT NULL);
INSERT INTO ioc_ids (issued) VALUES (0);

-- One row per (kind, value); every source that gave it is kept in `sources`.
CREATE TABLE iocs (
    id            INTEGER PRIMARY KEY,                 -- from ioc_ids
    ioc_key       BLOB    NOT NULL UNIQUE,             -- SHA-256 of len(kind) u64 LE, kind, value
    kind          TEXT    NOT NULL,
    value         TEXT    NOT NULL,                    -- canonical (≤ 4,096 bytes)
    value_fold    TEXT,                                -- value lower-cased by the store, when that differs
    misp_type     TEXT,
    to_ids        INTEGER NOT NULL DEFAULT 0,
    tags          TEXT    NOT NULL DEFAULT '[]',       -- JSON array, sorted, unique
    confidence    INTEGER CHECK (confidence BETWEEN 0 AND 100),
    first_seen    INTEGER,
    last_seen     INTEGER,
    expires       INTEGER,                             -- NULL: never
    enabled       INTEGER NOT NULL DEFAULT 1,
    warninglists  TEXT    NOT NULL DEFAULT '[]',       -- JSON array, sorted, unique
    sources       TEXT    NOT NULL DEFAULT '[]',       -- JSON array of {name, object_ids, added_at, seen_at}
    sightings     INTEGER NOT NULL DEFAULT 0,
    last_sighting INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX iocs_value ON iocs (value);
CREATE INDEX iocs_updated ON iocs (updated_at, id);
CREATE INDEX iocs_expires ON iocs (expires) WHERE expires IS NOT NULL;

CREATE TABLE intel_sources (
    name          TEXT    PRIMARY KEY,
    spec          TEXT    NOT NULL DEFAULT '{}',       -- JSON: the source's settings
    enabled       INTEGER NOT NULL DEFAULT 1,
    interval_secs INTEGER NOT NULL DEFAULT 0,
    sync_cursor   TEXT,
    last_sync     TEXT,                                -- JSON: the last sync's status
    updated_at    INTEGER NOT NULL,
    updated_by    TEXT    NOT NULL
);

-- Kind and value are copied from the indicator when recorded, so the matches of a deleted
-- indicator still read (no foreign key on purpose).
CREATE TABLE intel_matches (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    ioc_id      INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    value       TEXT    NOT NULL,
    event_id    TEXT    NOT NULL,
    field       TEXT    NOT NULL,
    observed    TEXT    NOT NULL,
    agent_id    TEXT,
    event_ts    INTEGER NOT NULL,
    matched_at  INTEGER NOT NULL,
    retro       INTEGER NOT NULL DEFAULT 0,
    alerted     INTEGER NOT NULL DEFAULT 0,
    sighting    TEXT    NOT NULL DEFAULT 'none'
                CHECK (sighting IN ('none', 'pending', 'sent', 'failed')),
    UNIQUE (ioc_id, event_id, field)
);
CREATE INDEX intel_matches_ioc ON intel_matches (ioc_id, id);
CREATE INDEX intel_matches_event ON intel_matches (event_id);
CREATE INDEX intel_matches_pending ON intel_matches (id) WHERE sighting = 'pending';
