-- One search over sessions, agenda items, votes and councillors. search_docs holds what a
-- result shows; search_fts holds the same documents as normalized terms (lemmas, surface forms,
-- both without diacritics, and fallback stems) so that inflected Polish queries match.
CREATE TABLE search_docs (
    id             INTEGER PRIMARY KEY,
    session_id     INTEGER NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('session', 'item', 'vote', 'councillor')),
    ref_id         INTEGER,
    title          TEXT NOT NULL,
    lemmas         TEXT NOT NULL,
    offset_seconds REAL
);
CREATE INDEX search_docs_session ON search_docs (session_id);

-- Terms are normalized in Python; diacritics stay so that "stawka" and "stawką" differ only
-- where we decide they do (folded forms are indexed as terms of their own).
CREATE VIRTUAL TABLE search_fts USING fts5 (
    title, body, stems, tokenize = 'unicode61 remove_diacritics 0'
);

-- Sessions whose documents are out of date; the search reindexes them before answering.
-- Triggers keep it filled, so the stores that change these tables need not know about search.
CREATE TABLE search_dirty (session_id INTEGER PRIMARY KEY);
INSERT INTO search_dirty (session_id) SELECT id FROM sessions;

CREATE TRIGGER search_sessions_ins AFTER INSERT ON sessions BEGIN
    INSERT OR IGNORE INTO search_dirty (session_id) VALUES (NEW.id);
END;
CREATE TRIGGER search_sessions_upd AFTER UPDATE ON sessions BEGIN
    INSERT OR IGNORE INTO search_dirty (session_id) VALUES (NEW.id);
END;
CREATE TRIGGER search_sessions_del AFTER DELETE ON sessions BEGIN
    INSERT OR IGNORE INTO search_dirty (session_id) VALUES (OLD.id);
END;

CREATE TRIGGER search_items_ins AFTER INSERT ON agenda_items BEGIN
    INSERT OR IGNORE INTO search_dirty (session_id) VALUES (NEW.session_id);
END;
CREATE TRIGGER search_items_upd AFTER UPDATE ON agenda_items BEGIN
    INSERT OR IGNORE INTO search_dirty (session_id) VALUES (NEW.session_id);
END;
CREATE TRIGGER search_items_del AFTER DELETE ON agenda_items BEGIN
    INSERT OR IGNORE INTO search_dirty (session_id) VALUES (OLD.session_id);
END;

CREATE TRIGGER search_markers_ins AFTER INSERT ON markers BEGIN
    INSERT OR IGNORE INTO search_dirty (session_id) VALUES (NEW.session_id);
END;
CREATE TRIGGER search_markers_upd AFTER UPDATE ON markers BEGIN
    INSERT OR IGNORE INTO search_dirty (session_id) VALUES (NEW.session_id);
END;
CREATE TRIGGER search_markers_del AFTER DELETE ON markers BEGIN
    INSERT OR IGNORE INTO search_dirty (session_id) VALUES (OLD.session_id);
END;

CREATE TRIGGER search_votes_ins AFTER INSERT ON votes BEGIN
    INSERT OR IGNORE INTO search_dirty (session_id) VALUES (NEW.session_id);
END;
CREATE TRIGGER search_votes_upd AFTER UPDATE ON votes BEGIN
    INSERT OR IGNORE INTO search_dirty (session_id) VALUES (NEW.session_id);
END;
CREATE TRIGGER search_votes_del AFTER DELETE ON votes BEGIN
    INSERT OR IGNORE INTO search_dirty (session_id) VALUES (OLD.session_id);
END;

CREATE TRIGGER search_choices_ins AFTER INSERT ON vote_choices BEGIN
    INSERT OR IGNORE INTO search_dirty (session_id)
        SELECT session_id FROM votes WHERE id = NEW.vote_id;
END;
CREATE TRIGGER search_choices_upd AFTER UPDATE ON vote_choices BEGIN
    INSERT OR IGNORE INTO search_dirty (session_id)
        SELECT session_id FROM votes WHERE id = NEW.vote_id;
END;
CREATE TRIGGER search_choices_del AFTER DELETE ON vote_choices BEGIN
    INSERT OR IGNORE INTO search_dirty (session_id)
        SELECT session_id FROM votes WHERE id = OLD.vote_id;
END;
