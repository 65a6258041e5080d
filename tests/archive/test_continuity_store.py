"""The media checks in the archive: which program segments were checked, the holes found, and
what the session's record says of them (complete only once every segment is checked, hole-free)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from archive.index import ArchiveIndex, AsyncArchive, NotFound
from streaming.api.views import session_detail

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


@pytest.fixture
def index(tmp_path: Path) -> Iterator[ArchiveIndex]:
    idx = ArchiveIndex(tmp_path / "a.sqlite3")
    yield idx
    idx.close()


def recorded(index: ArchiveIndex, segments: int = 3) -> int:
    """An ended session of one run of 2 s segments, none checked yet."""
    sid = index.create_session(
        chamber="sala",
        title="Sesja",
        kind="session",
        scheduled_start=T0,
        scheduled_end=T0 + timedelta(hours=2),
        agenda_text="",
        agenda=[],
        created_by="op",
    ).id
    index.begin_live(sid, T0)
    run = index.add_run(sid, 1, "run-0001", T0)
    for seq in range(segments):
        at = T0 + timedelta(seconds=2 * seq + 2)
        index.add_segment(run, seq, f"seg-{seq:06d}.ts", 2.0 * seq, 2.0, at, 1000)
    index.end(sid, T0 + timedelta(seconds=2 * segments + 1), "op")
    return sid


async def detail_of(index: ArchiveIndex, sid: int) -> dict[str, object]:
    """The session's recording as the API shows it (through an archive of its own, which closes
    its connections when done)."""
    path = index.database_file()
    assert path is not None
    async with AsyncArchive(ArchiveIndex(path)) as archive:
        recording = (await session_detail(archive, sid))["recording"]
    assert isinstance(recording, dict)
    return recording


async def test_an_ended_session_is_complete_only_once_its_media_are_checked(
    index: ArchiveIndex,
) -> None:
    sid = recorded(index)
    before = await detail_of(index, sid)
    assert before["gaps"] == [] and before["continuity"] == []
    assert before["media_checked"] is False
    assert before["complete"] is False  # nothing missing that we know of, but not checked
    for seq in range(3):
        assert index.unchecked_program_segments(sid) == 3 - seq
        span = (2.0 * seq, 2.0 * seq + 2.0)
        index.record_media_check(sid, "main", "run-0001", seq, span, span, [])
    after = await detail_of(index, sid)
    assert after["media_checked"] is True
    assert after["complete"] is True


async def test_a_hole_is_listed_on_the_wall_clock_and_in_the_recording(
    index: ArchiveIndex,
) -> None:
    sid = recorded(index)
    for seq in range(3):
        span = (2.0 * seq, 2.0 * seq + 2.0)
        holes = [("video", 2.5, 1.25, "the source sent no media")] if seq == 1 else []
        index.record_media_check(sid, "main", "run-0001", seq, span, span, holes)
    # Checked again (a repeated check replaces what the first found).
    index.record_media_check(
        sid, "main", "run-0001", 1, (2.0, 4.0), (2.0, 4.0), [("video", 2.5, 1.5, "x")]
    )
    recording = await detail_of(index, sid)
    assert recording["complete"] is False
    [hole] = recording["continuity"]  # type: ignore[misc]
    anchor = index.runs(sid)[0].anchor_at
    assert anchor is not None
    assert hole == {
        "kind": "video",
        "camera": "main",
        "start": (anchor + timedelta(seconds=2.5)).isoformat(),
        "end": (anchor + timedelta(seconds=4.0)).isoformat(),
        "seconds": 1.5,
        "offset_seconds": 2.5,
        "cause": "x",
    }


def test_a_check_of_a_segment_not_indexed_is_refused(index: ArchiveIndex) -> None:
    sid = recorded(index, segments=1)
    with pytest.raises(NotFound):
        index.record_media_check(sid, "main", "run-0001", 7, None, None, [])
    with pytest.raises(NotFound):
        index.record_media_check(sid, "other", "run-0001", 0, None, None, [])


async def test_holes_checked_by_the_file_s_timestamps_are_moved_to_the_list_s(
    index: ArchiveIndex,
) -> None:
    # An archive checked before holes were placed by the segment list: its extents and holes
    # carry the MPEG-TS muxer's offset (1.4 s); migration 0011 takes it off.
    sid = recorded(index)
    for seq in range(3):
        span = (2.0 * seq + 1.4, 2.0 * seq + 3.4)
        holes = [("video", 3.9, 1.0, "the source sent no media")] if seq == 1 else []
        index.record_media_check(sid, "main", "run-0001", seq, span, span, holes)
    anchor = index.runs(sid)[0].anchor_at
    path = index.database_file()
    assert anchor is not None and path is not None
    index._conn.execute("PRAGMA user_version = 10")
    index.close()
    migrated = ArchiveIndex(path)
    try:
        [hole] = migrated.media_holes(sid)
        assert migrated.unchecked_segments(sid) == []
        extents = migrated._conn.execute(
            "SELECT video_start, video_end, audio_start, audio_end FROM segments ORDER BY seq"
        ).fetchall()
    finally:
        migrated.close()
    assert hole.start == anchor + timedelta(seconds=2.5)
    assert [tuple(row) for row in extents] == [
        pytest.approx((2.0 * seq, 2.0 * seq + 2.0, 2.0 * seq, 2.0 * seq + 2.0)) for seq in range(3)
    ]


async def test_a_hole_in_the_chamber_sound_is_listed_where_it_falls_in_the_program(
    index: ArchiveIndex,
) -> None:
    # The run's segments cover T0 .. T0+6 s (anchored by the first segment seen at T0+2 s).
    sid = recorded(index)
    for seq in range(3):
        span = (2.0 * seq, 2.0 * seq + 2.0)
        index.record_media_check(sid, "main", "run-0001", seq, span, span, [])
    assert (await detail_of(index, sid))["complete"] is True
    cause = "the chamber's sound source sent no sound"
    # One hole across two segments, one partly before the recording began, one after its end.
    index.record_sound_hole(sid, T0 + timedelta(seconds=1.5), 3.0, cause)
    index.record_sound_hole(sid, T0 - timedelta(seconds=1), 1.25, cause)
    index.record_sound_hole(sid, T0 + timedelta(seconds=30), 2.0, cause)
    holes = index.media_holes(sid)
    assert [(h.kind, h.start, round(h.seconds, 6), h.cause, h.camera) for h in holes] == [
        ("audio", T0, 0.25, cause, "main"),
        ("audio", T0 + timedelta(seconds=1.5), 3.0, cause, "main"),
    ]
    recording = await detail_of(index, sid)
    assert recording["complete"] is False
    with pytest.raises(ValueError, match="more than 0 s"):
        index.record_sound_hole(sid, T0, 0.0, cause)
    with pytest.raises(NotFound):
        index.record_sound_hole(sid + 99, T0, 1.0, cause)
    assert len(index.media_holes(sid)) == 2  # the refused ones changed nothing
