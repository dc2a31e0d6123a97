-- Dozor store, PostgreSQL schema v16: the keyword index (issue 19). Free text in a search used
-- to read every document of its time range; it now looks its words up in a GIN index first.
--
-- `words` holds the words of the event (see src/words.rs: runs of letters and digits from the
-- document's values, lower-cased), built with `array_to_tsvector`, which takes them as given:
-- the store decides what a word is, so both backends agree (PostgreSQL's own parser would
-- keep `powershell.exe` as one word).
ALTER TABLE events ADD COLUMN words TSVECTOR;
CREATE INDEX events_words ON events USING GIN (words);

-- Whether events stored before this version still lack their words: the store indexes them
-- when it opens, a batch per transaction, and removes the row when done.
CREATE TABLE event_words_pending (pending BOOLEAN PRIMARY KEY);
INSERT INTO event_words_pending (pending) SELECT true WHERE EXISTS (SELECT 1 FROM events);
