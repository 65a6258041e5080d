-- Stretches where the chamber's shared sound (recorder/audiohub.py) had nothing from its source
-- and silence was recorded in its place, on the wall clock: the media hold silence there, so
-- no check of the media can find them. Listed among the session's holes where they fall in
-- its program.
CREATE TABLE IF NOT EXISTS sound_holes (
    id         INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions (id),
    start      TEXT NOT NULL,
    seconds    REAL NOT NULL CHECK (seconds > 0),
    cause      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sound_holes_session ON sound_holes (session_id, start);
