"""Transcripts of session recordings (SQL): timed lines, staff corrections with who made them
and when, recognition progress, and the published forms (WebVTT captions, plain text).

Times are seconds of the session's playback timeline. A re-run of recognition replaces
automatic lines only: a corrected line is never overwritten, and a new automatic line that
overlaps a corrected one is dropped. Every correction is kept in an append-only history.
"""

from __future__ import annotations

import math
import sqlite3
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal, Protocol

from archive.db import ArchiveError, Conflict, NotFound, Store, from_text, to_text, utc_now

if TYPE_CHECKING:
    from archive.records import Session
    from archive.timeline import Timeline

LineSource = Literal["automatic", "corrected"]
TranscriptState = Literal["queued", "running", "done", "failed"]
TranscriptPass = Literal["full", "rest"]

MAX_LINE_CHARS = 2000
MAX_ERROR_CHARS = 2000
# Lines that only touch (one ends where the next starts, give or take float noise) do not overlap.
OVERLAP_EPSILON = 1e-3
# A corrected time may lie this far past the recording's indexed end (segment rounding).
END_SLACK_SECONDS = 0.5
# Caption cues: at most this many characters a row and rows a cue (common caption practice).
CUE_ROW_CHARS = 42
CUE_ROWS = 2
# A line left shorter than this by the end of the recording is not shown.
MIN_CUE_SECONDS = 0.05


class InvalidTranscript(ArchiveError):
    """A line or progress report cannot be stored as given (the message says what to fix)."""


class TimedText(Protocol):
    """Anything with a start, an end (seconds) and text: a recognised line."""

    @property
    def start(self) -> float: ...

    @property
    def end(self) -> float: ...

    @property
    def text(self) -> str: ...


@dataclass(frozen=True)
class TranscriptLine:
    """One stored line of a session's transcript."""

    id: int
    session_id: int
    start: float
    end: float
    text: str
    source: LineSource
    automatic_text: str | None  # what recognition said, kept after a correction
    corrected_by: str | None
    corrected_at: datetime | None
    created_at: datetime

    @property
    def corrected(self) -> bool:
        """Whether staff corrected (or added) it."""
        return self.source == "corrected"


@dataclass(frozen=True)
class LineEdit:
    """One correction of a line: who, when, and the line before and after."""

    id: int
    line_id: int
    session_id: int
    at: datetime
    user_name: str
    before_text: str | None  # None: the line was added by hand
    after_text: str
    before_start: float | None
    before_end: float | None
    after_start: float
    after_end: float


@dataclass(frozen=True)
class TranscriptProgress:
    """How far recognition of a session's recording has got."""

    session_id: int
    state: TranscriptState
    done_seconds: float
    total_seconds: float
    estimated_finish: datetime | None
    error: str | None
    model: str | None
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    # 'full': the whole recording is heard; 'rest': only what live captions did not hear.
    pass_: TranscriptPass = "full"
    # When the transcript first covered the whole recording.
    completed_at: datetime | None = None

    @property
    def fraction(self) -> float:
        """Done, from 0 to 1."""
        if self.state == "done":
            return 1.0
        if self.total_seconds <= 0:
            return 0.0
        return min(1.0, self.done_seconds / self.total_seconds)


@dataclass(frozen=True)
class ReplaceResult:
    """What a re-run changed: automatic lines removed and stored, new ones dropped because they
    overlap a corrected line, and the corrected lines kept."""

    removed: int
    stored: int
    dropped: int
    corrected_kept: int


def _line(row: sqlite3.Row) -> TranscriptLine:
    return TranscriptLine(
        id=row["id"],
        session_id=row["session_id"],
        start=row["start_seconds"],
        end=row["end_seconds"],
        text=row["text"],
        source=row["source"],
        automatic_text=row["automatic_text"],
        corrected_by=row["corrected_by"],
        corrected_at=from_text(row["corrected_at"]),
        created_at=datetime.fromisoformat(row["created_at"]),
    )


