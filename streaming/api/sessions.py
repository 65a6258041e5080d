"""The JSON API under /api/v1: public reading of sessions, operator control with Basic auth."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version
from typing import Any

from aiohttp import web

from archive.agenda import AgendaError, AgendaItem, parse_agenda
from archive.index import ArchiveIndex, Conflict
from recorder.redact import SECRETS
from streaming.api.body import read_body
from streaming.api.models import (
    AgendaChange,
    AgendaPreview,
    AgendaReplace,
    BreakSwitch,
    ClosedSwitch,
    MoveItem,
    ProgramSwitch,
    RemoveItem,
    RenameItem,
    Session,
    SessionCreate,
    SessionEdit,
    Sessions,
    Status,
    Switch,
)
from streaming.api.now import kept_chamber_now
from streaming.api.openapi import ANY_ROLE, OPERATORS, openapi_document, operation
from streaming.api.search import search_status
from streaming.api.transcripts import status_json
from streaming.api.views import _iso, session_detail, session_summary
from streaming.auth.access import PERMISSIONS, audit, audit_later, identify, require
from streaming.hls.viewers import live_viewers
from streaming.http import is_digits, json_error, session_id_of
from streaming.keys import (
    ANALYZER,
    ARCHIVE,
    CLOCK,
    CONTINUITY,
    CONTROL,
    DISK,
    INDEXER,
    OFFAIR,
    PUSHERS,
    RECORDER,
    SCHEDULER,
    SETTINGS,
)
from streaming.services.backup import backup_status

log = logging.getLogger(__name__)


def _installed_version() -> str:
    """The installed package's version (the public status says which obrady answers)."""
    try:
        return _version("obrady")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


VERSION = _installed_version()

routes = web.RouteTableDef()


@routes.get("/api/v1/openapi.json")
@operation("This document")
async def get_openapi(request: web.Request) -> web.Response:
    """The OpenAPI document of this API."""
    return web.json_response(openapi_document(request.app))


@routes.get("/api/v1/sessions")
@operation("List sessions, newest first", answer=Sessions)
async def list_sessions(request: web.Request) -> web.Response:
    """All sessions, newest first."""
    archive = request.app[ARCHIVE]
    sessions = await archive.call(archive.index.list_sessions, 1000)
    return web.json_response({"sessions": [session_summary(s) for s in sessions]})


def chambers_of(request: web.Request) -> dict[str, Any]:
    """The validation context of bodies that name a chamber: the configured ones."""
    return {"chambers": [c.id for c in request.app[SETTINGS].chambers]}


def parse_agenda_body(agenda_text: str) -> tuple[AgendaItem, ...]:
    """The pasted agenda parsed; 400 listing each line it could not understand."""
    try:
        return parse_agenda(agenda_text)
    except AgendaError as exc:
        raise web.HTTPBadRequest(
            text=json.dumps(
                {"error": f"agenda_text is not an agenda: {exc}", "lines": _line_errors(exc)},
                ensure_ascii=False,
            ),
            content_type="application/json",
        ) from None


def _line_errors(exc: AgendaError) -> list[dict[str, Any]]:
    return [{"line": e.line, "text": e.text, "problem": e.problem} for e in exc.errors]


def _parsed_tree(items: Sequence[AgendaItem]) -> list[dict[str, Any]]:
    return [
        {"number": i.number, "title": i.title, "items": _parsed_tree(i.children)} for i in items
    ]


@routes.post("/api/v1/sessions")
@operation(
    "Schedule a session with its agenda pasted as text",
    OPERATORS,
    body=SessionCreate,
    ok=201,
    answer=Session,
    no_errors=("409",),
)
async def create_session(request: web.Request) -> web.Response:
    """Schedule a session with its agenda pasted as text."""
    archive = request.app[ARCHIVE]
    settings = request.app[SETTINGS]
    user = await require(request, "session.create")
    body = await read_body(request, SessionCreate, chambers_of(request))
    agenda = parse_agenda_body(body.agenda_text)
    created = await archive.call(
        archive.index.create_session,
        chamber=body.chamber if "chamber" in body.model_fields_set else settings.chambers[0].id,
        title=body.title,
        kind=body.kind,
        scheduled_start=body.scheduled_start,
        scheduled_end=body.scheduled_end,
        agenda_text=body.agenda_text,
        agenda=agenda,
        created_by=user.name,
    )
    log.info("session %s scheduled by %s: %s", created.id, user.name, created.title)
    # Logged before the schedule is reconciled: that may start the session at once.
    await audit(
        request,
        user,
        "session.create",
        f"session {created.id}",
        session_id=created.id,
        after={
            **session_summary(created),
            "agenda": (await session_detail(archive, created.id))["agenda"],
        },
    )
    await request.app[SCHEDULER].reconcile()
    detail = await session_detail(archive, created.id)
    return web.json_response(detail, status=201, headers={"Location": detail["url"]})


