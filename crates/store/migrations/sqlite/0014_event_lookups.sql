-- Dozor store, SQLite schema v14: indexed copies of the event fields that host pages, pivots
-- and process trees look events up by (issue 16): `host.name`, `process.entity_id` and
-- `process.parent.entity_id`, lower-cased like kind/action/code (a string, number or boolean
-- of 1 to 256 bytes; anything else is NULL). `host.name:"X"` and entity-id searches compile to
-- these columns, so they read an index instead of parsing every document of the time range.
ALTER TABLE events ADD COLUMN host_name TEXT;
ALTER TABLE events ADD COLUMN entity_id TEXT;
ALTER TABLE events ADD COLUMN parent_entity_id TEXT;

-- The events stored before this version (SQLite's lower() folds ASCII only; new rows are
-- lower-cased by the server with full Unicode folding).
UPDATE events SET
    host_name = CASE json_type(doc, '$.host.name')
        WHEN 'text' THEN lower(json_extract(doc, '$.host.name'))
        WHEN 'integer' THEN CAST(json_extract(doc, '$.host.name') AS TEXT)
        WHEN 'real' THEN CAST(json_extract(doc, '$.host.name') AS TEXT)
        WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' END,
    entity_id = CASE json_type(doc, '$.process.entity_id')
        WHEN 'text' THEN lower(json_extract(doc, '$.process.entity_id'))
        WHEN 'integer' THEN CAST(json_extract(doc, '$.process.entity_id') AS TEXT)
        WHEN 'real' THEN CAST(json_extract(doc, '$.process.entity_id') AS TEXT)
        WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' END,
    parent_entity_id = CASE json_type(doc, '$.process.parent.entity_id')
        WHEN 'text' THEN lower(json_extract(doc, '$.process.parent.entity_id'))
        WHEN 'integer' THEN CAST(json_extract(doc, '$.process.parent.entity_id') AS TEXT)
        WHEN 'real' THEN CAST(json_extract(doc, '$.process.parent.entity_id') AS TEXT)
        WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' END
WHERE json_type(doc, '$.host') IS NOT NULL OR json_type(doc, '$.process') IS NOT NULL;
UPDATE events SET host_name = NULL
WHERE host_name = '' OR length(CAST(host_name AS BLOB)) > 256;
UPDATE events SET entity_id = NULL
WHERE entity_id = '' OR length(CAST(entity_id AS BLOB)) > 256;
UPDATE events SET parent_entity_id = NULL
WHERE parent_entity_id = '' OR length(CAST(parent_entity_id AS BLOB)) > 256;

-- A host's events in search order (host page, host pivots, process lookups by pid on a host).
CREATE INDEX events_host_ts ON events (host_name, ts, id);
-- A process's events and its children's (process trees, the process pivot).
CREATE INDEX events_entity_ts ON events (entity_id, ts, id) WHERE entity_id IS NOT NULL;
CREATE INDEX events_parent_entity_ts ON events (parent_entity_id, ts, id)
    WHERE parent_entity_id IS NOT NULL;
