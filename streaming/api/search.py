"""Public search over the archive: GET /api/v1/search (JSON) and the /search results page."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from archive.search import SearchError, SearchHit
from streaming.http import json_error
from streaming.keys import ARCHIVE, SETTINGS

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


routes = web.RouteTableDef()


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    """A whole-number query parameter within [low, high]; 400 saying the range otherwise."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    value = int(raw) if raw.isdigit() and len(raw) <= 9 else -1
    if not low <= value <= high:
        raise json_error(
            web.HTTPBadRequest, f"{name} must be a whole number from {low} to {high}, not {raw!r}"
        )
    return value


def hit_json(hit: SearchHit, zone: ZoneInfo) -> dict[str, Any]:
    """One result, with the moment of the recording to jump to; its date is the session's in the
    site's time zone (settings.site.zone)."""
    offset = hit.offset_seconds
    url = f"/sessions/{hit.session_id}"
    if offset is not None:
        url += f"?t={int(offset)}"
    return {
        "session_id": hit.session_id,
        "session_title": hit.session_title,
        "date": hit.session_start.astimezone(zone).date().isoformat(),
        "kind": hit.kind,
        "title": hit.title,
        "offset_seconds": offset,
        "url": url,
    }


async def _search(request: web.Request, q: str, limit: int, offset: int) -> list[SearchHit]:
    archive = request.app[ARCHIVE]
    try:
        return await archive.call(archive.index.search, q, limit, offset)
    except SearchError as exc:
        raise json_error(web.HTTPBadRequest, str(exc)) from None


@routes.get("/api/v1/search")
async def search_api(request: web.Request) -> web.Response:
    """Search published sessions, agenda items, votes and councillors: ?q=&limit=&offset=."""
    q = request.query.get("q", "")
    limit = _int_param(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = _int_param(request, "offset", 0, 0, 10**9)
    hits = await _search(request, q, limit, offset)
    zone = request.app[SETTINGS].site.zone
    return web.json_response({"query": q, "results": [hit_json(h, zone) for h in hits]})