def _edit(row: sqlite3.Row) -> LineEdit:
    return LineEdit(
        id=row["id"],
        line_id=row["line_id"],
        session_id=row["session_id"],
        at=datetime.fromisoformat(row["at"]),
        user_name=row["user_name"],
        before_text=row["before_text"],
        after_text=row["after_text"],
        before_start=row["before_start"],
        before_end=row["before_end"],
        after_start=row["after_start"],
        after_end=row["after_end"],
    )


def _progress(row: sqlite3.Row) -> TranscriptProgress:
    return TranscriptProgress(
        session_id=row["session_id"],
        state=row["state"],
        done_seconds=row["done_seconds"],
        total_seconds=row["total_seconds"],
        estimated_finish=from_text(row["estimated_finish"]),
        error=row["error"],
        model=row["model"],
        queued_at=datetime.fromisoformat(row["queued_at"]),
        started_at=from_text(row["started_at"]),
        finished_at=from_text(row["finished_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
        pass_=row["pass"],
        completed_at=from_text(row["completed_at"]),
    )


def clean_line_text(text: str) -> str:
    """A line's text as stored: control characters and runs of white space become one space."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def _check_times(start: float, end: float) -> tuple[float, float]:
    try:
        start, end = float(start), float(end)
    except (TypeError, ValueError):
        raise InvalidTranscript("a line's start and end must be numbers of seconds") from None
    if not (math.isfinite(start) and math.isfinite(end)):
        raise InvalidTranscript("a line's start and end must be finite numbers of seconds")
    if start < 0:
        raise InvalidTranscript(f"a line cannot start before the recording ({start:.3f} s)")
    if end <= start:
        raise InvalidTranscript(
            f"a line must end after it starts (start {start:.3f} s, end {end:.3f} s)"
        )
    return start, end


def _check_text(text: str, *, allow_empty: bool) -> str:
    if not isinstance(text, str):
        raise InvalidTranscript("a line's text must be a string")
    cleaned = clean_line_text(text)
    if not cleaned and not allow_empty:
        raise InvalidTranscript("the line has no text: write what was said")
    if len(cleaned) > MAX_LINE_CHARS:
        raise InvalidTranscript(f"a line may hold at most {MAX_LINE_CHARS} characters")
    return cleaned


def _overlaps(start: float, end: float, other_start: float, other_end: float) -> bool:
    return start < other_end - OVERLAP_EPSILON and end > other_start + OVERLAP_EPSILON


def _user(name: str) -> str:
    name = " ".join(str(name).split())
    if not name:
        raise InvalidTranscript("a correction needs the name of who made it")
    return name


class TranscriptStore(Store):
    """Transcript lines, corrections and recognition progress of sessions (a mixin of
    ArchiveIndex)."""

    if TYPE_CHECKING:

        def get_session(self, session_id: int) -> Session: ...
        def timeline(self, session_id: int) -> Timeline: ...

    # lines

    def transcript(self, session_id: int, *, include_empty: bool = False) -> list[TranscriptLine]:
        """The session's lines in time order (lines emptied by a correction only on request)."""
        self.get_session(session_id)
        rows = self._conn.execute(
            "SELECT * FROM transcript_lines WHERE session_id = ?"
            + ("" if include_empty else " AND text != ''")
            + " ORDER BY start_seconds, end_seconds, id",
            (session_id,),
        ).fetchall()
        return [_line(row) for row in rows]

    def last_lines(self, session_id: int, count: int) -> list[TranscriptLine]:
        """The session's newest `count` lines with text, in time order (live captions)."""
        rows = self._conn.execute(
            "SELECT * FROM transcript_lines WHERE session_id = ? AND text != ''"
            " ORDER BY start_seconds DESC, end_seconds DESC, id DESC LIMIT ?",
            (session_id, count),
        ).fetchall()
        return [_line(row) for row in reversed(rows)]

    def has_transcript(self, session_id: int) -> bool:
        """Whether the session has any transcript line with text."""
        row = self._conn.execute(
            "SELECT 1 FROM transcript_lines WHERE session_id = ? AND text != '' LIMIT 1",
            (session_id,),
        ).fetchone()
        return row is not None

    def get_line(self, session_id: int, line_id: int) -> TranscriptLine:
        """One line of the session; NotFound if the session has no such line."""
        row = self._conn.execute(
            "SELECT * FROM transcript_lines WHERE id = ? AND session_id = ?",
            (line_id, session_id),
        ).fetchone()
        if row is None:
            raise NotFound(f"session {session_id} has no transcript line {line_id}")
        return _line(row)

    def replace_automatic(
        self,
        session_id: int,
        lines: Iterable[TimedText],
        *,
        within: tuple[float, float] | None = None,
    ) -> ReplaceResult:
        """Replace the session's automatic lines (all, or those overlapping `within`) with new
        ones, in one transaction. Corrected lines stay as they are, and a new line overlapping
        one of them is dropped. Any invalid line refuses the whole batch, changing nothing."""
        self.get_session(session_id)
        checked = []
        for line in lines:
            start, end = _check_times(line.start, line.end)
            text = _check_text(line.text, allow_empty=True)
            if text:
                checked.append((start, end, text))
        if within is not None:
            low, high = _check_times(*within)
            checked = [c for c in checked if _overlaps(c[0], c[1], low, high)]
        now = to_text(utc_now())
        with self._tx() as c:
            corrected = c.execute(
                "SELECT start_seconds, end_seconds FROM transcript_lines"
                " WHERE session_id = ? AND source = 'corrected'",
                (session_id,),
            ).fetchall()
            if within is None:
                removed = c.execute(
                    "DELETE FROM transcript_lines WHERE session_id = ? AND source = 'automatic'",
                    (session_id,),
                ).rowcount
            else:
                removed = c.execute(
                    "DELETE FROM transcript_lines WHERE session_id = ? AND source = 'automatic'"
                    " AND start_seconds < ? AND end_seconds > ?",
                    (session_id, high - OVERLAP_EPSILON, low + OVERLAP_EPSILON),
                ).rowcount
            stored = dropped = 0
            for start, end, text in checked:
                if any(_overlaps(start, end, row[0], row[1]) for row in corrected):
                    dropped += 1
                    continue
                c.execute(
                    "INSERT INTO transcript_lines (session_id, start_seconds, end_seconds, text,"
                    " source, automatic_text, created_at) VALUES (?,?,?,?, 'automatic', ?, ?)",
                    (session_id, start, end, text, text, now),
                )
                stored += 1
        return ReplaceResult(removed, stored, dropped, len(corrected))

    def _recording_end(self, session_id: int) -> float | None:
        duration = self.timeline(session_id).duration
        return duration if duration > 0 else None

    def _check_within_recording(self, session_id: int, start: float, end: float) -> None:
        limit = self._recording_end(session_id)
        if limit is not None and end > limit + END_SLACK_SECONDS:
            raise InvalidTranscript(
                f"a line must end within the recording ({limit:.3f} s), not at {end:.3f} s"
            )

    def correct_line(
        self,
        session_id: int,
        line_id: int,
        text: str,
        user: str,
        *,
        start: float | None = None,
        end: float | None = None,
    ) -> TranscriptLine:
        """Set a line's text (and, optionally, its times) as corrected by `user`. Empty text
        means nothing was said there: the line stays, hidden from the published forms, so a
        re-run cannot bring the invented words back. The previous state goes to the history."""
        user = _user(user)
        cleaned = _check_text(text, allow_empty=True)
        old = self.get_line(session_id, line_id)
        new_start, new_end = _check_times(
            old.start if start is None else start, old.end if end is None else end
        )
        if (new_start, new_end) != (old.start, old.end):
            self._check_within_recording(session_id, new_start, new_end)
        now = utc_now()
        with self._tx() as c:
            current = c.execute(
                "SELECT * FROM transcript_lines WHERE id = ? AND session_id = ?",
                (line_id, session_id),
            ).fetchone()
            if current is None:
                raise NotFound(f"session {session_id} has no transcript line {line_id}")
            c.execute(
                "UPDATE transcript_lines SET text = ?, start_seconds = ?, end_seconds = ?,"
                " source = 'corrected', corrected_by = ?, corrected_at = ? WHERE id = ?",
                (cleaned, new_start, new_end, user, to_text(now), line_id),
            )
            c.execute(
                "INSERT INTO transcript_edits (line_id, session_id, at, user_name, before_text,"
                " after_text, before_start, before_end, after_start, after_end)"
                " VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    line_id,
                    session_id,
                    to_text(now),
                    user,
                    current["text"],
                    cleaned,
                    current["start_seconds"],
                    current["end_seconds"],
                    new_start,
                    new_end,
                ),
            )
        return self.get_line(session_id, line_id)

    def add_line(
        self, session_id: int, start: float, end: float, text: str, user: str
    ) -> TranscriptLine:
        """Add a line recognition missed, as corrected by `user`; automatic lines it overlaps
        are removed (the staff member's line replaces them)."""
        user = _user(user)
        cleaned = _check_text(text, allow_empty=False)
        start, end = _check_times(start, end)
        self.get_session(session_id)
        self._check_within_recording(session_id, start, end)
        now = to_text(utc_now())
        with self._tx() as c:
            c.execute(
                "DELETE FROM transcript_lines WHERE session_id = ? AND source = 'automatic'"
                " AND start_seconds < ? AND end_seconds > ?",
                (session_id, end - OVERLAP_EPSILON, start + OVERLAP_EPSILON),
            )
            line_id = c.execute(
                "INSERT INTO transcript_lines (session_id, start_seconds, end_seconds, text,"
                " source, corrected_by, corrected_at, created_at)"
                " VALUES (?,?,?,?, 'corrected', ?,?,?)",
                (session_id, start, end, cleaned, user, now, now),
            ).lastrowid
            c.execute(
                "INSERT INTO transcript_edits (line_id, session_id, at, user_name, before_text,"
                " after_text, after_start, after_end) VALUES (?,?,?,?, NULL, ?,?,?)",
                (line_id, session_id, now, user, cleaned, start, end),
            )
        assert line_id is not None
        return self.get_line(session_id, line_id)

    def line_history(self, session_id: int, line_id: int) -> list[LineEdit]:
        """The corrections of a line, oldest first."""
        self.get_line(session_id, line_id)
        rows = self._conn.execute(
            "SELECT * FROM transcript_edits WHERE line_id = ? ORDER BY id", (line_id,)
        ).fetchall()
        return [_edit(row) for row in rows]

    # progress

    def transcription_progress(self, session_id: int) -> TranscriptProgress | None:
        """The session's recognition progress; None if it was never queued."""
        row = self._conn.execute(
            "SELECT * FROM transcript_progress WHERE session_id = ?", (session_id,)
        ).fetchone()
        return None if row is None else _progress(row)

    def transcription_progresses(self) -> list[TranscriptProgress]:
        """Every session's recognition progress, the most recently queued first."""
        rows = self._conn.execute(
            "SELECT * FROM transcript_progress ORDER BY queued_at DESC, session_id DESC"
        ).fetchall()
        return [_progress(row) for row in rows]

    def transcription_queue(self) -> list[int]:
        """Sessions waiting for recognition, first queued first."""
        rows = self._conn.execute(
            "SELECT session_id FROM transcript_progress WHERE state = 'queued'"
            " ORDER BY queued_at, session_id"
        ).fetchall()
        return [int(row[0]) for row in rows]

    def mark_heard(self, session_id: int, start: float, end: float) -> None:
        """Keep that live captions recognised [start, end) of the recording."""
        low, high = _check_times(start, end)
        with self._tx() as c:
            c.execute(
                "INSERT INTO transcript_heard (session_id, start_seconds, end_seconds, at)"
                " VALUES (?, ?, ?, ?)",
                (session_id, low, high, to_text(utc_now())),
            )

    def heard_ranges(self, session_id: int) -> list[tuple[float, float]]:
        """The stretches live captions recognised, merged, in order."""
        rows = self._conn.execute(
            "SELECT start_seconds, end_seconds FROM transcript_heard WHERE session_id = ?"
            " ORDER BY start_seconds, end_seconds",
            (session_id,),
        ).fetchall()
        merged: list[tuple[float, float]] = []
        for low, high in rows:
            if merged and low <= merged[-1][1] + OVERLAP_EPSILON:
                merged[-1] = (merged[-1][0], max(merged[-1][1], high))
            else:
                merged.append((float(low), float(high)))
        return merged

    def queue_transcription(
        self, session_id: int, total_seconds: float = 0.0, *, full: bool = False
    ) -> TranscriptProgress:
        """Queue the session's recording for recognition (again); Conflict while it runs. It
        hears only what live captions did not hear (pass 'rest'), unless there is none or a
        `full` one is asked for."""
        self.get_session(session_id)
        total = _seconds(total_seconds, "total_seconds")
        now = to_text(utc_now())
        with self._tx() as c:
            row = c.execute(
                "SELECT state FROM transcript_progress WHERE session_id = ?", (session_id,)
            ).fetchone()
            if row is not None and row["state"] == "running":
                raise Conflict(f"session {session_id} is being transcribed already")
            heard = c.execute(
                "SELECT 1 FROM transcript_heard WHERE session_id = ? LIMIT 1", (session_id,)
            ).fetchone()
            kind = "rest" if heard is not None and not full else "full"
            c.execute(
                "INSERT INTO transcript_progress (session_id, state, done_seconds, total_seconds,"
                " queued_at, updated_at, pass) VALUES (?, 'queued', 0, ?, ?, ?, ?)"
                " ON CONFLICT (session_id) DO UPDATE SET state = 'queued', done_seconds = 0,"
                " total_seconds = excluded.total_seconds, estimated_finish = NULL, error = NULL,"
                " queued_at = excluded.queued_at, started_at = NULL, finished_at = NULL,"
                " updated_at = excluded.updated_at, pass = excluded.pass",
                (session_id, total, now, now, kind),
            )
        return self._progress_of(session_id)

    def start_transcription(
        self, session_id: int, total_seconds: float, model: str | None = None
    ) -> TranscriptProgress:
        """Mark the session's recognition as running (queuing it first if it was not)."""
        self.get_session(session_id)
        total = _seconds(total_seconds, "total_seconds")
        now = to_text(utc_now())
        with self._tx() as c:
            c.execute(
                "INSERT INTO transcript_progress (session_id, state, done_seconds, total_seconds,"
                " model, queued_at, started_at, updated_at) VALUES (?, 'running', 0, ?, ?, ?, ?, ?)"
                " ON CONFLICT (session_id) DO UPDATE SET state = 'running', done_seconds = 0,"
                " total_seconds = excluded.total_seconds, model = excluded.model,"
                " estimated_finish = NULL, error = NULL, started_at = excluded.started_at,"
                " finished_at = NULL, updated_at = excluded.updated_at",
                (session_id, total, model, now, now, now),
            )
        return self._progress_of(session_id)

    def update_transcription(
        self,
        session_id: int,
        done_seconds: float,
        total_seconds: float | None = None,
        estimated_finish: datetime | None = None,
    ) -> TranscriptProgress:
        """Record how far a running recognition has got; Conflict unless it is running."""
        done = _seconds(done_seconds, "done_seconds")
        total = None if total_seconds is None else _seconds(total_seconds, "total_seconds")
        finish = None if estimated_finish is None else to_text(estimated_finish)
        with self._tx() as c:
            changed = c.execute(
                "UPDATE transcript_progress SET done_seconds = ?,"
                " total_seconds = COALESCE(?, total_seconds), estimated_finish = ?,"
                " updated_at = ? WHERE session_id = ? AND state = 'running'",
                (done, total, finish, to_text(utc_now()), session_id),
            ).rowcount
        if not changed:
            raise Conflict(f"session {session_id} is not being transcribed")
        return self._progress_of(session_id)

    def finish_transcription(self, session_id: int) -> TranscriptProgress:
        """Mark the session's recognition as done."""
        now = to_text(utc_now())
        with self._tx() as c:
            changed = c.execute(
                "UPDATE transcript_progress SET state = 'done', done_seconds = total_seconds,"
                " estimated_finish = NULL, error = NULL, finished_at = ?, updated_at = ?,"
                " completed_at = COALESCE(completed_at, ?)"
                " WHERE session_id = ? AND state = 'running'",
                (now, now, now, session_id),
            ).rowcount
        if not changed:
            raise Conflict(f"session {session_id} is not being transcribed")
        return self._progress_of(session_id)

    def fail_transcription(self, session_id: int, error: str) -> TranscriptProgress:
        """Mark the session's recognition as failed with the reason (shown to staff)."""
        self.get_session(session_id)
        reason = clean_line_text(error)[:MAX_ERROR_CHARS] or "unknown error"
        now = to_text(utc_now())
        with self._tx() as c:
            c.execute(
                "INSERT INTO transcript_progress (session_id, state, error, queued_at,"
                " finished_at, updated_at) VALUES (?, 'failed', ?, ?, ?, ?)"
                " ON CONFLICT (session_id) DO UPDATE SET state = 'failed', error = excluded.error,"
                " estimated_finish = NULL, finished_at = excluded.finished_at,"
                " updated_at = excluded.updated_at",
                (session_id, reason, now, now, now),
            )
        return self._progress_of(session_id)

    def requeue_interrupted(self) -> list[int]:
        """Queue again every recognition left running (by a stop or crash); at start-up."""
        with self._tx() as c:
            rows = c.execute(
                "SELECT session_id FROM transcript_progress WHERE state = 'running'"
            ).fetchall()
            c.execute(
                "UPDATE transcript_progress SET state = 'queued', done_seconds = 0,"
                " estimated_finish = NULL, started_at = NULL, updated_at = ?"
                " WHERE state = 'running'",
                (to_text(utc_now()),),
            )
        return [int(row[0]) for row in rows]

    def _progress_of(self, session_id: int) -> TranscriptProgress:
        found = self.transcription_progress(session_id)
        assert found is not None
        return found

    # published forms

    def transcript_vtt(self, session_id: int, *, hidden: Sequence[tuple[float, float]] = ()) -> str:
        """The session's WebVTT captions, within its recording, without lines in `hidden`
        ranges (redactions)."""
        lines = self.transcript(session_id)
        return captions_vtt(lines, self._recording_end(session_id), hidden=hidden)

    def transcript_text(
        self,
        session_id: int,
        *,
        chapters: Sequence[tuple[float, str]] = (),
        hidden: Sequence[tuple[float, float]] = (),
    ) -> str:
        """The session's plain-text transcript (see transcript_text)."""
        session = self.get_session(session_id)
        lines = self.transcript(session_id)
        return transcript_text(
            lines,
            title=session.title,
            duration=self._recording_end(session_id),
            chapters=chapters,
            hidden=hidden,
        )


def _seconds(value: float, name: str) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise InvalidTranscript(f"{name} must be a number of seconds") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise InvalidTranscript(f"{name} must be zero or more seconds, not {value!r}")
    return seconds


def _visible(
    lines: Iterable[TranscriptLine],
    duration: float | None,
    hidden: Sequence[tuple[float, float]],
) -> list[tuple[TranscriptLine, float, float]]:
    """Lines with text, clipped to [0, duration], without those overlapping a hidden range,
    in time order. Lines that overlap each other stay so (players show both): cutting one
    short could hide it."""
    found = []
    for line in sorted(lines, key=lambda x: (x.start, x.end, x.id)):
        if not line.text or any(_overlaps(line.start, line.end, a, b) for a, b in hidden):
            continue
        start = max(0.0, line.start)
        end = line.end if duration is None else min(line.end, duration)
        if end - start >= MIN_CUE_SECONDS:
            found.append((line, start, end))
    return found


def _cue_payload(text: str) -> str:
    # A cue payload may not hold "-->" or a blank line; &, < and > must be escaped.
    text = text.replace("-->", "→")
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cue_pieces(text: str) -> list[str]:
    """The text as cues of at most CUE_ROWS rows of CUE_ROW_CHARS characters."""
    rows = textwrap.wrap(text, CUE_ROW_CHARS, break_long_words=True, break_on_hyphens=False)
    return ["\n".join(rows[i : i + CUE_ROWS]) for i in range(0, len(rows), CUE_ROWS)]


def captions_vtt(
    lines: Iterable[TranscriptLine],
    duration: float | None,
    *,
    hidden: Sequence[tuple[float, float]] = (),
) -> str:
    """WebVTT captions: one cue (id "line-<id>", or "line-<id>-<n>" when a long line is shown
    as several cues, its time shared by length) per visible line, in time order, without
    overlaps, within [0, duration]; a NOTE says how many lines are automatic."""
    # archive.publish imports archive.index, which this module is part of.
    from archive.publish import vtt_time

    visible = _visible(lines, duration, hidden)
    automatic = sum(1 for line, _, _ in visible if not line.corrected)
    out = ["WEBVTT", ""]
    if visible:
        out += [
            "NOTE",
            "Napisy rozpoznane automatycznie, poprawione przez pracowników w "
            f"{len(visible) - automatic} z {len(visible)} wierszy.",
            "",
        ]
    for line, start, end in visible:
        pieces = _cue_pieces(line.text)
        weights = [max(1, len(p)) for p in pieces]
        position = start
        for index, piece in enumerate(pieces):
            share = (end - start) * weights[index] / sum(weights)
            piece_end = end if index == len(pieces) - 1 else position + share
            cue_id = f"line-{line.id}" if len(pieces) == 1 else f"line-{line.id}-{index + 1}"
            out += [cue_id, f"{vtt_time(position)} --> {vtt_time(piece_end)}"]
            out += [_cue_payload(piece), ""]
            position = piece_end
    return "\n".join(out)


def _clock(seconds: float) -> str:
    whole = int(max(0.0, seconds))
    return str(timedelta(seconds=whole)).rjust(8, "0")


def transcript_text(
    lines: Iterable[TranscriptLine],
    *,
    title: str,
    duration: float | None = None,
    chapters: Sequence[tuple[float, str]] = (),
    hidden: Sequence[tuple[float, float]] = (),
) -> str:
    """A plain-text transcript: the title, a note on how it was made, then "[HH:MM:SS] text"
    per line, with each chapter's label (given as (start, label)) before its first line."""
    visible = _visible(lines, duration, hidden)
    corrected = sum(1 for line, _, _ in visible if line.corrected)
    out = [
        clean_line_text(title),
        f"Transkrypcja rozpoznana automatycznie; poprawione wiersze: {corrected} z {len(visible)}.",
    ]
    pending = sorted(chapters)
    for line, start, _ in visible:
        heading = None
        while pending and pending[0][0] <= start + OVERLAP_EPSILON:
            heading = pending.pop(0)[1]
        if heading is not None:
            out += ["", clean_line_text(heading)]
        out.append(f"[{_clock(start)}] {line.text}")
    return "\n".join(out) + "\n"
