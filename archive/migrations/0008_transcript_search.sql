-- What was said is searched too: transcript lines become documents of kind 'speech', and a
-- session is reindexed when its transcript or its redactions change (a redacted stretch is
-- never found).
CREATE TABLE search_docs_new (
    id             INTEGER PRIMARY KEY,
    session_id     INTEGER NOT NULL,
    kind           TEXT NOT NULL
                   CHECK (kind IN ('session', 'item', 'vote', 'councillor', 'speech')),
    ref_id         INTEGER,
    title          TEXT NOT NULL,
    lemmas         TEXT NOT NULL,
    offset_seconds REAL
);
INSERT INTO search_docs_new SELECT * FROM search_docs;
DROP TABLE search_docs;
ALTER TABLE search_docs_new RENAME TO search_docs;
CREATE INDEX search_docs_session ON search_docs (session_id);

CREATE TRIGGER search_transcript_ins AFTER INSERT ON transcript_lines BEGIN
    INSERT OR IGNORE INTO search_dirty (session_id) VALUES (NEW.session_id);
END;
CREATE TRIGGER search_transcript_upd AFTER UPDATE ON transcript_lines BEGIN
    INSERT OR IGNORE INTO search_dirty (session_id) VALUES (NEW.session_id);
END;
CREATE TRIGGER search_transcript_del AFTER DELETE ON transcript_lines BEGIN
    INSERT OR IGNORE INTO search_dirty (session_id) VALUES (OLD.session_id);
END;

CREATE TRIGGER search_redactions_ins AFTER INSERT ON redactions BEGIN
    INSERT OR IGNORE INTO search_dirty (session_id) VALUES (NEW.session_id);
END;
CREATE TRIGGER search_redactions_del AFTER DELETE ON redactions BEGIN
    INSERT OR IGNORE INTO search_dirty (session_id) VALUES (OLD.session_id);
END;
