"""Signing in and out of the console: the login page, its form with a server-made CSRF token,
the throttle on wrong passwords (shared with HTTP Basic), and where to go after signing in."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from aiohttp import web

from streaming.api.accounts import MAX_PASSWORD
from streaming.auth.access import (
    CSRF_FIELD,
    LOGIN,
    LOGIN_COOKIE,
    SignInRefused,
    audit,
    check_password,
    identify,
    is_https,
)
from streaming.auth.passwords import login_expiry, new_token, same_token, token_hash
from streaming.keys import ARCHIVE, CLOCK, PRELOGIN, SETTINGS
from streaming.web.templating import page, words

log = logging.getLogger(__name__)

PRELOGIN_COOKIE = "obrady_prelogin"


def _secure(request: web.Request) -> bool:
    mode = request.app[SETTINGS].console.secure_cookies
    return mode == "true" or (mode == "auto" and is_https(request))


DEFAULT_NEXT = "/console"
# What a path may keep as it is: printable ASCII but the space and the backslash (quote()
# encodes the rest). A browser drops tabs and line breaks from a URL and reads "\\" as "/",
# so "/\t/evil.example" or "/\\evil.example" would take it to another site.
_PATH_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != "\\")


def _next_path(value: Any) -> str:
    """Where to go after signing in: a path on this site, never another site. Anything else
    (another site, a scheme, "//", a backslash, a control character, however encoded on the
    way in) gives the console."""
    if not isinstance(value, str) or len(value) > 2000:
        return DEFAULT_NEXT
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return DEFAULT_NEXT
    # The path also as a later hop might decode it ("/%2F%2Fevil.example", "/%09/evil...").
    for text in (value, unquote(parts.path)):
        if not text.startswith("/") or text.startswith("//"):
            return DEFAULT_NEXT
        if any(ord(c) < 0x20 or ord(c) == 0x7F or c == "\\" or c.isspace() for c in text):
            return DEFAULT_NEXT
    return quote(value, safe=_PATH_SAFE)


def _login_form(
    request: web.Request,
    error: str = "",
    name: str = "",
    status: int = 200,
    target: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    token = request.app[PRELOGIN].issue()
    target = target or _next_path(request.query.get("next"))
    response = page(
        request,
        "login.html",
        title=words(request).text("site.sign_in_title"),
        status=status,
        error=error,
        csrf_field=CSRF_FIELD,
        token=token,
        target=target,
        name=name,
    )
    response.headers.update(headers or {})
    # Login CSRF: the form's token must match this cookie (double submit), so another site
    # cannot sign a browser in under its own account.
    response.set_cookie(
        PRELOGIN_COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        secure=_secure(request),
        path="/login",
        max_age=3600,
    )
    return response


routes = web.RouteTableDef()


@routes.get("/login")
async def login_page(request: web.Request) -> web.Response:
    """The sign-in form."""
    return _login_form(request)


@routes.post("/login")
async def sign_in(request: web.Request) -> web.StreamResponse:
    """Check the name and password; on success set the login cookie and go to the console."""
    archive = request.app[ARCHIVE]
    said = words(request)
    form = await request.post()
    name = str(form.get("name", ""))[:200]
    password = str(form.get("password", ""))[:MAX_PASSWORD]
    target = _next_path(form.get("next"))
    given = form.get(CSRF_FIELD)
    expected = request.cookies.get(PRELOGIN_COOKIE)
    # Only a token this server made counts (a client cannot pick its own), and the form must
    # carry the same one as the cookie (double submit).
    if not request.app[PRELOGIN].valid(expected) or not same_token(
        given if isinstance(given, str) else None, expected or ""
    ):
        return _login_form(request, said.text("site.form_expired"), name, 403, target)
    try:
        user = await check_password(request, name, password)
    except SignInRefused as refused:
        if refused.busy:
            message = said.text("site.busy")
        else:
            message = said.text("site.too_many", minutes=max(1, round(refused.retry_after / 60)))
        retry = {"Retry-After": str(refused.retry_after)}
        return _login_form(request, message, name, 429, target, retry)
    if user is None:
        return _login_form(request, said.text("site.wrong_password"), name, 401, target)
    # A fresh token on every sign-in: a token planted before signing in is worth nothing.
    token, csrf = new_token(), new_token()
    now = request.app[CLOCK]()
    hours = request.app[SETTINGS].console.login_hours
    await archive.call(
        archive.index.add_login,
        user.id,
        token_hash(token),
        csrf,
        login_expiry(now, hours),
        request.remote,
        request.headers.get("User-Agent"),
    )
    await audit(request, user, "login", f"user {user.name}")
    old = request.cookies.get(LOGIN_COOKIE)
    if old:
        await archive.call(archive.index.end_login, token_hash(old))
    response = web.HTTPSeeOther(target)
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        secure=_secure(request),
        path="/",
        max_age=int(hours * 3600),
    )
    response.del_cookie(PRELOGIN_COOKIE, path="/login")
    raise response


@routes.post("/logout")
async def sign_out(request: web.Request) -> web.StreamResponse:
    """End this browser's login (needs its CSRF token like any change)."""
    archive = request.app[ARCHIVE]
    user = await identify(request, archive)
    login = request.get(LOGIN)
    if user is not None and login is not None:
        token = request.cookies.get(LOGIN_COOKIE, "")
        await archive.call(archive.index.end_login, token_hash(token))
        await audit(request, user, "logout", f"user {user.name}")
    response = web.HTTPSeeOther("/login")
    response.del_cookie(LOGIN_COOKIE, path="/")
    raise response
