"""The archive index: sessions, agenda, markers, runs and segments in SQLite, as plain dataclasses.

`ArchiveIndex` is synchronous and owns one connection; `AsyncArchive` runs it on one worker
thread so the event loop never blocks on SQLite.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Concatenate, ParamSpec, Self, TypeVar

from archive import search as search_module
from archive.accounts import AccountStore
from archive.agenda import AgendaItem, flatten
from archive.continuity import ContinuityStore
from archive.council import CouncilStore
from archive.db import (
    Busy,
    Conflict,
    NotFound,
    Store,
    connect,
    connect_reader,
    from_text,
    to_text,
    utc_now,
)
from archive.editing import EditingStore
from archive.records import AgendaRow, Marker, MarkerKind, Run, Segment, Session
from archive.search import SearchHit, SearchStore, check_query, lower_priority
from archive.session_record import RecordStore
from archive.timeline import CONTIGUOUS_SECONDS, Piece, Timeline, build_timeline
from archive.transcripts import TranscriptStore


def _session(row: sqlite3.Row) -> Session:
    return Session(
        id=row["id"],
        chamber=row["chamber"],
        title=row["title"],
        kind=row["kind"],
        scheduled_start=datetime.fromisoformat(row["scheduled_start"]),
        scheduled_end=datetime.fromisoformat(row["scheduled_end"]),
        state=row["state"],
        started_at=from_text(row["started_at"]),
        ended_at=from_text(row["ended_at"]),
        stopped_by=row["stopped_by"],
        agenda_text=row["agenda_text"],
        created_at=datetime.fromisoformat(row["created_at"]),
        published=bool(row["published"]),
    )


def _segment(row: sqlite3.Row) -> Segment:
    return Segment(
        id=row["id"],
        run_id=row["run_id"],
        run_ordinal=row["ordinal"],
        run_dir=row["dir"],
        camera=row["camera"],
        session_id=row["session_id"],
        chamber=row["chamber"],
        seq=row["seq"],
        file=row["file"],
        media_start=row["media_start"],
        duration=row["duration"],
        observed_at=datetime.fromisoformat(row["observed_at"]),
        size_bytes=row["size_bytes"],
        sha256=row["sha256"],
        program_seq=row["pseq"],
        program_disc=row["pdisc"],
    )


_SEGMENT_SELECT = (
    "SELECT s.*, r.ordinal, r.dir, r.camera, p.seq AS pseq, p.disc AS pdisc FROM segments s"
    " JOIN runs r ON r.id = s.run_id LEFT JOIN program p ON p.segment_id = s.id "
)


class ArchiveIndex(
    AccountStore,
    ContinuityStore,
    CouncilStore,
    EditingStore,
    RecordStore,
    SearchStore,
    TranscriptStore,
    Store,
):
    """Synchronous access to the archive database; every method is one transaction."""

    def __init__(self, path: str | Path) -> None:
        self._conn = connect(path)

    @classmethod
    def reading(cls, path: str | Path) -> Self:
        """An index on a read-only connection to the archive at path (opened and migrated by
        another ArchiveIndex): its writes fail with sqlite3.OperationalError."""
        index = cls.__new__(cls)
        index._conn = connect_reader(path)
        return index

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    # sessions and agenda

    def create_session(
        self,
        *,
        chamber: str,
        title: str,
        kind: str,
        scheduled_start: datetime,
        scheduled_end: datetime,
        agenda_text: str,
        agenda: Sequence[AgendaItem],
        created_by: str | None,
    ) -> Session:
        """Store a new scheduled session and its agenda tree."""
        if scheduled_end <= scheduled_start:
            raise ValueError("scheduled_end must be after scheduled_start")
        with self._tx() as c:
            cur = c.execute(
                "INSERT INTO sessions (chamber, title, kind, scheduled_start, scheduled_end, state,"
                " agenda_text, created_by, created_at) VALUES (?,?,?,?,?,'scheduled',?,?,?)",
                (
                    chamber,
                    title,
                    kind,
                    to_text(scheduled_start),
                    to_text(scheduled_end),
                    agenda_text,
                    created_by,
                    to_text(utc_now()),
                ),
            )
            session_id = int(cur.lastrowid or 0)
            parents: list[int] = []
            for position, (item, depth) in enumerate(flatten(agenda)):
                del parents[depth:]
                parent_id = parents[-1] if parents else None
                cur = c.execute(
                    "INSERT INTO agenda_items"
                    " (session_id, parent_id, position, depth, number, title)"
                    " VALUES (?,?,?,?,?,?)",
                    (session_id, parent_id, position, depth, item.number, item.title),
                )
                parents.append(int(cur.lastrowid or 0))
        return self.get_session(session_id)

    def update_session(
        self,
        session_id: int,
        *,
        title: str | None = None,
        kind: str | None = None,
        chamber: str | None = None,
        scheduled_start: datetime | None = None,
        scheduled_end: datetime | None = None,
    ) -> Session:
        """Change a session's details; what may change depends on its state (Conflict)."""
        with self._tx() as c:
            row = c.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
            if row is None:
                raise NotFound(f"session {session_id} does not exist")
            session = _session(row)
            if session.state != "scheduled":
                fixed = {
                    "kind": kind,
                    "chamber": chamber,
                    "scheduled_start": scheduled_start,
                }
                changed = [
                    k for k, v in fixed.items() if v is not None and v != getattr(session, k)
                ]
                if session.state == "ended" and scheduled_end not in (None, session.scheduled_end):
                    changed.append("scheduled_end")
                if changed:
                    raise Conflict(
                        f"session {session_id} is {session.state}: its {', '.join(changed)} can "
                        "no longer change"
                        + (
                            " (a live session may still be extended with scheduled_end)"
                            if session.state == "live"
                            else ""
                        )
                    )
            start = scheduled_start or session.scheduled_start
            end = scheduled_end or session.scheduled_end
            if end <= start:
                raise Conflict(
                    f"scheduled_end ({end.isoformat()}) must be after scheduled_start "
                    f"({start.isoformat()})"
                )
            c.execute(
                "UPDATE sessions SET title = ?, kind = ?, chamber = ?, scheduled_start = ?,"
                " scheduled_end = ? WHERE id = ?",
                (
                    title or session.title,
                    kind or session.kind,
                    chamber or session.chamber,
                    to_text(start),
                    to_text(end),
                    session_id,
                ),
            )
        return self.get_session(session_id)

    def get_session(self, session_id: int) -> Session:
        """The session; NotFound if there is none."""
        row = self._conn.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
        if row is None:
            raise NotFound(f"session {session_id} does not exist")
        return _session(row)

    def list_sessions(self, limit: int = 200) -> list[Session]:
        """Sessions, newest scheduled start first."""
        rows = self._conn.execute(
            "SELECT * FROM sessions ORDER BY scheduled_start DESC, id DESC LIMIT ?", (limit,)
        ).fetchall()
        return [_session(r) for r in rows]

    def integrity_check(self) -> str:
        """SQLite's own check of the whole database: "ok", or what is damaged."""
        rows = self._conn.execute("PRAGMA integrity_check").fetchall()
        return "; ".join(str(r[0]) for r in rows[:10])

    def session_ids(self) -> list[int]:
        """Every session's id, oldest first."""
        return [int(r[0]) for r in self._conn.execute("SELECT id FROM sessions ORDER BY id")]

    def active_sessions(self) -> list[Session]:
        """Sessions that are scheduled or live: what the scheduler must know about."""
        rows = self._conn.execute(
            "SELECT * FROM sessions WHERE state IN ('scheduled', 'live') ORDER BY scheduled_start"
        ).fetchall()
        return [_session(r) for r in rows]

    def live_session(self, chamber: str) -> Session | None:
        """The session live in this chamber, if any."""
        row = self._conn.execute(
            "SELECT * FROM sessions WHERE chamber = ? AND state = 'live'", (chamber,)
        ).fetchone()
        return None if row is None else _session(row)

    def begin_live(self, session_id: int, at: datetime) -> Session:
        """Mark a scheduled session live; Conflict if it ended or its chamber is busy."""
        with self._tx() as c:
            row = c.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
            if row is None:
                raise NotFound(f"session {session_id} does not exist")
            session = _session(row)
            if session.state == "ended":
                raise Conflict(
                    f"session {session_id} has ended ({session.stopped_by or 'stopped'}); "
                    "a stopped session is never restarted: schedule a new one"
                )
            if session.state == "live":
                return session
            other = c.execute(
                "SELECT id, title FROM sessions WHERE chamber = ? AND state = 'live' AND id != ?",
                (session.chamber, session_id),
            ).fetchone()
            if other is not None:
                raise Conflict(
                    f"chamber {session.chamber!r} is recording session {other['id']} "
                    f"({other['title']!r}); stop it first",
                    live_session_id=other["id"],
                )
            c.execute(
                "UPDATE sessions SET state = 'live', started_at = ? WHERE id = ?",
                (to_text(at), session_id),
            )
        return self.get_session(session_id)

    def end(self, session_id: int, at: datetime, stopped_by: str) -> Session:
        """Mark a session ended (final); Conflict if it already ended."""
        with self._tx() as c:
            row = c.execute("SELECT state FROM sessions WHERE id = ?", (session_id,)).fetchone()
            if row is None:
                raise NotFound(f"session {session_id} does not exist")
            if row["state"] == "ended":
                raise Conflict(f"session {session_id} has already ended")
            c.execute(
                "UPDATE sessions SET state = 'ended', ended_at = ?, stopped_by = ?,"
                " started_at = COALESCE(started_at, ?) WHERE id = ?",
                (to_text(at), stopped_by, to_text(at), session_id),
            )
        return self.get_session(session_id)

    def agenda(self, session_id: int) -> list[AgendaRow]:
        """The session's agenda items in order."""
        rows = self._conn.execute(
            "SELECT * FROM agenda_items WHERE session_id = ? ORDER BY position", (session_id,)
        ).fetchall()
        return [
            AgendaRow(
                r["id"],
                r["session_id"],
                r["parent_id"],
                r["position"],
                r["depth"],
                r["number"],
                r["title"],
            )
            for r in rows
        ]

    # markers

    def add_marker(
        self,
        session_id: int,
        kind: MarkerKind,
        at: datetime,
        item_id: int | None = None,
        created_by: str | None = None,
    ) -> Marker:
        """Record a moment in a live session."""
        with self._tx() as c:
            cur = c.execute(
                "INSERT INTO markers (session_id, kind, at, item_id, created_by)"
                " VALUES (?,?,?,?,?)",
                (session_id, kind, to_text(at), item_id, created_by),
            )
        return Marker(int(cur.lastrowid or 0), session_id, kind, at, item_id, created_by)

    def markers(self, session_id: int) -> list[Marker]:
        """The session's markers in time order."""
        rows = self._conn.execute(
            "SELECT * FROM markers WHERE session_id = ? ORDER BY at, id", (session_id,)
        ).fetchall()
        return [
            Marker(
                r["id"],
                r["session_id"],
                r["kind"],
                datetime.fromisoformat(r["at"]),
                r["item_id"],
                r["created_by"],
            )
            for r in rows
        ]

    # runs and segments

    def add_run(
        self,
        session_id: int,
        ordinal: int,
        run_dir: str,
        started_at: datetime,
        camera: str = "main",
    ) -> int:
        """Record the start of an ffmpeg run of one camera; returns the run id."""
        with self._tx() as c:
            cur = c.execute(
                "INSERT INTO runs (session_id, camera, ordinal, dir, started_at)"
                " VALUES (?,?,?,?,?)",
                (session_id, camera, ordinal, run_dir, to_text(started_at)),
            )
        return int(cur.lastrowid or 0)

    def end_run(
        self, run_id: int, ended_at: datetime, exit_code: int | None, reason: str | None = None
    ) -> None:
        """Record how and why an ffmpeg run ended."""
        with self._tx() as c:
            c.execute(
                "UPDATE runs SET ended_at = ?, exit_code = ?, end_reason = ? WHERE id = ?",
                (to_text(ended_at), exit_code, reason, run_id),
            )

    def close_open_runs(self, session_id: int, reason: str) -> int:
        """End runs left open by an obrady that died; they end at their last segment."""
        with self._tx() as c:
            cur = c.execute(
                "UPDATE runs SET end_reason = ?, ended_at = COALESCE("
                " (SELECT MAX(observed_at) FROM segments WHERE run_id = runs.id), started_at)"
                " WHERE session_id = ? AND ended_at IS NULL",
                (reason, session_id),
            )
        return cur.rowcount

    def run_id_by_ordinal(self, session_id: int, ordinal: int, camera: str = "main") -> int | None:
        """The id of a camera's run in a session, if it is indexed."""
        row = self._conn.execute(
            "SELECT id FROM runs WHERE session_id = ? AND camera = ? AND ordinal = ?",
            (session_id, camera, ordinal),
        ).fetchone()
        return None if row is None else int(row[0])

    def is_program_file(self, session_id: int, camera: str, run_dir: str, file: str) -> bool:
        """Whether a media file is part of the session's program (what the public may see)."""
        row = self._conn.execute(
            "SELECT 1 FROM segments s JOIN runs r ON r.id = s.run_id"
            " JOIN program p ON p.segment_id = s.id"
            " WHERE s.session_id = ? AND r.camera = ? AND r.dir = ? AND s.file = ?",
            (session_id, camera, run_dir, file),
        ).fetchone()
        return row is not None

    def segment_seqs(self, run_id: int) -> set[int]:
        """Sequence numbers of a run's indexed segments."""
        rows = self._conn.execute("SELECT seq FROM segments WHERE run_id = ?", (run_id,))
        return {int(r[0]) for r in rows}

    def last_run_ordinal(self, session_id: int) -> int:
        """The highest run ordinal used by the session (0 if none)."""
        row = self._conn.execute(
            "SELECT COALESCE(MAX(ordinal), 0) FROM runs WHERE session_id = ?", (session_id,)
        ).fetchone()
        return int(row[0])

    def add_segment(
        self,
        run_id: int,
        seq: int,
        file: str,
        media_start: float,
        duration: float,
        observed_at: datetime,
        size_bytes: int,
        sha256: str | None = None,
        program: bool = True,
        zero_at: float | None = None,
    ) -> Segment:
        """Record a finished segment, number it in its chamber, and refine the run's anchor.
        zero_at: for a re-encoded run, the wall time (epoch s) of media time 0 as its frames
        left the decoder, which does not carry the encoder's delay as `observed_at` does."""
        with self._tx() as c:
            run = c.execute(
                "SELECT r.*, s.chamber FROM runs r JOIN sessions s ON s.id = r.session_id"
                " WHERE r.id = ?",
                (run_id,),
            ).fetchone()
            if run is None:
                raise NotFound(f"run {run_id} does not exist")
            # chamber_seq numbers every segment of the chamber's cameras in arrival order.
            chamber_seq = c.execute(
                "SELECT COALESCE(MAX(chamber_seq) + 1, 0) FROM segments WHERE chamber = ?",
                (run["chamber"],),
            ).fetchone()[0]
            chamber_disc = 0
            origin = run["media_origin"]
            if origin is None:
                origin = media_start
                c.execute("UPDATE runs SET media_origin = ? WHERE id = ?", (origin, run_id))
            # A segment is seen finished no earlier than its last moment was captured, so the
            # earliest (seen time - media end) is the best estimate of when media time 0 was.
            candidate = observed_at.timestamp() - (media_start + duration - origin)
            if zero_at is not None:
                # Also no earlier than the truth (a frame is decoded after it was made), and
                # the re-encode's segment is seen late by the encoder's delay: the least wins.
                candidate = min(candidate, zero_at + origin)
            current = from_text(run["anchor_at"])
            if current is None or candidate < current.timestamp():
                c.execute(
                    "UPDATE runs SET anchor_at = ? WHERE id = ?",
                    (to_text(datetime.fromtimestamp(candidate, UTC)), run_id),
                )
            cur = c.execute(
                "INSERT INTO segments (run_id, session_id, chamber, seq, file, media_start,"
                " duration, observed_at, size_bytes, chamber_seq, chamber_disc, sha256)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    run_id,
                    run["session_id"],
                    run["chamber"],
                    seq,
                    file,
                    media_start,
                    duration,
                    to_text(observed_at),
                    size_bytes,
                    chamber_seq,
                    chamber_disc,
                    sha256,
                ),
            )
            segment_id = int(cur.lastrowid or 0)
            if program:
                self._append_program(c, run["chamber"], run["session_id"], run_id, segment_id)
        row = self._conn.execute(_SEGMENT_SELECT + "WHERE s.id = ?", (segment_id,)).fetchone()
        return _segment(row)

    @staticmethod
    def _append_program(
        c: sqlite3.Connection, chamber: str, session_id: int, run_id: int, segment_id: int
    ) -> None:
        prev = c.execute(
            "SELECT p.seq, p.disc, s.run_id FROM program p JOIN segments s ON s.id = p.segment_id"
            " WHERE p.chamber = ? ORDER BY p.seq DESC LIMIT 1",
            (chamber,),
        ).fetchone()
        if prev is None:
            seq, disc = 0, 0
        else:
            seq = prev["seq"] + 1
            disc = prev["disc"] + (0 if prev["run_id"] == run_id else 1)
        c.execute(
            "INSERT INTO program (chamber, seq, disc, segment_id, session_id) VALUES (?,?,?,?,?)",
            (chamber, seq, disc, segment_id, session_id),
        )

    def segments(self, session_id: int) -> list[Segment]:
        """The session's program: what went live and makes the recording, in playback order."""
        rows = self._conn.execute(
            _SEGMENT_SELECT + "WHERE p.session_id = ? ORDER BY p.seq", (session_id,)
        ).fetchall()
        return [_segment(r) for r in rows]

    def program_seconds(self, session_id: int) -> float:
        """How long the session's program (its public recording) is so far."""
        row = self._conn.execute(
            "SELECT COALESCE(SUM(s.duration), 0) FROM program p"
            " JOIN segments s ON s.id = p.segment_id WHERE p.session_id = ?",
            (session_id,),
        ).fetchone()
        return float(row[0])

    def all_segments(self, session_id: int) -> list[Segment]:
        """Every segment of every camera of the session."""
        rows = self._conn.execute(
            _SEGMENT_SELECT + "WHERE s.session_id = ? ORDER BY r.camera, r.ordinal, s.seq",
            (session_id,),
        ).fetchall()
        return [_segment(r) for r in rows]

    def camera_segments(self, session_id: int, camera: str) -> list[Segment]:
        """One camera's own recording of the session, in order."""
        rows = self._conn.execute(
            _SEGMENT_SELECT + "WHERE s.session_id = ? AND r.camera = ? ORDER BY r.ordinal, s.seq",
            (session_id, camera),
        ).fetchall()
        return [_segment(r) for r in rows]

    def recent_segments(self, chamber: str, count: int) -> list[Segment]:
        """The chamber's newest program segments, oldest first."""
        rows = self._conn.execute(
            _SEGMENT_SELECT + "WHERE p.chamber = ? ORDER BY p.seq DESC LIMIT ?",
            (chamber, count),
        ).fetchall()
        return [_segment(r) for r in reversed(rows)]

    def add_switch(
        self, chamber: str, camera: str, at: datetime, session_id: int | None, by: str | None
    ) -> None:
        """Record that the chamber's program camera changed."""
        with self._tx() as c:
            c.execute(
                "INSERT INTO program_switches (chamber, camera, at, session_id, created_by)"
                " VALUES (?,?,?,?,?)",
                (chamber, camera, to_text(at), session_id, by),
            )

    def program_camera(self, chamber: str, session_id: int | None) -> str | None:
        """The chamber's program camera as last switched during that session; with None, as
        switched between sessions since the last one ended (the choice for the next one).
        None when there was no such switch: the configured program camera applies."""
        if session_id is not None:
            row = self._conn.execute(
                "SELECT camera FROM program_switches WHERE chamber = ? AND session_id = ?"
                " ORDER BY at DESC, id DESC LIMIT 1",
                (chamber, session_id),
            ).fetchone()
        else:
            row = self._conn.execute(
                "SELECT camera FROM program_switches WHERE chamber = ? AND session_id IS NULL"
                " AND at > COALESCE((SELECT MAX(ended_at) FROM sessions WHERE chamber = ?), '')"
                " ORDER BY at DESC, id DESC LIMIT 1",
                (chamber, chamber),
            ).fetchone()
        return None if row is None else str(row[0])

    def runs(self, session_id: int) -> list[Run]:
        """The session's runs in order, with their recorded durations."""
        rows = self._conn.execute(
            "SELECT r.*, COALESCE(SUM(s.duration), 0) AS duration, COUNT(s.id) AS n"
            " FROM runs r LEFT JOIN segments s ON s.run_id = r.id"
            " WHERE r.session_id = ? GROUP BY r.id ORDER BY r.camera, r.ordinal",
            (session_id,),
        ).fetchall()
        return [
            Run(
                r["id"],
                r["session_id"],
                r["camera"],
                r["ordinal"],
                r["dir"],
                datetime.fromisoformat(r["started_at"]),
                from_text(r["anchor_at"]),
                from_text(r["ended_at"]),
                r["exit_code"],
                float(r["duration"]),
                int(r["n"]),
                r["end_reason"],
                r["media_origin"],
            )
            for r in rows
        ]

    def timeline(self, session_id: int) -> Timeline:
        """The session's playback timeline."""
        session = self.get_session(session_id)
        runs = {run.id: run for run in self.runs(session_id)}
        pieces: list[Piece] = []
        media_end = 0.0
        for segment in self.segments(session_id):
            run = runs[segment.run_id]
            if run.anchor_at is None or run.media_origin is None:
                continue
            last = pieces[-1] if pieces else None
            if (
                last is not None
                and last.run_id == run.id
                and abs(segment.media_start - media_end) <= CONTIGUOUS_SECONDS
            ):
                pieces[-1] = replace(last, duration=last.duration + segment.duration)
            else:
                wall = run.anchor_at + timedelta(seconds=segment.media_start - run.media_origin)
                pieces.append(Piece(run.id, run.camera, wall, segment.duration, run.end_reason))
            media_end = segment.media_start + segment.duration
        return build_timeline(pieces, ongoing=session.state == "live")


