-- Dozor store, SQLite schema v7: playbooks, their runs and steps, approvals (issue 13).
-- Times are milliseconds since the Unix epoch (UTC).
CREATE TABLE playbooks (
    name        TEXT    PRIMARY KEY,
    source      TEXT    NOT NULL,                      -- the YAML text
    origin      TEXT    NOT NULL CHECK (origin IN ('file', 'api')),
    enabled     INTEGER NOT NULL DEFAULT 1,
    updated_at  INTEGER NOT NULL,
    updated_by  TEXT    NOT NULL
);

-- A run is `running` until the engine ends it; a server that stops mid-run marks its
-- running runs `failed` ("interrupted") at the next start.
CREATE TABLE playbook_runs (
    id           TEXT    PRIMARY KEY,                  -- UUID (v7) as text
    playbook     TEXT    NOT NULL,
    trigger      TEXT    NOT NULL CHECK (trigger IN ('alert', 'manual', 'schedule')),
    alert_id     INTEGER,
    agent_id     TEXT,
    requested_by TEXT    NOT NULL,
    dry_run      INTEGER NOT NULL DEFAULT 0,
    status       TEXT    NOT NULL DEFAULT 'running'
                 CHECK (status IN ('running', 'succeeded', 'failed')),
    error        TEXT,
    vars         TEXT    NOT NULL DEFAULT '{}',        -- JSON object
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER,
    steps        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX playbook_runs_started ON playbook_runs (started_at, id);
CREATE INDEX playbook_runs_alert ON playbook_runs (alert_id) WHERE alert_id IS NOT NULL;
CREATE INDEX playbook_runs_agent ON playbook_runs (agent_id) WHERE agent_id IS NOT NULL;
CREATE INDEX playbook_runs_running ON playbook_runs (status) WHERE status = 'running';

CREATE TABLE playbook_steps (
    run_id   TEXT    NOT NULL REFERENCES playbook_runs (id) ON DELETE CASCADE,
    seq      INTEGER NOT NULL,
    status   TEXT    NOT NULL,
    record   TEXT    NOT NULL,                         -- JSON: the engine's step record
    PRIMARY KEY (run_id, seq)
);

-- A human decision before a destructive action: a playbook step (run_id set) or a direct
-- command (target holds agent_id, kind, args; command_id is set when approved).
CREATE TABLE approvals (
    id             TEXT    PRIMARY KEY,                -- UUID (v7) as text
    run_id         TEXT,
    playbook       TEXT,
    action         TEXT    NOT NULL,
    target         TEXT    NOT NULL DEFAULT '{}',      -- JSON
    reason         TEXT    NOT NULL,
    requested_by   TEXT    NOT NULL,
    other_approver INTEGER NOT NULL DEFAULT 0,
    status         TEXT    NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'approved', 'rejected', 'expired')),
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    decided_at     INTEGER,
    decided_by     TEXT,
    comment        TEXT,
    command_id     TEXT,
    notified_at    INTEGER                          -- approvers told (claimed once)
);
CREATE INDEX approvals_pending ON approvals (expires_at) WHERE status = 'pending';
CREATE INDEX approvals_created ON approvals (created_at, id);
CREATE INDEX approvals_run ON approvals (run_id) WHERE run_id IS NOT NULL;
