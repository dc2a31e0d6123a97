-- Dozor store, SQLite schema v12: incidents (cases) that group alerts (issue 16), with tasks,
-- notes, observables and a history of every change (the case's audit trail and timeline).
-- Times are milliseconds since the Unix epoch (UTC).
CREATE TABLE incidents (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    title       TEXT    NOT NULL CHECK (title <> ''),
    description TEXT    NOT NULL DEFAULT '',
    severity    TEXT    NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    status      TEXT    NOT NULL DEFAULT 'open'
                CHECK (status IN ('open', 'in_progress', 'contained', 'closed')),
    owner       TEXT,
    created_by  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    closed_at   INTEGER
);
CREATE INDEX incidents_status_updated ON incidents (status, updated_at, id);
CREATE INDEX incidents_updated ON incidents (updated_at, id);

-- An alert belongs to at most one incident: grouping is a triage decision, not a tag.
CREATE TABLE incident_alerts (
    alert_id    INTEGER PRIMARY KEY REFERENCES alerts (id) ON DELETE CASCADE,
    incident_id INTEGER NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    added_by    TEXT    NOT NULL,
    added_at    INTEGER NOT NULL
);
CREATE INDEX incident_alerts_incident ON incident_alerts (incident_id, alert_id);

CREATE TABLE incident_tasks (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id INTEGER NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    title       TEXT    NOT NULL CHECK (title <> ''),
    done        INTEGER NOT NULL DEFAULT 0,
    created_by  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    done_by     TEXT,
    done_at     INTEGER
);
CREATE INDEX incident_tasks_incident ON incident_tasks (incident_id, id);

CREATE TABLE incident_notes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id INTEGER NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    author      TEXT    NOT NULL,
    body        TEXT    NOT NULL CHECK (body <> ''),
    created_at  INTEGER NOT NULL
);
CREATE INDEX incident_notes_incident ON incident_notes (incident_id, id);

CREATE TABLE incident_observables (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id INTEGER NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    kind        TEXT    NOT NULL
                CHECK (kind IN ('ip', 'domain', 'url', 'hash', 'file', 'user', 'host', 'process', 'other')),
    value       TEXT    NOT NULL CHECK (value <> ''),
    note        TEXT    NOT NULL DEFAULT '',
    added_by    TEXT    NOT NULL,
    added_at    INTEGER NOT NULL,
    UNIQUE (incident_id, kind, value)
);

-- What happened to the case, in order: created, status/owner/severity changes, alerts added.
CREATE TABLE incident_history (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id INTEGER NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    actor       TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    detail      TEXT    NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL
);
CREATE INDEX incident_history_incident ON incident_history (incident_id, id);
