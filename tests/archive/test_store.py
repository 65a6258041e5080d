"""The archive index: migrations, state rules, chamber numbering, timeline and chapters."""

from __future__ import annotations

import os
import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from archive.agenda import parse_agenda
from archive.index import ArchiveIndex, Conflict, NotFound
from archive.publish import chapters, chapters_vtt, media_playlist, vtt_time
from archive.timeline import Piece, build_timeline

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
AGENDA = "1. Otwarcie sesji.\n2. Budżet:\n a) zmiany budżetu;\n3. Zamknięcie obrad.\n"


@pytest.fixture
def index(tmp_path: Path) -> ArchiveIndex:
    idx = ArchiveIndex(tmp_path / "a.sqlite3")
    yield idx
    idx.close()


def new_session(index: ArchiveIndex, chamber: str = "sala", title: str = "Sesja") -> int:
    return index.create_session(
        chamber=chamber,
        title=title,
        kind="session",
        scheduled_start=T0,
        scheduled_end=T0 + timedelta(hours=2),
        agenda_text=AGENDA,
        agenda=parse_agenda(AGENDA),
        created_by="op",
    ).id


def test_schema_is_migrated_with_wal_and_foreign_keys(tmp_path: Path) -> None:
    idx = ArchiveIndex(tmp_path / "a.sqlite3")
    conn = idx._conn
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 13
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    idx.close()
    ArchiveIndex(tmp_path / "a.sqlite3").close()  # reopening applies nothing twice


def test_agenda_is_stored_nested(index: ArchiveIndex) -> None:
    sid = new_session(index)
    rows = index.agenda(sid)
    assert [(r.number, r.depth) for r in rows] == [("1", 0), ("2", 0), ("2.1", 1), ("3", 0)]
    assert rows[2].parent_id == rows[1].id


def test_one_live_session_per_chamber_and_ended_is_final(index: ArchiveIndex) -> None:
    a, b, c = new_session(index), new_session(index), new_session(index, chamber="komisja")
    index.begin_live(a, T0)
    with pytest.raises(Conflict) as busy:
        index.begin_live(b, T0)
    assert busy.value.live_session_id == a
    index.begin_live(c, T0)  # another chamber is independent
    index.end(a, T0 + timedelta(hours=1), "op")
    with pytest.raises(Conflict, match="never restarted"):
        index.begin_live(a, T0)
    with pytest.raises(NotFound):
        index.begin_live(999, T0)
    index.begin_live(b, T0)


def test_segments_are_numbered_per_chamber_with_discontinuities(index: ArchiveIndex) -> None:
    s1 = new_session(index)
    r1 = index.add_run(s1, 1, "run-0001", T0)
    for seq in range(3):
        index.add_segment(
            r1,
            seq,
            f"seg-{seq:06d}.ts",
            seq * 2.0,
            2.0,
            T0 + timedelta(seconds=2 * seq + 2.3),
            1000,
        )
    r2 = index.add_run(s1, 2, "run-0002", T0 + timedelta(seconds=10))
    index.add_segment(r2, 0, "seg-000000.ts", 1.4, 2.0, T0 + timedelta(seconds=12.2), 1000)
    recent = index.recent_segments("sala", 10)
    assert [s.program_seq for s in recent] == [0, 1, 2, 3]
    assert [s.program_disc for s in recent] == [0, 0, 0, 1]
    runs = index.runs(s1)
    # The anchor is the earliest (seen - media end): 2.3 s after T0 minus 2 s of media.
    assert runs[0].anchor_at == T0 + timedelta(seconds=0.3)
    assert runs[1].anchor_at == T0 + timedelta(seconds=10.2)
    with pytest.raises(sqlite3.IntegrityError):
        index.add_segment(r1, 0, "seg-000000.ts", 0, 2, T0, 1)  # never indexed twice


def test_a_reencoded_run_is_anchored_by_its_frames_before_the_encoder(
    index: ArchiveIndex,
) -> None:
    sid = new_session(index)
    run = index.add_run(sid, 1, "run-0001", T0)
    # Seen 0.85 s after its media end (the encoder's delay); its frames left the decoder with
    # media time 0 at T0 + 0.05 (zero_at is epoch seconds of media time 0, origin 1.4 here).
    zero = (T0 + timedelta(seconds=0.05)).timestamp()
    index.add_segment(run, 0, "seg-000000.ts", 1.4, 1.0, T0 + timedelta(seconds=3.3), 1, None,
                      True, zero)  # fmt: skip
    assert index.runs(sid)[0].anchor_at == T0 + timedelta(seconds=1.45)
    # Whichever bound is earlier wins: a segment seen sooner than the frames said.
    index.add_segment(run, 1, "seg-000001.ts", 2.4, 1.0, T0 + timedelta(seconds=3.42), 1)
    assert index.runs(sid)[0].anchor_at == T0 + timedelta(seconds=1.42)


