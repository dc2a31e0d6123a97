-- Dozor store, SQLite schema v16: the keyword index (issue 19). Free text in a search used to
-- read every document of its time range; it now looks its words up here first.
--
-- `event_words` holds the words of each event (see src/words.rs: runs of letters and digits
-- from the document's values, lower-cased), keyed by `events.seq`. Contentless (the words are
-- not stored twice, only indexed), without positions (a phrase is checked against the
-- document instead), and with the `ascii` tokenizer, which splits only where the store put
-- spaces: the store decides what a word is, so both backends agree.
CREATE VIRTUAL TABLE event_words USING fts5 (
    words,
    content = '',
    contentless_delete = 1,
    detail = 'none',
    tokenize = 'ascii'
);
CREATE TRIGGER events_forget_words AFTER DELETE ON events BEGIN
    DELETE FROM event_words WHERE rowid = old.seq;
END;

-- The range of `seq` that holds each hour's events, so a keyword lookup over a time range
-- reads only the index entries of that range (`seq` is arrival order, not event time: an
-- hour whose events arrived late spans more; the range is never too narrow).
CREATE TABLE event_hours (
    hour      INTEGER PRIMARY KEY,
    first_seq INTEGER NOT NULL,
    last_seq  INTEGER NOT NULL
);
CREATE TRIGGER events_note_hour AFTER INSERT ON events BEGIN
    INSERT INTO event_hours (hour, first_seq, last_seq)
    VALUES ((new.ts - ((new.ts % 3600000) + 3600000) % 3600000) / 3600000, new.seq, new.seq)
    ON CONFLICT (hour) DO UPDATE SET
        first_seq = min(first_seq, excluded.first_seq),
        last_seq = max(last_seq, excluded.last_seq);
END;
INSERT INTO event_hours (hour, first_seq, last_seq)
SELECT (ts - ((ts % 3600000) + 3600000) % 3600000) / 3600000, min(seq), max(seq)
FROM events GROUP BY 1;

-- Events whose words are not indexed yet (those stored before this version): the store
-- indexes them when it opens, a batch per transaction, and removes the range when done.
CREATE TABLE event_words_pending (
    first_seq INTEGER NOT NULL,
    last_seq  INTEGER NOT NULL
);
INSERT INTO event_words_pending (first_seq, last_seq)
SELECT min(seq), max(seq) FROM events HAVING count(*) > 0;
