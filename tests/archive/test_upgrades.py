"""Upgrades: an archive made by every released obrady (a populated dump of each, in
tests/archive/released/) migrates to the current schema with every record readable; the
database as it was is kept beside it first; and an obrady older than its database refuses to
start, saying what to do, without touching it.

When a version is released, add its dump: `PYTHONPATH=. python tests/archive/test_upgrades.py
VERSION` (it writes released/VERSION.sql from this checkout's schema)."""

from __future__ import annotations

import re
import sqlite3
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import free_port
from helpers import obrady

from archive.agenda import parse_agenda
from archive.db import _apply, _migrations, connect
from archive.index import ArchiveIndex


@dataclass(frozen=True)
class Said:
    """A recognised line, as the recogniser hands it to the archive."""

    start: float
    end: float
    text: str


RELEASED = Path(__file__).parent / "released"
HEADER = re.compile(r"^-- obrady (\S+), schema (\d+)$")
LATEST = _migrations()[-1][0]


def populate(database: Path) -> None:
    """An archive with one of each record a city keeps: a session with its agenda, items taken
    up, a break, a vote with councillors' choices, a run of segments with checksums, transcript
    lines (automatic and corrected), a program switch and an account."""
    index = ArchiveIndex(database)
    try:
        start = datetime(2026, 11, 5, 16, tzinfo=UTC)
        text = "1. Otwarcie sesji.\n2. Budżet miasta na 2027 rok.\n3. Zamknięcie obrad.\n"
        session = index.create_session(
            chamber="sala",
            title="LXVI Sesja Rady Miasta",
            kind="session",
            scheduled_start=start,
            scheduled_end=start + timedelta(hours=3),
            agenda_text=text,
            agenda=parse_agenda(text),
            created_by="op",
        )
        sid = session.id
        index.begin_live(sid, start)
        items = [row.id for row in index.agenda(sid)]
        index.add_marker(sid, "item_start", start + timedelta(seconds=2), items[0], "op")
        index.add_marker(sid, "item_start", start + timedelta(seconds=6), items[1], "op")
        index.add_marker(sid, "break_start", start + timedelta(seconds=8), None, "op")
        index.add_marker(sid, "break_end", start + timedelta(seconds=9), None, "op")
        run = index.add_run(sid, 1, "run-0001", start, "main")
        for n in range(6):
            index.add_segment(
                run, n, f"seg-{n:06d}.ts", 2.0 * n, 2.0, start + timedelta(seconds=2 * n + 2),
                250_000, f"{n:064x}", True,
            )  # fmt: skip
        index.end_run(run, start + timedelta(seconds=12), 0, "stopped")
        anna = index.add_councillor("2024-2029", "Anna Nowak", "Klub A")
        jan = index.add_councillor("2024-2029", "Jan Kowalski", "Klub B")
        index.add_vote(
            sid,
            item_id=items[1],
            subject="Uchwała budżetowa na 2027 rok",
            at=start + timedelta(seconds=7),
            source="console",
            choices={anna.id: "for", jan.id: "against"},
            created_by="op",
        )
        index.add_switch("sala", "main", start + timedelta(seconds=1), sid, "op")
        index.end(sid, start + timedelta(seconds=12), "op")
        index.replace_automatic(
            sid, [Said(1.0, 4.0, "Otwieram sesję Rady Miasta."),
                  Said(6.5, 9.5, "Przechodzimy do budżetu miasta.")],
        )  # fmt: skip
        index.add_line(sid, 10.0, 11.5, "Zamykam obrady.", "staff")
        index.add_user("op", "operator", "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA")
    finally:
        index.close()


def counts(conn: sqlite3.Connection) -> dict[str, int]:
    names = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    return {n: conn.execute(f'SELECT COUNT(*) FROM "{n}"').fetchone()[0] for n in names}


def load(dump: Path, database: Path) -> tuple[str, int]:
    """A database made from a released dump; (version, schema number)."""
    text = dump.read_text(encoding="utf-8")
    match = HEADER.match(text.splitlines()[0])
    assert match, f"{dump} lacks its '-- obrady VERSION, schema N' first line"
    conn = sqlite3.connect(database)
    try:
        conn.executescript(text)
        conn.execute(f"PRAGMA user_version = {int(match.group(2))}")
    finally:
        conn.close()
    return match.group(1), int(match.group(2))


