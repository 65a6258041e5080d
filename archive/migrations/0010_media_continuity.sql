-- What the media of each segment hold, checked against the wall clock after it was recorded
-- (recorder/continuity.py): media_checked is 1 once checked; the extents are where its video
-- and audio begin and end in the run's media time (NULL: no such stream).
ALTER TABLE segments ADD COLUMN media_checked INTEGER NOT NULL DEFAULT 0;
ALTER TABLE segments ADD COLUMN video_start REAL;
ALTER TABLE segments ADD COLUMN video_end REAL;
ALTER TABLE segments ADD COLUMN audio_start REAL;
ALTER TABLE segments ADD COLUMN audio_end REAL;

-- Stretches of video or audio missing from a segment (or from between it and the run's
-- previous segment), or audio and video drifting apart: from media time media_at of the run,
-- for seconds, with the best known cause.
CREATE TABLE media_holes (
    id         INTEGER PRIMARY KEY,
    segment_id INTEGER NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
    session_id INTEGER NOT NULL REFERENCES sessions (id),
    kind       TEXT NOT NULL CHECK (kind IN ('video', 'audio', 'drift')),
    media_at   REAL NOT NULL,
    seconds    REAL NOT NULL CHECK (seconds >= 0),
    cause      TEXT NOT NULL
);
CREATE INDEX media_holes_session ON media_holes (session_id, segment_id);
