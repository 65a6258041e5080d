"""The archive's reader threads beside its one writer: reads and searches answer while another
connection holds the write lock, readers cannot write, closing closes every connection, a full
search queue is refused with Busy (nothing lost), and the dictionaries' background load."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers import loop_stalls

from archive import search as search_module
from archive.agenda import parse_agenda
from archive.db import Busy
from archive.index import ArchiveIndex, AsyncArchive
from archive.search import Dictionaries, SearchHit

AGENDA = "1. Otwarcie sesji.\n2. Uchwała w sprawie zmiany budżetu miasta na 2027 rok.\n"


def _session(index: ArchiveIndex, title: str = "Sesja budżetowa") -> int:
    at = datetime(2026, 11, 20, 16, tzinfo=UTC)
    return index.create_session(
        chamber="sala",
        title=title,
        kind="session",
        scheduled_start=at,
        scheduled_end=at + timedelta(hours=2),
        agenda_text=AGENDA,
        agenda=parse_agenda(AGENDA),
        created_by=None,
    ).id


async def _timed(work: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = await work
    return result, time.perf_counter() - started


async def test_reads_and_searches_answer_while_another_connection_holds_the_write_lock(
    tmp_path: Path,
) -> None:
    path = tmp_path / "obrady.sqlite3"
    index = ArchiveIndex(path)
    sid = _session(index)
    async with AsyncArchive(index) as archive:
        assert [h.session_id for h in await archive.search("budżet")] == [sid]
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("UPDATE sessions SET title = 'niezatwierdzony' WHERE id = ?", (sid,))
            async with loop_stalls() as stall:
                # The writer thread is now stuck behind the other connection's lock.
                write = asyncio.ensure_future(
                    archive.call(
                        index.add_marker, sid, "break_start", datetime.now(UTC), created_by="x"
                    )
                )
                slowest = 0.0
                deadline = time.monotonic() + 3.0
                while time.monotonic() < deadline:
                    session, took = await _timed(archive.read(ArchiveIndex.get_session, sid))
                    assert session.title == "Sesja budżetowa"  # uncommitted is not seen
                    slowest = max(slowest, took)
                    hits, took = await _timed(archive.search("budżetu miasta"))
                    assert hits and hits[0].session_id == sid
                    slowest = max(slowest, took)
                    await asyncio.sleep(0.05)
                assert not write.done(), "the write should wait for the other connection"
            assert slowest < 1.0, f"a read took {slowest:.3f} s behind the write lock"
            assert stall[0] < 0.5, f"the event loop stalled {stall[0]:.3f} s"
        finally:
            other.execute("ROLLBACK")
            other.close()
        marker = await asyncio.wait_for(write, 10)
        assert marker.created_by == "x"
        # The writer's commit is seen by the next read.
        markers = await archive.read(ArchiveIndex.markers, sid)
        assert [m.created_by for m in markers] == ["x"]


async def test_readers_cannot_write_and_see_one_snapshot(tmp_path: Path) -> None:
    index = ArchiveIndex(tmp_path / "obrady.sqlite3")
    sid = _session(index)
    async with AsyncArchive(index) as archive:

        def write(reader: ArchiveIndex) -> None:
            reader.add_marker(sid, "break_start", datetime.now(UTC))

        with pytest.raises(sqlite3.OperationalError):
            await archive.read(write)
        # The reader thread is still usable after a refused write.
        assert (await archive.read(ArchiveIndex.get_session, sid)).id == sid
        # A read that runs on a reader thread, not on the writer's.
        name = await archive.read(lambda _reader: threading.current_thread().name)
        assert name.startswith("archive-read")


async def test_closing_closes_every_connection(tmp_path: Path) -> None:
    path = tmp_path / "obrady.sqlite3"
    wal = tmp_path / "obrady.sqlite3-wal"
    index = ArchiveIndex(path)
    sid = _session(index)
    async with AsyncArchive(index, readers=2) as archive:
        # Two reads at once: both reader threads open their connections.
        barrier = threading.Barrier(2, timeout=5)

        def both(reader: ArchiveIndex) -> str:
            barrier.wait()
            return reader.get_session(sid).title

        titles = await asyncio.gather(archive.read(both), archive.read(both))
        assert titles == ["Sesja budżetowa"] * 2
        assert await asyncio.to_thread(wal.exists)
    # SQLite removes the WAL file when its last connection closes.
    assert not await asyncio.to_thread(wal.exists)


async def test_an_in_memory_archive_reads_on_the_writer_thread() -> None:
    index = ArchiveIndex(":memory:")
    sid = _session(index)
    async with AsyncArchive(index) as archive:
        assert (await archive.read(ArchiveIndex.get_session, sid)).id == sid
        assert [h.session_id for h in await archive.search("budżet")] == [sid]
        name = await archive.read(lambda _reader: threading.current_thread().name)
        assert name.startswith("archive_")


async def test_a_full_search_queue_is_refused_with_busy_and_nothing_is_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = ArchiveIndex(tmp_path / "obrady.sqlite3")
    sid = _session(index)
    release = threading.Event()
    entered = threading.Event()
    real_find = ArchiveIndex.find

    def held_find(self: ArchiveIndex, *args: Any, **kwargs: Any) -> list[SearchHit]:
        entered.set()
        assert release.wait(10)
        return real_find(self, *args, **kwargs)

    async with AsyncArchive(index, searches=1, search_queue=2, search_wait=0.3) as archive:
        assert await archive.search("budżet")  # the index is built before the hold
        monkeypatch.setattr(ArchiveIndex, "find", held_find)
        first = asyncio.ensure_future(archive.search("budżet"))
        await asyncio.to_thread(entered.wait, 5)
        assert archive.search_load == (1, 0)
        waiting = [asyncio.ensure_future(archive.search("budżet")) for _ in range(2)]
        await asyncio.sleep(0.05)
        assert archive.search_load == (1, 2)
        with pytest.raises(Busy, match="waiting already") as beyond:
            await archive.search("budżet")  # a third waiter: refused at once
        assert beyond.value.retry_after >= 1
        for refused in waiting:  # the two waiters: refused after search_wait
            with pytest.raises(Busy, match="no search slot came free within 0.3 s"):
                await refused
        # Reads and writes go on meanwhile.
        assert (await archive.read(ArchiveIndex.get_session, sid)).id == sid
        await archive.call(index.add_marker, sid, "break_start", datetime.now(UTC))
        release.set()
        assert [h.session_id for h in await first] == [sid]
        assert archive.search_load == (0, 0)
        # Asked again, as Retry-After says, the refused searches answer.
        again = await asyncio.gather(*(archive.search("budżet") for _ in range(3)))
        assert all([h.session_id for h in hits] == [sid] for hits in again)


async def test_dictionaries_load_in_a_thread_and_waiters_hold_no_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gate = threading.Event()
    loads: list[str] = []

    def slow() -> None:
        loads.append(threading.current_thread().name)
        assert gate.wait(10)

    dictionaries = Dictionaries(slow)
    monkeypatch.setattr(search_module, "DICTIONARIES", dictionaries)
    assert dictionaries.state().loaded is False
    background = asyncio.ensure_future(search_module.load_in_background())
    waiters = [asyncio.ensure_future(dictionaries.ready()) for _ in range(20)]
    async with loop_stalls() as stall:
        await asyncio.sleep(0.2)
        assert not any(w.done() for w in waiters)
        gate.set()
        await asyncio.wait_for(asyncio.gather(background, *waiters), 5)
    assert loads == ["search-dictionaries"]  # loaded once, in its own thread
    state = dictionaries.state()
    assert state.loaded and state.error is None
    assert state.seconds is not None and state.seconds >= 0.2
    assert stall[0] < 0.5


async def test_a_failed_load_is_reported_and_tried_again() -> None:
    attempts: list[int] = []

    def flaky() -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("disk hiccup")

    dictionaries = Dictionaries(flaky)
    thread = dictionaries.start()
    assert thread is not None
    await asyncio.to_thread(thread.join, 5)
    state = dictionaries.state()
    assert not state.loaded and state.error == "OSError: disk hiccup"
    await asyncio.wait_for(dictionaries.ready(), 5)
    assert dictionaries.state().loaded and len(attempts) == 2


def test_warm_up_loads_the_real_dictionaries() -> None:
    search_module.warm_up()
    state = search_module.DICTIONARIES.state()
    assert state.loaded and state.seconds is not None
    assert search_module.lemma("budżetu") == "budżet"
    assert search_module.stem("budżetu") is not None
