"""Captions and transcripts in the service: live captions of running sessions
(streaming/live_captions.py), recognition of every ended, published recording in the
background (one at a time, at low priority, after live captions: only what they did not hear,
then all of it again), the public WebVTT captions and text transcript, and the staff's
corrections.

The recogniser hears the public copy (slates in place of redacted segments, no closed parts),
and what is shown or searched always leaves out the stretches slates replace, so a redaction
made after recognition hides its words too.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from archive.index import ArchiveIndex, AsyncArchive
from archive.transcripts import InvalidTranscript, TranscriptLine, TranscriptProgress
from config.settings import Settings
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
from streaming.api import session_id_of
from streaming.auth import audit, require
from streaming.editing import make_slates
from streaming.exports import read_view, whole_plan
from streaming.http import json_error
from streaming.keys import ARCHIVE, SETTINGS
from streaming.live import private_if_withdrawn
from streaming.live_captions import LiveCaptioner, agenda_spans, session_vocabulary
from streaming.live_captions import stop as stop_task

log = logging.getLogger(__name__)

# How often the manager looks for ended recordings without a transcript.
LOOK_EVERY_SECONDS = 5.0
# Progress is written to the archive at most this often.
PROGRESS_EVERY_SECONDS = 2.0
PRIVATE = "private, no-store"
PUBLIC = "public, max-age=5"

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


def progress_json(progress: TranscriptProgress) -> dict[str, Any]:
    """A session's recognition progress as JSON."""
    return {
        "session_id": progress.session_id,
        "state": progress.state,
        "done_seconds": round(progress.done_seconds, 1),
        "total_seconds": round(progress.total_seconds, 1),
        "fraction": round(progress.fraction, 3),
        "estimated_finish": (
            progress.estimated_finish.isoformat() if progress.estimated_finish else None
        ),
        "error": progress.error,
        "model": progress.model,
        "queued_at": progress.queued_at.isoformat(),
        "started_at": progress.started_at.isoformat() if progress.started_at else None,
        "finished_at": progress.finished_at.isoformat() if progress.finished_at else None,
        # "rest": only what live captions did not hear; "full": the whole recording.
        "pass": progress.pass_,
        # When the transcript first covered the whole recording.
        "completed_at": progress.completed_at.isoformat() if progress.completed_at else None,
    }


def line_json(line: TranscriptLine, staff: bool) -> dict[str, Any]:
    """One line as JSON; staff also see who corrected it and what recognition had said."""
    found: dict[str, Any] = {
        "id": line.id,
        "start_seconds": round(line.start, 3),
        "end_seconds": round(line.end, 3),
        "text": line.text,
        "corrected": line.corrected,
    }
    if staff:
        found["automatic_text"] = line.automatic_text
        found["corrected_by"] = line.corrected_by
        found["corrected_at"] = line.corrected_at.isoformat() if line.corrected_at else None
    return found


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
        self._task: asyncio.Task[None] | None = None
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
            work_dir=self._settings.data_path / "transcripts" / "work",
        )
        self._task = asyncio.create_task(self._run(), name="transcription")

    async def close(self) -> None:
        """Stop recognition (the running one is marked queued again by the next start)."""
        for task in [self._task, self._offline, *self._live_tasks.values()]:
            await stop_task(task)
        if self._transcriber is not None:
            await self._transcriber.close()

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
                        self._offline = asyncio.create_task(
                            self._transcribe(queue[0]), name=f"transcription-{queue[0]}"
                        )
                        self._offline.add_done_callback(lambda _: self.wake())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("transcription: could not look for recordings")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._every)

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
            task = asyncio.create_task(captioner.run(), name=f"live-captions-{sid}")
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
        await stop_task(task)
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
                await make_slates(self._settings, session, list(job.slates))
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


TRANSCRIPTION = web.AppKey("transcription", TranscriptionManager)


async def transcription_ctx(app: web.Application) -> AsyncIterator[None]:
    """The transcription manager, started after the archive and stopped before it."""
    manager = TranscriptionManager(app[SETTINGS], app[ARCHIVE])
    await manager.start()
    app[TRANSCRIPTION] = manager
    yield
    await manager.close()


# --- public routes (control and gateway) -----------------------------------------------------

public_routes = web.RouteTableDef()


