-- Dozor store, PostgreSQL schema v10: hosts (issue 16). Every host Dozor has heard of, named
-- by its events' `host.name`, and the host on each alert (alerts of one rule are now kept
-- apart per host as well as per agent). Times are milliseconds since the Unix epoch (UTC).

-- `host` as the first matched event spelled it; `host_key` lower case, for filters and the
-- open-alert lookup.
ALTER TABLE alerts ADD COLUMN host TEXT;
ALTER TABLE alerts ADD COLUMN host_key TEXT;
CREATE INDEX alerts_host ON alerts (host_key, last_seen, id);
-- Lists sorted and filtered by detection time (fresh detections on old logs).
CREATE INDEX alerts_created ON alerts (created_at, id);

CREATE TABLE hosts (
    host_key      TEXT    PRIMARY KEY,
    name          TEXT    NOT NULL,
    agent_id      TEXT,
    first_seen    BIGINT  NOT NULL,
    last_seen     BIGINT  NOT NULL,
    last_received BIGINT  NOT NULL,
    events        BIGINT  NOT NULL
);
CREATE INDEX hosts_received ON hosts (last_received);

-- The hosts of events stored before this version.
INSERT INTO hosts (host_key, name, agent_id, first_seen, last_seen, last_received, events)
SELECT lower(h), min(h), max(agent_id), min(ts), max(ts), max(received_at), count(*)
FROM (SELECT COALESCE(NULLIF(btrim(doc -> 'host' ->> 'name'), ''),
                      NULLIF(btrim(doc -> 'host' ->> 'hostname'), '')) AS h,
             agent_id, ts, received_at
      FROM events) AS named
WHERE h IS NOT NULL
GROUP BY lower(h);
