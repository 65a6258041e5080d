"""MP4 downloads of a public recording, whole or as a clip: served with Range once made, a self-
reloading progress page (202) while they are made."""

from __future__ import annotations

import math
from pathlib import Path

from aiohttp import web

from streaming.hls.routes import private_if_withdrawn
from streaming.http import is_digits, json_error, session_id_of
from streaming.keys import ARCHIVE, EXPORTS, SETTINGS
from streaming.services.exports import (
    RANGE_EPSILON,
    ExportJob,
    ExportPlan,
    RecordingView,
    content_disposition,
    download_name,
    read_view,
    span_plan,
    whole_plan,
)
from streaming.web.i18n import wants_html
from streaming.web.templating import page, words

routes = web.RouteTableDef()


RETRY_AFTER_SECONDS = 2


DOWNLOAD_CACHE = "public, max-age=600"


PRIVATE = "private, no-store"


async def _view(request: web.Request) -> tuple[RecordingView, bool]:
    """The session's public copy if it may be downloaded now, and whether only privately."""
    archive = request.app[ARCHIVE]
    sid = session_id_of(request)
    session = await archive.call(archive.index.get_session, sid)
    private = await private_if_withdrawn(request, session)
    if session.state == "live":
        raise json_error(
            web.HTTPConflict,
            f"session {sid} is live: the recording is still being made; "
            "download it after the session ends",
        )
    if session.state == "scheduled":
        raise json_error(web.HTTPNotFound, f"session {sid} has not been recorded yet")
    view = await archive.read(read_view, sid)
    if not view.segments:
        raise json_error(web.HTTPNotFound, f"session {sid} has no recording")
    return view, private


def _status_url(session_id: int) -> str:
    return f"/api/v1/sessions/{session_id}/exports"


async def _serve(request: web.Request, plan: ExportPlan, private: bool) -> web.StreamResponse:
    """The finished MP4 (Range requests answered by FileResponse), or 202 while it is made."""
    result = await request.app[EXPORTS].ensure(plan)
    if isinstance(result, Path):
        return web.FileResponse(
            result,
            headers={
                "Content-Type": "video/mp4",
                "Content-Disposition": content_disposition(
                    download_name(plan.session, plan.label, request.app[SETTINGS].site.zone)
                ),
                "Cache-Control": PRIVATE if private else DOWNLOAD_CACHE,
            },
        )
    if wants_html(request):
        return _progress_page(request, plan, result)
    return web.json_response(
        {
            "state": "working",
            "queued": result.state == "queued",
            "progress": round(result.progress, 3),
            # Whole segments: where the export begins in the recording and how long it lasts.
            "start_seconds": round(plan.start, 3),
            "duration_seconds": round(plan.duration, 3),
            "status_url": _status_url(plan.session.id),
        },
        status=202,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS), "Cache-Control": "no-store"},
    )


def _progress_page(request: web.Request, plan: ExportPlan, job: ExportJob) -> web.Response:
    """What a browser shows after clicking a download that is still being made: the progress,
    reloading itself until the file is there (the reload then downloads it)."""
    response = page(
        request,
        "progress.html",
        title=words(request).text("progress.title"),
        status=202,
        cache="no-store",
        refresh_seconds=RETRY_AFTER_SECONDS,
        name=download_name(plan.session, plan.label, request.app[SETTINGS].site.zone),
        percent=round(job.progress * 100),
        queued=job.state == "queued",
        session_id=plan.session.id,
    )
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


@routes.get("/sessions/{id}/recording.mp4")
async def recording_mp4(request: web.Request) -> web.StreamResponse:
    """The whole public recording as one MP4 with chapters (202 while it is being made)."""
    view, private = await _view(request)
    return await _serve(request, whole_plan(request.app[SETTINGS], view), private)


@routes.get("/sessions/{id}/items/{item_id}/clip.mp4")
async def item_clip(request: web.Request) -> web.StreamResponse:
    """One agenda item's chapter as an MP4, in whole segments (it may begin and end up to a
    segment beyond the chapter: nothing is re-encoded)."""
    raw = request.match_info["item_id"]
    if not is_digits(raw) or len(raw) > 12:
        raise json_error(
            web.HTTPNotFound,
            f"agenda item {raw[:20]!r} does not exist: an item is named by its number "
            "(ASCII digits), as the session's agenda gives it",
        )
    view, private = await _view(request)
    sid = view.session.id
    item = next((row for row in view.agenda if row.id == int(raw)), None)
    if item is None:
        raise json_error(web.HTTPNotFound, f"agenda item {raw!r} does not exist in session {sid}")
    chapter = next((c for c in view.chapters if c.item_id == item.id), None)
    if chapter is None:
        raise json_error(
            web.HTTPNotFound,
            f"agenda item {item.id} ({item.number}. {item.title}) was never taken up in session "
            f"{sid}: it has no chapter in the recording",
        )
    label = f"punkt {item.number}"
    plan = span_plan(
        request.app[SETTINGS], view, f"item-{item.id}", label, chapter.start, chapter.end
    )
    return await _serve(request, plan, private)


def _seconds(request: web.Request, name: str, default: float) -> float:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        # ASCII only: float() also reads other scripts' digits and "1_0", which no link holds.
        value = float(raw) if raw.isascii() and "_" not in raw else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise json_error(
            web.HTTPBadRequest,
            f"{name} must be a number of seconds (e.g. {name}=12.5), not {raw!r}",
        )
    return value


@routes.get("/sessions/{id}/clip.mp4")
async def range_clip(request: web.Request) -> web.StreamResponse:
    """Any stretch of the public recording (?start=&end= in seconds) as an MP4, in whole
    segments."""
    view, private = await _view(request)
    total = view.duration
    start = _seconds(request, "start", 0.0)
    end = _seconds(request, "end", total)
    problem = None
    beyond = f"goes beyond the recording, which lasts {total:.3f} s"
    if start < 0:
        problem = f"start must be 0 or more, not {start:g}"
    elif start >= total:
        problem = f"start {start:g} {beyond}"
    elif end <= start:
        problem = f"end ({end:g}) must be after start ({start:g})"
    elif end > total + RANGE_EPSILON:
        problem = f"end {end:g} {beyond}"
    if problem is not None:
        raise json_error(web.HTTPBadRequest, problem)
    end = min(end, total)
    plan = span_plan(request.app[SETTINGS], view, "range", "", start, end)
    group = f"range-{round(plan.start * 1000)}-{round((plan.start + plan.duration) * 1000)}"
    label = f"{plan.start:.0f}-{plan.start + plan.duration:.0f} s"
    plan = span_plan(request.app[SETTINGS], view, group, label, start, end)
    return await _serve(request, plan, private)
