-- Each session's record (agenda, markers, votes, transcript, redactions, program switches, its
-- audit) is also written beside its media, as media/<chamber>/<session>/record.json, so that the
-- index can be rebuilt from the media folders alone (`obrady index rebuild`). A change to any of
-- those marks its session here (with a version, so that a change made while the record is being
-- written is not lost); the service writes the marked records and clears them.
CREATE TABLE IF NOT EXISTS record_dirty (
    session_id INTEGER PRIMARY KEY,
    version    INTEGER NOT NULL DEFAULT 1
);
INSERT OR IGNORE INTO record_dirty (session_id) SELECT id FROM sessions;
CREATE TRIGGER IF NOT EXISTS record_sessions_ins AFTER INSERT ON sessions BEGIN
    INSERT INTO record_dirty (session_id) SELECT NEW.id WHERE NEW.id IS NOT NULL
        ON CONFLICT (session_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER IF NOT EXISTS record_sessions_upd AFTER UPDATE ON sessions BEGIN
    INSERT INTO record_dirty (session_id) SELECT NEW.id WHERE NEW.id IS NOT NULL
        ON CONFLICT (session_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER IF NOT EXISTS record_items_ins AFTER INSERT ON agenda_items BEGIN
    INSERT INTO record_dirty (session_id) SELECT NEW.session_id WHERE NEW.session_id IS NOT NULL
        ON CONFLICT (session_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER IF NOT EXISTS record_items_upd AFTER UPDATE ON agenda_items BEGIN
    INSERT INTO record_dirty (session_id) SELECT NEW.session_id WHERE NEW.session_id IS NOT NULL
        ON CONFLICT (session_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER IF NOT EXISTS record_items_del AFTER DELETE ON agenda_items BEGIN
    INSERT INTO record_dirty (session_id) SELECT OLD.session_id WHERE OLD.session_id IS NOT NULL
        ON CONFLICT (session_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER IF NOT EXISTS record_markers_ins AFTER INSERT ON markers BEGIN
    INSERT INTO record_dirty (session_id) SELECT NEW.session_id WHERE NEW.session_id IS NOT NULL
        ON CONFLICT (session_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER IF NOT EXISTS record_markers_upd AFTER UPDATE ON markers BEGIN
    INSERT INTO record_dirty (session_id) SELECT NEW.session_id WHERE NEW.session_id IS NOT NULL
        ON CONFLICT (session_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER IF NOT EXISTS record_markers_del AFTER DELETE ON markers BEGIN
    INSERT INTO record_dirty (session_id) SELECT OLD.session_id WHERE OLD.session_id IS NOT NULL
        ON CONFLICT (session_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER IF NOT EXISTS record_votes_ins AFTER INSERT ON votes BEGIN
    INSERT INTO record_dirty (session_id) SELECT NEW.session_id WHERE NEW.session_id IS NOT NULL
        ON CONFLICT (session_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER IF NOT EXISTS record_votes_upd AFTER UPDATE ON votes BEGIN
    INSERT INTO record_dirty (session_id) SELECT NEW.session_id WHERE NEW.session_id IS NOT NULL
        ON CONFLICT (session_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER IF NOT EXISTS record_votes_del AFTER DELETE ON votes BEGIN
    INSERT INTO record_dirty (session_id) SELECT OLD.session_id WHERE OLD.session_id IS NOT NULL
        ON CONFLICT (session_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER IF NOT EXISTS record_redactions_ins AFTER INSERT ON redactions BEGIN
    INSERT INTO record_dirty (session_id) SELECT NEW.session_id WHERE NEW.session_id IS NOT NULL
        ON CONFLICT (session_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER IF NOT EXISTS record_redactions_upd AFTER UPDATE ON redactions BEGIN
    INSERT INTO record_dirty (session_id) SELECT NEW.session_id WHERE NEW.session_id IS NOT NULL
        ON CONFLICT (session_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER IF NOT EXISTS record_redactions_del AFTER DELETE ON redactions BEGIN
    INSERT INTO record_dirty (session_id) SELECT OLD.session_id WHERE OLD.session_id IS NOT NULL
        ON CONFLICT (session_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER IF NOT EXISTS record_switches_ins AFTER INSERT ON program_switches BEGIN
    INSERT INTO record_dirty (session_id) SELECT NEW.session_id WHERE NEW.session_id IS NOT NULL
        ON CONFLICT (session_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER IF NOT EXISTS record_switches_upd AFTER UPDATE ON program_switches BEGIN
    INSERT INTO record_dirty (session_id) SELECT NEW.session_id WHERE NEW.session_id IS NOT NULL
        ON CONFLICT (session_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER IF NOT EXISTS record_switches_del AFTER DELETE ON program_switches BEGIN
    INSERT INTO record_dirty (session_id) SELECT OLD.session_id WHERE OLD.session_id IS NOT NULL
        ON CONFLICT (session_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER IF NOT EXISTS record_lines_ins AFTER INSERT ON transcript_lines BEGIN
    INSERT INTO record_dirty (session_id) SELECT NEW.session_id WHERE NEW.session_id IS NOT NULL
        ON CONFLICT (session_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER IF NOT EXISTS record_lines_upd AFTER UPDATE ON transcript_lines BEGIN
    INSERT INTO record_dirty (session_id) SELECT NEW.session_id WHERE NEW.session_id IS NOT NULL
        ON CONFLICT (session_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER IF NOT EXISTS record_lines_del AFTER DELETE ON transcript_lines BEGIN
    INSERT INTO record_dirty (session_id) SELECT OLD.session_id WHERE OLD.session_id IS NOT NULL
        ON CONFLICT (session_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER IF NOT EXISTS record_edits_ins AFTER INSERT ON transcript_edits BEGIN
    INSERT INTO record_dirty (session_id) SELECT NEW.session_id WHERE NEW.session_id IS NOT NULL
        ON CONFLICT (session_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER IF NOT EXISTS record_edits_upd AFTER UPDATE ON transcript_edits BEGIN
    INSERT INTO record_dirty (session_id) SELECT NEW.session_id WHERE NEW.session_id IS NOT NULL
        ON CONFLICT (session_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER IF NOT EXISTS record_edits_del AFTER DELETE ON transcript_edits BEGIN
    INSERT INTO record_dirty (session_id) SELECT OLD.session_id WHERE OLD.session_id IS NOT NULL
        ON CONFLICT (session_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER IF NOT EXISTS record_sound_holes_ins AFTER INSERT ON sound_holes BEGIN
    INSERT INTO record_dirty (session_id) SELECT NEW.session_id WHERE NEW.session_id IS NOT NULL
        ON CONFLICT (session_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER IF NOT EXISTS record_sound_holes_upd AFTER UPDATE ON sound_holes BEGIN
    INSERT INTO record_dirty (session_id) SELECT NEW.session_id WHERE NEW.session_id IS NOT NULL
        ON CONFLICT (session_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER IF NOT EXISTS record_sound_holes_del AFTER DELETE ON sound_holes BEGIN
    INSERT INTO record_dirty (session_id) SELECT OLD.session_id WHERE OLD.session_id IS NOT NULL
        ON CONFLICT (session_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER IF NOT EXISTS record_heard_ins AFTER INSERT ON transcript_heard BEGIN
    INSERT INTO record_dirty (session_id) SELECT NEW.session_id WHERE NEW.session_id IS NOT NULL
        ON CONFLICT (session_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER IF NOT EXISTS record_heard_upd AFTER UPDATE ON transcript_heard BEGIN
    INSERT INTO record_dirty (session_id) SELECT NEW.session_id WHERE NEW.session_id IS NOT NULL
        ON CONFLICT (session_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER IF NOT EXISTS record_heard_del AFTER DELETE ON transcript_heard BEGIN
    INSERT INTO record_dirty (session_id) SELECT OLD.session_id WHERE OLD.session_id IS NOT NULL
        ON CONFLICT (session_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER IF NOT EXISTS record_choices_ins AFTER INSERT ON vote_choices BEGIN
    INSERT INTO record_dirty (session_id) SELECT (SELECT session_id FROM votes WHERE id = NEW.vote_id) WHERE (SELECT session_id FROM votes WHERE id = NEW.vote_id) IS NOT NULL
        ON CONFLICT (session_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER IF NOT EXISTS record_choices_upd AFTER UPDATE ON vote_choices BEGIN
    INSERT INTO record_dirty (session_id) SELECT (SELECT session_id FROM votes WHERE id = NEW.vote_id) WHERE (SELECT session_id FROM votes WHERE id = NEW.vote_id) IS NOT NULL
        ON CONFLICT (session_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER IF NOT EXISTS record_choices_del AFTER DELETE ON vote_choices BEGIN
    INSERT INTO record_dirty (session_id) SELECT (SELECT session_id FROM votes WHERE id = OLD.vote_id) WHERE (SELECT session_id FROM votes WHERE id = OLD.vote_id) IS NOT NULL
        ON CONFLICT (session_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER IF NOT EXISTS record_progress_ins AFTER INSERT ON transcript_progress BEGIN
    INSERT INTO record_dirty (session_id) SELECT NEW.session_id WHERE NEW.session_id IS NOT NULL
        ON CONFLICT (session_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER IF NOT EXISTS record_progress_state AFTER UPDATE OF state ON transcript_progress BEGIN
    INSERT INTO record_dirty (session_id) SELECT NEW.session_id WHERE NEW.session_id IS NOT NULL
        ON CONFLICT (session_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER IF NOT EXISTS record_audit_ins AFTER INSERT ON audit BEGIN
    INSERT INTO record_dirty (session_id) SELECT NEW.session_id WHERE NEW.session_id IS NOT NULL
        ON CONFLICT (session_id) DO UPDATE SET version = version + 1;
END;
-- A councillor's name or caucus appears in the records of the sessions they voted in.
CREATE TRIGGER IF NOT EXISTS record_councillors_upd AFTER UPDATE ON councillors BEGIN
    INSERT INTO record_dirty (session_id)
        SELECT DISTINCT v.session_id FROM votes v JOIN vote_choices c ON c.vote_id = v.id
        WHERE c.councillor_id = NEW.id
        ON CONFLICT (session_id) DO UPDATE SET version = version + 1;
END;
