"""Polish first, English available: the language of a request and the console's words."""

from __future__ import annotations

from html import escape
from typing import Literal
from urllib.parse import urlencode

from aiohttp import web

Lang = Literal["pl", "en"]
LANG_COOKIE = "lang"

WORDS: dict[str, dict[Lang, str]] = {
    "sign_in_title": {"pl": "Logowanie do konsoli", "en": "Sign in to the console"},
    "user_name": {"pl": "Nazwa użytkownika", "en": "User name"},
    "password": {"pl": "Hasło", "en": "Password"},
    "sign_in": {"pl": "Zaloguj", "en": "Sign in"},
    "sign_out": {"pl": "Wyloguj", "en": "Sign out"},
    "wrong_password": {
        "pl": "Nieprawidłowa nazwa użytkownika lub hasło.",
        "en": "Wrong user name or password.",
    },
    "form_expired": {
        "pl": "Formularz wygasł. Spróbuj zalogować się ponownie.",
        "en": "The form expired. Please sign in again.",
    },
    "too_many": {
        "pl": "Zbyt wiele nieudanych prób. Spróbuj ponownie za {minutes} min.",
        "en": "Too many failed attempts. Try again in {minutes} min.",
    },
    "console": {"pl": "Konsola operatora", "en": "Operator console"},
    "other_language": {"pl": "English", "en": "Polski"},
    "live": {"pl": "Transmisja na żywo", "en": "Live"},
    "home": {"pl": "Strona główna", "en": "Home"},
    "archive": {"pl": "Archiwum", "en": "Archive"},
    "skip": {"pl": "Przejdź do treści", "en": "Skip to content"},
    "site_nav": {"pl": "Nawigacja serwisu", "en": "Site navigation"},
    "search_label": {"pl": "Szukaj w archiwum", "en": "Search the archive"},
    "search_button": {"pl": "Szukaj", "en": "Search"},
    "switch_label": {"pl": "Switch to English", "en": "Przełącz na polski"},
    "footer": {
        "pl": "Nagrania i transmisje obrad Rady Miasta.",
        "en": "Recordings and live transmissions of the City Council.",
    },
    "feeds": {"pl": "Nowe nagrania (RSS)", "en": "New recordings (RSS)"},
    "calendar": {"pl": "Kalendarz posiedzeń", "en": "Calendar of sessions"},
    # A withdrawn recording's pages (the session page and the embed) say so.
    "withdrawn_title": {"pl": "Nagranie wycofane", "en": "Recording withdrawn"},
    "withdrawn": {
        "pl": "Nagranie posiedzenia {id} zostało wycofane z publikacji i nie jest dostępne.",
        "en": "The recording of session {id} has been withdrawn from publication.",
    },
}


def lang_of(request: web.Request) -> Lang:
    """The page language: ?lang=, else the lang cookie, else Polish."""
    asked = request.query.get("lang") or request.cookies.get(LANG_COOKIE)
    return "en" if asked == "en" else "pl"


def text(lang: Lang, key: str) -> str:
    """One phrase in the language."""
    return WORDS[key][lang]


def wants_html(request: web.Request) -> bool:
    """Whether the request comes from a browser showing a page (a link clicked, an address
    typed) rather than from a script or a player asking for data."""
    return "text/html" in request.headers.get("Accept", "")


def switch_url(request: web.Request, lang: Lang) -> str:
    """This page's address in the other language, keeping every other query parameter."""
    kept = [(k, v) for k, v in request.query.items() if k != "lang"]
    return f"{request.path}?{urlencode([*kept, ('lang', lang)])}"


def page(
    request: web.Request,
    title: str,
    body: str,
    *,
    status: int = 200,
    head: str = "",
    scripts: tuple[str, ...] = (),
    cache: str = "private, no-store",
    framable: bool = False,
) -> web.Response:
    """A whole HTML page in the request's language (by default never kept by a shared cache)."""
    lang = lang_of(request)
    other: Lang = "en" if lang == "pl" else "pl"
    tags = "".join(f'<script src="{escape(src)}" defer></script>' for src in scripts)
    keep_lang = '<input type="hidden" name="lang" value="en">' if lang == "en" else ""
    html = f"""<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} – obrady</title>
<link rel="stylesheet" href="/static/obrady.css">
{head}{tags}
</head>
<body>
<a class="skip" href="#main">{text(lang, "skip")}</a>
<header>
<nav aria-label="{text(lang, "site_nav")}"><ul>
<li><a href="/" class="brand">obrady</a></li>
<li><a href="/live">{text(lang, "live")}</a></li>
<li><a href="/archive">{text(lang, "archive")}</a></li>
<li><a href="{escape(switch_url(request, other))}" lang="{other}" hreflang="{other}"
 aria-label="{text(lang, "switch_label")}">{text(lang, "other_language")}</a></li>
</ul></nav>
<form method="get" action="/search" role="search" class="site-search">
<label for="site-q" class="visually-hidden">{text(lang, "search_label")}</label>
<input id="site-q" name="q" type="search" maxlength="200">{keep_lang}
<button type="submit">{text(lang, "search_button")}</button>
</form>
</header>
<main id="main" tabindex="-1">
<h1>{escape(title)}</h1>
{body}
</main>
<footer>
<p>{text(lang, "footer")} <a href="/feeds/recordings.rss">{text(lang, "feeds")}</a> ·
 <a href="/feeds/sessions.ics">{text(lang, "calendar")}</a></p>
</footer>
</body>
</html>
"""
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
    if request.query.get("lang") in ("pl", "en"):
        response.set_cookie(
            LANG_COOKIE, request.query["lang"], samesite="Lax", path="/", max_age=365 * 86400
        )
    return response
