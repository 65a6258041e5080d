"""After the session: staff correct markers, publish or withdraw, and redact the public copy.

Every route needs a role allowed by streaming.auth (record.edit, record.publish, record.redact),
writes an audit entry with the state before and after, and changes only the index: recorded
media is never written. A redaction's slates are new files under data/redacted/.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from aiohttp import web

from archive.editing import CoveredSegment, InvalidEdit, Redaction
from archive.index import AgendaRow, AsyncArchive, Marker, Segment, Session
from archive.publish import Chapter, chapters, slate_name
from archive.timeline import Timeline
from config.settings import Settings
from recorder.ffmpeg import RedactionSlate, redaction_slate_argv, segment_probe_argv
from streaming.api import json_body, marker_json, session_id_of
from streaming.auth import audit, require
from streaming.http import json_error
from streaming.keys import ARCHIVE, SETTINGS
from streaming.live import redaction_dir, session_dir

log = logging.getLogger(__name__)

routes = web.RouteTableDef()
P = ParamSpec("P")
T = TypeVar("T")

# Making one slate takes well under a second; a stuck ffmpeg must not hold the request forever.
FFMPEG_TIMEOUT_SECONDS = 60.0
X264_PROFILES = {
    "Constrained Baseline": "baseline",
    "Baseline": "baseline",
    "Main": "main",
    "High": "high",
}


def _path_id(request: web.Request, name: str, what: str) -> int:
    raw = request.match_info[name]
    if not raw.isdigit() or len(raw) > 12:
        raise json_error(web.HTTPNotFound, f"{what} {raw!r} does not exist")
    return int(raw)


def _only(body: dict[str, Any], allowed: set[str], example: str) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise json_error(
            web.HTTPBadRequest,
            f"unknown field(s): {', '.join(unknown)}; send {example}",
        )


def _seconds(body: dict[str, Any], key: str, *, required: bool = True) -> float | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise json_error(
            web.HTTPBadRequest, f"{key} must be a number of seconds from the recording's start"
        )
    return float(value)


def _ident(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise json_error(web.HTTPBadRequest, f"{key} must be an agenda item's id (a number)")
    return value


def _text(body: dict[str, Any], key: str, what: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise json_error(web.HTTPBadRequest, f"{key} must be text: {what}")
    return value


async def _edit(archive: AsyncArchive, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run an archive edit; its InvalidEdit is a 400 (NotFound and Conflict are the
    middleware's 404 and 409)."""
    try:
        return await archive.call(fn, *args, **kwargs)
    except InvalidEdit as exc:
        raise json_error(web.HTTPBadRequest, str(exc)) from None


def _chapter_json(chapter: Chapter) -> dict[str, Any]:
    return {
        "item_id": chapter.item_id,
        "number": chapter.number,
        "title": chapter.title,
        "start_seconds": round(chapter.start, 3),
        "end_seconds": round(chapter.end, 3),
    }


def _item_json(row: AgendaRow) -> dict[str, Any]:
    return {"id": row.id, "number": row.number, "title": row.title, "parent_id": row.parent_id}


async def _record(archive: AsyncArchive, sid: int) -> tuple[Timeline, list[Chapter]]:
    index = archive.index

    def read() -> tuple[Timeline, list[Chapter]]:
        timeline = index.timeline(sid)
        return timeline, chapters(index.agenda(sid), index.markers(sid), timeline)

    return await archive.call(read)


async def _marker_answer(
    archive: AsyncArchive, sid: int, marker: Marker | None, **extra: Any
) -> dict[str, Any]:
    """A marker as stored now, with the chapters it makes."""
    timeline, found = await _record(archive, sid)
    answer: dict[str, Any] = {
        "marker": None if marker is None else marker_json(marker, timeline),
        **extra,
        "chapters": [_chapter_json(c) for c in found],
    }
    return answer


async def _marker_state(archive: AsyncArchive, sid: int, marker: Marker) -> dict[str, Any]:
    timeline = await archive.call(archive.index.timeline, sid)
    return marker_json(marker, timeline)


# markers


