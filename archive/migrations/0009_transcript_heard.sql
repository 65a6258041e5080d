-- Stretches of a recording (seconds of its playback timeline) that live captions recognised
-- while the session ran. The recognition after the session hears only the rest; a full re-run
-- asked for by staff forgets them.
CREATE TABLE transcript_heard (
    id             INTEGER PRIMARY KEY,
    session_id     INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    start_seconds  REAL NOT NULL,
    end_seconds    REAL NOT NULL,
    at             TEXT NOT NULL,
    CHECK (start_seconds >= 0 AND end_seconds > start_seconds)
);
CREATE INDEX transcript_heard_session ON transcript_heard (session_id, start_seconds);

-- Which recognition a session's progress is about: 'full' hears the whole recording, 'rest'
-- only what live captions did not hear. completed_at: when the transcript first covered the
-- whole recording (the end of the first recognition of either kind).
ALTER TABLE transcript_progress ADD COLUMN pass TEXT NOT NULL DEFAULT 'full'
    CHECK (pass IN ('full', 'rest'));
ALTER TABLE transcript_progress ADD COLUMN completed_at TEXT;