@routes.patch("/api/v1/sessions/{id}")
@operation(
    "Change title, kind, chamber or window (a live session may be extended)",
    OPERATORS,
    body=SessionEdit,
    answer=Session,
)
async def edit_session(request: web.Request) -> web.Response:
    """Change a session's title, kind, chamber or window (a live one may be extended)."""
    archive = request.app[ARCHIVE]
    user = await require(request, "session.edit")
    sid = session_id_of(request)
    body = await read_body(request, SessionEdit, chambers_of(request))
    changes = body.model_dump(exclude_unset=True)
    before = await archive.call(archive.index.get_session, sid)
    try:
        after = await archive.call(archive.index.update_session, sid, **changes)
    except Conflict as exc:
        raise json_error(web.HTTPConflict, str(exc)) from None
    await request.app[SCHEDULER].reconcile()
    await audit(
        request,
        user,
        "session.edit",
        f"session {sid}",
        session_id=sid,
        before=session_summary(before),
        after=session_summary(after),
    )
    return web.json_response(await session_detail(archive, sid))


@routes.post("/api/v1/agenda/preview")
@operation(
    "Parse a pasted agenda: the tree, or each line it cannot read; stores nothing",
    ANY_ROLE,
    body=AgendaPreview,
    no_errors=("409",),
)
async def preview_agenda(request: web.Request) -> web.Response:
    """The tree a pasted agenda parses into, or each line it cannot understand; stores nothing."""
    await require(request, "console.view")
    body = await read_body(request, AgendaPreview)
    try:
        items = parse_agenda(body.agenda_text)
    except AgendaError as exc:
        return web.json_response({"ok": False, "error": str(exc), "lines": _line_errors(exc)})
    return web.json_response({"ok": True, "items": _parsed_tree(items)})


@routes.put("/api/v1/sessions/{id}/agenda")
@operation(
    "Paste the agenda again (before any item is taken up)",
    OPERATORS,
    body=AgendaReplace,
    answer=Session,
)
async def replace_agenda(request: web.Request) -> web.Response:
    """Paste the agenda again, before any item has been taken up."""
    archive = request.app[ARCHIVE]
    user = await require(request, "agenda.edit")
    sid = session_id_of(request)
    body = await read_body(request, AgendaReplace)
    agenda = parse_agenda_body(body.agenda_text)
    before = (await session_detail(archive, sid))["agenda"]
    session = await archive.call(archive.index.get_session, sid)
    if session.state == "ended":
        raise json_error(web.HTTPConflict, f"session {sid} has ended; its agenda is the record")
    await archive.call(archive.index.replace_agenda, sid, body.agenda_text, agenda)
    detail = await session_detail(archive, sid)
    await audit(
        request,
        user,
        "agenda.replace",
        f"session {sid}",
        session_id=sid,
        before=before,
        after=detail["agenda"],
    )
    return web.json_response(detail)


