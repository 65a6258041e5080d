"""After the session: staff correct markers, publish or withdraw, and redact the public copy.

Every route needs a role allowed by streaming/auth (record.edit, record.publish, record.redact),
writes an audit entry with the state before and after, and changes only the index: recorded
media is never written. A redaction's slates are new files under data/redacted/.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from aiohttp import web

from archive.editing import CoveredSegment, InvalidEdit, Redaction
from archive.index import AgendaRow, ArchiveIndex, AsyncArchive, Marker
from archive.publish import Chapter, chapters
from archive.timeline import Timeline
from streaming.api.body import read_body
from streaming.api.models import ChapterSplit, ItemRename, MarkerMove, Publish, RedactionAdd
from streaming.api.openapi import STAFF, operation
from streaming.api.views import marker_json
from streaming.auth.access import audit, require
from streaming.http import is_digits, json_error, session_id_of
from streaming.keys import ARCHIVE, SETTINGS
from streaming.services.slates import SlateFailed, make_slates

log = logging.getLogger(__name__)

routes = web.RouteTableDef()
P = ParamSpec("P")
T = TypeVar("T")


def _path_id(request: web.Request, name: str, what: str) -> int:
    raw = request.match_info[name]
    if not is_digits(raw) or len(raw) > 12:
        raise json_error(web.HTTPNotFound, f"{what} {raw!r} does not exist")
    return int(raw)


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
    def read(index: ArchiveIndex) -> tuple[Timeline, list[Chapter]]:
        timeline = index.timeline(sid)
        return timeline, chapters(index.agenda(sid), index.markers(sid), timeline)

    return await archive.read(read)


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
@operation("Move a marker, or point an item start at another item", STAFF, body=MarkerMove)
async def move_marker(request: web.Request) -> web.Response:
    """Move a marker to a moment of the recording ({"offset_seconds": x}) and/or re-point an
    item start at another item ({"item_id": n})."""
    user = await require(request, "record.edit")
    archive = request.app[ARCHIVE]
    sid = session_id_of(request)
    marker_id = _path_id(request, "marker_id", "marker")
    body = await read_body(request, MarkerMove)
    # The marker as it was shown, offset included, for the audit (read before the change).
    markers = await archive.call(archive.index.markers, sid)
    old = next((m for m in markers if m.id == marker_id), None)
    before_json = None if old is None else await _marker_state(archive, sid, old)
    before, after = await _edit(
        archive,
        archive.index.move_marker,
        sid,
        marker_id,
        offset_seconds=body.offset_seconds,
        item_id=body.item_id,
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
@operation("Split: a new chapter from a moment of the recording", STAFF, body=ChapterSplit, ok=201)
async def split_chapter(request: web.Request) -> web.Response:
    """A new chapter from a moment of the recording: {"kind": "item_start", "offset_seconds": x}
    with "item_id": n (an item of the agenda) or "title": "..." (a new item at the end of the
    agenda, or of "parent_id"'s items)."""
    user = await require(request, "record.edit")
    archive = request.app[ARCHIVE]
    sid = session_id_of(request)
    body = (await read_body(request, ChapterSplit)).root
    marker, item = await _edit(
        archive,
        archive.index.split_chapter,
        sid,
        body.offset_seconds,
        item_id=body.item_id,
        title=body.title,
        parent_id=body.parent_id,
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
@operation("Merge: remove an item start (its chapter joins the previous one)", STAFF)
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
@operation("Rename an agenda item after the session", STAFF, body=ItemRename)
async def rename_item(request: web.Request) -> web.Response:
    """Correct an agenda item's title after the session: {"title": "..."}."""
    user = await require(request, "record.edit")
    archive = request.app[ARCHIVE]
    sid = session_id_of(request)
    item_id = _path_id(request, "item_id", "agenda item")
    title = (await read_body(request, ItemRename)).title
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
@operation("Publish or withdraw the recording", STAFF, body=Publish)
async def publish(request: web.Request) -> web.Response:
    """Publish ({"published": true}) or withdraw ({"published": false}) the recording."""
    user = await require(request, "record.publish")
    archive = request.app[ARCHIVE]
    sid = session_id_of(request)
    published = (await read_body(request, Publish)).published
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
    def read(index: ArchiveIndex) -> list[dict[str, Any]]:
        cover = index.redaction_cover(sid)
        return [_redaction_json(r, cover.get(r.id, [])) for r in index.redactions(sid)]

    return await archive.read(read)


@routes.get("/api/v1/sessions/{id}/redactions")
@operation("Ranges the public copy skips", STAFF)
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
@operation(
    "Redact a range from the public copy (the original is kept, sealed)",
    STAFF,
    body=RedactionAdd,
    ok=201,
)
async def add_redaction(request: web.Request) -> web.Response:
    """Redact a range of the public copy: {"start_seconds", "end_seconds", "reason"}."""
    user = await require(request, "record.redact")
    archive = request.app[ARCHIVE]
    sid = session_id_of(request)
    body = await read_body(request, RedactionAdd)
    start, end, reason = body.start_seconds, body.end_seconds, body.reason
    session = await archive.call(archive.index.get_session, sid)
    covered = await _edit(archive, archive.index.plan_redaction, sid, start, end)
    # The slates exist before the redaction does: the public playlist may name them at once.
    try:
        await make_slates(request.app[SETTINGS], session, covered)
    except SlateFailed as exc:
        raise json_error(web.HTTPInternalServerError, str(exc)) from None
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
@operation("Remove a redaction", STAFF)
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
