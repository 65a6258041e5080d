"""Public search over the archive: GET /api/v1/search (JSON) and the /search results page."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from archive import search as search_module
from archive.db import Busy
from archive.index import AsyncArchive
from archive.search import SearchError, SearchHit
from streaming.api.body import read_query
from streaming.api.models import SearchQuery
from streaming.api.openapi import operation
from streaming.http import json_error
from streaming.keys import ARCHIVE, SETTINGS

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


routes = web.RouteTableDef()


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


def search_status(archive: AsyncArchive) -> dict[str, Any]:
    """The search's side of /api/v1/status: whether the dictionaries are loaded (they load in
    the background at start-up; a search before then waits for them), how long the load took,
    and the searches running and waiting now."""
    state = search_module.DICTIONARIES.state()
    running, waiting = archive.search_load
    return {
        "dictionaries_loaded": state.loaded,
        "dictionaries_load_seconds": state.seconds,
        "dictionaries_error": state.error,
        "running": running,
        "waiting": waiting,
    }


async def _search(request: web.Request, q: str, limit: int, offset: int) -> list[SearchHit]:
    try:
        return await request.app[ARCHIVE].search(q, limit, offset)
    except SearchError as exc:
        raise json_error(web.HTTPBadRequest, str(exc)) from None
    except Busy as exc:
        raise json_error(
            web.HTTPServiceUnavailable, str(exc), {"Retry-After": str(exc.retry_after)}
        ) from None


@routes.get("/api/v1/search")
@operation(
    "Search published sessions, agenda items, votes and councillors (Polish forms and text "
    "without diacritics match); each result links to its moment",
    query=SearchQuery,
    errors=("503",),  # every search slot busy for too long: Retry-After says when to come back
)
async def search_api(request: web.Request) -> web.Response:
    """Search published sessions, agenda items, votes and councillors: ?q=&limit=&offset=."""
    query = read_query(request, SearchQuery)
    limit = DEFAULT_LIMIT if query.limit is None else int(query.limit)
    offset = 0 if query.offset is None else int(query.offset)
    hits = await _search(request, query.q, limit, offset)
    return web.json_response(
        {"query": query.q, "results": [hit_json(h, request.app[SETTINGS].site.zone) for h in hits]}
    )
