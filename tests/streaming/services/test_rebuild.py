"""`obrady index rebuild`: the database of a finished archive is lost, and the index is made
again from the media folders, their segment lists and manifests, and the record that obrady
keeps beside each session's media."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from conftest import Service, record_two_items, start_service, stop_service, wait_for
from helpers import obrady

from archive.index import ArchiveIndex
from archive.session_record import RECORD, TABLES
from recorder.ffmpeg import SEGMENT_LIST
from streaming.services import records


def rows(database: Path, table: str, session_id: int) -> list[tuple[Any, ...]]:
    """The rows of table that belong to the session."""
    where = {
        "sessions": "id = ?",
        "councillors": "id IN (SELECT c.councillor_id FROM vote_choices c JOIN votes v"
        " ON v.id = c.vote_id WHERE v.session_id = ?)",
        "vote_choices": "vote_id IN (SELECT id FROM votes WHERE session_id = ?)",
    }.get(table, "session_id = ?")
    conn = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return sorted(
            conn.execute(f'SELECT * FROM "{table}" WHERE {where}', (session_id,)), key=repr
        )
    finally:
        conn.close()


def segments(database: Path) -> list[tuple[Any, ...]]:
    """(session, camera, run folder, file, media start, duration, bytes, SHA-256, program)."""
    conn = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute(
            "SELECT s.session_id, r.camera, r.dir, s.file, s.media_start, s.duration,"
            " s.size_bytes, s.sha256, p.seq IS NOT NULL FROM segments s"
            " JOIN runs r ON r.id = s.run_id LEFT JOIN program p ON p.segment_id = s.id"
            " ORDER BY 1, 2, 3, 4"
        ).fetchall()
    finally:
        conn.close()


async def records_written(service: Service) -> bool:
    def changed() -> list[tuple[int, int]]:
        index = ArchiveIndex.reading(service.settings.paths.database)
        try:
            return index.changed_records()
        finally:
            index.close()

    return not await asyncio.to_thread(changed)


async def test_a_lost_database_is_rebuilt_from_the_media_and_their_records(
    make_settings: Any,
) -> None:
    settings = make_settings()
    paths = settings.paths
    service = await start_service(settings)
    try:
        created = await record_two_items(service, stop=False)
        sid = created["id"]
        added = await service.post_json("/api/v1/councillors", {"name": "Anna Nowak"}, status=201)
        councillor = added["councillors"][0]["id"]
        await service.post_json(
            f"/api/v1/sessions/{sid}/votes",
            {"subject": "Uchwała budżetowa", "choices": {str(councillor): "against"}},
            status=201,
        )
        await service.post_json(f"/api/v1/sessions/{sid}/break", {"on": True})
        await service.post_json(f"/api/v1/sessions/{sid}/break", {"on": False})

        def add_line() -> None:
            index = ArchiveIndex(paths.database)
            try:
                index.add_line(sid, 1.0, 3.0, "Otwieram sesję Rady Miasta.", "staff")
            finally:
                index.close()

        await asyncio.to_thread(add_line)
        await service.post_json(f"/api/v1/sessions/{sid}/stop")
        await wait_for(lambda: records_written(service), 20, "the session's record written")
        before = await service.get_json(f"/api/v1/sessions/{sid}")
    finally:
        await stop_service(service)

    record = json.loads((paths.session_media("sala", sid) / RECORD).read_text())
    assert record["tables"]["transcript_lines"][0]["text"] == "Otwieram sesję Rady Miasta."
    # A session whose media survived without a record (made before records, say).
    bare = paths.session_media("sala", 77) / "main" / "run-0001"
    bare.mkdir(parents=True)
    for n in range(2):
        (bare / f"seg-{n:06d}.ts").write_bytes(os.urandom(4000))
    (bare / SEGMENT_LIST).write_text("seg-000000.ts,0.0,1.0\nseg-000001.ts,1.0,2.0\n")

    lost = paths.data / "lost.sqlite3"
    old = {table: rows(paths.database, table, sid) for table in TABLES}
    old_segments = segments(paths.database)
    for suffix in ("", "-wal", "-shm"):
        os.rename(f"{paths.database}{suffix}", f"{lost}{suffix}")

    rc, out, err = await obrady("index", "rebuild", "--data-dir", str(paths.data))
    assert rc == 0, out + err
    assert "2 session(s) (1 from their records)" in out, out
    assert "no record beside the media of session(s) 77" in out, out
    # Every record of the session is back as it was, ids and all.
    for table, was in old.items():
        assert rows(paths.database, table, sid) == was, table
    for table in ("sessions", "agenda_items", "markers", "votes", "vote_choices", "councillors",
                  "transcript_lines", "transcript_edits", "audit"):  # fmt: skip
        assert old[table], f"the test made no {table}"
    # The segments and their checksums, and which were the program.
    rebuilt = segments(paths.database)
    assert [s for s in rebuilt if s[0] == sid] == old_segments
    assert [s[3] for s in rebuilt if s[0] == 77] == ["seg-000000.ts", "seg-000001.ts"]
    rc, out, err = await obrady("verify", "--all", "--data-dir", str(paths.data))
    assert rc == 0, out + err
    # A second rebuild refuses: the database is there again.
    rc, _, err = await obrady("index", "rebuild", "--data-dir", str(paths.data))
    assert rc == 1 and "move the old one aside first" in err

    # The service runs on the rebuilt index: the session reads as before, chapters in place.
    service = await start_service(settings)
    try:
        after = await service.get_json(f"/api/v1/sessions/{sid}")
        assert after["title"] == before["title"] and after["state"] == "ended"
        assert after["agenda"] == before["agenda"]
        assert [v["totals"] for v in after["votes"]] == [v["totals"] for v in before["votes"]]
        for was, now in zip(before["markers"], after["markers"], strict=True):
            assert now["kind"] == was["kind"] and now["at"] == was["at"]
            # (2026-12-07: 18-19 ms apart; the rebuild times segments by their files' mtimes)
            assert abs(now["offset_seconds"] - was["offset_seconds"]) < 0.2, (was, now)
        assert (
            abs(after["recording"]["duration_seconds"] - before["recording"]["duration_seconds"])
            < 1.0
        )
        bare_session = await service.get_json("/api/v1/sessions/77")
        assert bare_session["state"] == "ended" and bare_session["chamber"] == "sala"
    finally:
        await stop_service(service)


async def test_the_record_writer_goes_on_after_a_failure(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A locked database or a full disk fails one round of record writing, not the rest."""
    calls: list[float] = []

    async def flaky(archive: object, paths: object) -> int:
        calls.append(asyncio.get_running_loop().time())
        if len(calls) == 1:
            raise sqlite3.OperationalError("database is locked")
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return 0

    monkeypatch.setattr(records, "write_changed_records", flaky)
    monkeypatch.setattr(records, "WRITE_EVERY_SECONDS", 0.01)
    task = asyncio.ensure_future(records.keep_records_written(None, None))  # type: ignore[arg-type]
    try:
        await wait_for(lambda: asyncio.sleep(0, len(calls) >= 4), 5, "four rounds")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
