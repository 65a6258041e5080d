"""Public search over the archive: GET /api/v1/search (JSON) and the /search results page."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

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


async def _search(request: web.Request, q: str, limit: int, offset: int) -> list[SearchHit]:
    archive = request.app[ARCHIVE]
    try:
        return await archive.call(archive.index.search, q, limit, offset)
    except SearchError as exc:
        raise json_error(web.HTTPBadRequest, str(exc)) from None


@routes.get("/api/v1/search")
@operation(
    "Search published sessions, agenda items, votes and councillors (Polish forms and text "
    "without diacritics match); each result links to its moment",
    query=SearchQuery,
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
