-- Transcripts: timed lines of what was said in a session's recording (seconds of its playback
-- timeline), recognised automatically or corrected by staff, and how far recognition has got.

-- A corrected line keeps the recogniser's text; a re-run replaces automatic lines only.
-- An empty corrected line means "nothing was said here" (an invented line, removed by staff).
CREATE TABLE transcript_lines (
    id              INTEGER PRIMARY KEY,
    session_id      INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    start_seconds   REAL NOT NULL,
    end_seconds     REAL NOT NULL,
    text            TEXT NOT NULL,
    source          TEXT NOT NULL CHECK (source IN ('automatic', 'corrected')),
    automatic_text  TEXT,
    corrected_by    TEXT,
    corrected_at    TEXT,
    created_at      TEXT NOT NULL,
    CHECK (start_seconds >= 0 AND end_seconds > start_seconds),
    CHECK (source = 'automatic' OR (corrected_by IS NOT NULL AND corrected_at IS NOT NULL))
);
CREATE INDEX transcript_lines_session ON transcript_lines (session_id, start_seconds);

-- Every correction: who, when, and the line before and after (the history is never rewritten).
CREATE TABLE transcript_edits (
    id            INTEGER PRIMARY KEY,
    line_id       INTEGER NOT NULL REFERENCES transcript_lines (id) ON DELETE CASCADE,
    session_id    INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    at            TEXT NOT NULL,
    user_name     TEXT NOT NULL,
    before_text   TEXT,
    after_text    TEXT NOT NULL,
    before_start  REAL,
    before_end    REAL,
    after_start   REAL NOT NULL,
    after_end     REAL NOT NULL
);
CREATE INDEX transcript_edits_line ON transcript_edits (line_id, id);
CREATE INDEX transcript_edits_session ON transcript_edits (session_id, id);

-- One row per session that was ever queued for recognition.
CREATE TABLE transcript_progress (
    session_id        INTEGER PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    state             TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    done_seconds      REAL NOT NULL DEFAULT 0,
    total_seconds     REAL NOT NULL DEFAULT 0,
    estimated_finish  TEXT,
    error             TEXT,
    model             TEXT,
    queued_at         TEXT NOT NULL,
    started_at        TEXT,
    finished_at       TEXT,
    updated_at        TEXT NOT NULL,
    CHECK (done_seconds >= 0 AND total_seconds >= 0)
);
CREATE INDEX transcript_progress_state ON transcript_progress (state, queued_at);
