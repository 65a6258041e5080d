-- obrady 0.1.0, schema 12
BEGIN TRANSACTION;
CREATE TABLE agenda_items (
    id         INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    parent_id  INTEGER REFERENCES agenda_items (id) ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    depth      INTEGER NOT NULL,
    number     TEXT NOT NULL,
    title      TEXT NOT NULL
, added INTEGER NOT NULL DEFAULT 0, removed INTEGER NOT NULL DEFAULT 0);
INSERT INTO "agenda_items" VALUES(1,1,NULL,0,0,'1','Otwarcie sesji',0,0);
INSERT INTO "agenda_items" VALUES(2,1,NULL,1,0,'2','Budżet miasta na 2027 rok',0,0);
INSERT INTO "agenda_items" VALUES(3,1,NULL,2,0,'3','Zamknięcie obrad',0,0);
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
CREATE TABLE councillors (
    id      INTEGER PRIMARY KEY,
    term    TEXT NOT NULL,
    name    TEXT NOT NULL,
    caucus  TEXT NOT NULL DEFAULT '',
    active  INTEGER NOT NULL DEFAULT 1,
    UNIQUE (term, name)
);
INSERT INTO "councillors" VALUES(1,'2024-2029','Anna Nowak','Klub A',1);
INSERT INTO "councillors" VALUES(2,'2024-2029','Jan Kowalski','Klub B',1);
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
CREATE TABLE "markers" (
    id         INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN ('item_start', 'break_start', 'break_end',
                                             'closed_start', 'closed_end')),
    at         TEXT NOT NULL,
    item_id    INTEGER REFERENCES agenda_items (id),
    created_by TEXT
);
INSERT INTO "markers" VALUES(1,1,'item_start','2026-11-05T16:00:02.000000+00:00',1,'op');
INSERT INTO "markers" VALUES(2,1,'item_start','2026-11-05T16:00:06.000000+00:00',2,'op');
INSERT INTO "markers" VALUES(3,1,'break_start','2026-11-05T16:00:08.000000+00:00',NULL,'op');
INSERT INTO "markers" VALUES(4,1,'break_end','2026-11-05T16:00:09.000000+00:00',NULL,'op');
CREATE TABLE media_holes (
    id         INTEGER PRIMARY KEY,
    segment_id INTEGER NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
    session_id INTEGER NOT NULL REFERENCES sessions (id),
    kind       TEXT NOT NULL CHECK (kind IN ('video', 'audio', 'drift')),
    media_at   REAL NOT NULL,
    seconds    REAL NOT NULL CHECK (seconds >= 0),
    cause      TEXT NOT NULL
);
CREATE TABLE program (
    chamber    TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    disc       INTEGER NOT NULL,
    segment_id INTEGER NOT NULL UNIQUE REFERENCES segments (id),
    session_id INTEGER NOT NULL REFERENCES sessions (id),
    PRIMARY KEY (chamber, seq)
);
INSERT INTO "program" VALUES('sala',0,0,1,1);
INSERT INTO "program" VALUES('sala',1,0,2,1);
INSERT INTO "program" VALUES('sala',2,0,3,1);
INSERT INTO "program" VALUES('sala',3,0,4,1);
INSERT INTO "program" VALUES('sala',4,0,5,1);
INSERT INTO "program" VALUES('sala',5,0,6,1);
CREATE TABLE program_switches (
    id         INTEGER PRIMARY KEY,
    chamber    TEXT NOT NULL,
    camera     TEXT NOT NULL,
    at         TEXT NOT NULL,
    session_id INTEGER REFERENCES sessions (id),
    created_by TEXT
);
INSERT INTO "program_switches" VALUES(1,'sala','main','2026-11-05T16:00:01.000000+00:00',1,'op');
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
CREATE TABLE "runs" (
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
INSERT INTO "runs" VALUES(1,1,'main',1,'run-0001','2026-11-05T16:00:00.000000+00:00','2026-11-05T16:00:00.000000+00:00',0.0,'2026-11-05T16:00:12.000000+00:00',0,'stopped');
CREATE TABLE search_dirty (session_id INTEGER PRIMARY KEY);
INSERT INTO "search_dirty" VALUES(1);
CREATE TABLE "search_docs" (
    id             INTEGER PRIMARY KEY,
    session_id     INTEGER NOT NULL,
    kind           TEXT NOT NULL
                   CHECK (kind IN ('session', 'item', 'vote', 'councillor', 'speech')),
    ref_id         INTEGER,
    title          TEXT NOT NULL,
    lemmas         TEXT NOT NULL,
    offset_seconds REAL
);
PRAGMA writable_schema=ON;
INSERT INTO sqlite_master(type,name,tbl_name,rootpage,sql)VALUES('table','search_fts','search_fts',0,'CREATE VIRTUAL TABLE search_fts USING fts5 (
    title, body, stems, tokenize = ''unicode61 remove_diacritics 0''
)');
CREATE TABLE 'search_fts_config'(k PRIMARY KEY, v) WITHOUT ROWID;
INSERT INTO "search_fts_config" VALUES('version',4);
CREATE TABLE 'search_fts_content'(id INTEGER PRIMARY KEY, c0, c1, c2);
CREATE TABLE 'search_fts_data'(id INTEGER PRIMARY KEY, block BLOB);
INSERT INTO "search_fts_data" VALUES(1,X'');
INSERT INTO "search_fts_data" VALUES(10,X'00000000000000');
CREATE TABLE 'search_fts_docsize'(id INTEGER PRIMARY KEY, sz BLOB);
CREATE TABLE 'search_fts_idx'(segid, term, pgno, PRIMARY KEY(segid, term)) WITHOUT ROWID;
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
    chamber_disc  INTEGER NOT NULL, sha256 TEXT, media_checked INTEGER NOT NULL DEFAULT 0, video_start REAL, video_end REAL, audio_start REAL, audio_end REAL,
    UNIQUE (run_id, seq),
    UNIQUE (chamber, chamber_seq)
);
INSERT INTO "segments" VALUES(1,1,1,'sala',0,'seg-000000.ts',0.0,2.0,'2026-11-05T16:00:02.000000+00:00',250000,0,0,'0000000000000000000000000000000000000000000000000000000000000000',0,NULL,NULL,NULL,NULL);
INSERT INTO "segments" VALUES(2,1,1,'sala',1,'seg-000001.ts',2.0,2.0,'2026-11-05T16:00:04.000000+00:00',250000,1,0,'0000000000000000000000000000000000000000000000000000000000000001',0,NULL,NULL,NULL,NULL);
INSERT INTO "segments" VALUES(3,1,1,'sala',2,'seg-000002.ts',4.0,2.0,'2026-11-05T16:00:06.000000+00:00',250000,2,0,'0000000000000000000000000000000000000000000000000000000000000002',0,NULL,NULL,NULL,NULL);
INSERT INTO "segments" VALUES(4,1,1,'sala',3,'seg-000003.ts',6.0,2.0,'2026-11-05T16:00:08.000000+00:00',250000,3,0,'0000000000000000000000000000000000000000000000000000000000000003',0,NULL,NULL,NULL,NULL);
INSERT INTO "segments" VALUES(5,1,1,'sala',4,'seg-000004.ts',8.0,2.0,'2026-11-05T16:00:10.000000+00:00',250000,4,0,'0000000000000000000000000000000000000000000000000000000000000004',0,NULL,NULL,NULL,NULL);
INSERT INTO "segments" VALUES(6,1,1,'sala',5,'seg-000005.ts',10.0,2.0,'2026-11-05T16:00:12.000000+00:00',250000,5,0,'0000000000000000000000000000000000000000000000000000000000000005',0,NULL,NULL,NULL,NULL);
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
    created_at      TEXT NOT NULL, published INTEGER NOT NULL DEFAULT 1,
    CHECK (scheduled_end > scheduled_start)
);
INSERT INTO "sessions" VALUES(1,'sala','LXVI Sesja Rady Miasta','session','2026-11-05T16:00:00.000000+00:00','2026-11-05T19:00:00.000000+00:00','ended','2026-11-05T16:00:00.000000+00:00','2026-11-05T16:00:12.000000+00:00','op','1. Otwarcie sesji.
2. Budżet miasta na 2027 rok.
3. Zamknięcie obrad.
','op','2026-12-07T21:14:46.406651+00:00',1);
CREATE TABLE sound_holes (
    id         INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions (id),
    start      TEXT NOT NULL,
    seconds    REAL NOT NULL CHECK (seconds > 0),
    cause      TEXT NOT NULL
);
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
INSERT INTO "transcript_edits" VALUES(1,3,1,'2026-12-07T21:14:46.408886+00:00','staff',NULL,'Zamykam obrady.',NULL,NULL,10.0,11.5);
CREATE TABLE transcript_heard (
    id             INTEGER PRIMARY KEY,
    session_id     INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    start_seconds  REAL NOT NULL,
    end_seconds    REAL NOT NULL,
    at             TEXT NOT NULL,
    CHECK (start_seconds >= 0 AND end_seconds > start_seconds)
);
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
INSERT INTO "transcript_lines" VALUES(1,1,1.0,4.0,'Otwieram sesję Rady Miasta.','automatic','Otwieram sesję Rady Miasta.',NULL,NULL,'2026-12-07T21:14:46.408526+00:00');
INSERT INTO "transcript_lines" VALUES(2,1,6.5,9.5,'Przechodzimy do budżetu miasta.','automatic','Przechodzimy do budżetu miasta.',NULL,NULL,'2026-12-07T21:14:46.408526+00:00');
INSERT INTO "transcript_lines" VALUES(3,1,10.0,11.5,'Zamykam obrady.','corrected',NULL,'staff','2026-12-07T21:14:46.408886+00:00','2026-12-07T21:14:46.408886+00:00');
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
    updated_at        TEXT NOT NULL, pass TEXT NOT NULL DEFAULT 'full'
    CHECK (pass IN ('full', 'rest')), completed_at TEXT,
    CHECK (done_seconds >= 0 AND total_seconds >= 0)
);
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('operator', 'staff', 'admin')),
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL
, disabled INTEGER NOT NULL DEFAULT 0);
INSERT INTO "users" VALUES(1,'op','operator','$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA','2026-12-07T21:14:46.409030+00:00',0);
CREATE TABLE vote_choices (
    vote_id        INTEGER NOT NULL REFERENCES votes (id) ON DELETE CASCADE,
    councillor_id  INTEGER NOT NULL REFERENCES councillors (id),
    name           TEXT NOT NULL,
    caucus         TEXT NOT NULL,
    choice         TEXT NOT NULL CHECK (choice IN ('for', 'against', 'abstain', 'absent')),
    PRIMARY KEY (vote_id, councillor_id)
);
INSERT INTO "vote_choices" VALUES(1,1,'Anna Nowak','Klub A','for');
INSERT INTO "vote_choices" VALUES(1,2,'Jan Kowalski','Klub B','against');
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
INSERT INTO "votes" VALUES(1,1,2,'Uchwała budżetowa na 2027 rok','2026-11-05T16:00:07.000000+00:00','console','op','2026-12-07T21:14:46.408116+00:00');
CREATE INDEX sessions_chamber_state ON sessions (chamber, state);
CREATE INDEX sessions_start ON sessions (scheduled_start);
CREATE INDEX agenda_items_session ON agenda_items (session_id, position);
CREATE INDEX segments_session ON segments (session_id, id);
CREATE INDEX program_session ON program (session_id, seq);
CREATE INDEX program_switches_chamber ON program_switches (chamber, at);
CREATE INDEX markers_session ON markers (session_id, at);
CREATE INDEX logins_user ON logins (user_id);
CREATE INDEX audit_session ON audit (session_id, id);
CREATE INDEX votes_session ON votes (session_id, at);
CREATE INDEX redactions_session ON redactions (session_id);
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
CREATE INDEX transcript_lines_session ON transcript_lines (session_id, start_seconds);
CREATE INDEX transcript_edits_line ON transcript_edits (line_id, id);
CREATE INDEX transcript_edits_session ON transcript_edits (session_id, id);
CREATE INDEX transcript_progress_state ON transcript_progress (state, queued_at);
CREATE INDEX search_docs_session ON search_docs (session_id);
CREATE TRIGGER search_transcript_ins AFTER INSERT ON transcript_lines BEGIN
    INSERT OR IGNORE INTO search_dirty (session_id) VALUES (NEW.session_id);
END;
CREATE TRIGGER search_transcript_upd AFTER UPDATE ON transcript_lines BEGIN
    INSERT OR IGNORE INTO search_dirty (session_id) VALUES (NEW.session_id);
END;
CREATE TRIGGER search_transcript_del AFTER DELETE ON transcript_lines BEGIN
    INSERT OR IGNORE INTO search_dirty (session_id) VALUES (OLD.session_id);
END;
CREATE TRIGGER search_redactions_ins AFTER INSERT ON redactions BEGIN
    INSERT OR IGNORE INTO search_dirty (session_id) VALUES (NEW.session_id);
END;
CREATE TRIGGER search_redactions_del AFTER DELETE ON redactions BEGIN
    INSERT OR IGNORE INTO search_dirty (session_id) VALUES (OLD.session_id);
END;
CREATE INDEX transcript_heard_session ON transcript_heard (session_id, start_seconds);
CREATE INDEX media_holes_session ON media_holes (session_id, segment_id);
CREATE INDEX sound_holes_session ON sound_holes (session_id, start);
PRAGMA writable_schema=OFF;
COMMIT;
