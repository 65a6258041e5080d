"""Opens the SQLite archive with WAL and foreign keys, and applies numbered migrations."""

from __future__ import annotations

import logging
import os
import sqlite3
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class ArchiveError(Exception):
    """Base of the archive package's errors."""


class NotFound(ArchiveError):
    """The thing asked for does not exist."""


class Conflict(ArchiveError):
    """The change contradicts the current state (the message says which)."""

    def __init__(self, message: str, live_session_id: int | None = None) -> None:
        super().__init__(message)
        self.live_session_id = live_session_id


class Busy(ArchiveError):
    """Too much of one kind of work is queued already; `retry_after` seconds is a fair wait."""

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def to_text(at: datetime) -> str:
    """Store a moment as ISO 8601 UTC text with microseconds (sorts as text)."""
    if at.tzinfo is None:
        raise ValueError("naive datetime given to the archive")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def from_text(text: str | None) -> datetime | None:
    """Read a stored moment back."""
    return None if text is None else datetime.fromisoformat(text)


class MigrationError(ArchiveError):
    """The database is newer than this program or a migration failed."""


def _migrations() -> list[tuple[int, str, str]]:
    found = []
    for entry in resources.files("archive").joinpath("migrations").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def _private(path: Path, mode: int) -> None:
    """Make path (created with mode if missing) unreadable by other local users: an existing one
    that lets them in loses those rights, with a warning."""
    if not path.exists():
        if mode & 0o100:
            path.mkdir(mode=mode, parents=True, exist_ok=True)
        else:
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, mode))
        os.chmod(path, mode)  # whatever the umask
        return
    current = path.stat().st_mode & 0o777
    if current & 0o007:
        os.chmod(path, current & ~0o007)
        log.warning("%s was open to every local user (%o); now %o", path, current, current & ~0o007)


def connect(path: str | Path) -> sqlite3.Connection:
    """Open (creating if needed) and migrate the archive database at path. The data folder
    is created 0700 and the database 0600 (SQLite gives its -wal and -shm files the same)."""
    if str(path) != ":memory:":
        _private(Path(path).parent, 0o700)
        _private(Path(path), 0o600)
        for journal in (Path(f"{path}-wal"), Path(f"{path}-shm")):
            if journal.exists():
                _private(journal, 0o600)
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=10)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = NORMAL")
    if str(path) != ":memory:":
        _keep_before_migrating(conn, Path(path))
    migrate(conn)
    return conn


# How long a process opening the archive waits while another keeps its copy before migrating.
LOCK_WAIT_SECONDS = 300


def _keep_before_migrating(conn: sqlite3.Connection, path: Path) -> None:
    """Before migrations change an existing archive, keep a copy of it beside it
    (`obrady.sqlite3.before-<from>-to-<to>`, SQLite's online backup API): the way back if the
    upgrade has to be rolled back."""
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    migrations = _migrations()
    latest = migrations[-1][0] if migrations else 0
    if current == 0 or current >= latest:
        return  # a new database, an up-to-date one, or one too new (migrate refuses it)
    # Under the write lock (taken by a second connection: the copy is read through this one,
    # which WAL lets read meanwhile), so that of two processes opening the archive at once,
    # the control service and the gateway after an upgrade, one keeps the copy, of the
    # database as it was; the other waits for the copy and the migrations.
    lock = sqlite3.connect(str(path), isolation_level=None, timeout=LOCK_WAIT_SECONDS)
    try:
        lock.execute("BEGIN IMMEDIATE")
        current = conn.execute("PRAGMA user_version").fetchone()[0]
        keep = path.with_name(f"{path.name}.before-{current:04d}-to-{latest:04d}")
        if current >= latest or keep.exists():
            return  # migrated meanwhile, or kept by an earlier attempt at this upgrade
        partial = keep.with_name(keep.name + ".part")
        _private(partial, 0o600)
        copy = sqlite3.connect(str(partial))
        try:
            conn.backup(copy)
        finally:
            copy.close()
        os.replace(partial, keep)
    finally:
        lock.close()  # rolls back: it wrote nothing
    log.warning(
        "upgrading the archive's schema from %d to %d; the database as it was is kept in %s",
        current,
        latest,
        keep,
    )


def connect_reader(path: str | Path) -> sqlite3.Connection:
    """A read-only connection to the archive at path, which `connect` has opened (WAL: it
    reads while the writer writes). Usable from any thread, but meant for one at a time."""
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False, timeout=10)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA query_only = ON")
    return conn


def migrate(conn: sqlite3.Connection) -> int:
    """Apply every migration newer than PRAGMA user_version, each in its own transaction."""
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    migrations = _migrations()
    latest = migrations[-1][0] if migrations else 0
    if current > latest:
        raise MigrationError(
            f"database schema version {current} is newer than this obrady ({latest}); "
            "upgrade obrady or restore a matching backup"
        )
    if current >= latest:
        return current
    # Rebuilding a table (SQLite's way to change constraints) needs foreign keys off; they are
    # checked before each migration commits and switched back on afterwards.
    conn.execute("PRAGMA foreign_keys = OFF")
    try:
        current = _apply(conn, migrations, current)
    finally:
        conn.execute("PRAGMA foreign_keys = ON")
    return current


def _apply(conn: sqlite3.Connection, migrations: list[tuple[int, str, str]], current: int) -> int:
    for number, name, sql in migrations:
        if number <= current:
            continue
        log.info("applying migration %s", name)
        try:
            conn.execute("BEGIN IMMEDIATE")
            if conn.execute("PRAGMA user_version").fetchone()[0] >= number:
                conn.execute("ROLLBACK")  # another process applied it meanwhile
                current = number
                continue
            for statement in _statements(sql):
                conn.execute(statement)
            broken = conn.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise sqlite3.IntegrityError(f"foreign keys broken: {broken[:5]}")
            conn.execute(f"PRAGMA user_version = {number:d}")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            raise MigrationError(f"migration {name} failed: {exc}") from exc
        current = number
    return current


def _statements(sql: str) -> list[str]:
    """Split a migration into statements (executescript would commit implicitly)."""
    statements, buf = [], []
    for line in sql.splitlines():
        if line.strip().startswith("--"):
            continue
        buf.append(line)
        candidate = "\n".join(buf)
        if sqlite3.complete_statement(candidate):
            if candidate.strip():
                statements.append(candidate.strip())
            buf = []
    if "\n".join(buf).strip():
        raise MigrationError("migration ends with an incomplete statement")
    return statements


class Transaction:
    """One IMMEDIATE transaction: committed on success, rolled back on any exception."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self._conn.execute("BEGIN IMMEDIATE")
        return self._conn

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self._conn.execute("ROLLBACK")
            return
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error:
            # A COMMIT that fails (a deferred reference to nothing) leaves the transaction
            # open: nothing of it may stay, nor hold up the connection's next one.
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise


class Snapshot:
    """One read transaction: every query inside sees the database as it was at the first."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self._conn.execute("BEGIN DEFERRED")
        return self._conn

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self._conn.execute("COMMIT" if exc_type is None else "ROLLBACK")


class Store:
    """What the archive's stores share: one connection and a way to open a transaction."""

    _conn: sqlite3.Connection

    def _tx(self) -> Transaction:
        return Transaction(self._conn)

    def snapshot(self) -> Snapshot:
        """A read transaction, for several reads that must agree with each other."""
        return Snapshot(self._conn)

    def database_file(self) -> Path | None:
        """The database's file; None for an in-memory one."""
        for row in self._conn.execute("PRAGMA database_list"):
            if row[1] == "main":
                return Path(row[2]) if row[2] else None
        return None
