-- Dozor store v6: an enrollment token may replace (revoke) an enrolled agent of the same
-- hostname only when the administrator who created it said so: NULL = never (the default),
-- '*' = any hostname, otherwise the one hostname (lower-cased) it may replace.
ALTER TABLE enrollment_tokens ADD COLUMN may_replace TEXT;
