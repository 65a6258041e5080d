-- A part of a session closed to the public (wyłączenie jawności) is marked like a break.
CREATE TABLE markers_new (
    id         INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN ('item_start', 'break_start', 'break_end',
                                             'closed_start', 'closed_end')),
    at         TEXT NOT NULL,
    item_id    INTEGER REFERENCES agenda_items (id),
    created_by TEXT
);
INSERT INTO markers_new (id, session_id, kind, at, item_id, created_by)
    SELECT id, session_id, kind, at, item_id, created_by FROM markers;
DROP TABLE markers;
ALTER TABLE markers_new RENAME TO markers;
CREATE INDEX markers_session ON markers (session_id, at);
