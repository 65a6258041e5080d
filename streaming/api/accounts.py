"""Signing in and out of the console, who am I, user accounts (admins) and the audit log."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from archive.accounts import AuditEntry, User
from streaming.api.body import read_body, read_query
from streaming.api.models import MAX_PASSWORD as MAX_PASSWORD  # the sign-in page's limit
from streaming.api.models import AuditQuery, UserAdd, UserEdit
from streaming.api.openapi import ADMIN, ANY_ROLE, STAFF, operation
from streaming.auth.access import (
    LOGIN,
    PERMISSIONS,
    audit,
    new_password_hash,
    require,
)
from streaming.http import json_error
from streaming.keys import ARCHIVE

log = logging.getLogger(__name__)

routes = web.RouteTableDef()


@routes.get("/api/v1/me")
@operation("Who is signed in, what they may do, the CSRF token", ANY_ROLE, no_errors=("404",))
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


@routes.get("/api/v1/users")
@operation("Every account", ADMIN)
async def list_users(request: web.Request) -> web.Response:
    """Every account (admins)."""
    await require(request, "users.manage")
    archive = request.app[ARCHIVE]
    users = await archive.call(archive.index.list_users)
    return web.json_response(
        {"users": [user_json(u) for u in users]}, headers={"Cache-Control": "private, no-store"}
    )


@routes.post("/api/v1/users")
@operation("Create an account", ADMIN, body=UserAdd, ok=201)
async def add_user(request: web.Request) -> web.Response:
    """Create an account: {"name", "role", "password"} (admins)."""
    admin = await require(request, "users.manage")
    archive = request.app[ARCHIVE]
    body = await read_body(request, UserAdd)
    name = body.name
    password_hash = await new_password_hash(request, body.password)
    user = await archive.call(archive.index.add_user, name, body.role, password_hash)
    await audit(request, admin, "users.add", f"user {name}", after=user_json(user))
    return web.json_response(user_json(user), status=201)


@routes.patch("/api/v1/users/{name}")
@operation("Change a role or password, or disable; the user's logins end", ADMIN, body=UserEdit)
async def edit_user(request: web.Request) -> web.Response:
    """Change an account's role or password, or disable it (admins); its logins end."""
    admin = await require(request, "users.manage")
    archive = request.app[ARCHIVE]
    name = request.match_info["name"]
    body = await read_body(request, UserEdit)
    changes: dict[str, Any] = body.model_dump(exclude_unset=True, exclude={"password"})
    if "password" in body.model_fields_set:
        changes["password_hash"] = await new_password_hash(request, body.password)
    if name == admin.name and (changes.get("disabled") or changes.get("role", "admin") != "admin"):
        raise json_error(
            web.HTTPConflict, "you cannot disable yourself or give up your own admin role"
        )
    before = await archive.call(archive.index.get_user, name)
    if before is None:
        raise json_error(web.HTTPNotFound, f"user {name!r} does not exist")
    after = await archive.call(archive.index.update_user, name, **changes)
    target = f"user {name}"
    # The password is audited as its own entry, saying only that it changed: neither hash is
    # shown, and role or disabled, unchanged by it, do not pose as its before and after.
    if "password" in body.model_fields_set:
        await audit(request, admin, "users.password", target, after="password changed")
    if body.model_fields_set - {"password"}:
        await audit(
            request, admin, "users.edit", target, before=user_json(before), after=user_json(after)
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
@operation(
    "The audit log, newest first: who, when, what, before and after", STAFF, query=AuditQuery
)
async def audit_log(request: web.Request) -> web.Response:
    """The audit log, newest first (?session_id=N for one session's; staff and admins)."""
    await require(request, "audit.read")
    archive = request.app[ARCHIVE]
    query = read_query(request, AuditQuery)
    session_id = int(query.session_id) if "session_id" in query.model_fields_set else None
    entries = await archive.call(archive.index.audit_log, session_id, 1000)
    return web.json_response(
        {"entries": [audit_json(e) for e in entries]},
        headers={"Cache-Control": "private, no-store"},
    )
