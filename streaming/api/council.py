"""The councillors of the term and the nominal votes of a session, in the JSON API."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

from aiohttp import web

from archive import votes as csv_votes
from archive.council import Choice, Councillor
from archive.index import Conflict
from streaming.api.body import read_body, read_query
from streaming.api.models import (
    CouncillorEdit,
    CouncillorsAdd,
    CouncillorsQuery,
    VoteRecord,
    squash,
)
from streaming.api.openapi import BY_STATE, OPERATORS, operation
from streaming.api.views import session_detail, vote_json
from streaming.auth.access import audit, require
from streaming.http import is_digits, json_error, session_id_of
from streaming.keys import ARCHIVE, CLOCK, SETTINGS

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

# A vote's moment may be given a little in the future of the server's clock (clock skew).
AT_SLACK = timedelta(seconds=5)


def councillor_json(c: Councillor) -> dict[str, Any]:
    """A councillor as the API shows one."""
    return {"id": c.id, "name": c.name, "caucus": c.caucus, "active": c.active, "term": c.term}


def _id_of(request: web.Request, key: str, what: str) -> int:
    raw = request.match_info[key]
    if not is_digits(raw) or len(raw) > 12:
        raise json_error(web.HTTPNotFound, f"{what} {raw!r} does not exist")
    return int(raw)


@routes.get("/api/v1/councillors")
@operation(
    "The councillors of the current term (?all=1 with those taken off the list)",
    query=CouncillorsQuery,
)
async def list_councillors(request: web.Request) -> web.Response:
    """The councillors of the current term (?all=1 also lists those taken off)."""
    archive = request.app[ARCHIVE]
    term = request.app[SETTINGS].console.term
    include_all = read_query(request, CouncillorsQuery).all == "1"
    found = await archive.call(archive.index.councillors, term, include_all)
    return web.json_response({"term": term, "councillors": [councillor_json(c) for c in found]})


@routes.post("/api/v1/councillors")
@operation("Add councillors to the term", OPERATORS, body=CouncillorsAdd, ok=201)
async def add_councillors(request: web.Request) -> web.Response:
    """Add councillors to the current term: {"name", "caucus"} or {"councillors": [...]}."""
    archive = request.app[ARCHIVE]
    user = await require(request, "councillors.edit")
    body = await read_body(request, CouncillorsAdd)
    term = request.app[SETTINGS].console.term
    wanted = [entry.cleaned() for entry in body.entries()]
    listed = await archive.call(archive.index.councillors, term, True)
    existing = {c.name.casefold() for c in listed}
    seen: set[str] = set()
    for name, _ in wanted:
        key = name.casefold()
        if key in existing or key in seen:
            raise json_error(
                web.HTTPConflict,
                f"councillor {name!r} is already on the list of term {term}; nothing was added",
            )
        seen.add(key)
    added = []
    for name, caucus in wanted:
        added.append(await archive.call(archive.index.add_councillor, term, name, caucus))
    await audit(
        request,
        user,
        "councillors.add",
        f"term {term}",
        after=[councillor_json(c) for c in added],
    )
    return web.json_response(
        {"term": term, "councillors": [councillor_json(c) for c in added]}, status=201
    )


@routes.patch("/api/v1/councillors/{cid}")
@operation("Correct a name or caucus, or take off the list", OPERATORS, body=CouncillorEdit)
async def edit_councillor(request: web.Request) -> web.Response:
    """Correct a councillor's name or caucus, or take them off the list ({"active": false})."""
    archive = request.app[ARCHIVE]
    user = await require(request, "councillors.edit")
    cid = _id_of(request, "cid", "councillor")
    body = await read_body(request, CouncillorEdit)
    changes: dict[str, Any] = body.model_dump(exclude_unset=True)
    for key in ("name", "caucus"):
        if key in changes:
            changes[key] = squash(changes[key] or "")
    before = await archive.call(archive.index.get_councillor, cid)
    try:
        after = await archive.call(archive.index.update_councillor, cid, **changes)
    except Conflict as exc:
        raise json_error(web.HTTPConflict, str(exc)) from None
    await audit(
        request,
        user,
        "councillors.edit",
        f"councillor {cid}",
        before=councillor_json(before),
        after=councillor_json(after),
    )
    return web.json_response(councillor_json(after))


async def _vote_role(request: web.Request, session_id: int) -> tuple[Any, Any]:
    """Operators record votes while a session is live; staff correct them afterwards."""
    archive = request.app[ARCHIVE]
    session = await archive.call(archive.index.get_session, session_id)
    if session.state == "scheduled":
        raise json_error(
            web.HTTPConflict, f"session {session_id} has not started; votes are taken while live"
        )
    action = "vote.record" if session.state == "live" else "record.edit"
    return await require(request, action), session


