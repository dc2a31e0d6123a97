-- Dozor store, PostgreSQL schema v14: indexed copies of the event fields that host pages,
-- pivots and process trees look events up by (issue 16): `host.name`, `process.entity_id` and
-- `process.parent.entity_id`, lower-cased like kind/action/code (a string, number or boolean
-- of 1 to 256 bytes; anything else is NULL). `host.name:"X"` and entity-id searches compile to
-- these columns, so they read an index instead of looking into every document of the range.
ALTER TABLE events ADD COLUMN host_name TEXT;
ALTER TABLE events ADD COLUMN entity_id TEXT;
ALTER TABLE events ADD COLUMN parent_entity_id TEXT;

-- The events stored before this version.
UPDATE events SET
    host_name = CASE jsonb_typeof(doc #> '{host,name}')
        WHEN 'string' THEN lower(doc #>> '{host,name}')
        WHEN 'number' THEN doc #>> '{host,name}'
        WHEN 'boolean' THEN doc #>> '{host,name}' END,
    entity_id = CASE jsonb_typeof(doc #> '{process,entity_id}')
        WHEN 'string' THEN lower(doc #>> '{process,entity_id}')
        WHEN 'number' THEN doc #>> '{process,entity_id}'
        WHEN 'boolean' THEN doc #>> '{process,entity_id}' END,
    parent_entity_id = CASE jsonb_typeof(doc #> '{process,parent,entity_id}')
        WHEN 'string' THEN lower(doc #>> '{process,parent,entity_id}')
        WHEN 'number' THEN doc #>> '{process,parent,entity_id}'
        WHEN 'boolean' THEN doc #>> '{process,parent,entity_id}' END
WHERE doc -> 'host' IS NOT NULL OR doc -> 'process' IS NOT NULL;
UPDATE events SET host_name = NULL
WHERE host_name = '' OR octet_length(host_name) > 256;
UPDATE events SET entity_id = NULL
WHERE entity_id = '' OR octet_length(entity_id) > 256;
UPDATE events SET parent_entity_id = NULL
WHERE parent_entity_id = '' OR octet_length(parent_entity_id) > 256;

-- A host's events in search order (host page, host pivots, process lookups by pid on a host).
CREATE INDEX events_host_ts ON events (host_name, ts DESC, id DESC);
-- A process's events and its children's (process trees, the process pivot).
CREATE INDEX events_entity_ts ON events (entity_id, ts DESC, id DESC)
    WHERE entity_id IS NOT NULL;
CREATE INDEX events_parent_entity_ts ON events (parent_entity_id, ts DESC, id DESC)
    WHERE parent_entity_id IS NOT NULL;
