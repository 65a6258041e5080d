"""SessionControl on its own: a real archive, a real Recorder running ffmpeg on a synthetic
camera (320x180, 1 s segments), and the live edge; no web application."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import config_text, free_port, wait_for

from archive.agenda import parse_agenda
from archive.index import ArchiveIndex, AsyncArchive, Conflict, NotFound, Session
from config.settings import Settings, parse_settings
from recorder.analysis import SegmentAnalyzer
from recorder.supervisor import Recorder
from streaming.edge.llhls import LiveEdge
from streaming.services.control import (
    SLATE,
    ArchiveCaptureEvents,
    ProgramSelector,
    SessionControl,
)
from streaming.services.indexer import ArchiveIndexer

AGENDA = "1. Otwarcie sesji.\n2. Budżet miasta.\n3. Zamknięcie obrad.\n"


def media_files(root: Path) -> list[tuple[Path, int]]:
    """Every recorded file under root, with its size."""
    return sorted((p.relative_to(root), p.stat().st_size) for p in root.rglob("media/**/*.*"))


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Parts:
    """What SessionControl works with, each started as the composition root starts it."""

    settings: Settings
    archive: AsyncArchive
    recorder: Recorder
    control: SessionControl

    async def new_session(self) -> Session:
        at = _now() + timedelta(hours=1)
        return await self.archive.call(
            self.archive.index.create_session,
            chamber="sala",
            title="Sesja Rady Miasta",
            kind="session",
            scheduled_start=at,
            scheduled_end=at + timedelta(hours=1),
            agenda_text=AGENDA,
            agenda=parse_agenda(AGENDA),
            created_by="op",
        )

    async def program_segments(self, session_id: int) -> int:
        return len(await self.archive.call(self.archive.index.segments, session_id))


@pytest.fixture
async def parts(tmp_path: Path) -> AsyncIterator[Parts]:
    settings = parse_settings(config_text(tmp_path / "data", free_port()))
    chambers = [chamber.id for chamber in settings.chambers]
    index = await asyncio.to_thread(ArchiveIndex, settings.paths.database)
    program = ProgramSelector(settings)
    async with AsyncExitStack() as stack:
        archive = await stack.enter_async_context(AsyncArchive(index))
        edge = LiveEdge(
            settings.data_path,
            chambers,
            window_segments=settings.live.playlist_segments,
            part_target=settings.live.part_target_seconds,
            segment_seconds=settings.recording.segment_seconds,
            allowed=program.live_allows,
            went_live=lambda chamber, camera: control.room_went_live(chamber, camera),
        )
        await stack.enter_async_context(edge)
        # Not entered: its queue only fills (and then skips); analysis is not under test here.
        analyzer = SegmentAnalyzer(settings.monitoring)
        indexer = await stack.enter_async_context(ArchiveIndexer(archive))
        events = ArchiveCaptureEvents(indexer, edge, analyzer, program)
        recorder = await stack.enter_async_context(Recorder(settings.recording, events))
        control = SessionControl(settings, archive, recorder, program, _now, indexer)
        await stack.enter_async_context(control)
        yield Parts(settings, archive, recorder, control)
    # Leaving stopped every capture and every task and timer of the control.
    assert not recorder.statuses()
    assert control.background() == []


async def test_a_session_runs_from_start_to_stop(parts: Parts) -> None:
    archive, index, control = parts.archive, parts.archive.index, parts.control
    session = await parts.new_session()
    sid = session.id
    assert session.state == "scheduled"

    started = await control.start(sid, by="op", manual=True)
    assert started.state == "live" and started.started_at is not None
    assert parts.recorder.is_recording(sid)
    await wait_for(lambda: parts.program_segments(sid), 20, "the first segment indexed")
    first = (await archive.call(index.segments, sid))[0]
    assert first.duration > 0 and first.size_bytes > 0

    # A manual start of a session that is live is refused.
    with pytest.raises(Conflict, match="already live"):
        await control.start(sid, by="op", manual=True)

    agenda = await archive.call(index.agenda, sid)
    await control.start_item(sid, agenda[1].id, by="op")
    markers = await archive.call(index.markers, sid)
    assert [(m.kind, m.item_id, m.created_by) for m in markers] == [
        ("item_start", agenda[1].id, "op")
    ]

    await control.set_break(sid, True, by="op")
    assert await control.in_break(sid)
    assert parts.recorder.supervisor(sid, SLATE) is not None  # the break slate is captured
    with pytest.raises(Conflict, match="already in a break"):
        await control.set_break(sid, True, by="op")

    async def slate_is_program() -> bool:
        return control.program.camera("sala") == SLATE

    await wait_for(slate_is_program, 20, "the break slate to become the program")
    await control.set_break(sid, False, by="op")
    assert not await control.in_break(sid)
    # The slate stays on the live stream until the room's next file begins (at the latest a
    # few segments later): a task of the control ends it.
    before_stop = await parts.program_segments(sid)

    stopped = await control.stop(sid, by="op")
    assert stopped.state == "ended" and stopped.stopped_by == "op"
    assert stopped.ended_at is not None
    assert not parts.recorder.is_recording(sid)
    runs = await archive.call(index.runs, sid)
    assert {run.camera for run in runs} == {"main", SLATE}
    assert all(run.ended_at is not None and run.end_reason == "stopped" for run in runs), runs
    assert await parts.program_segments(sid) >= before_stop
    kinds = [m.kind for m in await archive.call(index.markers, sid)]
    assert kinds == ["item_start", "break_start", "break_end"]

    async def nothing_left() -> bool:
        return control.background() == []

    await wait_for(nothing_left, 5, "the control's tasks to end")


async def test_an_ended_session_is_not_started_again(parts: Parts, tmp_path: Path) -> None:
    archive, index, control = parts.archive, parts.archive.index, parts.control
    sid = (await parts.new_session()).id
    await control.start(sid, by="op", manual=True)
    await wait_for(lambda: parts.program_segments(sid), 20, "the first segment indexed")
    ended = await control.stop(sid, by="op")
    runs = await archive.call(index.runs, sid)
    files = await asyncio.to_thread(media_files, tmp_path)
    assert files

    for manual in (True, False):  # by hand, or by the scheduler
        with pytest.raises(Conflict, match="has ended .*schedule a new one"):
            await control.start(sid, by="op", manual=manual)
    with pytest.raises(Conflict, match="has already ended"):
        await control.stop(sid, by="op")
    with pytest.raises(Conflict, match="has ended; markers can no longer be added"):
        await control.set_break(sid, True, by="op")

    assert await archive.call(index.get_session, sid) == ended
    assert await archive.call(index.runs, sid) == runs
    assert await archive.call(index.markers, sid) == []
    assert not parts.recorder.is_recording(sid) and not parts.recorder.statuses()
    assert await asyncio.to_thread(media_files, tmp_path) == files


async def test_starting_an_unknown_session_says_so(parts: Parts) -> None:
    with pytest.raises(NotFound, match="session 99 does not exist"):
        await parts.control.start(99, by="op", manual=True)
    assert not parts.recorder.statuses()
