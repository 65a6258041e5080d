"""The archive index follows the recorder on its own queue: a busy, locked or failing database
delays the index, never the live edge, and loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import OPERATOR, Service, basic, wait_for
from helpers import newest_part, ts_file

from archive.agenda import parse_agenda
from archive.index import ArchiveIndex, AsyncArchive
from recorder.ffmpeg import SEGMENT_LIST, SegmentEntry, parse_segment_line
from recorder.supervisor import FinishedSegment
from streaming.keys import ARCHIVE, INDEXER
from streaming.services import indexer as indexer_module
from streaming.services.indexer import ArchiveIndexer

T0 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


@pytest.fixture
async def archive(tmp_path: Path) -> AsyncIterator[tuple[AsyncArchive, int, Path]]:
    index = ArchiveIndex(tmp_path / "obrady.sqlite3")
    agenda = "1. Otwarcie.\n"
    session = index.create_session(
        chamber="sala",
        title="Sesja",
        kind="session",
        scheduled_start=T0,
        scheduled_end=T0 + timedelta(hours=1),
        agenda_text=agenda,
        agenda=parse_agenda(agenda),
        created_by=None,
    )
    index.begin_live(session.id, T0)
    session_dir = tmp_path / "media" / "sala" / str(session.id)
    run = session_dir / "main" / "run-0001"
    run.mkdir(parents=True)
    for n in range(3):
        ts_file(run / f"seg-{n:06d}.ts", seconds=0.5)
    async with AsyncArchive(index) as archive:
        yield archive, session.id, session_dir


@contextlib.asynccontextmanager
async def write_lock(database: Path, most: float) -> AsyncIterator[threading.Event]:
    """Another program holds the database's write lock (a backup, a stuck writer) until the
    block ends, or `most` seconds; yields an event set once it has let go."""
    held, release, released = threading.Event(), threading.Event(), threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(database, timeout=5)
        try:
            conn.execute("BEGIN IMMEDIATE")
            held.set()
            release.wait(most)
            conn.rollback()
        finally:
            released.set()
            conn.close()

    locker = asyncio.create_task(asyncio.to_thread(hold))
    try:
        assert await asyncio.to_thread(held.wait, 10), "the database's write lock was not taken"
        yield released
    finally:
        release.set()
        await locker


def rel(n: int) -> str:
    return f"main/run-0001/seg-{n:06d}.ts"


def finished(
    session_dir: Path, token: int, n: int, zero_at: float | None = None
) -> FinishedSegment:
    path = session_dir / "main" / "run-0001" / f"seg-{n:06d}.ts"
    entry = SegmentEntry(path.name, n, n * 0.5, (n + 1) * 0.5)
    seen = T0 + timedelta(seconds=n)
    return FinishedSegment(token, entry, path, path.stat().st_size, seen, zero_at=zero_at)


async def test_a_failing_database_is_tried_again_in_order_and_loses_nothing(
    archive: tuple[AsyncArchive, int, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, sid, session_dir = archive
    monkeypatch.setattr(indexer_module, "RETRY_FIRST", 0.05)
    real = store.index.add_segment
    failures = {"left": 3}

    def flaky(*args: Any, **kwargs: Any) -> Any:
        if failures["left"]:
            failures["left"] -= 1
            raise sqlite3.OperationalError("disk I/O error")
        return real(*args, **kwargs)

    monkeypatch.setattr(store.index, "add_segment", flaky)
    async with ArchiveIndexer(store) as indexer:
        began = time.monotonic()
        token = indexer.run_started(sid, 1, "run-0001", T0, "main")
        for n in range(3):
            indexer.segment_finished(
                sid,
                session_dir,
                f"main/run-0001/seg-{n:06d}.ts",
                # The last as a re-encode reports it: media time 0 decoded at T0 - 0.7 s.
                finished(session_dir, token, n, (T0 - timedelta(seconds=0.7)).timestamp())
                if n == 2
                else finished(session_dir, token, n),
                True,
            )
        indexer.run_ended(sid, token, T0 + timedelta(seconds=2), 0, "stopped")
        # Reporting never waits for the database.
        assert time.monotonic() - began < 0.1
        assert indexer.status()["backlog"] == 5
        await asyncio.wait_for(indexer.drain(), 20)
        status = indexer.status()
    assert status["backlog"] == 0 and status["indexed"] == 5 and status["dropped"] == 0
    assert status["retries"] == 3
    assert "disk I/O error" in status["last_error"]
    segments = await store.call(store.index.segments, sid)
    assert [s.file for s in segments] == [f"seg-{n:06d}.ts" for n in range(3)]
    assert all(s.sha256 and len(s.sha256) == 64 for s in segments)
    # The frames' time reached the run's anchor (seen - media end said T0 - 0.5 s at best).
    runs = await store.call(store.index.runs, sid)
    assert runs[0].anchor_at == T0 - timedelta(seconds=0.7)
    # Each file is in the manifest once, although its record was written on the fourth try.
    manifest = (session_dir / "manifest.sha256").read_text().splitlines()
    assert len(manifest) == 3, manifest


async def test_a_broken_write_is_reported_and_the_next_ones_go_on(
    archive: tuple[AsyncArchive, int, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, sid, session_dir = archive
    real = store.index.add_segment

    def broken_first(run_id: int, seq: int, *args: Any, **kwargs: Any) -> Any:
        if seq == 0:
            raise ValueError("a bad record")
        return real(run_id, seq, *args, **kwargs)

    monkeypatch.setattr(store.index, "add_segment", broken_first)
    async with ArchiveIndexer(store) as indexer:
        token = indexer.run_started(sid, 1, "run-0001", T0, "main")
        for n in range(3):
            indexer.segment_finished(
                sid,
                session_dir,
                f"main/run-0001/seg-{n:06d}.ts",
                finished(session_dir, token, n),
                True,
            )
        await asyncio.wait_for(indexer.drain(), 20)
        status = indexer.status()
    assert status["dropped"] == 1 and status["indexed"] == 3
    assert "seg-000000.ts" in status["last_error"] and "a bad record" in status["last_error"]
    segments = await store.call(store.index.segments, sid)
    assert [s.file for s in segments] == ["seg-000001.ts", "seg-000002.ts"]


async def test_any_write_keeps_its_place_and_tells_its_result(
    archive: tuple[AsyncArchive, int, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, sid, _ = archive
    monkeypatch.setattr(indexer_module, "RETRY_FIRST", 0.05)
    order: list[str] = []
    busy = {"left": 2}

    def note(what: str) -> str:
        if what == "busy" and busy["left"]:
            busy["left"] -= 1
            raise sqlite3.OperationalError("database is locked")
        if what == "bad":
            raise ValueError("not a valid change")
        order.append(what)
        return what.upper()

    async with ArchiveIndexer(store) as indexer:
        first = indexer.write("first", sid, note, "busy")
        second = indexer.write("second", sid, note, "bad")
        third = indexer.write("third", sid, note, "third")
        assert await asyncio.wait_for(first, 10) == "BUSY"
        with pytest.raises(ValueError, match="not a valid change"):
            await asyncio.wait_for(second, 10)
        assert await asyncio.wait_for(third, 10) == "THIRD"
    assert order == ["busy", "third"]
    assert indexer.status()["retries"] == 2 and indexer.status()["dropped"] == 1
    # Once closed, a write is refused at once, with the reason.
    late = indexer.write("late", sid, note, "late")
    with pytest.raises(indexer_module.NotIndexed, match="shutting down"):
        await late
    assert order == ["busy", "third"]


async def test_a_database_locked_for_10_s_does_not_hold_up_the_live_edge(
    service: Service,
) -> None:
    """A lock on the whole database for 10 s (a backup, a stuck writer): the public live
    playlist keeps gaining parts on time, the index falls behind and catches up, and every
    segment ffmpeg finished is in the record."""
    created = await service.begin()
    sid = created["id"]
    url = "/live/sala/index.m3u8"

    async def last_part() -> str | None:
        return newest_part(await service.get_text(url, status=None))

    await wait_for(last_part, 20, "parts on the live playlist")
    part_seconds = service.settings.live.part_target_seconds
    await service.signed_in()  # signing in writes a login: not while the database is locked
    async with write_lock(service.settings.paths.database, 30):
        locked_at = time.monotonic()
        changes: list[float] = [locked_at]
        seen = await last_part()
        most_behind = 0
        while time.monotonic() - locked_at < 10:
            part = await last_part()
            if part != seen:
                seen = part
                changes.append(time.monotonic())
            status = await service.status()
            most_behind = max(most_behind, status["index"]["backlog"])
            await asyncio.sleep(0.05)
        changes.append(time.monotonic())
    longest = max(b - a for a, b in zip(changes, changes[1:], strict=False))
    assert longest <= part_seconds + 1.0, f"the live edge stood still for {longest:.2f} s"
    # The lock was real: the index fell behind while it was held.
    assert most_behind >= 3, most_behind

    await service.post_json(f"/api/v1/sessions/{sid}/stop")
    indexer = service.app[INDEXER]
    assert indexer.status()["backlog"] == 0 and indexer.status()["dropped"] == 0
    metrics = await service.get_text("/metrics")
    assert "obrady_index_backlog 0.0" in metrics, metrics
    session_dir = service.settings.paths.session_media("sala", sid)
    on_disk = []
    for listing in sorted(session_dir.glob("*/run-*/" + SEGMENT_LIST)):
        for line in listing.read_text().splitlines():
            entry = parse_segment_line(line)
            assert entry is not None
            on_disk.append(f"{listing.parent.name}/{entry.file}")
    archive = service.app[ARCHIVE]
    indexed = [f"{s.run_dir}/{s.file}" for s in await archive.call(archive.index.all_segments, sid)]
    assert len(on_disk) >= 10, on_disk  # ten seconds of 1 s segments at least
    assert sorted(indexed) == sorted(on_disk)


async def test_a_session_started_while_the_database_is_locked_records_at_once(
    service: Service,
) -> None:
    """The operator starts a session while another program holds the database's write lock:
    capture and the live edge start without it, the answer comes at once and says live, an
    item marker is refused with a clear 503 (nothing half-stored), and once the lock goes the
    archive holds the start (at the moment it was asked), the audit entry and every segment."""
    created = await service.begin(start=False)
    sid = created["id"]
    async with write_lock(service.settings.paths.database, 60) as released:
        asked = datetime.now(UTC)
        started = await service.post_json(f"/api/v1/sessions/{sid}/start")
        assert not released.is_set()
        assert started["state"] == "live", started
        started_at = datetime.fromisoformat(started["started_at"])
        assert asked <= started_at <= datetime.now(UTC)

        # Capture runs: the public live playlist gains parts while the lock is still held.
        async def parts() -> str | None:
            return newest_part(await service.get_text("/live/sala/index.m3u8", status=None))

        first = await wait_for(parts, 30, "parts on the live playlist while the archive is locked")
        await wait_for(
            lambda: _changed(parts, first), 10, "the live playlist gaining a part while locked"
        )
        assert service.app[INDEXER].status()["backlog"] >= 2  # the start and the audit wait

        item = created["agenda"][0]["id"]
        async with service.http.post(
            f"{service.base}/api/v1/sessions/{sid}/items/{item}/start",
            headers=basic(OPERATOR),
        ) as resp:
            refused = await resp.json()
            assert resp.status == 503, (resp.status, refused)
            assert resp.headers["Retry-After"].isdigit()
        assert "try again" in refused["error"], refused
        assert not released.is_set()

    indexer = service.app[INDEXER]
    await asyncio.wait_for(indexer.drain(), 30)
    archive = service.app[ARCHIVE]
    stored = await archive.call(archive.index.get_session, sid)
    assert stored.state == "live" and stored.started_at == started_at
    audit = await archive.call(archive.index.audit_log, sid, 100)
    assert [e.action for e in audit if e.action == "session.start"] == ["session.start"]
    assert (await archive.call(archive.index.markers, sid)) == []  # the refused item left none

    await service.post_json(f"/api/v1/sessions/{sid}/stop")
    assert indexer.status()["dropped"] == 0
    session_dir = service.settings.paths.session_media("sala", sid)
    on_disk = [
        f"{listing.parent.name}/{entry.file}"
        for listing in sorted(session_dir.glob("*/run-*/" + SEGMENT_LIST))
        for entry in map(parse_segment_line, listing.read_text().splitlines())
        if entry is not None
    ]
    indexed = [f"{s.run_dir}/{s.file}" for s in await archive.call(archive.index.all_segments, sid)]
    assert on_disk and sorted(indexed) == sorted(on_disk)


async def _changed(read: Any, before: str) -> bool:
    return await read() != before
