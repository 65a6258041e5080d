"""Who may do what: argon2 passwords, cookie logins with CSRF tokens, Basic auth, roles, audit.

A browser signs in at /login and gets an HttpOnly, SameSite=Strict cookie holding a random
token (the archive keeps only its SHA-256). Every state-changing request authenticated by that
cookie must also carry the login's CSRF token (header X-CSRF-Token, or a csrf_token form
field). Scripts use HTTP Basic credentials instead; a browser may replay those by itself, so a
state-changing Basic request that a browser marks as cross-site (or sends with `Origin: null`)
is refused too. Wrong passwords, by the form or by Basic, count alike against the name and the
client address (LoginThrottle), and at most a few password checks run at once (PasswordChecks).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import logging
import math
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from archive.accounts import Login, Role, User
from archive.index import ArchiveIndex, AsyncArchive, utc_now
from streaming.auth.passwords import (
    _dummy_hash,
    hash_password,
    same_token,
    token_hash,
    verify_password,
)
from streaming.http import json_error
from streaming.keys import ARCHIVE, INDEXER, PASSWORD_CHECKS, THROTTLE
from streaming.services.login_throttle import ChecksBusy

log = logging.getLogger(__name__)

LOGIN_COOKIE = "obrady_login"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Who the request was identified as, and by which login (None for Basic credentials).
USER = web.RequestKey("user", User)
LOGIN: web.RequestKey[Login | None] = web.RequestKey("login")

_OPS: tuple[Role, ...] = ("operator", "admin")
_STAFF: tuple[Role, ...] = ("staff", "admin")
_ALL: tuple[Role, ...] = ("operator", "staff", "admin")

# Every protected action and the roles that may take it. An admin may do everything.
PERMISSIONS: dict[str, tuple[Role, ...]] = {
    "console.view": _ALL,
    # preparing and running sessions: operators
    "session.create": _OPS,
    "session.edit": _OPS,
    "agenda.edit": _OPS,
    "councillors.edit": _OPS,
    "session.run": _OPS,
    "vote.record": _OPS,
    "preflight": _OPS,
    # the record afterwards: staff
    "record.edit": _STAFF,
    "record.publish": _STAFF,
    "record.redact": _STAFF,
    "audit.read": _STAFF,
    # what the public does not get: breaks, closed parts, other cameras, redacted ranges
    "archive.sealed": _ALL,
    # accounts and configuration: admins
    "users.manage": ("admin",),
}


class SignInRefused(Exception):
    """A password was not checked: the name or address must wait (throttled), or too many
    checks are under way (busy). retry_after: whole seconds until a try may succeed."""

    def __init__(self, retry_after: float, *, busy: bool) -> None:
        super().__init__(retry_after, busy)
        self.retry_after = max(1, math.ceil(retry_after))
        self.busy = busy


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def client_address(request: web.Request) -> str:
    """The client's address: the connection's, or behind a proxy on this machine (the shipped
    nginx or Varnish) the nearest non-local address it added to X-Forwarded-For. Entries to
    its left are the client's own words, so they are never taken."""
    address = request.remote or "?"
    forwarded = request.headers.get("X-Forwarded-For")
    if forwarded and _loopback(address):
        for hop in reversed(forwarded.split(",")):
            address = hop.strip()[:64] or address
            if not _loopback(address):
                break
    return address


def _verify(stored: str | None, password: str) -> bool:
    # An unknown name is checked against a dummy hash, made (once) here in the thread too.
    return verify_password(stored or _dummy_hash(), password)


async def check_password(
    request: web.Request, name: str, password: str, how: str = "form"
) -> User | None:
    """The enabled user with this name and password, or None (timing alike for unknown names).

    Every sign-in, by the form or by HTTP Basic, goes through here: SignInRefused (nothing
    checked) while the name or the client's address must wait, or while too many checks
    are under way; a wrong password is counted and logged."""
    app = request.app
    throttle = app[THROTTLE]
    address = client_address(request)
    wait = throttle.wait_seconds(name, address)
    if wait > 0:
        log.info("sign-in (%s) for %r from %s refused: must wait", how, name, address)
        raise SignInRefused(wait, busy=False)
    checks = app[PASSWORD_CHECKS]
    if checks.full() and not checks.may_know(name, password):
        # Refused before the account is read: a flood of guesses costs no archive reads.
        log.info("sign-in (%s) for %r from %s refused: too many checks", how, name, address)
        raise SignInRefused(1, busy=True)
    user = await app[ARCHIVE].read(ArchiveIndex.get_user, name)
    stored = user.password_hash if user else None
    if user is not None and stored and not user.disabled and checks.known(name, password, stored):
        # Found right before against this same hash: no check, no place in the line.
        throttle.succeeded(name)
        return user
    try:
        ok = await checks.run(_verify, stored, password)
    except ChecksBusy:
        log.info("sign-in (%s) for %r from %s refused: too many checks", how, name, address)
        raise SignInRefused(1, busy=True) from None
    if user is None or not ok or user.disabled:
        throttle.failed(name, address)
        log.warning("failed sign-in (%s) for %r from %s", how, name, address)
        return None
    if stored:
        checks.remember(name, password, stored)
    throttle.succeeded(name)
    return user


