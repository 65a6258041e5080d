-- The operator console: cookie logins, the audit log, councillors and nominal votes,
-- agenda changes during a session, publication and redaction of the public copy.

ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;

-- A login is a random token in an HttpOnly cookie; only its SHA-256 is stored.
CREATE TABLE logins (
    id          INTEGER PRIMARY KEY,
    token_hash  TEXT NOT NULL UNIQUE,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    address     TEXT,
    user_agent  TEXT
);
CREATE INDEX logins_user ON logins (user_id);

-- Every action: who, when, what, and the state before and after (JSON).
CREATE TABLE audit (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    user_name   TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    session_id  INTEGER,
    before      TEXT,
    after       TEXT,
    address     TEXT
);
CREATE INDEX audit_session ON audit (session_id, id);

CREATE TABLE councillors (
    id      INTEGER PRIMARY KEY,
    term    TEXT NOT NULL,
    name    TEXT NOT NULL,
    caucus  TEXT NOT NULL DEFAULT '',
    active  INTEGER NOT NULL DEFAULT 1,
    UNIQUE (term, name)
);

-- A nominal vote at the moment it was announced; each choice keeps the name and caucus as
-- they were, so the published list stays true if a councillor's entry is corrected later.
CREATE TABLE votes (
    id          INTEGER PRIMARY KEY,
    session_id  INTEGER NOT NULL REFERENCES sessions (id),
    item_id     INTEGER REFERENCES agenda_items (id),
    subject     TEXT NOT NULL,
    at          TEXT NOT NULL,
    source      TEXT NOT NULL CHECK (source IN ('console', 'csv')),
    created_by  TEXT,
    created_at  TEXT NOT NULL
);
CREATE INDEX votes_session ON votes (session_id, at);

CREATE TABLE vote_choices (
    vote_id        INTEGER NOT NULL REFERENCES votes (id) ON DELETE CASCADE,
    councillor_id  INTEGER NOT NULL REFERENCES councillors (id),
    name           TEXT NOT NULL,
    caucus         TEXT NOT NULL,
    choice         TEXT NOT NULL CHECK (choice IN ('for', 'against', 'abstain', 'absent')),
    PRIMARY KEY (vote_id, councillor_id)
);

-- Agenda changes during a session (zmiana porządku obrad): an item added, or taken off.
ALTER TABLE agenda_items ADD COLUMN added INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agenda_items ADD COLUMN removed INTEGER NOT NULL DEFAULT 0;

-- A recording is public once it exists, unless staff withdraw it.
ALTER TABLE sessions ADD COLUMN published INTEGER NOT NULL DEFAULT 1;

-- Ranges of the recording (seconds of the public timeline) the public copy skips; the
-- original stays, sealed, for authorised staff.
CREATE TABLE redactions (
    id             INTEGER PRIMARY KEY,
    session_id     INTEGER NOT NULL REFERENCES sessions (id),
    start_seconds  REAL NOT NULL,
    end_seconds    REAL NOT NULL,
    reason         TEXT NOT NULL,
    created_by     TEXT,
    created_at     TEXT NOT NULL,
    CHECK (end_seconds > start_seconds AND start_seconds >= 0)
);
CREATE INDEX redactions_session ON redactions (session_id);
