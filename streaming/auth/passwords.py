"""Argon2 password hashes and random login tokens (only their SHA-256 is stored)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()


_DUMMY: list[str] = []


def hash_password(password: str) -> str:
    """An argon2id hash of the password."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether the password matches the stored hash."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _dummy_hash() -> str:
    if not _DUMMY:
        _DUMMY.append(hash_password("not a real password"))
    return _DUMMY[0]


def token_hash(token: str) -> str:
    """What the archive stores of a login token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """A fresh random token for a login cookie or a CSRF token."""
    return secrets.token_urlsafe(32)


def same_token(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a token sent by the client with the one expected."""
    if not given:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def login_expiry(now: datetime, hours: float) -> datetime:
    """When a login made now ends."""
    return now + timedelta(hours=hours)
