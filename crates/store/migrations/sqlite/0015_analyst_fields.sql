-- Dozor store, SQLite schema v15: indexed copies of the event fields analysts filter on most
-- (issue 19): `user.name`, `process.name`, `source.ip` and `destination.ip`, lower-cased like
-- host_name (a string, number or boolean of 1 to 256 bytes; anything else, an array included,
-- is NULL and is searched in the document). Searches on them read an index instead of parsing
-- every document of the time range. Upgrading a large store rewrites every event row once.
ALTER TABLE events ADD COLUMN user_name TEXT;
ALTER TABLE events ADD COLUMN process_name TEXT;
ALTER TABLE events ADD COLUMN source_ip TEXT;
ALTER TABLE events ADD COLUMN destination_ip TEXT;

-- The events stored before this version (SQLite's lower() folds ASCII only; new rows are
-- lower-cased by the server with full Unicode folding).
UPDATE events SET
    user_name = CASE json_type(doc, '$.user.name')
        WHEN 'text' THEN lower(json_extract(doc, '$.user.name'))
        WHEN 'integer' THEN CAST(json_extract(doc, '$.user.name') AS TEXT)
        WHEN 'real' THEN CAST(json_extract(doc, '$.user.name') AS TEXT)
        WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' END,
    process_name = CASE json_type(doc, '$.process.name')
        WHEN 'text' THEN lower(json_extract(doc, '$.process.name'))
        WHEN 'integer' THEN CAST(json_extract(doc, '$.process.name') AS TEXT)
        WHEN 'real' THEN CAST(json_extract(doc, '$.process.name') AS TEXT)
        WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' END,
    source_ip = CASE json_type(doc, '$.source.ip')
        WHEN 'text' THEN lower(json_extract(doc, '$.source.ip'))
        WHEN 'integer' THEN CAST(json_extract(doc, '$.source.ip') AS TEXT)
        WHEN 'real' THEN CAST(json_extract(doc, '$.source.ip') AS TEXT)
        WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' END,
    destination_ip = CASE json_type(doc, '$.destination.ip')
        WHEN 'text' THEN lower(json_extract(doc, '$.destination.ip'))
        WHEN 'integer' THEN CAST(json_extract(doc, '$.destination.ip') AS TEXT)
        WHEN 'real' THEN CAST(json_extract(doc, '$.destination.ip') AS TEXT)
        WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' END
WHERE json_type(doc, '$.user') IS NOT NULL OR json_type(doc, '$.process') IS NOT NULL OR json_type(doc, '$.source') IS NOT NULL OR json_type(doc, '$.destination') IS NOT NULL;
UPDATE events SET user_name = NULL
WHERE user_name = '' OR length(CAST(user_name AS BLOB)) > 256;
UPDATE events SET process_name = NULL
WHERE process_name = '' OR length(CAST(process_name AS BLOB)) > 256;
UPDATE events SET source_ip = NULL
WHERE source_ip = '' OR length(CAST(source_ip AS BLOB)) > 256;
UPDATE events SET destination_ip = NULL
WHERE destination_ip = '' OR length(CAST(destination_ip AS BLOB)) > 256;

-- Each field's events in search order; rows without the field are left out of its index.
CREATE INDEX events_user_name_ts ON events (user_name, ts, id) WHERE user_name IS NOT NULL;
CREATE INDEX events_process_name_ts ON events (process_name, ts, id) WHERE process_name IS NOT NULL;
CREATE INDEX events_source_ip_ts ON events (source_ip, ts, id) WHERE source_ip IS NOT NULL;
CREATE INDEX events_destination_ip_ts ON events (destination_ip, ts, id) WHERE destination_ip IS NOT NULL;
