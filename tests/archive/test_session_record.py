"""A session's record (archive/session_record.py): read from one archive and put back into
another, it is the same record; references inside it may come in any order."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from archive.agenda import parse_agenda
from archive.index import ArchiveIndex
from archive.session_record import RecordError, read_record, write_record

T0 = datetime(2026, 11, 5, 16, tzinfo=UTC)


def make_session(index: ArchiveIndex) -> int:
    text = "1. Otwarcie sesji.\n2. Budżet miasta.\n2.1. Uchwała budżetowa.\n3. Zamknięcie.\n"
    session = index.create_session(
        chamber="sala",
        title="Sesja",
        kind="session",
        scheduled_start=T0,
        scheduled_end=T0 + timedelta(hours=2),
        agenda_text=text,
        agenda=parse_agenda(text),
        created_by="op",
    )
    items = [row.id for row in index.agenda(session.id)]
    index.begin_live(session.id, T0)
    index.add_marker(session.id, "item_start", T0 + timedelta(seconds=5), items[1], "op")
    anna = index.add_councillor("2024-2029", "Anna Nowak", "Klub A")
    index.add_vote(
        session.id,
        item_id=items[2],
        subject="Uchwała budżetowa",
        at=T0 + timedelta(seconds=9),
        source="console",
        choices={anna.id: "for"},
        created_by="op",
    )
    index.end(session.id, T0 + timedelta(seconds=20), "op")
    return session.id


def test_a_record_put_back_is_the_same_record(tmp_path: Path) -> None:
    source = ArchiveIndex(tmp_path / "a.sqlite3")
    sid = make_session(source)
    record = source.session_record(sid)
    source.close()
    assert [row["title"] for row in record["tables"]["agenda_items"]][:2] == [
        "Otwarcie sesji",
        "Budżet miasta",
    ]
    write_record(tmp_path / "media", record)
    assert read_record(tmp_path / "media") == record
    target = ArchiveIndex(tmp_path / "b.sqlite3")
    try:
        assert target.insert_record(record) == sid
        assert target.session_record(sid) == record
        with pytest.raises(RecordError, match="in the archive already"):
            target.insert_record(record)
    finally:
        target.close()


def test_an_item_may_come_before_its_parent_in_a_record(tmp_path: Path) -> None:
    source = ArchiveIndex(tmp_path / "a.sqlite3")
    sid = make_session(source)
    record = source.session_record(sid)
    source.close()
    moved = copy.deepcopy(record)
    items = moved["tables"]["agenda_items"]
    child = next(row for row in items if row["parent_id"] is not None)
    parent = next(row for row in items if row["id"] == child["parent_id"])
    # As if the child had been made first and moved under a later item: swap their ids.
    child_id, parent_id = child["id"], parent["id"]
    child["id"], parent["id"], child["parent_id"] = parent_id, child_id, child_id
    for row in moved["tables"]["markers"] + moved["tables"]["votes"]:
        if row["item_id"] in (child_id, parent_id):
            row["item_id"] = parent_id if row["item_id"] == child_id else child_id
    target = ArchiveIndex(tmp_path / "b.sqlite3")
    try:
        target.insert_record(moved)
        assert target.session_record(sid)["tables"]["agenda_items"] == sorted(
            items, key=lambda row: row["id"]
        )
    finally:
        target.close()
    # A reference to nothing is refused at the end, and nothing of the record stays.
    broken = copy.deepcopy(record)
    broken["tables"]["markers"][0]["item_id"] = 999
    empty = ArchiveIndex(tmp_path / "c.sqlite3")
    try:
        with pytest.raises(RecordError, match="does not fit this archive .*FOREIGN KEY"):
            empty.insert_record(broken)
        assert empty.session_ids() == []
        assert empty.insert_record(record) == sid  # the connection is free for the next one
    finally:
        empty.close()


def test_a_file_that_is_no_record_is_refused(tmp_path: Path) -> None:
    (tmp_path / "record.json").write_text('{"format": 99}')
    with pytest.raises(RecordError, match="not an obrady session record"):
        read_record(tmp_path)
    (tmp_path / "record.json").write_text("{")
    with pytest.raises(RecordError, match="not valid JSON"):
        read_record(tmp_path)
    assert read_record(tmp_path / "nowhere") is None
