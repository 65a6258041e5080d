-- Sessions, their agenda, the markers set while they run, and the recorded segments.
-- Times are ISO 8601 UTC text with microseconds ("2026-11-26T08:00:00.000000+00:00").

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('operator', 'staff', 'admin')),
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL
);

CREATE TABLE sessions (
    id              INTEGER PRIMARY KEY,
    chamber         TEXT NOT NULL,
    title           TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('session', 'committee')),
    scheduled_start TEXT NOT NULL,
    scheduled_end   TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('scheduled', 'live', 'ended')),
    started_at      TEXT,
    ended_at        TEXT,
    stopped_by      TEXT,
    agenda_text     TEXT NOT NULL DEFAULT '',
    created_by      TEXT,
    created_at      TEXT NOT NULL,
    CHECK (scheduled_end > scheduled_start)
);
CREATE INDEX sessions_chamber_state ON sessions (chamber, state);
CREATE INDEX sessions_start ON sessions (scheduled_start);

CREATE TABLE agenda_items (
    id         INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    parent_id  INTEGER REFERENCES agenda_items (id) ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    depth      INTEGER NOT NULL,
    number     TEXT NOT NULL,
    title      TEXT NOT NULL
);
CREATE INDEX agenda_items_session ON agenda_items (session_id, position);

CREATE TABLE markers (
    id         INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN ('item_start', 'break_start', 'break_end')),
    at         TEXT NOT NULL,
    item_id    INTEGER REFERENCES agenda_items (id),
    created_by TEXT
);
CREATE INDEX markers_session ON markers (session_id, at);

-- One run is one ffmpeg process; a session's recording is its runs in order.
-- anchor_at is the wall-clock time of media time 0 in the run, refined as segments arrive.
CREATE TABLE runs (
    id         INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions (id),
    ordinal    INTEGER NOT NULL,
    dir        TEXT NOT NULL,
    started_at TEXT NOT NULL,
    anchor_at  TEXT,
    media_origin REAL,
    ended_at   TEXT,
    exit_code  INTEGER,
    UNIQUE (session_id, ordinal)
);

-- chamber_seq numbers every segment of a chamber (the live media sequence);
-- chamber_disc counts run changes (the live discontinuity sequence).
CREATE TABLE segments (
    id            INTEGER PRIMARY KEY,
    run_id        INTEGER NOT NULL REFERENCES runs (id),
    session_id    INTEGER NOT NULL REFERENCES sessions (id),
    chamber       TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    file          TEXT NOT NULL,
    media_start   REAL NOT NULL,
    duration      REAL NOT NULL,
    observed_at   TEXT NOT NULL,
    size_bytes    INTEGER NOT NULL,
    chamber_seq   INTEGER NOT NULL,
    chamber_disc  INTEGER NOT NULL,
    UNIQUE (run_id, seq),
    UNIQUE (chamber, chamber_seq)
);
CREATE INDEX segments_session ON segments (session_id, id);
