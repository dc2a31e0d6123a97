-- Dozor store, SQLite schema v11: alert exceptions (issue 16). A rule's matches on events
-- with given field values are counted here instead of alerted.
CREATE TABLE alert_exceptions (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    rule_id            TEXT    NOT NULL CHECK (rule_id <> ''),
    conditions         TEXT    NOT NULL,            -- JSON array of {field, value}
    reason             TEXT    NOT NULL,
    created_by         TEXT    NOT NULL,
    created_at         INTEGER NOT NULL,
    expires_at         INTEGER,
    suppressed         INTEGER NOT NULL DEFAULT 0,
    last_suppressed_at INTEGER
);
CREATE INDEX alert_exceptions_rule ON alert_exceptions (rule_id);