@routes.post("/api/v1/sessions/{id}/agenda")
@operation(
    "Change the agenda item by item (zmiana porządku obrad)",
    OPERATORS,
    body=AgendaChange,
    answer=Session,
)
async def change_agenda(request: web.Request) -> web.Response:
    """Change the agenda item by item (zmiana porządku obrad): add, remove, restore, move, rename.

    {"op": "add", "title": ..., "parent_id"?: n, "before_id"?: n}
    {"op": "remove" | "restore", "item_id": n}
    {"op": "move", "item_id": n, "index": k}   (its place among its siblings, from 0)
    {"op": "rename", "item_id": n, "title": ...}
    """
    archive = request.app[ARCHIVE]
    user = await require(request, "agenda.edit")
    sid = session_id_of(request)
    change = (await read_body(request, AgendaChange)).root
    op = change.op
    index = archive.index
    session = await archive.call(index.get_session, sid)
    if session.state == "ended":
        raise json_error(
            web.HTTPConflict,
            f"session {sid} has ended; staff correct its record from the after-session view",
        )
    before = (await session_detail(archive, sid))["agenda"]
    target = f"agenda item {getattr(change, 'item_id', None)}"
    try:
        if isinstance(change, RemoveItem):
            await archive.call(index.set_agenda_item_removed, sid, change.item_id, op == "remove")
        elif isinstance(change, MoveItem):
            await archive.call(index.move_agenda_item, sid, change.item_id, change.index)
        elif isinstance(change, RenameItem):
            await archive.call(index.rename_agenda_item, sid, change.item_id, change.title)
        else:
            new_id = await archive.call(
                index.add_agenda_item,
                sid,
                change.title,
                parent_id=change.parent_id,
                before_id=change.before_id,
                added=session.state == "live",
            )
            target = f"agenda item {new_id}"
    except Conflict as exc:
        raise json_error(web.HTTPConflict, str(exc)) from None
    detail = await session_detail(archive, sid)
    await audit(
        request, user, f"agenda.{op}", target, session_id=sid, before=before, after=detail["agenda"]
    )
    return web.json_response(detail)


@routes.get("/api/v1/sessions/{id}")
@operation("A session with its agenda, markers, votes and recording", answer=Session)
async def get_session(request: web.Request) -> web.Response:
    """One session in full."""
    return web.json_response(await session_detail(request.app[ARCHIVE], session_id_of(request)))


@routes.post("/api/v1/sessions/{id}/start")
@operation("Start recording now", OPERATORS, answer=Session)
async def start_session(request: web.Request) -> web.Response:
    """Start recording a session now."""
    archive = request.app[ARCHIVE]
    user = await require(request, "session.run")
    sid = session_id_of(request)
    before = await archive.read(ArchiveIndex.get_session, sid)
    after = await request.app[CONTROL].start(sid, by=user.name, manual=True)
    # Capture runs now: a busy database delays the audit entry, it does not fail the answer.
    audit_later(
        request,
        user,
        "session.start",
        f"session {sid}",
        session_id=sid,
        before={"state": before.state},
        after={"state": after.state},
    )
    detail = await session_detail(archive, sid)
    if detail["state"] != after.state:  # its record is still queued
        detail.update(session_summary(after))
    return web.json_response(detail)


@routes.post("/api/v1/sessions/{id}/stop")
@operation("Stop for good (never restarted by the scheduler)", OPERATORS, answer=Session)
async def stop_session(request: web.Request) -> web.Response:
    """Stop a session for good."""
    archive = request.app[ARCHIVE]
    user = await require(request, "session.run")
    sid = session_id_of(request)
    before = await archive.call(archive.index.get_session, sid)
    after = await request.app[CONTROL].stop(sid, by=user.name)
    await request.app[SCHEDULER].reconcile()
    await audit(
        request,
        user,
        "session.stop",
        f"session {sid}",
        session_id=sid,
        before={"state": before.state},
        after={"state": after.state, "ended_at": _iso(after.ended_at)},
    )
    return web.json_response(await session_detail(archive, sid))


@routes.post("/api/v1/sessions/{id}/items/{item_id}/start")
@operation("Mark that an agenda item starts now", OPERATORS, answer=Session)
async def start_item(request: web.Request) -> web.Response:
    """Mark that an agenda item starts now."""
    archive = request.app[ARCHIVE]
    user = await require(request, "session.run")
    sid = session_id_of(request)
    raw = request.match_info["item_id"]
    if not is_digits(raw) or len(raw) > 12:
        raise json_error(web.HTTPNotFound, f"agenda item {raw!r} does not exist")
    before = (await session_detail(archive, sid))["current_item_id"]
    await request.app[CONTROL].start_item(sid, int(raw), by=user.name)
    detail = await session_detail(archive, sid)
    await audit(
        request,
        user,
        "item.start",
        f"agenda item {raw}",
        session_id=sid,
        before={"current_item_id": before},
        after={"current_item_id": detail["current_item_id"]},
    )
    return web.json_response(detail)


@routes.post("/api/v1/sessions/{id}/break")
@operation("Start or end a break", OPERATORS, body=BreakSwitch, answer=Session)
async def set_break(request: web.Request) -> web.Response:
    """Start ({"on": true}) or end ({"on": false}) a break."""
    return await _switch(request, "break", BreakSwitch)