@routes.patch("/api/v1/sessions/{id}/markers/{marker_id}")
async def move_marker(request: web.Request) -> web.Response:
    """Move a marker to a moment of the recording ({"offset_seconds": x}) and/or re-point an
    item start at another item ({"item_id": n})."""
    user = await require(request, "record.edit")
    archive = request.app[ARCHIVE]
    sid = session_id_of(request)
    marker_id = _path_id(request, "marker_id", "marker")
    body = await json_body(request)
    _only(body, {"offset_seconds", "item_id"}, '{"offset_seconds": x} and/or {"item_id": n}')
    offset = _seconds(body, "offset_seconds", required=False)
    item_id = _ident(body, "item_id")
    # The marker as it was shown, offset included, for the audit (read before the change).
    markers = await archive.call(archive.index.markers, sid)
    old = next((m for m in markers if m.id == marker_id), None)
    before_json = None if old is None else await _marker_state(archive, sid, old)
    before, after = await _edit(
        archive, archive.index.move_marker, sid, marker_id, offset_seconds=offset, item_id=item_id
    )
    answer = await _marker_answer(archive, sid, after)
    await audit(
        request,
        user,
        "marker.move",
        f"session {sid} marker {marker_id}",
        session_id=sid,
        before=before_json or {"kind": before.kind, "at": before.at.isoformat()},
        after=answer["marker"],
    )
    return web.json_response(answer)


@routes.post("/api/v1/sessions/{id}/markers")
async def split_chapter(request: web.Request) -> web.Response:
    """A new chapter from a moment of the recording: {"kind": "item_start", "offset_seconds": x}
    with "item_id": n (an item of the agenda) or "title": "..." (a new item at the end of the
    agenda, or of "parent_id"'s items)."""
    user = await require(request, "record.edit")
    archive = request.app[ARCHIVE]
    sid = session_id_of(request)
    body = await json_body(request)
    _only(
        body,
        {"kind", "offset_seconds", "item_id", "title", "parent_id"},
        '{"kind": "item_start", "offset_seconds": x, "item_id": n} or with "title" instead',
    )
    if body.get("kind", "item_start") != "item_start":
        raise json_error(
            web.HTTPBadRequest,
            'only "kind": "item_start" markers can be added after the session (a new chapter)',
        )
    offset = _seconds(body, "offset_seconds")
    assert offset is not None
    title = _text(body, "title", "the new agenda item's title")
    marker, item = await _edit(
        archive,
        archive.index.split_chapter,
        sid,
        offset,
        item_id=_ident(body, "item_id"),
        title=title,
        parent_id=_ident(body, "parent_id"),
        created_by=user.name,
    )
    answer = await _marker_answer(
        archive, sid, marker, item=None if item is None else _item_json(item)
    )
    await audit(
        request,
        user,
        "marker.split",
        f"session {sid} marker {marker.id}",
        session_id=sid,
        before={"marker": None},
        after={"marker": answer["marker"], "item_added": answer["item"]},
    )
    return web.json_response(answer, status=201)


@routes.delete("/api/v1/sessions/{id}/markers/{marker_id}")
async def merge_chapter(request: web.Request) -> web.Response:
    """Delete an item start: its chapter joins the previous one."""
    user = await require(request, "record.edit")
    archive = request.app[ARCHIVE]
    sid = session_id_of(request)
    marker_id = _path_id(request, "marker_id", "marker")
    markers = await archive.call(archive.index.markers, sid)
    old = next((m for m in markers if m.id == marker_id), None)
    before_json = None if old is None else await _marker_state(archive, sid, old)
    deleted = await _edit(archive, archive.index.merge_chapter, sid, marker_id)
    answer = await _marker_answer(archive, sid, None, deleted=before_json)
    await audit(
        request,
        user,
        "marker.merge",
        f"session {sid} marker {marker_id}",
        session_id=sid,
        before={"marker": before_json or {"kind": deleted.kind, "at": deleted.at.isoformat()}},
        after={"marker": None},
    )
    return web.json_response(answer)


# agenda items


