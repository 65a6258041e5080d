"""After the session in the archive: marker corrections, publication and redactions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from archive.agenda import parse_agenda
from archive.editing import InvalidEdit, covered_segments
from archive.index import ArchiveIndex, Conflict, NotFound
from archive.publish import chapters, media_playlist, slate_name
from archive.timeline import Piece, build_timeline

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
AGENDA = "1. Otwarcie sesji.\n2. Budżet:\n a) zmiany budżetu;\n3. Zamknięcie obrad.\n"
SEGMENTS = 10  # of 2 s: a recording of 20 s, media time 0 at T0


@pytest.fixture
def index(tmp_path: Path) -> Iterator[ArchiveIndex]:
    idx = ArchiveIndex(tmp_path / "a.sqlite3")
    yield idx
    idx.close()


def recorded(index: ArchiveIndex, *, end: bool = True) -> int:
    """A session recorded from T0 for 20 s, items 1 (at 0 s) and 2.1 (at 8 s), a break 4-6 s."""
    sid = index.create_session(
        chamber="sala",
        title="Sesja",
        kind="session",
        scheduled_start=T0,
        scheduled_end=T0 + timedelta(hours=2),
        agenda_text=AGENDA,
        agenda=parse_agenda(AGENDA),
        created_by="op",
    ).id
    index.begin_live(sid, T0)
    run = index.add_run(sid, 1, "run-0001", T0)
    for seq in range(SEGMENTS):
        at = T0 + timedelta(seconds=2 * seq + 2)
        index.add_segment(run, seq, f"seg-{seq:06d}.ts", 2.0 * seq, 2.0, at, 1000)
    rows = index.agenda(sid)
    index.add_marker(sid, "item_start", T0, rows[0].id, "op")
    index.add_marker(sid, "break_start", T0 + timedelta(seconds=4), None, "op")
    index.add_marker(sid, "break_end", T0 + timedelta(seconds=6), None, "op")
    index.add_marker(sid, "item_start", T0 + timedelta(seconds=8), rows[2].id, "op")
    if end:
        index.end(sid, T0 + timedelta(seconds=20), "op")
    return sid


def chapter_list(index: ArchiveIndex, sid: int) -> list[tuple[str, float, float]]:
    found = chapters(index.agenda(sid), index.markers(sid), index.timeline(sid))
    return [(c.label, round(c.start, 3), round(c.end, 3)) for c in found]


def test_a_playback_offset_maps_back_to_its_wall_clock_moment() -> None:
    tl = build_timeline(
        [Piece(1, "main", T0, 10.0), Piece(2, "main", T0 + timedelta(seconds=15), 5.0)],
        ongoing=False,
    )
    assert tl.at_offset(0) == T0
    assert tl.at_offset(4) == T0 + timedelta(seconds=4)
    assert tl.at_offset(10) == T0 + timedelta(seconds=10)  # a boundary: the earlier piece's end
    assert tl.at_offset(12) == T0 + timedelta(seconds=17)  # after the gap
    assert tl.at_offset(15) == T0 + timedelta(seconds=20)
    for offset in (0.0, 3.25, 10.0, 12.5, 15.0):
        at = tl.at_offset(offset)
        assert at is not None and tl.offset_of(at) == pytest.approx(offset)
    assert tl.at_offset(-0.1) is None and tl.at_offset(15.01) is None
    assert build_timeline([], ongoing=False).at_offset(0) is None


def test_moving_and_re_pointing_an_item_start_changes_the_chapters(index: ArchiveIndex) -> None:
    sid = recorded(index)
    assert chapter_list(index, sid) == [
        ("1. Otwarcie sesji", 0.0, 8.0),
        ("2.1. zmiany budżetu", 8.0, 20.0),
    ]
    item_21 = index.markers(sid)[3]
    before, after = index.move_marker(sid, item_21.id, offset_seconds=11.5)
    assert before.at == T0 + timedelta(seconds=8)
    assert after.at == T0 + timedelta(seconds=11.5)
    assert chapter_list(index, sid) == [
        ("1. Otwarcie sesji", 0.0, 11.5),
        ("2.1. zmiany budżetu", 11.5, 20.0),
    ]
    item_3 = index.agenda(sid)[3]
    _, repointed = index.move_marker(sid, item_21.id, item_id=item_3.id)
    assert repointed.item_id == item_3.id and repointed.at == after.at
    assert chapter_list(index, sid)[1] == ("3. Zamknięcie obrad", 11.5, 20.0)
    # A break may move too, as long as it still starts before it ends.
    brk = index.markers(sid)[1]
    index.move_marker(sid, brk.id, offset_seconds=5.0)
    assert index.timeline(sid).offset_of(index.markers(sid)[1].at) == pytest.approx(5.0)


def test_refused_marker_edits_change_nothing(index: ArchiveIndex) -> None:
    sid = recorded(index)
    other = recorded(index)
    markers = index.markers(sid)
    start, brk_start, brk_end, item = markers
    agenda_before = index.agenda(sid)

    with pytest.raises(InvalidEdit, match="outside the recording: it runs from 0 to 20.000 s"):
        index.move_marker(sid, item.id, offset_seconds=20.5)
    with pytest.raises(InvalidEdit, match="outside the recording"):
        index.move_marker(sid, item.id, offset_seconds=-1)
    with pytest.raises(InvalidEdit, match="outside the recording"):
        index.split_chapter(sid, 25.0, item_id=agenda_before[1].id)
    with pytest.raises(InvalidEdit, match="break's end before its start"):
        index.move_marker(sid, brk_end.id, offset_seconds=3.0)
    with pytest.raises(InvalidEdit, match="only an item_start points"):
        index.move_marker(sid, brk_start.id, item_id=agenda_before[0].id)
    with pytest.raises(InvalidEdit, match="send"):
        index.move_marker(sid, item.id)
    with pytest.raises(NotFound, match="marker 9999 does not exist"):
        index.move_marker(sid, 9999, offset_seconds=1.0)
    with pytest.raises(NotFound, match=f"does not exist in session {sid}"):
        index.move_marker(sid, index.markers(other)[0].id, offset_seconds=1.0)
    with pytest.raises(NotFound, match="agenda item"):
        index.move_marker(sid, item.id, item_id=index.agenda(other)[0].id)
    with pytest.raises(NotFound):
        index.move_marker(4242, item.id, offset_seconds=1.0)
    with pytest.raises(Conflict, match="no previous chapter"):
        index.merge_chapter(sid, start.id)
    with pytest.raises(InvalidEdit, match="only an item_start can be deleted"):
        index.merge_chapter(sid, brk_start.id)
    with pytest.raises(Conflict, match="a chapter already starts at 8.000 s"):
        index.split_chapter(sid, 8.0, item_id=agenda_before[1].id)
    with pytest.raises(Conflict, match="a chapter already starts at 0.000 s"):
        index.move_marker(sid, item.id, offset_seconds=0.0)
    with pytest.raises(InvalidEdit, match="either"):
        index.split_chapter(sid, 3.0, item_id=agenda_before[1].id, title="Nowy")
    with pytest.raises(InvalidEdit, match="title must be"):
        index.split_chapter(sid, 3.0, title="   ")
    with pytest.raises(InvalidEdit, match="title must be"):
        index.rename_item(sid, agenda_before[0].id, "")
    with pytest.raises(NotFound):
        index.rename_item(sid, 9999, "Tytuł")

    assert index.markers(sid) == markers
    assert index.agenda(sid) == agenda_before


def test_a_live_session_refuses_corrections(index: ArchiveIndex) -> None:
    sid = recorded(index, end=False)
    item = index.markers(sid)[3]
    with pytest.raises(Conflict, match="session is live; correct markers after it ends"):
        index.move_marker(sid, item.id, offset_seconds=3.0)
    with pytest.raises(Conflict, match="session is live"):
        index.split_chapter(sid, 3.0, title="Nowy")
    with pytest.raises(Conflict, match="session is live"):
        index.merge_chapter(sid, item.id)
    with pytest.raises(Conflict, match="session is live"):
        index.rename_item(sid, index.agenda(sid)[0].id, "Nowy")
    with pytest.raises(Conflict, match="session is live"):
        index.add_redaction(sid, 1.0, 2.0, "dane osobowe", "clerk")
    assert index.markers(sid)[3] == item and index.redactions(sid) == []


def test_closed_part_bounds_do_not_move(index: ArchiveIndex) -> None:
    sid = recorded(index, end=False)
    closed = index.add_marker(sid, "closed_start", T0 + timedelta(seconds=12))
    index.end(sid, T0 + timedelta(seconds=20), "op")
    with pytest.raises(Conflict, match="closed to the public"):
        index.move_marker(sid, closed.id, offset_seconds=14.0)


def test_split_with_an_existing_or_a_new_item_and_merge(index: ArchiveIndex) -> None:
    sid = recorded(index)
    rows = index.agenda(sid)
    marker, made = index.split_chapter(sid, 14.0, item_id=rows[3].id, created_by="clerk")
    assert made is None and marker.item_id == rows[3].id and marker.created_by == "clerk"
    assert chapter_list(index, sid)[-2:] == [
        ("2.1. zmiany budżetu", 8.0, 14.0),
        ("3. Zamknięcie obrad", 14.0, 20.0),
    ]
    # A new item at the end of the agenda, then one under item 2 (after its sub-item).
    marker2, added = index.split_chapter(sid, 17.0, title="Wolne  wnioski")
    assert added is not None and (added.number, added.title, added.depth) == (
        "4",
        "Wolne wnioski",
        0,
    )
    _, sub = index.split_chapter(sid, 11.0, title="Sprawy różne", parent_id=rows[1].id)
    assert sub is not None and (sub.number, sub.depth, sub.parent_id) == ("2.2", 1, rows[1].id)
    numbers = [r.number for r in index.agenda(sid)]
    assert numbers == ["1", "2", "2.1", "2.2", "3", "4"]
    flags = index._conn.execute(
        "SELECT id FROM agenda_items WHERE session_id = ? AND added = 1", (sid,)
    ).fetchall()
    assert {r[0] for r in flags} == {added.id, sub.id}
    assert [c[0] for c in chapter_list(index, sid)] == [
        "1. Otwarcie sesji",
        "2.1. zmiany budżetu",
        "2.2. Sprawy różne",
        "3. Zamknięcie obrad",
        "4. Wolne wnioski",
    ]
    deleted = index.merge_chapter(sid, marker2.id)
    assert deleted.id == marker2.id
    assert chapter_list(index, sid)[-1] == ("3. Zamknięcie obrad", 14.0, 20.0)


def test_rename_and_publication(index: ArchiveIndex) -> None:
    sid = recorded(index)
    row = index.agenda(sid)[0]
    before, after = index.rename_item(sid, row.id, " Otwarcie  sesji i powitanie ")
    assert before.title == "Otwarcie sesji" and after.title == "Otwarcie sesji i powitanie"
    assert chapter_list(index, sid)[0][0] == "1. Otwarcie sesji i powitanie"
    assert index.get_session(sid).published is True
    assert index.set_published(sid, False) == (True, False)
    assert index.get_session(sid).published is False
    assert index.set_published(sid, True) == (False, True)
    with pytest.raises(NotFound):
        index.set_published(4242, False)


def test_covered_segments_are_whole_segments() -> None:
    durations = [(1, 2.0), (2, 2.0), (3, 2.0), (4, 2.0)]
    covered = covered_segments(durations, [(2.5, 4.2)])
    assert [(c.segment_id, c.start, c.duration) for c in covered] == [(2, 2.0, 2.0), (3, 4.0, 2.0)]
    assert covered_segments(durations, [(2.0, 4.0)])[0].segment_id == 2  # touching: not covered
    assert len(covered_segments(durations, [(2.0, 4.0)])) == 1
    assert covered_segments(durations, []) == []


def test_redactions_replace_whole_segments_in_the_public_playlist(index: ArchiveIndex) -> None:
    sid = recorded(index)
    planned = index.plan_redaction(sid, 5.0, 7.5)
    assert [s.seq for s in planned] == [2, 3]
    redaction = index.add_redaction(sid, 5.0, 7.5, "  dane  osobowe ", "clerk")
    assert (redaction.reason, redaction.created_by) == ("dane osobowe", "clerk")
    segments = index.segments(sid)
    redacted = index.redacted_segment_ids(sid)
    assert redacted == {segments[2].id, segments[3].id}
    assert index.is_redacted_file(sid, "main", "run-0001", "seg-000002.ts")
    assert not index.is_redacted_file(sid, "main", "run-0001", "seg-000004.ts")
    assert index.is_program_file(sid, "main", "run-0001", "seg-000002.ts")  # still recorded

    public = media_playlist(
        segments, uri_prefix="../", ended=True, target_seconds=2, redacted=redacted
    )
    original = media_playlist(segments, uri_prefix="../", ended=True, target_seconds=2)
    durations = [float(x) for x in re.findall(r"#EXTINF:([\d.]+),", public)]
    assert sum(durations) == pytest.approx(20.0)
    assert durations == [float(x) for x in re.findall(r"#EXTINF:([\d.]+),", original)]
    slate = f"../{sid}/redacted/main/run-0001/{slate_name(2.0)}"
    assert public.count(slate) == 2 and slate_name(2.0) == "slate-2000.ts"
    assert "seg-000002.ts" not in public and "seg-000003.ts" not in public
    assert "seg-000002.ts" in original and "DISCONTINUITY" not in original
    lines = public.splitlines()
    # A discontinuity before each slate and before the recording resumes.
    first = lines.index(slate)
    assert lines[first - 2] == "#EXT-X-DISCONTINUITY"
    assert lines[first + 1] == "#EXT-X-DISCONTINUITY"
    assert public.count("#EXT-X-DISCONTINUITY") == 3
    assert index.redaction_cover(sid)[redaction.id][0].start == 4.0

    with pytest.raises(Conflict, match=f"overlaps redaction {redaction.id}"):
        index.add_redaction(sid, 7.0, 9.0, "x", "clerk")
    with pytest.raises(InvalidEdit, match="must be before"):
        index.add_redaction(sid, 9.0, 8.0, "x", "clerk")
    with pytest.raises(InvalidEdit, match="outside the recording"):
        index.add_redaction(sid, 18.0, 21.0, "x", "clerk")
    with pytest.raises(InvalidEdit, match="reason is required"):
        index.add_redaction(sid, 10.0, 11.0, "  ", "clerk")
    with pytest.raises(NotFound):
        index.add_redaction(4242, 10.0, 11.0, "x", "clerk")
    assert index.redactions(sid) == [redaction]

    # Touching ranges are separate redactions.
    index.add_redaction(sid, 7.5, 8.0, "dane osobowe", "clerk")
    assert len(index.redacted_segment_ids(sid)) == 2
    removed = index.remove_redaction(sid, redaction.id)
    assert removed == redaction
    assert index.redacted_segment_ids(sid) == {segments[3].id}
    with pytest.raises(NotFound):
        index.remove_redaction(sid, redaction.id)
