"""Each session's record beside its media (media/<chamber>/<session>/record.json): the rows of
the session, its agenda, markers, votes (with the councillors named), transcript and its
history, redactions, program switches, sound holes and audit. With the media, their segment
lists and manifests, it is enough to rebuild the index (`obrady index rebuild`).

Runs, segments and the media's holes are not in it: they come from the media themselves."""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from archive.db import ArchiveError, Store

RECORD = "record.json"
FORMAT = 1
# The tables of a session's record, in the order a rebuild inserts them (a row's references
# come before it). Each is read WHERE session_id = ?, but for those given here.
TABLES: tuple[str, ...] = (
    "councillors",
    "sessions",
    "agenda_items",
    "markers",
    "votes",
    "vote_choices",
    "redactions",
    "program_switches",
    "transcript_lines",
    "transcript_edits",
    "transcript_heard",
    "transcript_progress",
    "sound_holes",
    "audit",
)
_QUERIES = {
    "sessions": "SELECT * FROM sessions WHERE id = ?",
    "councillors": "SELECT * FROM councillors WHERE id IN (SELECT c.councillor_id FROM"
    " vote_choices c JOIN votes v ON v.id = c.vote_id WHERE v.session_id = ?) ORDER BY id",
    "vote_choices": "SELECT c.* FROM vote_choices c JOIN votes v ON v.id = c.vote_id"
    " WHERE v.session_id = ? ORDER BY c.vote_id, c.councillor_id",
    "transcript_progress": "SELECT * FROM transcript_progress WHERE session_id = ?",
}


class RecordError(ArchiveError):
    """A session's record cannot be read or does not fit this archive."""


def write_record(folder: Path, record: dict[str, Any]) -> Path:
    """Write a session's record into its media folder, whole or not at all."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / RECORD
    partial = folder / f".{RECORD}.part"
    with partial.open("w", encoding="utf-8") as fh:
        json.dump(record, fh, ensure_ascii=False, indent=1, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(partial, path)
    return path


def read_record(folder: Path) -> dict[str, Any] | None:
    """A session's record from its media folder; None when there is none."""
    try:
        data = json.loads((folder / RECORD).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise RecordError(f"{folder / RECORD} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise RecordError(f"{folder / RECORD} is not an obrady session record (format {FORMAT})")
    return data


class RecordStore(Store):
    """The records of sessions: which changed, what each holds, and putting one back."""

    def changed_records(self) -> list[tuple[int, int]]:
        """(session id, version) of every session whose record is to be written."""
        rows = self._conn.execute("SELECT session_id, version FROM record_dirty ORDER BY 1")
        return [(int(r[0]), int(r[1])) for r in rows]

    def record_written(self, session_id: int, version: int) -> None:
        """The record of that version is on disk (a later change keeps it marked)."""
        with self._tx() as c:
            c.execute(
                "DELETE FROM record_dirty WHERE session_id = ? AND version = ?",
                (session_id, version),
            )

    def session_record(self, session_id: int) -> dict[str, Any]:
        """The session's record, as written beside its media (read in one transaction)."""
        # One read transaction (the readers of AsyncArchive.read are in one already).
        reading = nullcontext(self._conn) if self._conn.in_transaction else self.snapshot()
        with reading as c:
            schema = c.execute("PRAGMA user_version").fetchone()[0]
            tables = {}
            for table in TABLES:
                query = _QUERIES.get(
                    table, f"SELECT * FROM {table} WHERE session_id = ? ORDER BY id"
                )
                cursor = c.execute(query, (session_id,))
                names = [d[0] for d in cursor.description]
                tables[table] = [dict(zip(names, row, strict=True)) for row in cursor]
        if not tables["sessions"]:
            raise RecordError(f"session {session_id} does not exist")
        return {"format": FORMAT, "schema": schema, "session_id": session_id, "tables": tables}

    def insert_record(self, record: dict[str, Any]) -> int:
        """Put a session's record back into an archive that does not have it (a rebuild),
        keeping every id; the session's id. Columns this schema lacks are left out, and
        columns the record lacks take their defaults."""
        tables = record.get("tables")
        if not isinstance(tables, dict) or not tables.get("sessions"):
            raise RecordError("the record has no session")
        session_id = int(tables["sessions"][0]["id"])
        try:
            with self._tx() as c:
                # References are checked when the record is all in (an agenda item moved under a
                # later one comes before its parent).
                c.execute("PRAGMA defer_foreign_keys = ON")
                if c.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone():
                    raise RecordError(f"session {session_id} is in the archive already")
                for table in TABLES:
                    columns = {r[1] for r in c.execute(f"PRAGMA table_info({table})")}
                    for row in tables.get(table) or []:
                        kept = {k: v for k, v in row.items() if k in columns}
                        names = ", ".join(kept)
                        marks = ", ".join("?" for _ in kept)
                        # A councillor named by several sessions' records is put back once.
                        verb = "INSERT OR IGNORE" if table == "councillors" else "INSERT"
                        c.execute(
                            f"{verb} INTO {table} ({names}) VALUES ({marks})", tuple(kept.values())
                        )
        except sqlite3.Error as exc:
            # A reference to nothing, a duplicate id: nothing of the record stays.
            raise RecordError(f"the record does not fit this archive ({exc})") from exc
        return session_id
