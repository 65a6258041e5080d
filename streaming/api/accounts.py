"""Signing in and out of the console, who am I, user accounts (admins) and the audit log."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from archive.accounts import ROLES, AuditEntry, User
from streaming.api.body import json_body
from streaming.auth.access import (
    LOGIN,
    PERMISSIONS,
    audit,
    require,
)
from streaming.auth.passwords import hash_password
from streaming.http import json_error
from streaming.keys import ARCHIVE

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

MAX_PASSWORD = 1000
MIN_PASSWORD = 8


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