async def _switch(request: web.Request, what: str, model: type[Switch]) -> web.Response:
    """A break or a closed part switched on or off: {"on": true|false}."""
    archive = request.app[ARCHIVE]
    user = await require(request, "session.run")
    sid = session_id_of(request)
    on = (await read_body(request, model)).on
    control = request.app[CONTROL]
    setter = control.set_break if what == "break" else control.set_closed
    await setter(sid, on, by=user.name)
    key = "in_break" if what == "break" else "closed"
    await audit(
        request,
        user,
        f"{what}.{'on' if on else 'off'}",
        f"session {sid}",
        session_id=sid,
        before={key: not on},
        after={key: on},
    )
    return web.json_response(await session_detail(archive, sid))


@routes.post("/api/v1/chambers/{chamber}/program")
@operation(
    "Switch the chamber's program camera (live stream and session recording)",
    OPERATORS,
    body=ProgramSwitch,
)
async def switch_program(request: web.Request) -> web.Response:
    """Switch the chamber's program camera: {"camera": "cam2"}."""
    user = await require(request, "session.run")
    camera = (await read_body(request, ProgramSwitch)).camera
    chamber = request.match_info["chamber"]
    control = request.app[CONTROL]
    before = (
        control.program.camera(chamber)
        if chamber in {c.id for c in request.app[SETTINGS].chambers}
        else None
    )
    session = await control.switch_program(chamber, camera, by=user.name)
    await audit(
        request,
        user,
        "program.switch",
        f"chamber {chamber}",
        session_id=session,
        before={"program": before},
        after={"program": camera},
    )
    return web.json_response(
        {"chamber": chamber, "program": control.program.camera(chamber), "session_id": session}
    )


@routes.get("/api/v1/chambers")
@operation("Chambers, their cameras and program cameras")
async def list_chambers(request: web.Request) -> web.Response:
    """The configured chambers, their cameras and the program camera."""
    settings = request.app[SETTINGS]
    control = request.app[CONTROL]
    return web.json_response(
        {
            "chambers": [
                {
                    "id": c.id,
                    "name": c.name,
                    "cameras": [{"id": cam.id, "name": cam.name} for cam in c.camera_list],
                    "program": control.program.camera(c.id),
                    "live_url": f"/live/{c.id}/index.m3u8",
                }
                for c in settings.chambers
            ]
        }
    )


@routes.post("/api/v1/sessions/{id}/closed")
@operation(
    "Close the session to the public (wyłączenie jawności) or reopen it: the public sees a "
    "slate; the cameras keep recording for the sealed archive",
    OPERATORS,
    body=ClosedSwitch,
    answer=Session,
)
async def set_closed(request: web.Request) -> web.Response:
    """Start ({"on": true}) or end ({"on": false}) a part closed to the public."""
    return await _switch(request, "closed", ClosedSwitch)


ON_AIR = frozenset({"live", "break", "closed"})


async def public_status(app: web.Application) -> dict[str, Any]:
    """What anyone may know: the service is up, its version, and each chamber's public state
    (as its live page shows it) with the session it transmits."""
    chambers = []
    for chamber in app[SETTINGS].chambers:
        now = await kept_chamber_now(app, chamber.id)
        on_air = now["state"] in ON_AIR and now["session"] is not None
        chambers.append(
            {
                "id": chamber.id,
                "name": chamber.name,
                "state": now["state"] if on_air else "off_air",
                "session": (
                    {"id": now["session"]["id"], "title": now["session"]["title"]}
                    if on_air
                    else None
                ),
            }
        )
    return {"service": "up", "version": VERSION, "chambers": chambers}