@pytest.mark.parametrize("dump", sorted(RELEASED.glob("*.sql")), ids=lambda p: p.stem)
def test_an_archive_of_each_released_version_migrates_with_every_record(
    dump: Path, tmp_path: Path
) -> None:
    database = tmp_path / "obrady.sqlite3"
    version, schema = load(dump, database)
    with sqlite3.connect(database) as conn:
        before = counts(conn)
    index = ArchiveIndex(database)  # migrates
    try:
        assert index._conn.execute("PRAGMA user_version").fetchone()[0] == LATEST  # noqa: SLF001
        assert index.integrity_check() == "ok"
        after = counts(index._conn)  # noqa: SLF001
        for table, rows in before.items():
            if table in after and not table.startswith("search_"):
                assert after[table] == rows, (version, table)
        (sid,) = index.session_ids()
        session = index.get_session(sid)
        assert session.title == "LXVI Sesja Rady Miasta" and session.state == "ended"
        assert [row.title for row in index.agenda(sid)][:2] == [
            "Otwarcie sesji",
            "Budżet miasta na 2027 rok",
        ]
        assert [m.kind for m in index.markers(sid)].count("item_start") == 2
        (vote,) = index.votes(sid)
        assert vote.totals()["for"] == 1 and vote.totals()["against"] == 1
        assert len(index.all_segments(sid)) == 6
        lines = [line.text for line in index.transcript(sid)]
        assert lines[-1] == "Zamykam obrady." and len(lines) == 3
        assert index.timeline(sid) is not None
    finally:
        index.close()
    kept = tmp_path / f"obrady.sqlite3.before-{schema:04d}-to-{LATEST:04d}"
    assert kept.exists() == (schema < LATEST)


def test_the_current_schema_has_a_released_dump_or_is_newer() -> None:
    schemas = [load_header(p)[1] for p in RELEASED.glob("*.sql")]
    assert schemas, "no released dump: add one (see this module's docstring)"
    assert max(schemas) <= LATEST


def load_header(dump: Path) -> tuple[str, int]:
    match = HEADER.match(dump.read_text(encoding="utf-8").splitlines()[0])
    assert match, dump
    return match.group(1), int(match.group(2))


def test_an_older_schema_is_kept_before_migrating(tmp_path: Path) -> None:
    database = tmp_path / "obrady.sqlite3"
    populate(database)
    conn = sqlite3.connect(database)
    conn.execute(f"PRAGMA user_version = {LATEST - 1}")  # as if made by the previous schema
    conn.close()
    # The last migration is written to be re-applied (IF NOT EXISTS) for this test to hold.
    ArchiveIndex(database).close()
    kept = tmp_path / f"obrady.sqlite3.before-{LATEST - 1:04d}-to-{LATEST:04d}"
    with sqlite3.connect(kept) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST - 1
        assert conn.execute("SELECT COUNT(*) FROM segments").fetchone()[0] == 6
    assert (kept.stat().st_mode & 0o777) == 0o600


def test_a_migration_another_process_applied_meanwhile_is_not_applied_again(
    tmp_path: Path,
) -> None:
    """The control service and the gateway open the archive at once after an upgrade: both
    read the old schema version, one migrates first, and the other must not run the same
    migration again (an ALTER TABLE would fail, or worse)."""
    database = tmp_path / "obrady.sqlite3"
    connect(database).close()  # at the latest schema: "the other process" has migrated
    conn = sqlite3.connect(database, isolation_level=None)
    try:
        # What this process read before the other one migrated: one migration behind.
        not_idempotent = [(LATEST, "again.sql", "ALTER TABLE segments ADD COLUMN twice TEXT;")]
        assert _apply(conn, not_idempotent, LATEST - 1) == LATEST
        columns = [row[1] for row in conn.execute("PRAGMA table_info(segments)")]
        assert "twice" not in columns
        assert not conn.in_transaction
    finally:
        conn.close()


async def test_an_obrady_older_than_its_database_refuses_to_start_and_touches_nothing(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    database = data / "obrady.sqlite3"
    populate(database)
    conn = sqlite3.connect(database)
    conn.execute(f"PRAGMA user_version = {LATEST + 1}")  # made by a newer obrady
    conn.close()
    before = database.read_bytes()
    for command in (
        ["serve", "--port", str(free_port())],
        ["verify", "--all"],
    ):
        rc, out, err = await obrady(*command, "--data-dir", str(data), timeout=60)
        assert rc == 1, (command, out, err)
        assert (
            f"database schema version {LATEST + 1} is newer than this obrady ({LATEST}); "
            "upgrade obrady or restore a matching backup"
        ) in err, (command, err)
    assert database.read_bytes() == before
    assert not list(data.glob("*.before-*"))


def write_dump(version: str) -> Path:
    """released/VERSION.sql: populate() on this checkout's schema, dumped as SQL."""
    import tempfile

    with tempfile.TemporaryDirectory() as work:
        database = Path(work) / "obrady.sqlite3"
        populate(database)
        conn = sqlite3.connect(database)
        try:
            schema = conn.execute("PRAGMA user_version").fetchone()[0]
            lines = [f"-- obrady {version}, schema {schema}", *conn.iterdump()]
        finally:
            conn.close()
    target = RELEASED / f"{version}.sql"
    RELEASED.mkdir(exist_ok=True)
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


if __name__ == "__main__":
    print(write_dump(sys.argv[1]))
