-- Dozor store, SQLite schema v13: saved event searches (issue 16). A search is its owner's
-- unless shared; re-running it replays the query, time range and columns.
CREATE TABLE saved_searches (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL CHECK (name <> ''),
    query       TEXT    NOT NULL,
    params      TEXT    NOT NULL DEFAULT '{}',      -- JSON: time range, columns
    owner       TEXT    NOT NULL,
    shared      INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    last_run_at INTEGER,
    UNIQUE (owner, name)
);