@routes.post("/api/v1/sessions/{id}/votes/csv")
@operation(
    "Read a voting system's CSV export (text/csv body) for confirmation; stores nothing",
    BY_STATE,
    raw_body={"text/csv": {"type": "string"}},
)
async def read_vote_csv(request: web.Request) -> web.Response:
    """Read a voting system's export (CSV, a row per councillor) to confirm; stores nothing."""
    archive = request.app[ARCHIVE]
    sid = session_id_of(request)
    await _vote_role(request, sid)
    data = await request.read()
    term = request.app[SETTINGS].console.term
    councillors = await archive.call(archive.index.councillors, term)
    if not councillors:
        raise json_error(
            web.HTTPConflict,
            f"no councillors are listed for term {term}; add them in the console first",
        )
    refs = [csv_votes.Councillor(c.id, c.name) for c in councillors]
    try:
        imported = csv_votes.parse_vote_csv(data, refs)
    except csv_votes.VoteImportError as exc:
        raise web.HTTPBadRequest(
            text=json.dumps(
                {
                    "error": str(exc),
                    "lines": [
                        {"line": e.line, "text": e.text, "problem": e.problem} for e in exc.errors
                    ],
                },
                ensure_ascii=False,
            ),
            content_type="application/json",
        ) from None
    by_id = {c.id: c for c in councillors}
    return web.json_response(
        {
            "choices": [
                {
                    "councillor_id": line.councillor_id,
                    "name": by_id[line.councillor_id].name,
                    "caucus": by_id[line.councillor_id].caucus,
                    "choice": line.choice,
                    "line": line.line,
                }
                for line in imported.lines
            ],
            "missing": [
                {"councillor_id": i, "name": by_id[i].name, "caucus": by_id[i].caucus}
                for i in imported.missing
            ],
        }
    )


def _choices(body: VoteRecord, councillors: list[Councillor]) -> dict[int, Choice]:
    """Every listed councillor's choice, from {"choices": {"<id>": "for", ...}}."""
    known = {c.id: c for c in councillors}
    choices: dict[int, Choice] = {}
    for key, value in body.choices.items():
        if int(key) not in known:
            raise json_error(
                web.HTTPBadRequest, f"councillor {key!r} is not on the list of this term"
            )
        choices[int(key)] = value
    missing = [c.name for c in councillors if c.id not in choices]
    if missing:
        raise json_error(
            web.HTTPBadRequest,
            f"every councillor needs a choice ('absent' if they did not vote); missing: "
            f"{', '.join(missing)}",
        )
    return choices


@routes.post("/api/v1/sessions/{id}/votes")
@operation(
    "Record a nominal vote at the announced moment (live: operators; after: staff)",
    BY_STATE,
    body=VoteRecord,
    ok=201,
)
async def record_vote(request: web.Request) -> web.Response:
    """Record a nominal vote under the current (or given) agenda item, at the announced moment."""
    archive = request.app[ARCHIVE]
    sid = session_id_of(request)
    user, session = await _vote_role(request, sid)
    body = await read_body(request, VoteRecord)
    subject = squash(body.subject)
    now = request.app[CLOCK]()
    at = body.at if "at" in body.model_fields_set else now
    start = session.started_at
    if (
        start is None
        or at < start
        or at > now + AT_SLACK
        or (session.ended_at is not None and at > session.ended_at)
    ):
        raise json_error(
            web.HTTPBadRequest,
            f"at ({at.isoformat()}) must fall within the session, from "
            f"{start.isoformat() if start else '?'} to "
            f"{(session.ended_at or now).isoformat()}",
        )
    detail = await session_detail(archive, sid)
    item_id = body.item_id if "item_id" in body.model_fields_set else detail["current_item_id"]
    if item_id is not None:
        items = {i["id"] for i in _walk(detail["agenda"])}
        if item_id not in items:
            raise json_error(
                web.HTTPBadRequest, f"item_id {item_id!r} is not an agenda item of session {sid}"
            )
    term = request.app[SETTINGS].console.term
    councillors = await archive.call(archive.index.councillors, term)
    choices = _choices(body, councillors)
    vote = await archive.call(
        archive.index.add_vote,
        sid,
        item_id=item_id,
        subject=subject,
        at=at,
        source=body.source,
        choices=choices,
        created_by=user.name,
    )
    timeline = await archive.call(archive.index.timeline, sid)
    shown = vote_json(vote, timeline)
    await audit(request, user, "vote.record", f"vote {vote.id}", session_id=sid, after=shown)
    log.info("session %s: vote %s recorded by %s: %s", sid, vote.id, user.name, vote.totals())
    return web.json_response(shown, status=201)


@routes.delete("/api/v1/sessions/{id}/votes/{vote_id}")
@operation("Take back a vote entered by mistake", BY_STATE)
async def delete_vote(request: web.Request) -> web.Response:
    """Take back a vote entered by mistake (the audit log keeps what it was)."""
    archive = request.app[ARCHIVE]
    sid = session_id_of(request)
    user, _ = await _vote_role(request, sid)
    vid = _id_of(request, "vote_id", "vote")
    vote = await archive.call(archive.index.get_vote, vid)
    if vote.session_id != sid:
        raise json_error(web.HTTPNotFound, f"vote {vid} is not in session {sid}")
    timeline = await archive.call(archive.index.timeline, sid)
    before = vote_json(vote, timeline)
    await archive.call(archive.index.delete_vote, vid)
    await audit(request, user, "vote.delete", f"vote {vid}", session_id=sid, before=before)
    return web.json_response({"deleted": vid})


def _walk(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for item in items:
        found.append(item)
        found.extend(_walk(item["items"]))
    return found