def test_timeline_maps_moments_across_a_gap() -> None:
    tl = build_timeline(
        [
            Piece(1, "main", T0, 10.0, "camera lost"),
            Piece(2, "main", T0 + timedelta(seconds=15), 5.0, None),
            Piece(3, "main", T0 + timedelta(seconds=20), 0.0, None),
        ],
        ongoing=False,
    )
    assert tl.duration == 15.0
    assert tl.offset_of(T0 - timedelta(seconds=5)) == 0.0
    assert tl.offset_of(T0 + timedelta(seconds=4)) == 4.0
    assert tl.offset_of(T0 + timedelta(seconds=12)) == 10.0  # in the gap: next run's start
    assert tl.offset_of(T0 + timedelta(seconds=17)) == 12.0
    assert tl.offset_of(T0 + timedelta(seconds=99)) == 15.0
    [gap] = tl.gaps()
    assert gap.seconds == 5.0 and gap.offset_seconds == 10.0 and gap.cause == "camera lost"
    assert build_timeline([], ongoing=True).offset_of(T0) is None
    switched = build_timeline(
        [Piece(1, "cam1", T0, 10.0, None), Piece(2, "cam2", T0 + timedelta(seconds=10.6), 5.0)],
        ongoing=False,
    )
    [gap] = switched.gaps()
    assert gap.cause == "program switched from camera cam1 to cam2"
    contiguous = build_timeline(
        [Piece(1, "cam1", T0, 10.0, None), Piece(2, "cam2", T0 + timedelta(seconds=10.01), 5.0)],
        ongoing=False,
    )
    assert contiguous.gaps() == []


def test_chapters_and_playlists(index: ArchiveIndex) -> None:
    sid = new_session(index)
    index.begin_live(sid, T0)
    run = index.add_run(sid, 1, "run-0001", T0)
    for seq in range(10):
        index.add_segment(
            run, seq, f"seg-{seq:06d}.ts", seq * 2.0, 2.0, T0 + timedelta(seconds=2 * seq + 2), 1000
        )
    rows = index.agenda(sid)
    index.add_marker(sid, "item_start", T0 - timedelta(seconds=3), rows[0].id)
    index.add_marker(sid, "break_start", T0 + timedelta(seconds=5))
    index.add_marker(sid, "item_start", T0 + timedelta(seconds=7.5), rows[2].id)
    index.end(sid, T0 + timedelta(seconds=20), "op")
    found = chapters(index.agenda(sid), index.markers(sid), index.timeline(sid))
    assert [(c.label, c.start, c.end) for c in found] == [
        ("1. Otwarcie sesji", 0.0, 7.5),
        ("2.1. zmiany budżetu", 7.5, 20.0),
    ]
    vtt = chapters_vtt(found)
    assert vtt.startswith("WEBVTT\n")
    assert "00:00:07.500 --> 00:00:20.000\n2.1. zmiany budżetu" in vtt
    assert vtt_time(3725.0004) == "01:02:05.000"
    vod = media_playlist(index.segments(sid), uri_prefix="../", ended=True, target_seconds=2)
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in vod and vod.endswith("#EXT-X-ENDLIST\n")
    assert f"../{sid}/media/main/run-0001/seg-000009.ts" in vod
    live = media_playlist(
        index.recent_segments("sala", 3),
        uri_prefix="../sessions/",
        ended=False,
        target_seconds=2,
        window=True,
    )
    assert "#EXT-X-MEDIA-SEQUENCE:7" in live and "ENDLIST" not in live