async def _published(request: web.Request) -> tuple[int, bool]:
    archive = request.app[ARCHIVE]
    sid = session_id_of(request)
    session = await archive.call(archive.index.get_session, sid)
    return sid, await private_if_withdrawn(request, session)


@public_routes.get("/sessions/{id}/captions.vtt")
async def captions(request: web.Request) -> web.Response:
    """The recording's captions (automatic, as corrected by staff) as WebVTT; 404 until there
    is a transcript."""
    archive = request.app[ARCHIVE]
    sid, private = await _published(request)
    index = archive.index

    def read() -> str | None:
        if not index.transcript(sid):
            return None
        return index.transcript_vtt(sid, hidden=index.hidden_ranges(sid))

    body = await archive.call(read)
    if body is None:
        raise json_error(web.HTTPNotFound, f"session {sid} has no captions yet")
    return web.Response(
        text=body,
        content_type="text/vtt",
        charset="utf-8",
        headers={"Cache-Control": PRIVATE if private else PUBLIC},
    )


@public_routes.get("/sessions/{id}/transcript.txt")
async def transcript_text(request: web.Request) -> web.Response:
    """The transcript as plain text with times and the agenda's chapters, for download."""
    archive = request.app[ARCHIVE]
    sid, private = await _published(request)
    index = archive.index

    def read() -> str | None:
        if not index.transcript(sid):
            return None
        view = read_view(index, sid)
        chapters = [(c.start, c.label) for c in view.chapters]
        return index.transcript_text(sid, chapters=chapters, hidden=index.hidden_ranges(sid))

    body = await archive.call(read)
    if body is None:
        raise json_error(web.HTTPNotFound, f"session {sid} has no transcript yet")
    return web.Response(
        text=body,
        content_type="text/plain",
        charset="utf-8",
        headers={
            "Cache-Control": PRIVATE if private else PUBLIC,
            "Content-Disposition": f'attachment; filename="transkrypcja-{sid}.txt"',
        },
    )


# --- the API (control only) ------------------------------------------------------------------

routes = web.RouteTableDef()


@routes.get("/api/v1/sessions/{id}/transcript")
async def transcript_json(request: web.Request) -> web.Response:
    """The session's transcript lines and recognition progress. The public get the published
    lines; staff (record.edit) also get hidden and emptied lines and who corrected what."""
    archive = request.app[ARCHIVE]
    sid, private = await _published(request)
    staff = False
    with contextlib.suppress(web.HTTPException):
        await require(request, "record.edit")
        staff = True
    index = archive.index

    def read() -> tuple[list[TranscriptLine], list[tuple[float, float]], Any, Any]:
        return (
            index.transcript(sid, include_empty=staff),
            index.hidden_ranges(sid),
            index.transcription_progress(sid),
            index.heard_ranges(sid) if staff else [],
        )

    lines, hidden, progress, heard = await archive.call(read)
    if not staff:
        lines = [
            line
            for line in lines
            if not any(low < line.end and high > line.start for low, high in hidden)
        ]
    return web.json_response(
        {
            "session_id": sid,
            "automatic": True,
            "progress": progress_json(progress) if progress else None,
            "lines": [line_json(line, staff) for line in lines],
            "hidden": [[round(a, 3), round(b, 3)] for a, b in hidden] if staff else [],
            # What live captions heard while the session ran (the recognition after it heard
            # the rest), until a full re-run.
            "heard_live": [[round(a, 3), round(b, 3)] for a, b in heard],
        },
        headers={"Cache-Control": PRIVATE if (private or staff) else "no-cache"},
    )