@routes.patch("/api/v1/sessions/{id}/items/{item_id}")
async def rename_item(request: web.Request) -> web.Response:
    """Correct an agenda item's title after the session: {"title": "..."}."""
    user = await require(request, "record.edit")
    archive = request.app[ARCHIVE]
    sid = session_id_of(request)
    item_id = _path_id(request, "item_id", "agenda item")
    body = await json_body(request)
    _only(body, {"title"}, '{"title": "..."}')
    title = _text(body, "title", "the item's corrected title")
    if title is None:
        raise json_error(web.HTTPBadRequest, 'send {"title": "..."}: the corrected title')
    before, after = await _edit(archive, archive.index.rename_item, sid, item_id, title)
    await audit(
        request,
        user,
        "item.rename",
        f"session {sid} item {item_id}",
        session_id=sid,
        before=_item_json(before),
        after=_item_json(after),
    )
    _, found = await _record(archive, sid)
    return web.json_response(
        {"item": _item_json(after), "chapters": [_chapter_json(c) for c in found]}
    )


# publication


@routes.post("/api/v1/sessions/{id}/publish")
async def publish(request: web.Request) -> web.Response:
    """Publish ({"published": true}) or withdraw ({"published": false}) the recording."""
    user = await require(request, "record.publish")
    archive = request.app[ARCHIVE]
    sid = session_id_of(request)
    body = await json_body(request)
    published = body.get("published")
    if not isinstance(published, bool) or set(body) - {"published"}:
        raise json_error(
            web.HTTPBadRequest,
            'send {"published": true} to publish the recording, {"published": false} to '
            "withdraw it",
        )
    before, after = await _edit(archive, archive.index.set_published, sid, published)
    await audit(
        request,
        user,
        "session.publish" if published else "session.withdraw",
        f"session {sid}",
        session_id=sid,
        before={"published": before},
        after={"published": after},
    )
    return web.json_response({"session_id": sid, "published": after})


# redaction


def _redaction_json(redaction: Redaction, cover: list[CoveredSegment]) -> dict[str, Any]:
    hidden = None
    if cover:
        last = cover[-1]
        hidden = {
            "start_seconds": round(cover[0].start, 3),
            "end_seconds": round(last.start + last.duration, 3),
            "segments": len(cover),
        }
    return {
        "id": redaction.id,
        "start_seconds": redaction.start_seconds,
        "end_seconds": redaction.end_seconds,
        "reason": redaction.reason,
        "created_by": redaction.created_by,
        "created_at": redaction.created_at.isoformat(),
        # Whole segments are replaced: what the public copy actually hides.
        "hidden": hidden,
    }


async def _redactions(archive: AsyncArchive, sid: int) -> list[dict[str, Any]]:
    index = archive.index

    def read() -> list[dict[str, Any]]:
        cover = index.redaction_cover(sid)
        return [_redaction_json(r, cover.get(r.id, [])) for r in index.redactions(sid)]

    return await archive.call(read)


@routes.get("/api/v1/sessions/{id}/redactions")
async def list_redactions(request: web.Request) -> web.Response:
    """The session's redactions, with what each hides in the public copy."""
    await require(request, "record.redact")
    archive = request.app[ARCHIVE]
    sid = session_id_of(request)
    timeline = await archive.call(archive.index.timeline, sid)
    return web.json_response(
        {
            "session_id": sid,
            "duration_seconds": round(timeline.duration, 3),
            "redactions": await _redactions(archive, sid),
        },
        headers={"Cache-Control": "private, no-store"},
    )


@routes.post("/api/v1/sessions/{id}/redactions")
async def add_redaction(request: web.Request) -> web.Response:
    """Redact a range of the public copy: {"start_seconds", "end_seconds", "reason"}."""
    user = await require(request, "record.redact")
    archive = request.app[ARCHIVE]
    sid = session_id_of(request)
    body = await json_body(request)
    _only(
        body,
        {"start_seconds", "end_seconds", "reason"},
        '{"start_seconds": a, "end_seconds": b, "reason": "..."}',
    )
    start = _seconds(body, "start_seconds")
    end = _seconds(body, "end_seconds")
    reason = _text(body, "reason", "why the range is redacted")
    assert start is not None and end is not None
    if reason is None or not reason.strip():
        raise json_error(
            web.HTTPBadRequest,
            "reason is required: why this range is redacted (e.g. personal data)",
        )
    session = await archive.call(archive.index.get_session, sid)
    covered = await _edit(archive, archive.index.plan_redaction, sid, start, end)
    # The slates exist before the redaction does: the public playlist may name them at once.
    await make_slates(request.app[SETTINGS], session, covered)
    redaction = await _edit(
        archive, archive.index.add_redaction, sid, start, end, reason, user.name
    )
    cover = await archive.call(archive.index.redaction_cover, sid)
    answer = _redaction_json(redaction, cover.get(redaction.id, []))
    await audit(
        request,
        user,
        "redaction.add",
        f"session {sid} redaction {redaction.id}",
        session_id=sid,
        before={"redaction": None},
        after={"redaction": answer},
    )
    return web.json_response(answer, status=201)