def test_cameras_share_a_session_and_only_the_program_goes_live(index: ArchiveIndex) -> None:
    sid = new_session(index)
    index.begin_live(sid, T0)
    cam1 = index.add_run(sid, 1, "run-0001", T0, "cam1")
    cam2 = index.add_run(sid, 1, "run-0001", T0, "cam2")  # same ordinal, other camera
    for seq in range(4):
        at = T0 + timedelta(seconds=2 * seq + 2)
        index.add_segment(cam1, seq, f"seg-{seq:06d}.ts", 2.0 * seq, 2.0, at, 10, None, seq < 2)
        index.add_segment(cam2, seq, f"seg-{seq:06d}.ts", 2.0 * seq, 2.0, at, 10, None, seq >= 2)
    program = index.segments(sid)
    assert [(s.camera, s.seq) for s in program] == [
        ("cam1", 0),
        ("cam1", 1),
        ("cam2", 2),
        ("cam2", 3),
    ]
    assert [s.program_disc for s in program] == [0, 0, 1, 1]
    assert len(index.all_segments(sid)) == 8
    assert [s.seq for s in index.camera_segments(sid, "cam2")] == [0, 1, 2, 3]
    assert program[2].rel_path == "cam2/run-0001/seg-000002.ts"
    timeline = index.timeline(sid)
    assert timeline.duration == 8.0 and timeline.gaps() == []
    index.add_switch("sala", "cam2", T0, sid, "op")
    assert index.program_camera("sala", sid) == "cam2"
    assert index.program_camera("sala", None) is None  # nothing chosen between sessions
    assert index.program_camera("komisja", sid) is None
    # A choice made between sessions is for the next one, until a session ends after it.
    index.add_switch("sala", "cam1", T0 + timedelta(seconds=20), None, "op")
    assert index.program_camera("sala", None) == "cam1"
    index.end(sid, T0 + timedelta(seconds=30), "op")
    assert index.program_camera("sala", None) is None


def test_a_version_2_archive_is_migrated_without_losing_anything(tmp_path: Path) -> None:
    import sqlite3 as sq

    from archive import db

    path = tmp_path / "old.sqlite3"
    conn = sq.connect(path, isolation_level=None)
    conn.row_factory = sq.Row
    originals = db._migrations()
    for number, _name, sql in originals[:2]:
        for statement in db._statements(sql):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {number}")
    conn.execute(
        "INSERT INTO sessions (id, chamber, title, kind, scheduled_start, scheduled_end, state,"
        " created_at) VALUES (1, 'sala', 'S', 'session', '2026-01-01T10:00:00+00:00',"
        " '2026-01-01T12:00:00+00:00', 'ended', '2026-01-01T09:00:00+00:00')"
    )
    conn.execute(
        "INSERT INTO runs (id, session_id, ordinal, dir, started_at, anchor_at, media_origin)"
        " VALUES (1, 1, 1, 'run-0001', '2026-01-01T10:00:00+00:00',"
        " '2026-01-01T10:00:00+00:00', 0)"
    )
    conn.execute(
        "INSERT INTO segments (run_id, session_id, chamber, seq, file, media_start, duration,"
        " observed_at, size_bytes, chamber_seq, chamber_disc, sha256) VALUES (1, 1, 'sala', 0,"
        " 'seg-000000.ts', 0, 2, '2026-01-01T10:00:02+00:00', 5, 0, 0, 'ab')"
    )
    conn.close()
    index = ArchiveIndex(path)
    try:
        [segment] = index.segments(1)
        assert (segment.camera, segment.program_seq, segment.sha256) == ("main", 0, "ab")
        assert index.timeline(1).duration == 2.0
        assert index._conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    finally:
        index.close()


def test_the_data_folder_and_database_are_for_obrady_alone(tmp_path: Path) -> None:
    data = tmp_path / "data"
    index = ArchiveIndex(data / "obrady.sqlite3")
    index.create_session(
        chamber="sala",
        title="Sesja",
        kind="session",
        scheduled_start=T0,
        scheduled_end=T0 + timedelta(hours=1),
        agenda_text="1. Otwarcie.\n",
        agenda=parse_agenda("1. Otwarcie.\n"),
        created_by=None,
    )
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for name in ("obrady.sqlite3", "obrady.sqlite3-wal", "obrady.sqlite3-shm"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name
    index.close()
    # An archive left open to every local user is closed to them at the next start, and keeps
    # what it holds.
    os.chmod(data, 0o755)
    os.chmod(data / "obrady.sqlite3", 0o644)
    index = ArchiveIndex(data / "obrady.sqlite3")
    assert stat.S_IMODE(data.stat().st_mode) == 0o750
    assert stat.S_IMODE((data / "obrady.sqlite3").stat().st_mode) == 0o640
    assert [s.title for s in index.list_sessions(10)] == ["Sesja"]
    index.close()
