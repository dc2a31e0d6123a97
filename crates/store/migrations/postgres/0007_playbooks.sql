-- Dozor store, PostgreSQL schema v7: playbooks, their runs and steps, approvals (issue 13).
-- Times are milliseconds since the Unix epoch (UTC) as BIGINT.
CREATE TABLE playbooks (
    name        TEXT    COLLATE "C" PRIMARY KEY,
    source      TEXT    NOT NULL,                      -- the YAML text
    origin      TEXT    NOT NULL CHECK (origin IN ('file', 'api')),
    enabled     BOOLEAN NOT NULL DEFAULT TRUE,
    updated_at  BIGINT NOT NULL,
    updated_by  TEXT    NOT NULL
);

-- A run is `running` until the engine ends it; a server that stops mid-run marks its
-- running runs `failed` ("interrupted") at the next start.
CREATE TABLE playbook_runs (
    id           TEXT    COLLATE "C" PRIMARY KEY,                 -- UUID (v7) as text
    playbook     TEXT    NOT NULL,
    trigger      TEXT    NOT NULL CHECK (trigger IN ('alert', 'manual', 'schedule')),
    alert_id     BIGINT,
    agent_id     TEXT,
    requested_by TEXT    NOT NULL,
    dry_run      BOOLEAN NOT NULL DEFAULT FALSE,
    status       TEXT    NOT NULL DEFAULT 'running'
                 CHECK (status IN ('running', 'succeeded', 'failed')),
    error        TEXT,
    vars         JSONB   NOT NULL DEFAULT '{}',
    started_at   BIGINT NOT NULL,
    finished_at  BIGINT,
    steps        BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX playbook_runs_started ON playbook_runs (started_at, id);
CREATE INDEX playbook_runs_alert ON playbook_runs (alert_id) WHERE alert_id IS NOT NULL;
CREATE INDEX playbook_runs_agent ON playbook_runs (agent_id) WHERE agent_id IS NOT NULL;
CREATE INDEX playbook_runs_running ON playbook_runs (status) WHERE status = 'running';

CREATE TABLE playbook_steps (
    run_id   TEXT    COLLATE "C" NOT NULL REFERENCES playbook_runs (id) ON DELETE CASCADE,
    seq      BIGINT NOT NULL,
    status   TEXT    NOT NULL,
    record   JSONB   NOT NULL,                         -- the engine's step record
    PRIMARY KEY (run_id, seq)
);

-- A human decision before a destructive action: a playbook step (run_id set) or a direct
-- command (target holds agent_id, kind, args; command_id is set when approved).
CREATE TABLE approvals (
    id             TEXT    COLLATE "C" PRIMARY KEY,               -- UUID (v7) as text
    run_id         TEXT,
    playbook       TEXT,
    action         TEXT    NOT NULL,
    target         JSONB   NOT NULL DEFAULT '{}',
    reason         TEXT    NOT NULL,
    requested_by   TEXT    NOT NULL,
    other_approver BOOLEAN NOT NULL DEFAULT FALSE,
    status         TEXT    NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'approved', 'rejected', 'expired')),
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    decided_at     BIGINT,
    decided_by     TEXT,
    comment        TEXT,
    command_id     TEXT,
    notified_at    BIGINT                          -- approvers told (claimed once)
);
CREATE INDEX approvals_pending ON approvals (expires_at) WHERE status = 'pending';
CREATE INDEX approvals_created ON approvals (created_at, id);
CREATE INDEX approvals_run ON approvals (run_id) WHERE run_id IS NOT NULL;
