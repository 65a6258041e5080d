-- Several cameras per chamber: a run belongs to one camera, and the chamber's program (what goes
-- live and into the session recording) is the sequence of segments listed in `program`.

CREATE TABLE runs_new (
    id           INTEGER PRIMARY KEY,
    session_id   INTEGER NOT NULL REFERENCES sessions (id),
    camera       TEXT NOT NULL DEFAULT 'main',
    ordinal      INTEGER NOT NULL,
    dir          TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    anchor_at    TEXT,
    media_origin REAL,
    ended_at     TEXT,
    exit_code    INTEGER,
    end_reason   TEXT,
    UNIQUE (session_id, camera, ordinal)
);
INSERT INTO runs_new (id, session_id, camera, ordinal, dir, started_at, anchor_at, media_origin,
                      ended_at, exit_code, end_reason)
    SELECT id, session_id, 'main', ordinal, dir, started_at, anchor_at, media_origin, ended_at,
           exit_code, end_reason FROM runs;
DROP TABLE runs;
ALTER TABLE runs_new RENAME TO runs;

-- seq is the chamber's live media sequence, disc its discontinuity sequence.
CREATE TABLE program (
    chamber    TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    disc       INTEGER NOT NULL,
    segment_id INTEGER NOT NULL UNIQUE REFERENCES segments (id),
    session_id INTEGER NOT NULL REFERENCES sessions (id),
    PRIMARY KEY (chamber, seq)
);
CREATE INDEX program_session ON program (session_id, seq);
INSERT INTO program (chamber, seq, disc, segment_id, session_id)
    SELECT chamber, chamber_seq, chamber_disc, id, session_id FROM segments;

-- Which camera was the program, from when: restored at start-up, shown in the record.
CREATE TABLE program_switches (
    id         INTEGER PRIMARY KEY,
    chamber    TEXT NOT NULL,
    camera     TEXT NOT NULL,
    at         TEXT NOT NULL,
    session_id INTEGER REFERENCES sessions (id),
    created_by TEXT
);
CREATE INDEX program_switches_chamber ON program_switches (chamber, at);
