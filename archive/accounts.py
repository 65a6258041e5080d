"""Accounts in the archive: users and their roles, cookie logins, and the audit log."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from archive.db import Conflict, NotFound, Store, from_text, to_text, utc_now

Role = Literal["operator", "staff", "admin"]
ROLES: tuple[Role, ...] = ("operator", "staff", "admin")


@dataclass(frozen=True)
class User:
    """An account of the console and the operator API."""

    id: int
    name: str
    role: Role
    password_hash: str
    disabled: bool = False


@dataclass(frozen=True)
class Login:
    """A signed-in browser: the user behind a cookie token, and its CSRF token."""

    id: int
    user: User
    csrf_token: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class AuditEntry:
    """One action: who, when, what, and the state before and after."""

    id: int
    at: datetime
    user_name: str
    action: str
    target: str
    session_id: int | None
    before: Any
    after: Any
    address: str | None


def _user(row: sqlite3.Row) -> User:
    return User(row["id"], row["name"], row["role"], row["password_hash"], bool(row["disabled"]))


class AccountStore(Store):
    """Users, logins and the audit log (mixed into ArchiveIndex)."""

    def add_user(self, name: str, role: Role, password_hash: str) -> User:
        """Create a user; Conflict if the name is taken."""
        try:
            with self._tx() as c:
                cur = c.execute(
                    "INSERT INTO users (name, role, password_hash, created_at) VALUES (?,?,?,?)",
                    (name, role, password_hash, to_text(utc_now())),
                )
        except sqlite3.IntegrityError:
            raise Conflict(f"user {name!r} already exists") from None
        return User(int(cur.lastrowid or 0), name, role, password_hash)

    def get_user(self, name: str) -> User | None:
        """The user with this name, if any."""
        row = self._conn.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
        return None if row is None else _user(row)

    def list_users(self) -> list[User]:
        """Every user, by name."""
        rows = self._conn.execute("SELECT * FROM users ORDER BY name").fetchall()
        return [_user(r) for r in rows]

    def update_user(
        self,
        name: str,
        *,
        role: Role | None = None,
        password_hash: str | None = None,
        disabled: bool | None = None,
    ) -> User:
        """Change a user's role, password or whether they may sign in; their logins end."""
        with self._tx() as c:
            row = c.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise NotFound(f"user {name!r} does not exist")
            user = _user(row)
            c.execute(
                "UPDATE users SET role = ?, password_hash = ?, disabled = ? WHERE id = ?",
                (
                    role or user.role,
                    password_hash or user.password_hash,
                    int(user.disabled if disabled is None else disabled),
                    user.id,
                ),
            )
            # Whatever changed, a browser signed in under the old terms signs in again.
            c.execute("DELETE FROM logins WHERE user_id = ?", (user.id,))
            row = c.execute("SELECT * FROM users WHERE id = ?", (user.id,)).fetchone()
        return _user(row)

    # logins

    def add_login(
        self,
        user_id: int,
        token_hash: str,
        csrf_token: str,
        expires_at: datetime,
        address: str | None,
        user_agent: str | None,
    ) -> None:
        """Store a new login by the hash of its cookie token."""
        now = utc_now()
        with self._tx() as c:
            c.execute("DELETE FROM logins WHERE expires_at < ?", (to_text(now),))
            c.execute(
                "INSERT INTO logins (token_hash, user_id, csrf_token, created_at, expires_at,"
                " address, user_agent) VALUES (?,?,?,?,?,?,?)",
                (
                    token_hash,
                    user_id,
                    csrf_token,
                    to_text(now),
                    to_text(expires_at),
                    address,
                    (user_agent or "")[:300],
                ),
            )

    def login(self, token_hash: str, now: datetime) -> Login | None:
        """The unexpired login of an enabled user with this token hash, if any."""
        row = self._conn.execute(
            "SELECT l.id AS login_id, l.csrf_token, l.created_at AS login_created, l.expires_at,"
            " u.* FROM logins l JOIN users u ON u.id = l.user_id"
            " WHERE l.token_hash = ? AND l.expires_at > ? AND u.disabled = 0",
            (token_hash, to_text(now)),
        ).fetchone()
        if row is None:
            return None
        return Login(
            row["login_id"],
            _user(row),
            row["csrf_token"],
            datetime.fromisoformat(row["login_created"]),
            datetime.fromisoformat(row["expires_at"]),
        )

    def end_login(self, token_hash: str) -> None:
        """Forget a login (sign out)."""
        with self._tx() as c:
            c.execute("DELETE FROM logins WHERE token_hash = ?", (token_hash,))

    # audit

    def add_audit(
        self,
        user_name: str,
        action: str,
        target: str,
        *,
        session_id: int | None = None,
        before: Any = None,
        after: Any = None,
        address: str | None = None,
        at: datetime | None = None,
    ) -> int:
        """Append an entry to the audit log; returns its id."""
        with self._tx() as c:
            cur = c.execute(
                "INSERT INTO audit (at, user_name, action, target, session_id, before, after,"
                " address) VALUES (?,?,?,?,?,?,?,?)",
                (
                    to_text(at or utc_now()),
                    user_name,
                    action,
                    target,
                    session_id,
                    None if before is None else json.dumps(before, ensure_ascii=False),
                    None if after is None else json.dumps(after, ensure_ascii=False),
                    address,
                ),
            )
        return int(cur.lastrowid or 0)

    def audit_log(self, session_id: int | None = None, limit: int = 500) -> list[AuditEntry]:
        """Audit entries, newest first; only one session's if session_id is given."""
        if session_id is None:
            rows = self._conn.execute(
                "SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
        else:
            rows = self._conn.execute(
                "SELECT * FROM audit WHERE session_id = ? ORDER BY id DESC LIMIT ?",
                (session_id, limit),
            ).fetchall()
        return [
            AuditEntry(
                r["id"],
                from_text(r["at"]) or utc_now(),
                r["user_name"],
                r["action"],
                r["target"],
                r["session_id"],
                None if r["before"] is None else json.loads(r["before"]),
                None if r["after"] is None else json.loads(r["after"]),
                r["address"],
            )
            for r in rows
        ]
