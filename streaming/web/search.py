"""The /search results page."""

from __future__ import annotations

from html import escape

from aiohttp import web

from archive.search import MAX_QUERY_CHARS, SearchError
from streaming.api.search import DEFAULT_LIMIT, WARSAW, hit_json
from streaming.keys import ARCHIVE
from streaming.web.i18n import Lang, lang_of, page

routes = web.RouteTableDef()


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
