"""The /search results page."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from archive.db import Busy
from archive.search import MAX_QUERY_CHARS, SearchError
from streaming.api.search import DEFAULT_LIMIT, hit_json
from streaming.keys import ARCHIVE, SETTINGS
from streaming.web.templating import page, words

routes = web.RouteTableDef()


@routes.get("/search")
async def search_page(request: web.Request) -> web.Response:
    """The results page: a labelled search form and the results as links into recordings."""
    q = request.query.get("q", "")
    problem = ""
    hits: list[dict[str, Any]] | None = None
    status = 200
    retry_after: int | None = None
    if q.strip():
        try:
            found = await request.app[ARCHIVE].search(q, DEFAULT_LIMIT, 0)
        except SearchError as exc:
            problem = str(exc)
            status = 400
        except Busy as exc:
            retry_after = exc.retry_after
            problem = words(request).text("search.busy", seconds=retry_after)
            status = 503
        else:
            hits = [
                {
                    "url": hit_json(h, request.app[SETTINGS].site.zone)["url"],
                    "title": h.title,
                    "kind": h.kind,
                    "session_title": h.session_title,
                    "session_start": h.session_start,
                }
                for h in found
            ]
    response = page(
        request,
        "search.html",
        title=words(request).text("search.title"),
        status=status,
        # A busy refusal says when to come back: a shared cache must not keep it (Varnish keeps
        # other errors a second, see config/varnish.vcl).
        cache="no-store" if retry_after is not None else "no-cache",
        framable=True,
        q=q,
        max_chars=MAX_QUERY_CHARS,
        problem=problem,
        hits=hits,
    )
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response
