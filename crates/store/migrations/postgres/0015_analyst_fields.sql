-- Dozor store, PostgreSQL schema v15: indexed copies of the event fields analysts filter on
-- most (issue 19): `user.name`, `process.name`, `source.ip` and `destination.ip`, lower-cased
-- like host_name (a string, number or boolean of 1 to 256 bytes; anything else, an array
-- included, is NULL and is searched in the document). Searches on them read an index instead
-- of looking into every document of the range. Upgrading a large store rewrites every event
-- row once.
ALTER TABLE events ADD COLUMN user_name TEXT;
ALTER TABLE events ADD COLUMN process_name TEXT;
ALTER TABLE events ADD COLUMN source_ip TEXT;
ALTER TABLE events ADD COLUMN destination_ip TEXT;

-- The events stored before this version.
UPDATE events SET
    user_name = CASE jsonb_typeof(doc #> '{user,name}')
        WHEN 'string' THEN lower(doc #>> '{user,name}')
        WHEN 'number' THEN doc #>> '{user,name}'
        WHEN 'boolean' THEN doc #>> '{user,name}' END,
    process_name = CASE jsonb_typeof(doc #> '{process,name}')
        WHEN 'string' THEN lower(doc #>> '{process,name}')
        WHEN 'number' THEN doc #>> '{process,name}'
        WHEN 'boolean' THEN doc #>> '{process,name}' END,
    source_ip = CASE jsonb_typeof(doc #> '{source,ip}')
        WHEN 'string' THEN lower(doc #>> '{source,ip}')
        WHEN 'number' THEN doc #>> '{source,ip}'
        WHEN 'boolean' THEN doc #>> '{source,ip}' END,
    destination_ip = CASE jsonb_typeof(doc #> '{destination,ip}')
        WHEN 'string' THEN lower(doc #>> '{destination,ip}')
        WHEN 'number' THEN doc #>> '{destination,ip}'
        WHEN 'boolean' THEN doc #>> '{destination,ip}' END
WHERE doc -> 'user' IS NOT NULL OR doc -> 'process' IS NOT NULL OR doc -> 'source' IS NOT NULL OR doc -> 'destination' IS NOT NULL;
UPDATE events SET user_name = NULL
WHERE user_name = '' OR octet_length(user_name) > 256;
UPDATE events SET process_name = NULL
WHERE process_name = '' OR octet_length(process_name) > 256;
UPDATE events SET source_ip = NULL
WHERE source_ip = '' OR octet_length(source_ip) > 256;
UPDATE events SET destination_ip = NULL
WHERE destination_ip = '' OR octet_length(destination_ip) > 256;

-- Each field's events in search order; rows without the field are left out of its index.
CREATE INDEX events_user_name_ts ON events (user_name, ts DESC, id DESC) WHERE user_name IS NOT NULL;
CREATE INDEX events_process_name_ts ON events (process_name, ts DESC, id DESC) WHERE process_name IS NOT NULL;
CREATE INDEX events_source_ip_ts ON events (source_ip, ts DESC, id DESC) WHERE source_ip IS NOT NULL;
CREATE INDEX events_destination_ip_ts ON events (destination_ip, ts DESC, id DESC) WHERE destination_ip IS NOT NULL;