log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")


def _find_if_current(
    index: ArchiveIndex, query: str, limit: int, offset: int, include_withdrawn: bool
) -> list[SearchHit] | None:
    """The hits, in one read; None if some session waits to be reindexed first."""
    if index.search_pending():
        return None
    return index.find(query, limit, offset, include_withdrawn)


# Reader threads (each with its own read-only connection): public reads and searches.
READERS = 2
# Searches that run at once; the others wait for a slot, at most SEARCH_WAIT_SECONDS and no
# more than SEARCH_QUEUE of them, and are refused (Busy: 503 with Retry-After) beyond that.
SEARCHES = 2
SEARCH_QUEUE = 32
SEARCH_WAIT_SECONDS = 5.0
# How long a search waits for dirty sessions to be rebuilt before it answers without them.
REINDEX_WAIT_SECONDS = 2.0


class AsyncArchive:
    """Runs ArchiveIndex calls off the event loop: every write (`call`) on a single writer
    thread, one at a time; reads that may run beside them (`read`, `search`) on a bounded pool
    of reader threads, each with its own read-only connection (WAL: readers never wait for the
    writer, nor it for them), at a lower CPU priority than capture and the live edge. An
    in-memory database has no readers: `read` runs on the writer thread. Leaving
    `async with archive:` finishes pending calls and closes every connection."""

    def __init__(
        self,
        index: ArchiveIndex,
        *,
        readers: int | None = None,
        searches: int | None = None,
        search_queue: int | None = None,
        search_wait: float | None = None,
    ) -> None:
        self.index = index
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="archive")
        self._path = index.database_file()
        count = READERS if readers is None else readers
        self._readers = (
            ThreadPoolExecutor(max_workers=count, thread_name_prefix="archive-read")
            if self._path is not None and count > 0
            else None
        )
        self._local = threading.local()
        self._reader_indexes: list[ArchiveIndex] = []
        self._reader_lock = threading.Lock()
        self._search_capacity = SEARCHES if searches is None else searches
        self._search_running = 0
        self._search_slots = asyncio.Semaphore(self._search_capacity)
        self._search_queue = SEARCH_QUEUE if search_queue is None else search_queue
        self._search_wait = SEARCH_WAIT_SECONDS if search_wait is None else search_wait
        self._search_waiting = 0
        self._reindexing: asyncio.Task[None] | None = None

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run fn (a bound ArchiveIndex method) on the archive thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))

    async def read(
        self, fn: Callable[Concatenate[ArchiveIndex, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """fn(index, *args) on a reader thread, index being that thread's read-only
        ArchiveIndex, inside one read transaction (its reads agree with each other): e.g.
        `archive.read(ArchiveIndex.get_session, sid)`. It must not write."""
        if self._readers is None:
            return await self.call(fn, self.index, *args, **kwargs)
        loop = asyncio.get_running_loop()
        work = functools.partial(self._on_reader, fn, *args, **kwargs)
        return await loop.run_in_executor(self._readers, work)

    def _on_reader(
        self, fn: Callable[Concatenate[ArchiveIndex, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        index = self._reader()
        with index.snapshot():
            return fn(index, *args, **kwargs)

    def _reader(self) -> ArchiveIndex:
        """This reader thread's index, opened on its first read."""
        index: ArchiveIndex | None = getattr(self._local, "index", None)
        if index is None:
            assert self._path is not None
            lower_priority(5)
            index = type(self.index).reading(self._path)
            with self._reader_lock:
                self._reader_indexes.append(index)
            self._local.index = index
        return index

    @property
    def search_load(self) -> tuple[int, int]:
        """Searches (running, waiting for a slot)."""
        return self._search_running, self._search_waiting

    async def search(
        self, query: str, limit: int = 20, offset: int = 0, include_withdrawn: bool = False
    ) -> list[SearchHit]:
        """`ArchiveIndex.search` off the writer thread: it waits (holding no thread) until the
        dictionaries are loaded, rebuilds dirty sessions batch by batch on the writer thread and
        queries on a reader. SearchError for a query that cannot be searched; Busy when all
        search slots stay taken for the wait, or too many searches wait already."""
        check_query(query)
        await search_module.DICTIONARIES.ready()
        async with self._search_slot():
            hits = await self.read(_find_if_current, query, limit, offset, include_withdrawn)
            if hits is None:
                await self._reindexed()
                hits = await self.read(ArchiveIndex.find, query, limit, offset, include_withdrawn)
            return hits

    async def _reindexed(self) -> None:
        """Rebuild the dirty sessions on the writer thread, one batch per call (the recorder's
        writes wait at most one batch), one rebuild at a time for every search; a search waits
        for it at most REINDEX_WAIT_SECONDS (the writer may be held up, e.g. by another
        process's transaction), then answers from the index as it is."""
        if self._reindexing is None or self._reindexing.done():
            self._reindexing = asyncio.get_running_loop().create_task(
                self._reindex(), name="archive-reindex"
            )
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(REINDEX_WAIT_SECONDS):
                await asyncio.shield(self._reindexing)

    async def _reindex(self) -> None:
        try:
            while await self.call(self.index.reindex_search_batch):
                pass
        except Exception:  # noqa: BLE001 (nobody else sees this task's failure)
            log.exception("could not rebuild the search index (the next search tries again)")

    @contextlib.asynccontextmanager
    async def _search_slot(self) -> AsyncIterator[None]:
        retry = max(1, round(self._search_wait))
        if self._search_slots.locked():
            if self._search_waiting >= self._search_queue:
                raise Busy(
                    f"search is busy: {self._search_waiting} searches are waiting already; "
                    f"try again in {retry} s",
                    retry,
                )
            self._search_waiting += 1
            try:
                async with asyncio.timeout(self._search_wait):
                    await self._search_slots.acquire()
            except TimeoutError:
                raise Busy(
                    f"search is busy: no search slot came free within {self._search_wait:g} s; "
                    f"try again in {retry} s",
                    retry,
                ) from None
            finally:
                self._search_waiting -= 1
        else:
            await self._search_slots.acquire()
        self._search_running += 1
        try:
            yield
        finally:
            self._search_running -= 1
            self._search_slots.release()

    async def close(self) -> None:
        """Finish pending calls and reads, and close every connection."""
        if self._reindexing is not None:
            await asyncio.wait([self._reindexing])
        if self._readers is not None:
            await asyncio.to_thread(self._readers.shutdown, wait=True)
            with self._reader_lock:
                for reader in self._reader_indexes:
                    reader.close()
                self._reader_indexes.clear()
        await self.call(self.index.close)
        self._pool.shutdown(wait=True)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
