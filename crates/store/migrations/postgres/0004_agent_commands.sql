-- Dozor store, PostgreSQL schema v4: commands from the server to agents (first kind: scan_path).
-- Times are milliseconds since the Unix epoch (UTC) as BIGINT.
--
-- A command is created `pending`; the agent's next heartbeat answer carries it and marks it
-- `delivered` (attempts + 1). A delivered command without a result is handed out again after
-- the redelivery delay, up to the most attempts, then it is `expired`. The owning agent
-- reports it `done` or `failed` once (a late result of an expired command is still kept).
CREATE TABLE agent_commands (
    id           TEXT    COLLATE "C" PRIMARY KEY,     -- UUID (v7) as text
    agent_id     TEXT    COLLATE "C" NOT NULL REFERENCES agents (id),
    kind         TEXT    NOT NULL,                    -- scan_path, ...
    args         JSONB   NOT NULL DEFAULT '{}',
    status       TEXT    NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'delivered', 'done', 'failed', 'expired')),
    requested_by TEXT    NOT NULL,                    -- the user or token name
    created_at   BIGINT  NOT NULL,
    delivered_at BIGINT,                              -- the latest delivery
    attempts     BIGINT  NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    finished_at  BIGINT,                              -- result recorded, or expired
    result       JSONB,                               -- as the agent reported it
    error        TEXT
);
-- An agent's commands, newest first.
CREATE INDEX agent_commands_agent ON agent_commands (agent_id, created_at, id);
-- Delivery: an agent's pending and delivered-but-unfinished commands.
CREATE INDEX agent_commands_open ON agent_commands (agent_id, status)
    WHERE status IN ('pending', 'delivered');