@routes.get("/api/v1/status")
@operation(
    "The service's state. Anyone: that it is up, its version and each chamber's public state "
    "(PublicStatus). Signed in with any role that sees the console (HTTP Basic or the login "
    "cookie): the captures and their health, disk, pushes and the rest too (DetailStatus)",
    answer=Status,
    errors=("401", "429"),
)
async def status(request: web.Request) -> web.Response:
    """The public facts for anyone; what each chamber is recording now and how its capture is
    doing for a signed-in user."""
    user = await identify(request, request.app[ARCHIVE])  # wrong credentials: 401 first
    public = await public_status(request.app)
    if user is None or user.role not in PERMISSIONS["console.view"]:
        return web.json_response(public, headers={"Cache-Control": "no-store"})
    recorder = request.app[RECORDER]
    settings = request.app[SETTINGS]
    analyzer = request.app[ANALYZER]
    now = request.app[CLOCK]()
    captures = []
    for s in recorder.statuses():
        health = analyzer.health((s.session_id, s.camera_id))
        problems = health.problems(settings.monitoring) if health else []
        # A re-encode that cannot keep real time drops frames: an alarm while it does.
        problems += s.encoder_problems(now)
        hub = recorder.hub(s.session_id) if s.audio_mode == "chamber" else None
        if hub is not None and hub.status.source_state in ("silent", "failed"):
            why = hub.status.source_error or "its source sends no sound"
            problems.append(f"no chamber sound: silence is recorded ({why})")
        age = None if s.last_segment_at is None else (now - s.last_segment_at).total_seconds()
        captures.append(
            {
                "session_id": s.session_id,
                "chamber": s.chamber_id,
                "camera": s.camera_id,
                "program": s.camera_id == request.app[CONTROL].program.camera(s.chamber_id),
                "state": s.state,
                "source_state": s.source_state(now, settings.recording.segment_seconds),
                "run": s.run_ordinal,
                "pid": s.pid,
                "restarts": s.restarts,
                "segments": s.segments,
                "last_segment_age_seconds": None if age is None else round(age, 2),
                "bitrate_bits_per_second": round(s.bytes_per_second * 8),
                "video": s.video_mode,
                "audio": s.audio_mode,
                "fps": None if s.fps is None else round(s.fps, 2),
                # A re-encode: frames dropped to keep real time, the last drop, and how far
                # behind real time its newest frame was decoded (beyond the run's best).
                "frames_dropped": s.frames_dropped,
                "last_drop_at": _iso(s.last_drop_at),
                "behind_seconds": None if s.behind_seconds is None else round(s.behind_seconds, 3),
                "last_exit_code": s.last_exit_code,
                "last_error": s.last_error,
                "last_progress_at": _iso(s.last_progress_at),
                # The chamber's sound as its hub shares it (opened and encoded once), if so.
                "chamber_sound": None if hub is None else hub.status.as_dict(),
                "source": {
                    "problems": problems,
                    "frozen_seconds": health.frozen_seconds if health else None,
                    "silent_seconds": health.silent_seconds if health else None,
                    "audio_max_db": health.audio_max_db if health else None,
                    "has_audio": health.has_audio if health else None,
                },
            }
        )
    disk = request.app[DISK].snapshot()
    # ffmpeg's messages name the camera's URL: never with its password or a stream key.
    body = SECRETS.scrub_json(
        {
            **public,
            "captures": captures,
            # The speech recogniser for captions: off, loading, ready or unavailable (and why).
            "transcription": status_json(request.app),
            "disk": {
                "level": disk.level,
                "free_bytes": disk.free_bytes,
                "total_bytes": disk.total_bytes,
                "recording_bytes_per_second": round(disk.rate_bytes_per_second),
                "hours_left": None if disk.hours_left is None else round(disk.hours_left, 2),
            },
            "capture_blocked": recorder.blocked,
            # The archive's records follow capture on their own queue: how far behind they are.
            "index": request.app[INDEXER].status(),
            # The program's media checked against the wall clock, off the capture path.
            "media_checks": request.app[CONTINUITY].status(),
            # Players of each chamber's live stream now (each counted once).
            "viewers": live_viewers(request.app, [c.id for c in settings.chambers]),
            # Search: its dictionaries (loaded in the background at start-up) and its load now.
            "search": search_status(request.app[ARCHIVE]),
            # What the public receives, watched as a viewer would (monitoring.offair).
            "offair": request.app[OFFAIR].reports() if OFFAIR in request.app else [],
            # The last good backup and its age (obrady backup; the console warns when stale).
            "backup": backup_status(settings, now),
            "pushes": [
                {
                    "chamber": p.status.chamber_id,
                    "name": p.status.name,
                    "url": p.status.url,
                    "state": p.status.state,
                    "restarts": p.status.restarts,
                    "segments_sent": p.status.segments_sent,
                    "bytes_sent": p.status.bytes_sent,
                    "skipped": p.status.skipped,
                    "last_error": p.status.last_error,
                }
                for p in request.app[PUSHERS]
            ],
        }
    )
    return web.json_response(body, headers={"Cache-Control": "private, no-store"})
