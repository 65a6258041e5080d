"""Public search over the archive: GET /api/v1/search (JSON) and the /search results page."""

from __future__ import annotations

from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from archive.search import MAX_QUERY_CHARS, SearchError, SearchHit
from streaming.http import json_error
from streaming.i18n import Lang, lang_of, page
from streaming.keys import ARCHIVE

WARSAW = ZoneInfo("Europe/Warsaw")
DEFAULT_LIMIT = 20
MAX_LIMIT = 100

WORDS: dict[str, dict[Lang, str]] = {
    "title": {"pl": "Wyszukiwanie w archiwum", "en": "Search the archive"},
    "label": {
        "pl": "Szukaj (punkt obrad, uchwała, radny, wypowiedź)",
        "en": "Search (item, resolution, councillor, speech)",
    },
    "button": {"pl": "Szukaj", "en": "Search"},
    "none": {"pl": "Nic nie znaleziono.", "en": "Nothing found."},
    "results": {"pl": "Wyniki dla „{q}”", "en": "Results for “{q}”"},
    "session": {"pl": "sesja", "en": "session"},
    "item": {"pl": "punkt obrad", "en": "agenda item"},
    "vote": {"pl": "głosowanie", "en": "vote"},
    "councillor": {"pl": "radny", "en": "councillor"},
    "speech": {"pl": "wypowiedź (napisy automatyczne)", "en": "speech (automatic captions)"},
}

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


def hit_json(hit: SearchHit) -> dict[str, Any]:
    """One result, with the moment of the recording to jump to."""
    offset = hit.offset_seconds
    url = f"/sessions/{hit.session_id}"
    if offset is not None:
        url += f"?t={int(offset)}"
    return {
        "session_id": hit.session_id,
        "session_title": hit.session_title,
        "date": hit.session_start.astimezone(WARSAW).date().isoformat(),
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
    return web.json_response({"query": q, "results": [hit_json(h) for h in hits]})


@routes.get("/search")
async def search_page(request: web.Request) -> web.Response:
    """The results page: a labelled search form and the results as links into recordings."""
    lang = lang_of(request)
    q = request.query.get("q", "")
    form = (
        '<form method="get" action="/search" role="search">'
        f'<label for="q">{WORDS["label"][lang]}</label> '
        f'<input id="q" name="q" type="search" value="{escape(q)}" '
        f'maxlength="{MAX_QUERY_CHARS}" required> '
        + (f'<input type="hidden" name="lang" value="{lang}">' if lang == "en" else "")
        + f'<button type="submit">{WORDS["button"][lang]}</button></form>'
    )
    body = form
    status = 200
    if q.strip():
        try:
            archive = request.app[ARCHIVE]
            hits = await archive.call(archive.index.search, q, DEFAULT_LIMIT, 0)
        except SearchError as exc:
            body += f'<p role="alert">{escape(str(exc))}</p>'
            status = 400
        else:
            items = "".join(
                f'<li><a href="{escape(hit_json(h)["url"])}">{escape(h.title)}</a> '
                f"<small>({WORDS[h.kind][lang]}; {escape(h.session_title)}, "
                f"{h.session_start.astimezone(WARSAW):%d.%m.%Y})</small></li>"
                for h in hits
            )
            heading = WORDS["results"][lang].format(q=escape(q.strip()))
            body += f"<h2>{heading}</h2>" + (
                f'<ol class="results">{items}</ol>' if items else f"<p>{WORDS['none'][lang]}</p>"
            )
    return page(request, WORDS["title"][lang], body, status=status, cache="no-cache", framable=True)