async def new_password_hash(request: web.Request, password: str) -> str:
    """hash_password in a thread, within the same bound as the checks; 429 when it is full."""
    try:
        return await request.app[PASSWORD_CHECKS].run(hash_password, password)
    except ChecksBusy:
        raise json_error(
            web.HTTPTooManyRequests,
            "too many password checks under way; try again in a moment",
            {"Retry-After": "1"},
        ) from None


def is_https(request: web.Request) -> bool:
    """Whether the client reached us over HTTPS, directly or through a proxy that says so."""
    if request.secure:
        return True
    return request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip() == "https"


def _basic_credentials(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    name, sep, password = decoded.partition(":")
    return (name, password) if sep else None


def _cross_site(request: web.Request) -> bool:
    """Whether the browser says this request comes from another site."""
    if request.headers.get("Sec-Fetch-Site") == "cross-site":
        return True
    origin = request.headers.get("Origin")
    if origin == "null":  # a sandboxed frame, a file, a redirect from elsewhere: not us
        return True
    if origin:
        return urlsplit(origin).netloc.lower() != request.host.lower()
    return False


async def _csrf_given(request: web.Request) -> str | None:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()  # cached by aiohttp: the handler can read it again
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def identify(request: web.Request, archive: AsyncArchive) -> User | None:
    """The user behind the request (Basic credentials or login cookie), with CSRF checked.

    None when the request carries neither; 401 for wrong credentials, 403 for a
    state-changing request without a valid CSRF token or sent cross-site.
    """
    if USER in request:
        return request[USER]
    unsafe = request.method not in SAFE_METHODS
    if "Authorization" in request.headers:
        creds = _basic_credentials(request)
        challenge = {"WWW-Authenticate": 'Basic realm="obrady", charset="UTF-8"'}
        if creds is None:
            raise json_error(
                web.HTTPUnauthorized,
                "the Authorization header must be HTTP Basic credentials (user:password)",
                challenge,
            )
        if unsafe and _cross_site(request):
            raise json_error(
                web.HTTPForbidden,
                "a state-changing request from another site (or with Origin: null) is refused: "
                "send it from a script without an Origin header, or from the console",
            )
        try:
            user = await check_password(request, *creds, how="HTTP Basic")
        except SignInRefused as refused:
            raise json_error(
                web.HTTPTooManyRequests,
                "too many password checks under way; try again in a moment"
                if refused.busy
                else "too many wrong passwords for this user name or from this address; "
                f"try again in {refused.retry_after} s",
                {"Retry-After": str(refused.retry_after)},
            ) from None
        if user is None:
            raise json_error(web.HTTPUnauthorized, "wrong user name or password", challenge)
        request[USER], request[LOGIN] = user, None
        return user
    token = request.cookies.get(LOGIN_COOKIE)
    if not token:
        return None
    login = await archive.read(ArchiveIndex.login, token_hash(token), utc_now())
    if login is None:
        return None
    if unsafe and not same_token(await _csrf_given(request), login.csrf_token):
        raise json_error(
            web.HTTPForbidden,
            f"missing or wrong CSRF token: send the {CSRF_HEADER} header (or the {CSRF_FIELD} "
            "form field) the console page gives you; reload the page if you signed in again",
        )
    request[USER], request[LOGIN] = login.user, login
    return login.user


async def require(request: web.Request, action: str) -> User:
    """The signed-in user if their role may take this action; 401 or 403 otherwise."""
    allowed = PERMISSIONS[action]
    user = await identify(request, request.app[ARCHIVE])
    if user is None:
        raise json_error(
            web.HTTPUnauthorized,
            "authentication required: sign in at /login, or send HTTP Basic credentials of a "
            "user made with 'obrady user add'",
            {"WWW-Authenticate": 'Basic realm="obrady", charset="UTF-8"'},
        )
    if user.role not in allowed:
        raise json_error(
            web.HTTPForbidden,
            f"user {user.name} has role {user.role}; {action} needs one of: {', '.join(allowed)}",
        )
    return user


def _audit_entry(
    request: web.Request,
    user: User,
    action: str,
    target: str,
    session_id: int | None,
    before: Any,
    after: Any,
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The arguments of ArchiveIndex.add_audit for one entry."""
    return (user.name, action, target), {
        "session_id": session_id,
        "before": before,
        "after": after,
        "address": client_address(request),
    }


async def audit(
    request: web.Request,
    user: User,
    action: str,
    target: str,
    *,
    session_id: int | None = None,
    before: Any = None,
    after: Any = None,
) -> None:
    """Write one entry in the audit log: who, when, what, before and after."""
    archive = request.app[ARCHIVE]
    args, kwargs = _audit_entry(request, user, action, target, session_id, before, after)
    await archive.call(archive.index.add_audit, *args, **kwargs)


def audit_later(
    request: web.Request,
    user: User,
    action: str,
    target: str,
    *,
    session_id: int | None = None,
    before: Any = None,
    after: Any = None,
) -> None:
    """`audit`, for a change already made that a busy database must not turn into an error:
    the entry, stamped now, is queued with the recorder's writes and made when it can be."""
    indexer = request.app.get(INDEXER)
    if indexer is None:
        raise RuntimeError("audit_later needs the recorder's archive indexer")
    archive = request.app[ARCHIVE]
    args, kwargs = _audit_entry(request, user, action, target, session_id, before, after)
    indexer.write(
        f"audit of {action} on {target}",
        session_id or 0,
        archive.index.add_audit,
        *args,
        **kwargs,
        at=utc_now(),
    )