def _number(body: dict[str, Any], name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise json_error(web.HTTPBadRequest, f"{name} must be a number of seconds, not {value!r}")
    return float(value)


@routes.patch("/api/v1/sessions/{id}/transcript/lines/{line_id}")
async def correct_line(request: web.Request) -> web.Response:
    """Correct one line: {"text": "...", "start_seconds"?: s, "end_seconds"?: s}. An empty text
    says nothing was said there. Kept with who made it; never overwritten by a re-run."""
    user = await require(request, "record.edit")
    archive = request.app[ARCHIVE]
    sid = session_id_of(request)
    raw = request.match_info["line_id"]
    if not raw.isdigit() or len(raw) > 12:
        raise json_error(web.HTTPNotFound, f"transcript line {raw[:20]!r} does not exist")
    try:
        body = await request.json()
    except ValueError:
        raise json_error(web.HTTPBadRequest, 'send JSON: {"text": "the corrected line"}') from None
    if not isinstance(body, dict) or not isinstance(body.get("text"), str):
        raise json_error(web.HTTPBadRequest, 'send {"text": "the corrected line"} (a string)')
    start, end = _number(body, "start_seconds"), _number(body, "end_seconds")
    index = archive.index
    before = await archive.call(index.get_line, sid, int(raw))
    try:
        line = await archive.call(
            index.correct_line, sid, int(raw), body["text"], user.name, start=start, end=end
        )
    except InvalidTranscript as exc:
        raise json_error(web.HTTPBadRequest, str(exc)) from None
    await audit(
        request,
        user,
        "transcript.correct",
        f"session {sid} line {line.id}",
        session_id=sid,
        before=line_json(before, True),
        after=line_json(line, True),
    )
    return web.json_response(line_json(line, True))


@routes.post("/api/v1/sessions/{id}/transcript/lines")
async def add_line(request: web.Request) -> web.Response:
    """Add a line recognition missed: {"start_seconds": s, "end_seconds": s, "text": "..."}.
    Kept as corrected, with who added it; automatic lines it overlaps are replaced by it."""
    user = await require(request, "record.edit")
    archive = request.app[ARCHIVE]
    sid = session_id_of(request)
    example = '{"start_seconds": 12.5, "end_seconds": 15.0, "text": "the line"}'
    try:
        body = await request.json()
    except ValueError:
        raise json_error(web.HTTPBadRequest, f"send JSON: {example}") from None
    if not isinstance(body, dict) or not isinstance(body.get("text"), str):
        raise json_error(web.HTTPBadRequest, f"send {example} (text a string)")
    start, end = _number(body, "start_seconds"), _number(body, "end_seconds")
    if start is None or end is None:
        raise json_error(web.HTTPBadRequest, f"start_seconds and end_seconds are needed: {example}")
    try:
        line = await archive.call(archive.index.add_line, sid, start, end, body["text"], user.name)
    except InvalidTranscript as exc:
        raise json_error(web.HTTPBadRequest, str(exc)) from None
    await audit(
        request,
        user,
        "transcript.add",
        f"session {sid} line {line.id}",
        session_id=sid,
        after=line_json(line, True),
    )
    return web.json_response(line_json(line, True), status=201)


@routes.post("/api/v1/sessions/{id}/transcript/run")
async def run_again(request: web.Request) -> web.Response:
    """Queue the recording for recognition again (corrected lines are kept)."""
    user = await require(request, "record.edit")
    archive = request.app[ARCHIVE]
    sid = session_id_of(request)
    manager = request.app[TRANSCRIPTION]
    if manager.status.state in ("off", "unavailable"):
        raise json_error(
            web.HTTPConflict,
            "captions are off: "
            + (manager.status.error or "set transcription.model_dir in the configuration"),
        )
    session = await archive.call(archive.index.get_session, sid)
    if session.state != "ended":
        raise json_error(web.HTTPConflict, f"session {sid} has not ended: transcribe it after")
    # Heard again in full: also what live captions heard while the session ran.
    progress = await archive.call(
        functools.partial(archive.index.queue_transcription, full=True), sid
    )
    await audit(request, user, "transcript.run", f"session {sid}", session_id=sid)
    manager.wake()
    return web.json_response(progress_json(progress), status=202)


@routes.get("/api/v1/transcription")
async def transcription_status(request: web.Request) -> web.Response:
    """The recogniser's state and every session's progress (for operators and staff)."""
    await require(request, "console.view")
    archive = request.app[ARCHIVE]
    manager = request.app[TRANSCRIPTION]
    found = await archive.call(archive.index.transcription_progresses)
    return web.json_response(
        {
            "model": manager.status.to_json(),
            "current_session_id": manager.current,
            "live": [c.status.to_json() for c in manager.live.values()],
            "sessions": [progress_json(p) for p in found],
        },
        headers={"Cache-Control": PRIVATE},
    )


def status_json(app: web.Application) -> dict[str, Any]:
    """The part of /api/v1/status about captions."""
    manager = app.get(TRANSCRIPTION)
    if manager is None:
        return {"state": "off", "model_dir": None, "error": None, "live": []}
    return {
        **manager.status.to_json(),
        "current_session_id": manager.current,
        "live": [c.status.to_json() for c in manager.live.values()],
    }
