"""Captions and transcripts in the service: live captions of running sessions
(streaming/services/live_captions.py), recognition of every ended, published recording in the
background (one at a time, at low priority, after live captions: only what they did not hear,
then all of it again), the public WebVTT captions and text transcript, and the staff's
corrections.

The recogniser hears the public copy (slates in place of redacted segments, no closed parts),
and what is shown or searched always leaves out the stretches slates replace, so a redaction
made after recognition hides its words too.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from typing import Any

from aiohttp import web

from archive.index import ArchiveIndex
from archive.transcripts import InvalidTranscript, TranscriptLine, TranscriptProgress
from streaming.api.body import read_body
from streaming.api.models import LineAdd, LineCorrect
from streaming.api.openapi import STAFF, operation
from streaming.auth.access import audit, require
from streaming.hls.routes import private_if_withdrawn
from streaming.http import is_digits, json_error, session_id_of
from streaming.keys import ARCHIVE, TRANSCRIPTION
from streaming.services.exports import read_view

log = logging.getLogger(__name__)

PRIVATE = "private, no-store"
PUBLIC = "public, max-age=5"


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

    def read(index: ArchiveIndex) -> str | None:
        if not index.transcript(sid):
            return None
        return index.transcript_vtt(sid, hidden=index.hidden_ranges(sid))

    body = await archive.read(read)
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

    def read(index: ArchiveIndex) -> str | None:
        if not index.transcript(sid):
            return None
        view = read_view(index, sid)
        chapters = [(c.start, c.label) for c in view.chapters]
        return index.transcript_text(sid, chapters=chapters, hidden=index.hidden_ranges(sid))

    body = await archive.read(read)
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
@operation(
    "The automatic transcript's lines (as corrected by staff) and recognition progress; "
    "captions at /sessions/{id}/captions.vtt, text at /sessions/{id}/transcript.txt; staff "
    "also see hidden lines and who corrected",
    errors=("401", "403", "410"),
)
async def transcript_json(request: web.Request) -> web.Response:
    """The session's transcript lines and recognition progress. The public get the published
    lines; staff (record.edit) also get hidden and emptied lines and who corrected what."""
    archive = request.app[ARCHIVE]
    sid, private = await _published(request)
    staff = False
    with contextlib.suppress(web.HTTPException):
        await require(request, "record.edit")
        staff = True

    def read(
        index: ArchiveIndex,
    ) -> tuple[list[TranscriptLine], list[tuple[float, float]], Any, Any]:
        return (
            index.transcript(sid, include_empty=staff),
            index.hidden_ranges(sid),
            index.transcription_progress(sid),
            index.heard_ranges(sid) if staff else [],
        )

    lines, hidden, progress, heard = await archive.read(read)
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


@routes.patch("/api/v1/sessions/{id}/transcript/lines/{line_id}")
@operation(
    "Correct a transcript line (an empty text: nothing was said); kept with who made it, "
    "never overwritten by a re-run",
    STAFF,
    body=LineCorrect,
)
async def correct_line(request: web.Request) -> web.Response:
    """Correct one line: {"text": "...", "start_seconds"?: s, "end_seconds"?: s}. An empty text
    says nothing was said there. Kept with who made it; never overwritten by a re-run."""
    user = await require(request, "record.edit")
    archive = request.app[ARCHIVE]
    sid = session_id_of(request)
    raw = request.match_info["line_id"]
    if not is_digits(raw) or len(raw) > 12:
        raise json_error(web.HTTPNotFound, f"transcript line {raw[:20]!r} does not exist")
    body = await read_body(request, LineCorrect)
    index = archive.index
    before = await archive.call(index.get_line, sid, int(raw))
    try:
        line = await archive.call(
            index.correct_line,
            sid,
            int(raw),
            body.text,
            user.name,
            start=body.start_seconds,
            end=body.end_seconds,
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
@operation(
    "Add a line recognition missed; kept with who added it, it replaces the automatic lines "
    "it overlaps and is never overwritten by a re-run",
    STAFF,
    body=LineAdd,
    ok=201,
)
async def add_line(request: web.Request) -> web.Response:
    """Add a line recognition missed: {"start_seconds": s, "end_seconds": s, "text": "..."}.
    Kept as corrected, with who added it; automatic lines it overlaps are replaced by it."""
    user = await require(request, "record.edit")
    archive = request.app[ARCHIVE]
    sid = session_id_of(request)
    body = await read_body(request, LineAdd)
    try:
        line = await archive.call(
            archive.index.add_line, sid, body.start_seconds, body.end_seconds, body.text, user.name
        )
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
@operation("Recognise the whole recording again (corrected lines are kept)", STAFF, ok=202)
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
@operation(
    "The speech recogniser's state (off, loading, ready, unavailable and why), the live "
    "captioners of running sessions (delay, skipped seconds) and each session's recognition "
    "progress with its estimated finish",
    "signed in",
)
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
