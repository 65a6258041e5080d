"""The pages' Jinja2 environment (HTML and XML autoescaped) and the message catalogues: one
gettext catalogue per language (locales/<lang>/LC_MESSAGES/messages.po), read at start-up, so
pages, feeds, the console and its script all take their words from the same place."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

from aiohttp import web
from babel.messages.pofile import read_po
from jinja2 import Environment, PackageLoader, StrictUndefined, pass_context, select_autoescape
from jinja2.runtime import Context

from streaming.keys import SETTINGS, TEMPLATES
from streaming.web.i18n import LANG_COOKIE, LANGS, Lang, lang_of, switch_url

LOCALES = Path(__file__).parent / "locales"
# Scripts, styles and hls.js, served by both roots at /static.
STATIC = Path(__file__).parent / "static"
DOMAIN = "messages"


class CatalogueError(Exception):
    """A message catalogue is missing, unreadable or lacks a message."""


class Catalogue:
    """The messages of one language, by their symbolic id ("pages.home_title"). Placeholders
    are gettext's python-format, %(name)s; a literal percent sign is %%."""

    def __init__(self, lang: str, messages: Mapping[str, str]) -> None:
        self.lang = lang
        self._messages = dict(messages)

    def gettext(self, key: str) -> str:
        """The message as written in the catalogue (placeholders unfilled)."""
        try:
            return self._messages[key]
        except KeyError:
            raise CatalogueError(f"message {key!r} is not in the {self.lang} catalogue") from None

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        """Plural forms are not used: the catalogues phrase counts as "Found: %(n)s"."""
        return self.gettext(singular if n == 1 else plural)

    def text(self, key: str, **values: object) -> str:
        """The message with its placeholders filled: plain text, escaped where it is shown."""
        return self.gettext(key) % values

    def has(self, key: str) -> bool:
        """Whether the catalogue holds the message."""
        return key in self._messages

    def keys(self) -> set[str]:
        """Every message id."""
        return set(self._messages)

    def subset(self, *prefixes: str) -> dict[str, str]:
        """The messages whose ids begin with one of the prefixes and a dot, by their ids."""
        starts = tuple(prefix + "." for prefix in prefixes)
        return {k: v for k, v in self._messages.items() if k.startswith(starts)}

    def prefixed(self, prefix: str) -> dict[str, str]:
        """The messages whose ids begin with prefix + ".", by the rest of the id (what a
        script is handed)."""
        start = prefix + "."
        return {k[len(start) :]: v for k, v in self._messages.items() if k.startswith(start)}


def read_catalogue(lang: str, locales: Path = LOCALES) -> Catalogue:
    """One language's catalogue from its .po file (no compiled .mo needed)."""
    path = locales / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    try:
        with path.open("rb") as po:
            catalog = read_po(po, locale=lang, domain=DOMAIN)
    except OSError as exc:
        raise CatalogueError(f"cannot read the {lang} catalogue {path}: {exc}") from exc
    messages: dict[str, str] = {}
    for message in catalog:
        if not message.id or not isinstance(message.id, str):
            continue
        if not isinstance(message.string, str) or not message.string:
            raise CatalogueError(f"{path}: message {message.id!r} has no translation")
        messages[message.id] = message.string
    return Catalogue(lang, messages)


@pass_context
def _gettext(context: Context, key: str) -> str:
    return cast(Catalogue, context["words"]).gettext(key)


@pass_context
def _ngettext(context: Context, singular: str, plural: str, n: int) -> str:
    return cast(Catalogue, context["words"]).ngettext(singular, plural, n)


def hms(seconds: float) -> str:
    """Seconds as H:MM:SS (or M:SS under an hour), as players show them."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _in_zone(at: datetime, zone: ZoneInfo) -> datetime:
    return at.astimezone(zone)


def _local(at: datetime, zone: ZoneInfo, fmt: str) -> str:
    return at.astimezone(zone).strftime(fmt)


# Characters XML 1.0 cannot carry at all, even escaped: a feed drops them.
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml_text(value: object) -> str:
    """Text an XML document can carry (then autoescaped like any value)."""
    return XML_ILLEGAL.sub("", str(value))


def create_environment(locales: Path = LOCALES) -> Environment:
    """The one environment of the pages: templates from streaming/web/templates, autoescaped
    for .html and .xml, gettext from the catalogues (the language is the template context's
    `words`). It holds no per-request state."""
    env = Environment(
        loader=PackageLoader("streaming.web", "templates"),
        autoescape=select_autoescape(["html", "xml"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        _gettext, _ngettext, newstyle=True
    )
    catalogues = {lang: read_catalogue(lang, locales) for lang in LANGS}
    env.extend(obrady_catalogues=catalogues)
    # Times shown to people: `at|in_zone(zone)` or `at|local(zone, "%H:%M")`, zone being the
    # site's (settings.site.zone, in every template's context).
    env.filters["in_zone"] = _in_zone
    env.filters["local"] = _local
    env.filters["hms"] = hms
    env.filters["xml_text"] = xml_text
    return env


def catalogues(env: Environment) -> dict[Lang, Catalogue]:
    """Every language's catalogue, as the environment was built with them."""
    return cast(dict[Lang, Catalogue], env.obrady_catalogues)  # type: ignore[attr-defined]


def environment(request: web.Request) -> Environment:
    """The environment the composition root built."""
    return request.app[TEMPLATES]


def words(request: web.Request, lang: Lang | None = None) -> Catalogue:
    """The catalogue of the request's language (or of lang)."""
    return catalogues(environment(request))[lang or lang_of(request)]


def render(
    request: web.Request, template_name: str, /, lang: Lang | None = None, **context: Any
) -> str:
    """A template rendered in the request's language (or lang), with `lang` and `words` set."""
    chosen = lang or lang_of(request)
    template = environment(request).get_template(template_name)
    return template.render(
        lang=chosen, words=words(request, chosen), zone=zone_of(request), **context
    )


def zone_of(request: web.Request) -> ZoneInfo:
    """The site's time zone: every time shown to people is in it."""
    return request.app[SETTINGS].site.zone


def player_words(request: web.Request) -> dict[str, str]:
    """What player.js says (states, votes, agenda), in the request's language."""
    return words(request).subset("player", "choice", "totals")


def page(
    request: web.Request,
    template: str,
    /,
    *,
    title: str,
    status: int = 200,
    scripts: tuple[str, ...] = (),
    cache: str = "private, no-store",
    framable: bool = False,
    **context: Any,
) -> web.Response:
    """A whole HTML page in the request's language from a template extending page.html (skip
    link, landmarks, search box, language switch); by default never kept by a shared cache."""
    lang = lang_of(request)
    other: Lang = "en" if lang == "pl" else "pl"
    html = render(
        request,
        template,
        title=title,
        other=other,
        switch_href=switch_url(request, other),
        scripts=scripts,
        **context,
    )
    response = web.Response(
        text=html,
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers={"Cache-Control": cache, "Referrer-Policy": "same-origin"},
    )
    if not framable:
        # The console and the sign-in form are never shown inside another site's frame.
        response.headers["X-Frame-Options"] = "DENY"
    if request.query.get("lang") in LANGS:
        response.set_cookie(
            LANG_COOKIE, request.query["lang"], samesite="Lax", path="/", max_age=365 * 86400
        )
    return response
