"""Operator accounts: argon2 password hashes and HTTP Basic authentication with roles."""

from __future__ import annotations

import asyncio
import base64
import binascii

from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from archive.index import AsyncArchive, User
from streaming.http import json_error

ROLES = ("operator", "staff", "admin")
_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    """An argon2id hash of the password."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether the password matches the stored hash."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _credentials(request: web.Request) -> tuple[str, str] | None:
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


async def authenticate(
    request: web.Request, archive: AsyncArchive, allowed: tuple[str, ...]
) -> User:
    """The user behind the request's Basic credentials, if their role is allowed; else 401/403."""
    creds = _credentials(request)
    challenge = {"WWW-Authenticate": 'Basic realm="obrady", charset="UTF-8"'}
    if creds is None:
        raise json_error(
            web.HTTPUnauthorized,
            "authentication required: send HTTP Basic credentials of a user made with "
            "'obrady user add'",
            challenge,
        )
    name, password = creds
    user = await archive.call(archive.index.get_user, name)
    # Verify even for unknown names so timing does not reveal which names exist.
    stored = user.password_hash if user else _dummy_hash()
    ok = await asyncio.to_thread(verify_password, stored, password)
    if user is None or not ok:
        raise json_error(web.HTTPUnauthorized, "wrong user name or password", challenge)
    if user.role not in allowed:
        raise json_error(
            web.HTTPForbidden,
            f"user {user.name} has role {user.role}; this needs one of: {', '.join(allowed)}",
        )
    return user


_DUMMY: list[str] = []


def _dummy_hash() -> str:
    if not _DUMMY:
        _DUMMY.append(hash_password("not a real password"))
    return _DUMMY[0]
