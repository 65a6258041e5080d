"""Signing in and out of the console, who am I, user accounts (admins) and the audit log."""

from __future__ import annotations

import logging
from html import escape
from typing import Any

from aiohttp import web

from archive.accounts import ROLES, AuditEntry, User
from streaming.api import json_body
from streaming.auth import (
    CSRF_FIELD,
    LOGIN,
    LOGIN_COOKIE,
    PERMISSIONS,
    LoginThrottle,
    audit,
    check_password,
    hash_password,
    identify,
    is_https,
    login_expiry,
    new_token,
    require,
    same_token,
    token_hash,
)
from streaming.http import json_error
from streaming.i18n import lang_of, page, text
from streaming.keys import ARCHIVE, CLOCK, SETTINGS

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

PRELOGIN_COOKIE = "obrady_prelogin"
THROTTLE = web.AppKey("login_throttle", LoginThrottle)
MAX_PASSWORD = 1000
MIN_PASSWORD = 8


def _secure(request: web.Request) -> bool:
    mode = request.app[SETTINGS].console.secure_cookies
    return mode == "true" or (mode == "auto" and is_https(request))


def _next_path(value: Any) -> str:
    """Where to go after signing in: only a path on this site, never another site."""
    if isinstance(value, str) and value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    return "/console"


def _throttle(request: web.Request) -> LoginThrottle:
    return request.app[THROTTLE]


def setup(app: web.Application, max_failed_logins: int) -> None:
    """Add the sign-in routes and the state they keep to the control app."""
    app[THROTTLE] = LoginThrottle(max_failed_logins)
    app.add_routes(routes)


def _login_form(
    request: web.Request,
    error: str = "",
    name: str = "",
    status: int = 200,
    target: str | None = None,
) -> web.Response:
    lang = lang_of(request)
    token = new_token()
    target = target or _next_path(request.query.get("next"))
    problem = f'<p class="error" role="alert" id="login-error">{escape(error)}</p>' if error else ""
    body = f"""
<form method="post" action="/login" class="login">
{problem}
<input type="hidden" name="{CSRF_FIELD}" value="{token}">
<input type="hidden" name="next" value="{escape(target)}">
<p><label for="name">{text(lang, "user_name")}</label>
<input id="name" name="name" autocomplete="username" required value="{escape(name)}"></p>
<p><label for="password">{text(lang, "password")}</label>
<input id="password" name="password" type="password" autocomplete="current-password" required></p>
<p><button type="submit">{text(lang, "sign_in")}</button></p>
</form>"""
    response = page(request, text(lang, "sign_in_title"), body, status=status)
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


@routes.get("/login")
async def login_page(request: web.Request) -> web.Response:
    """The sign-in form."""
    return _login_form(request)


@routes.post("/login")
async def sign_in(request: web.Request) -> web.StreamResponse:
    """Check the name and password; on success set the login cookie and go to the console."""
    archive = request.app[ARCHIVE]
    lang = lang_of(request)
    form = await request.post()
    name = str(form.get("name", ""))[:200]
    password = str(form.get("password", ""))[:MAX_PASSWORD]
    target = _next_path(form.get("next"))
    given = form.get(CSRF_FIELD)
    expected = request.cookies.get(PRELOGIN_COOKIE, "")
    if not same_token(given if isinstance(given, str) else None, expected):
        return _login_form(request, text(lang, "form_expired"), name, 403, target)
    throttle = _throttle(request)
    wait = throttle.wait_seconds(name)
    if wait > 0:
        minutes = max(1, round(wait / 60))
        message = text(lang, "too_many").format(minutes=minutes)
        return _login_form(request, message, name, 429, target)
    user = await check_password(archive, name, password)
    if user is None:
        throttle.failed(name)
        log.warning("failed sign-in for %r from %s", name, request.remote)
        return _login_form(request, text(lang, "wrong_password"), name, 401, target)
    throttle.succeeded(name)
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


@routes.get("/api/v1/me")
async def me(request: web.Request) -> web.Response:
    """Who is signed in, their role, what they may do, and the CSRF token for changes."""
    user = await require(request, "console.view")
    login = request.get(LOGIN)
    return web.json_response(
        {
            "name": user.name,
            "role": user.role,
            "may": sorted(a for a, roles in PERMISSIONS.items() if user.role in roles),
            "csrf_token": login.csrf_token if login else None,
        },
        headers={"Cache-Control": "private, no-store"},
    )


