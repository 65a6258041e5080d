"""Polish first, English available: the language of a request and its address in the other
language (the words themselves are in the catalogues, streaming.web.templating)."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlencode

from aiohttp import web

Lang = Literal["pl", "en"]
LANG_COOKIE = "lang"

# Every language the catalogues (streaming/web/locales) hold; the first is the default.
LANGS: tuple[Lang, ...] = ("pl", "en")


def lang_of(request: web.Request) -> Lang:
    """The page language: ?lang=, else the lang cookie, else Polish."""
    asked = request.query.get("lang") or request.cookies.get(LANG_COOKIE)
    return "en" if asked == "en" else "pl"


def wants_html(request: web.Request) -> bool:
    """Whether the request comes from a browser showing a page (a link clicked, an address
    typed) rather than from a script or a player asking for data."""
    return "text/html" in request.headers.get("Accept", "")


def switch_url(request: web.Request, lang: Lang) -> str:
    """This page's address in the other language, keeping every other query parameter."""
    kept = [(k, v) for k, v in request.query.items() if k != "lang"]
    return f"{request.path}?{urlencode([*kept, ('lang', lang)])}"