@routes.delete("/api/v1/sessions/{id}/redactions/{rid}")
async def delete_redaction(request: web.Request) -> web.Response:
    """Lift a redaction: the public copy shows that range again."""
    user = await require(request, "record.redact")
    archive = request.app[ARCHIVE]
    sid = session_id_of(request)
    rid = _path_id(request, "rid", "redaction")
    cover = await archive.call(archive.index.redaction_cover, sid)
    removed = await _edit(archive, archive.index.remove_redaction, sid, rid)
    before = _redaction_json(removed, cover.get(rid, []))
    await audit(
        request,
        user,
        "redaction.delete",
        f"session {sid} redaction {rid}",
        session_id=sid,
        before={"redaction": before},
        after={"redaction": None},
    )
    return web.json_response({"deleted": before})


# slates


def slate_for(probe: dict[str, Any], duration: float) -> RedactionSlate:
    """A slate as long as a segment, in the format ffprobe found in one segment of its run."""
    streams = probe.get("streams", [])
    video: dict[str, Any] = next((s for s in streams if s.get("codec_type") == "video"), {})
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    rate = str(video.get("r_frame_rate") or "25")
    if rate in ("0/0", "0"):
        rate = "25"
    return RedactionSlate(
        duration=duration,
        width=int(video.get("width") or 1280),
        height=int(video.get("height") or 720),
        frame_rate=rate,
        profile=X264_PROFILES.get(str(video.get("profile"))),
        audio_rate=None if audio is None else int(audio.get("sample_rate") or 48000),
        audio_channels=1 if audio is not None and audio.get("channels") == 1 else 2,
    )


async def _run(argv: list[str], what: str) -> bytes:
    """Run ffmpeg/ffprobe to completion (bounded); stdout, or a 500 naming what failed."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), FFMPEG_TIMEOUT_SECONDS)
    except (TimeoutError, asyncio.CancelledError):
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await asyncio.shield(proc.wait())
        raise
    if proc.returncode != 0:
        tail = err.decode(errors="replace").strip()[-500:]
        log.error("%s failed (exit %s): %s; argv %s", what, proc.returncode, tail, argv)
        raise json_error(
            web.HTTPInternalServerError,
            f"could not {what} (exit {proc.returncode}): {tail}; nothing was redacted",
        )
    return out


async def make_slates(settings: Settings, session: Session, segments: list[Segment]) -> int:
    """Make the slates that replace these segments, where missing; returns how many were made.
    The recorded segments are only read (by ffprobe)."""
    media = session_dir(settings, session)
    root = redaction_dir(settings, session.id)
    probes: dict[tuple[str, str], dict[str, Any]] = {}
    made = 0
    for segment in segments:
        target = root / segment.camera / segment.run_dir / slate_name(segment.duration)
        if await asyncio.to_thread(target.exists):
            continue
        key = (segment.camera, segment.run_dir)
        if key not in probes:
            out = await _run(segment_probe_argv(media / segment.rel_path), "probe the segment")
            probes[key] = json.loads(out or b"{}")
        await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
        # Written beside its final name and renamed: a slate the playlist names is whole.
        partial = target.with_name(f".{target.stem}-{uuid.uuid4().hex[:12]}.part")
        try:
            argv = redaction_slate_argv(slate_for(probes[key], segment.duration), partial)
            await _run(argv, "make the redaction slate")
            await asyncio.to_thread(os.replace, partial, target)
        finally:
            await asyncio.to_thread(_discard, partial)
        made += 1
    return made


def _discard(path: Path) -> None:
    """Remove a partial slate of ours (never a recording)."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
