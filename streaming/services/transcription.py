"""Recognition of every ended, published recording in the background: one at a time, at low
priority, after live captions (only what they did not hear, then all of it again)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from dataclasses import dataclass
from typing import Any, Literal, Self

from archive.index import ArchiveIndex, AsyncArchive
from config.settings import Settings
from recorder.lifecycle import TaskSet
from recorder.priority import CAPTIONS
from recorder.transcribe import (
    AgendaSpan,
    ModelUnavailable,
    Progress,
    Recording,
    SessionVocabulary,
    Stretch,
    TimedLine,
    Transcriber,
    TranscriptionCancelled,
)
from streaming.services.exports import read_view, whole_plan
from streaming.services.live_captions import LiveCaptioner, agenda_spans, session_vocabulary
from streaming.services.slates import make_slates

log = logging.getLogger(__name__)

# How often the manager looks for ended recordings without a transcript.
LOOK_EVERY_SECONDS = 5.0


# Progress is written to the archive at most this often.
PROGRESS_EVERY_SECONDS = 2.0


ModelState = Literal["off", "loading", "ready", "unavailable"]


@dataclass
class ModelStatus:
    """What the console and /api/v1/status show about the recogniser."""

    state: ModelState
    model_dir: str | None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """As JSON."""
        return {"state": self.state, "model_dir": self.model_dir, "error": self.error}


@dataclass(frozen=True)
class _Job:
    """What one recognition needs, read from the archive in one go."""

    session_id: int
    recording: Recording
    spans: tuple[AgendaSpan, ...]
    vocabulary: SessionVocabulary
    slates: tuple[Any, ...]
    # What is left to hear when live captions heard the rest (None: all of it).
    only: tuple[tuple[float, float], ...] | None = None

    @property
    def heard_live(self) -> float:
        """Seconds of the recording live captions recognised already."""
        if self.only is None:
            return 0.0
        return max(0.0, self.recording.seconds - sum(high - low for low, high in self.only))


def unheard(heard: list[tuple[float, float]], total: float) -> tuple[tuple[float, float], ...]:
    """The stretches of [0, total] outside the merged, ordered `heard` ones."""
    found = []
    position = 0.0
    for low, high in heard:
        if low > position:
            found.append((position, min(low, total)))
        position = max(position, high)
    if total > position:
        found.append((position, total))
    return tuple((low, high) for low, high in found if high > low)


def _read_job(index: ArchiveIndex, settings: Settings, session_id: int) -> _Job | None:
    """The public copy's files, its chapters as spans and the session's vocabulary (archive
    thread); None if it has no recording."""
    view = read_view(index, session_id)
    if not view.segments:
        return None
    plan = whole_plan(settings, view)
    vocabulary = session_vocabulary(index, settings, view)
    progress = index.transcription_progress(session_id)
    heard = index.heard_ranges(session_id) if progress and progress.pass_ == "rest" else []
    only = unheard(heard, plan.duration) if heard else None
    return _Job(
        session_id, Recording(plan.files), agenda_spans(view), vocabulary, plan.slates, only
    )


class TranscriptionManager:
    """Recognises ended, published recordings one at a time, in the background."""

    def __init__(
        self,
        settings: Settings,
        archive: AsyncArchive,
        *,
        look_every_seconds: float = LOOK_EVERY_SECONDS,
    ) -> None:
        self._settings = settings
        self._archive = archive
        self._every = look_every_seconds
        path = settings.transcription.model_path
        self.status = ModelStatus("off" if path is None else "loading", str(path) if path else None)
        self._transcriber: Transcriber | None = None
        self._tasks = TaskSet("transcription")
        self._offline: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.current: int | None = None
        # Live captioners of running sessions, by session id.
        self.live: dict[int, LiveCaptioner] = {}
        self._live_tasks: dict[int, asyncio.Task[None]] = {}

    async def start(self) -> None:
        """Load the model in the background and start looking for recordings (nothing to do
        when no model is configured)."""
        path = self._settings.transcription.model_path
        if path is None:
            return
        config = self._settings.transcription
        self._transcriber = Transcriber(
            path,
            language=config.language,
            cpu_threads=config.cpu_threads,
            compute_type=config.compute_type,
            beam_size=config.beam_size,
            temperatures=config.temperatures,
            vad=config.vad,
            nice=config.nice,
            max_stretch_seconds=config.max_stretch_seconds,
            work_dir=self._settings.paths.transcription_work,
        )
        self._tasks.spawn(self._run(), name="transcription")

    async def close(self) -> None:
        """Stop recognition (the running one is marked queued again by the next start)."""
        await self._tasks.close()
        if self._transcriber is not None:
            await self._transcriber.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def wake(self) -> None:
        """Look for work now (a session ended, or staff asked for a re-run)."""
        self._wake.set()

    async def _run(self) -> None:
        assert self._transcriber is not None
        try:
            await self._transcriber.start()
        except ModelUnavailable as exc:
            self.status.state, self.status.error = "unavailable", str(exc)
            log.error("captions are off: %s", exc)
            return
        self.status.state = "ready"
        archive = self._archive
        requeued = await archive.call(archive.index.requeue_interrupted)
        if requeued:
            log.info("transcription: sessions %s queued again after an interrupted run", requeued)
        while True:
            try:
                await self._follow_live()
                if self._live_tasks:
                    # Live captions come first: the recognition of an earlier session waits.
                    await self._pause_offline()
                elif self._offline is None or self._offline.done():
                    self._offline = None
                    await self._queue_ended()
                    queue = await archive.call(archive.index.transcription_queue)
                    if queue:
                        self._offline = self._tasks.spawn(
                            self._transcribe(queue[0]), name=f"transcription-{queue[0]}"
                        )
                        self._offline.add_done_callback(lambda _: self.wake())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("transcription: could not look for recordings")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._every):
                    await self._wake.wait()

    async def _follow_live(self) -> None:
        """Start a captioner for every session that went live (if live captions are on), and
        forget those whose session ended."""
        for sid, task in list(self._live_tasks.items()):
            if task.done():
                del self._live_tasks[sid]
                with contextlib.suppress(asyncio.CancelledError):
                    if task.exception() is not None:
                        log.error("live captions of session %d stopped: %r", sid, task.exception())
        if not self._settings.transcription.live:
            return
        archive = self._archive
        assert self._transcriber is not None

        def running() -> list[int]:
            return [s.id for s in archive.index.list_sessions() if s.state == "live"]

        for sid in await archive.call(running):
            if sid in self._live_tasks:
                continue
            captioner = LiveCaptioner(self._settings, archive, self._transcriber, sid)
            self.live[sid] = captioner
            task = self._tasks.spawn(captioner.run(), name=f"live-captions-{sid}")
            task.add_done_callback(lambda _: self.wake())
            self._live_tasks[sid] = task
            log.info("live captions of session %d started", sid)
        # Keep the last state of ended sessions' captioners for the status, a few at most.
        for sid in [s for s in self.live if s not in self._live_tasks][:-4]:
            del self.live[sid]

    async def _pause_offline(self) -> None:
        """Stop the recognition of an ended session and queue it again (it starts over when
        no session is live)."""
        task, self._offline = self._offline, None
        if task is None or task.done():
            return
        sid = self.current
        await self._tasks.cancel(task)
        if sid is not None:
            archive = self._archive
            await archive.call(archive.index.requeue_interrupted)
            log.info("transcription of session %d paused for live captions", sid)

    async def _queue_ended(self) -> None:
        """Queue each ended, published session with a recording that was never queued."""
        archive = self._archive

        def find() -> list[int]:
            index = archive.index
            known = {p.session_id for p in index.transcription_progresses()}
            found = []
            for session in index.list_sessions():
                if session.state == "ended" and session.published and session.id not in known:
                    if index.segments(session.id):
                        index.queue_transcription(session.id)
                        found.append(session.id)
            return found

        queued = await archive.call(find)
        if queued:
            log.info("transcription: queued sessions %s", queued)

    async def _transcribe(self, session_id: int) -> None:
        archive = self._archive
        index = archive.index
        assert self._transcriber is not None
        job = await archive.call(_read_job, index, self._settings, session_id)
        if job is None:
            await archive.call(index.fail_transcription, session_id, "no recording")
            return
        self.current = session_id
        total = job.recording.seconds
        model = self._settings.transcription.model_dir
        await archive.call(index.start_transcription, session_id, total, model)
        last_write = 0.0
        writes: set[asyncio.Task[Any]] = set()

        def on_progress(progress: Progress) -> None:
            nonlocal last_write
            now = time.monotonic()
            if now - last_write < PROGRESS_EVERY_SECONDS:
                return
            last_write = now
            task = asyncio.ensure_future(
                archive.call(
                    index.update_transcription,
                    session_id,
                    job.heard_live + progress.done_seconds,
                    total,
                    progress.estimated_finish,
                )
            )
            writes.add(task)
            task.add_done_callback(writes.discard)

        def on_lines(stretch: Stretch, lines: list[TimedLine]) -> None:
            # Each stretch is kept as soon as it is recognised: captions grow while it runs.
            task = asyncio.ensure_future(
                archive.call(
                    index.replace_automatic,
                    session_id,
                    lines,
                    within=(stretch.start, stretch.end),
                )
            )
            writes.add(task)
            task.add_done_callback(writes.discard)

        try:
            if job.slates:
                session = await archive.call(index.get_session, session_id)
                await make_slates(self._settings, session, list(job.slates), priority=CAPTIONS)
            if job.only is not None:
                log.info(
                    "transcription of session %d: live captions heard %.0f of %.0f s, "
                    "the rest is recognised now",
                    session_id,
                    job.heard_live,
                    total,
                )
            lines = await self._transcriber.transcribe_async(
                job.recording,
                job.spans,
                job.vocabulary,
                only=job.only,
                on_progress=on_progress,
                on_lines=on_lines,
            )
            await asyncio.gather(*writes, return_exceptions=True)
            stored = 0
            for within in [None] if job.only is None else job.only:
                result = await archive.call(
                    functools.partial(index.replace_automatic, within=within),
                    session_id,
                    lines,
                )
                stored += result.stored
            await archive.call(index.finish_transcription, session_id)
            log.info("transcription of session %d done: %d lines", session_id, stored)
            if job.only is not None and self._settings.transcription.refine_after_live:
                # Whole now; heard again in full (better than live windows) when time allows.
                await archive.call(
                    functools.partial(index.queue_transcription, full=True), session_id, total
                )
        except (asyncio.CancelledError, TranscriptionCancelled):
            raise
        except Exception as exc:
            log.exception("transcription of session %d failed", session_id)
            await asyncio.gather(*writes, return_exceptions=True)
            await archive.call(index.fail_transcription, session_id, str(exc)[:500])
        finally:
            self.current = None
