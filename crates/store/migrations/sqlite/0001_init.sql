-- Dozor store, SQLite schema v1. Times are milliseconds since the Unix epoch (UTC).

-- Events. `seq` is the rowid (cheap chunked deletes); `id` (event.id, a UUID as 16 bytes) is
-- the idempotency key. kind/category/action/code are lower-cased copies of event.* from `doc`
-- (category: all values joined with ',').
CREATE TABLE events (
    seq         INTEGER PRIMARY KEY,
    id          BLOB    NOT NULL UNIQUE,
    ts          INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    agent_id    TEXT,
    kind        TEXT,
    category    TEXT,
    action      TEXT,
    code        TEXT,
    doc         TEXT    NOT NULL
);
-- Search order (ts desc, id desc) and time ranges; retention deletes by ts.
CREATE INDEX events_ts ON events (ts, id);
-- Retention counts from when the server stored an event, so imported old logs are kept.
CREATE INDEX events_received ON events (received_at);
-- Per-agent timelines.
CREATE INDEX events_agent_ts ON events (agent_id, ts, id);
-- Dashboards and filters by category / event code within a time range.
CREATE INDEX events_category_ts ON events (category, ts);
CREATE INDEX events_code_ts ON events (code, ts);

CREATE TABLE alerts (
    id          INTEGER PRIMARY KEY,
    rule_id     TEXT    NOT NULL CHECK (rule_id <> ''),
    rule_title  TEXT    NOT NULL,
    level       TEXT    NOT NULL CHECK (level IN ('informational', 'low', 'medium', 'high', 'critical')),
    tags        TEXT    NOT NULL DEFAULT '[]',      -- JSON array of strings
    agent_id    TEXT,
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    count       INTEGER NOT NULL,
    event_ids   TEXT    NOT NULL DEFAULT '[]',      -- JSON array of the first 100 event ids
    status      TEXT    NOT NULL DEFAULT 'new'
                CHECK (status IN ('new', 'acknowledged', 'resolved', 'false_positive')),
    assignee    TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
-- Aggregation: the open alert of a rule on an agent.
CREATE INDEX alerts_open ON alerts (rule_id, agent_id, last_seen)
    WHERE status IN ('new', 'acknowledged');
-- Triage lists and retention.
CREATE INDEX alerts_status_last_seen ON alerts (status, last_seen, id);
CREATE INDEX alerts_last_seen ON alerts (last_seen, id);

CREATE TABLE alert_comments (
    id          INTEGER PRIMARY KEY,
    alert_id    INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    author      TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX alert_comments_alert ON alert_comments (alert_id, id);

CREATE TABLE alert_status_history (
    id          INTEGER PRIMARY KEY,
    alert_id    INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    actor       TEXT    NOT NULL,
    from_status TEXT    NOT NULL,
    to_status   TEXT    NOT NULL,
    note        TEXT,
    changed_at  INTEGER NOT NULL
);
CREATE INDEX alert_status_history_alert ON alert_status_history (alert_id, id);

CREATE TABLE rule_state (
    rule_id     TEXT    PRIMARY KEY,
    enabled     INTEGER NOT NULL DEFAULT 1,
    hit_count   INTEGER NOT NULL DEFAULT 0,
    last_hit    INTEGER,
    updated_at  INTEGER NOT NULL
);

-- Only the SHA-256 of a secret is stored.
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    name         TEXT    NOT NULL,
    role         TEXT    NOT NULL CHECK (role IN ('admin', 'analyst', 'viewer', 'agent-ingest')),
    secret_hash  BLOB    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    last_used_at INTEGER,
    revoked_at   INTEGER
);

CREATE TABLE audit_log (
    id       INTEGER PRIMARY KEY,
    at       INTEGER NOT NULL,
    actor    TEXT    NOT NULL,
    action   TEXT    NOT NULL,
    target   TEXT,
    details  TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