def user_json(user: User) -> dict[str, Any]:
    """A user as admins see one (never the hash)."""
    return {"name": user.name, "role": user.role, "disabled": user.disabled}


def _password(value: Any) -> str:
    if not isinstance(value, str) or not MIN_PASSWORD <= len(value) <= MAX_PASSWORD:
        raise json_error(
            web.HTTPBadRequest,
            f"password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters",
        )
    return value


def _role(value: Any) -> Any:
    if value not in ROLES:
        raise json_error(web.HTTPBadRequest, f"role must be one of: {', '.join(ROLES)}")
    return value


@routes.get("/api/v1/users")
async def list_users(request: web.Request) -> web.Response:
    """Every account (admins)."""
    await require(request, "users.manage")
    archive = request.app[ARCHIVE]
    users = await archive.call(archive.index.list_users)
    return web.json_response(
        {"users": [user_json(u) for u in users]}, headers={"Cache-Control": "private, no-store"}
    )


@routes.post("/api/v1/users")
async def add_user(request: web.Request) -> web.Response:
    """Create an account: {"name", "role", "password"} (admins)."""
    admin = await require(request, "users.manage")
    archive = request.app[ARCHIVE]
    body = await json_body(request)
    if set(body) - {"name", "role", "password"}:
        raise json_error(web.HTTPBadRequest, 'send only "name", "role" and "password"')
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 64 or name != name.strip():
        raise json_error(web.HTTPBadRequest, "name must be 1 to 64 characters, no outer spaces")
    role = _role(body.get("role"))
    password_hash = hash_password(_password(body.get("password")))
    user = await archive.call(archive.index.add_user, name, role, password_hash)
    await audit(request, admin, "users.add", f"user {name}", after=user_json(user))
    return web.json_response(user_json(user), status=201)


@routes.patch("/api/v1/users/{name}")
async def edit_user(request: web.Request) -> web.Response:
    """Change an account's role or password, or disable it (admins); its logins end."""
    admin = await require(request, "users.manage")
    archive = request.app[ARCHIVE]
    name = request.match_info["name"]
    body = await json_body(request)
    if not body or set(body) - {"role", "password", "disabled"}:
        raise json_error(web.HTTPBadRequest, 'send one or more of "role", "password", "disabled"')
    changes: dict[str, Any] = {}
    if "role" in body:
        changes["role"] = _role(body["role"])
    if "password" in body:
        changes["password_hash"] = hash_password(_password(body["password"]))
    if "disabled" in body:
        if not isinstance(body["disabled"], bool):
            raise json_error(web.HTTPBadRequest, '"disabled" must be true or false')
        changes["disabled"] = body["disabled"]
    if name == admin.name and (changes.get("disabled") or changes.get("role", "admin") != "admin"):
        raise json_error(
            web.HTTPConflict, "you cannot disable yourself or give up your own admin role"
        )
    before = await archive.call(archive.index.get_user, name)
    if before is None:
        raise json_error(web.HTTPNotFound, f"user {name!r} does not exist")
    after = await archive.call(archive.index.update_user, name, **changes)
    shown_after = user_json(after) | ({"password": "changed"} if "password" in body else {})
    await audit(
        request, admin, "users.edit", f"user {name}", before=user_json(before), after=shown_after
    )
    return web.json_response(user_json(after))


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    """An audit entry as the API shows one."""
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "user": entry.user_name,
        "action": entry.action,
        "target": entry.target,
        "session_id": entry.session_id,
        "before": entry.before,
        "after": entry.after,
        "address": entry.address,
    }


@routes.get("/api/v1/audit")
async def audit_log(request: web.Request) -> web.Response:
    """The audit log, newest first (?session_id=N for one session's; staff and admins)."""
    await require(request, "audit.read")
    archive = request.app[ARCHIVE]
    raw = request.query.get("session_id")
    if raw is not None and (not raw.isdigit() or len(raw) > 12):
        raise json_error(web.HTTPBadRequest, "session_id must be a session's number")
    entries = await archive.call(archive.index.audit_log, None if raw is None else int(raw), 1000)
    return web.json_response(
        {"entries": [audit_json(e) for e in entries]},
        headers={"Cache-Control": "private, no-store"},
    )
