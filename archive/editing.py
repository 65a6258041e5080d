"""Editing a recorded session's record: markers, publication and redaction (SQL).

Nothing here touches media. Corrections change the index only; a redaction is a range of the
public timeline that the public playlist covers with slates, while the recording stays as it was.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from archive.db import ArchiveError, Conflict, NotFound, Store, to_text, utc_now

if TYPE_CHECKING:
    from archive.records import AgendaRow, Marker, Segment, Session
    from archive.timeline import Timeline

MAX_TITLE = 300
MAX_REASON = 500
# A marker is a wall-clock moment: an offset is accepted only if the moment maps back to it
# (timedelta keeps microseconds, so only an overlap of pieces in wall-clock time exceeds this).
ROUND_TRIP_SECONDS = 0.01
# Two item starts closer than this would make a chapter of no length.
SAME_MOMENT_SECONDS = 0.001
# Float sums of segment durations may differ in the last bits; a range must overlap a segment
# by more than this to cover it.
OVERLAP_EPSILON = 1e-6


class InvalidEdit(ArchiveError):
    """The edit cannot be applied as given (the message says what to fix)."""


@dataclass(frozen=True)
class Redaction:
    """A range of the public timeline (seconds) that the public copy does not show."""

    id: int
    session_id: int
    start_seconds: float
    end_seconds: float
    reason: str
    created_by: str | None
    created_at: datetime


@dataclass(frozen=True)
class CoveredSegment:
    """A whole segment of the program replaced by a slate in the public copy."""

    segment_id: int
    start: float
    duration: float


def covered_segments(
    durations: Iterable[tuple[int, float]], ranges: Iterable[tuple[float, float]]
) -> list[CoveredSegment]:
    """The segments (given in program order as (id, duration)) that overlap any range of the
    public timeline: whole segments, so a range is hidden up to a segment beyond its ends."""
    spans = sorted(ranges)
    found = []
    position = 0.0
    for segment_id, duration in durations:
        end = position + duration
        low, high = position + OVERLAP_EPSILON, end - OVERLAP_EPSILON
        if any(start < high and stop > low for start, stop in spans):
            found.append(CoveredSegment(segment_id, position, duration))
        position = end
    return found


def _redaction(row: sqlite3.Row) -> Redaction:
    return Redaction(
        row["id"],
        row["session_id"],
        float(row["start_seconds"]),
        float(row["end_seconds"]),
        row["reason"],
        row["created_by"],
        datetime.fromisoformat(row["created_at"]),
    )


def _clean_title(title: str) -> str:
    text = " ".join(title.split())
    if not text or len(text) > MAX_TITLE:
        raise InvalidEdit(f"title must be a non-empty text of at most {MAX_TITLE} characters")
    return text


class EditingStore(Store):
    """Marker corrections, publication and redactions (mixed into ArchiveIndex)."""

    _redacted_memo: dict[int, tuple[object, frozenset[int]]]

    if TYPE_CHECKING:
        # Provided by ArchiveIndex, which this is mixed into.
        def get_session(self, session_id: int) -> Session: ...
        def agenda(self, session_id: int) -> list[AgendaRow]: ...
        def markers(self, session_id: int) -> list[Marker]: ...
        def segments(self, session_id: int) -> list[Segment]: ...
        def timeline(self, session_id: int) -> Timeline: ...

    # checks shared by the edits

    def _ended(self, session_id: int, what: str) -> Session:
        """The session, if it has ended; a live or unrecorded one refuses every edit."""
        session = self.get_session(session_id)
        if session.state == "live":
            raise Conflict(f"session is live; {what} after it ends")
        if session.state == "scheduled":
            raise Conflict(f"session {session_id} has not been recorded yet; nothing to {what}")
        return session

    def _marker(self, session_id: int, marker_id: int) -> Marker:
        for marker in self.markers(session_id):
            if marker.id == marker_id:
                return marker
        raise NotFound(f"marker {marker_id} does not exist in session {session_id}")

    def _live_item(self, c: sqlite3.Connection, session_id: int, item_id: int) -> sqlite3.Row:
        row = c.execute(
            "SELECT * FROM agenda_items WHERE id = ? AND session_id = ?", (item_id, session_id)
        ).fetchone()
        if row is None:
            raise NotFound(f"agenda item {item_id} does not exist in session {session_id}")
        if row["removed"]:
            raise Conflict(
                f"agenda item {item_id} was taken off the agenda; a chapter cannot start it"
            )
        return row

    @staticmethod
    def _moment(timeline: Timeline, offset: float) -> datetime:
        """The wall-clock moment of an offset of the recording; 400 outside it."""
        if not timeline.spans:
            raise Conflict("the session has no recording; there is no moment to put a marker at")
        if not math.isfinite(offset) or offset < 0 or offset > timeline.duration:
            raise InvalidEdit(
                f"offset_seconds {offset:g} is outside the recording: "
                f"it runs from 0 to {timeline.duration:.3f} s"
            )
        at = timeline.at_offset(offset)
        back = None if at is None else timeline.offset_of(at)
        if at is None or back is None:
            raise InvalidEdit(f"offset_seconds {offset:g} is not a moment of the recording")
        if abs(back - offset) > ROUND_TRIP_SECONDS:
            # Around a program switch two pieces may cover the same wall-clock moment, and a
            # marker is a wall-clock moment: it would show at the earlier place.
            raise Conflict(
                f"{offset:.3f} s of the recording repeats wall-clock time already shown at "
                f"{back:.3f} s (around a camera or slate switch); a marker there would land at "
                f"{back:.3f} s: choose that or a moment outside the overlap"
            )
        return at

    # markers

    def move_marker(
        self,
        session_id: int,
        marker_id: int,
        *,
        offset_seconds: float | None = None,
        item_id: int | None = None,
    ) -> tuple[Marker, Marker]:
        """Move a marker to an offset of the recording and/or re-point an item start; returns
        the marker before and after."""
        if offset_seconds is None and item_id is None:
            raise InvalidEdit(
                'send {"offset_seconds": x} to move the marker, {"item_id": n} to re-point an '
                "item start, or both"
            )
        with self._tx() as c:
            self._ended(session_id, "correct markers")
            before = self._marker(session_id, marker_id)
            at, target = before.at, before.item_id
            if item_id is not None:
                if before.kind != "item_start":
                    raise InvalidEdit(
                        f"marker {marker_id} is a {before.kind}; only an item_start points at an "
                        "agenda item"
                    )
                self._live_item(c, session_id, item_id)
                target = item_id
            if offset_seconds is not None:
                if before.kind in ("closed_start", "closed_end"):
                    raise Conflict(
                        f"marker {marker_id} bounds a part closed to the public, which decided "
                        "what was recorded for the public; it cannot be moved afterwards "
                        "(redact a range of the recording instead)"
                    )
                timeline = self.timeline(session_id)
                at = self._moment(timeline, offset_seconds)
                if before.kind in ("break_start", "break_end"):
                    self._check_breaks(session_id, marker_id, at)
                if before.kind == "item_start":
                    self._check_free(session_id, timeline, offset_seconds, marker_id)
            c.execute(
                "UPDATE markers SET at = ?, item_id = ? WHERE id = ?",
                (to_text(at), target, marker_id),
            )
        return before, self._marker(session_id, marker_id)

    def _check_free(
        self, session_id: int, timeline: Timeline, offset: float, moving: int | None
    ) -> None:
        """No other chapter may start at that moment: one of the two would have no length."""
        for marker in self.markers(session_id):
            if marker.kind != "item_start" or marker.id == moving:
                continue
            other = timeline.offset_of(marker.at)
            if other is not None and abs(other - offset) < SAME_MOMENT_SECONDS:
                raise Conflict(
                    f"a chapter already starts at {other:.3f} s (marker {marker.id}); "
                    f"re-point it with PATCH .../markers/{marker.id} instead"
                )

    def _check_breaks(self, session_id: int, marker_id: int, at: datetime) -> None:
        """Breaks must still start, end, start, end... in time order after the move."""
        moved = []
        for marker in self.markers(session_id):
            if marker.kind not in ("break_start", "break_end"):
                continue
            moved.append((at if marker.id == marker_id else marker.at, marker.id, marker.kind))
        moved.sort()
        for index, (_, _, kind) in enumerate(moved):
            if kind != ("break_start" if index % 2 == 0 else "break_end"):
                raise InvalidEdit(
                    f"moving marker {marker_id} there would put a break's end before its start "
                    "or across another break; keep each break's start before its end"
                )

    def split_chapter(
        self,
        session_id: int,
        offset_seconds: float,
        *,
        item_id: int | None = None,
        title: str | None = None,
        parent_id: int | None = None,
        created_by: str | None = None,
    ) -> tuple[Marker, AgendaRow | None]:
        """A new chapter from an offset: an item start for an existing item, or for a new item
        (title) added at the end of the agenda or of a parent's items; returns the marker and
        the item made, if any."""
        if (item_id is None) == (title is None):
            raise InvalidEdit(
                'send either "item_id" (an item of the agenda) or "title" (a new item added at '
                "the end of the agenda) for the chapter that starts there"
            )
        if parent_id is not None and title is None:
            raise InvalidEdit('"parent_id" places a new item: send it with "title"')
        with self._tx() as c:
            self._ended(session_id, "correct markers")
            timeline = self.timeline(session_id)
            at = self._moment(timeline, offset_seconds)
            self._check_free(session_id, timeline, offset_seconds, None)
            made: int | None = None
            if title is not None:
                made = self._append_item(c, session_id, _clean_title(title), parent_id)
                target = made
            else:
                assert item_id is not None
                self._live_item(c, session_id, item_id)
                target = item_id
            cur = c.execute(
                "INSERT INTO markers (session_id, kind, at, item_id, created_by)"
                " VALUES (?, 'item_start', ?, ?, ?)",
                (session_id, to_text(at), target, created_by),
            )
            marker_id = int(cur.lastrowid or 0)
        item = None
        if made is not None:
            item = next(row for row in self.agenda(session_id) if row.id == made)
        return self._marker(session_id, marker_id), item

    @staticmethod
    def _append_item(
        c: sqlite3.Connection, session_id: int, title: str, parent_id: int | None
    ) -> int:
        """Add an item (added=1) after the last item of the agenda or of its parent; the
        numbers of the items already there do not change."""
        rows = c.execute(
            "SELECT * FROM agenda_items WHERE session_id = ? ORDER BY position", (session_id,)
        ).fetchall()
        if parent_id is None:
            depth, prefix = 0, ""
            position = (rows[-1]["position"] + 1) if rows else 0
            siblings = [r for r in rows if r["parent_id"] is None]
        else:
            parent = next((r for r in rows if r["id"] == parent_id), None)
            if parent is None:
                raise NotFound(f"agenda item {parent_id} does not exist in session {session_id}")
            if parent["removed"]:
                raise Conflict(f"agenda item {parent_id} was taken off the agenda")
            if parent["depth"] >= 2:
                raise Conflict("items nest at most three levels deep")
            depth, prefix = parent["depth"] + 1, f"{parent['number']}."
            family = {parent_id}
            last = parent["position"]
            for row in rows:  # rows in order: descendants follow their parent
                if row["parent_id"] in family:
                    family.add(row["id"])
                    last = row["position"]
            position = last + 1
            siblings = [r for r in rows if r["parent_id"] == parent_id]
            # Make room: the items after the parent's family move down by one.
            c.execute(
                "UPDATE agenda_items SET position = position + 1"
                " WHERE session_id = ? AND position >= ?",
                (session_id, position),
            )
        number = f"{prefix}{sum(1 for r in siblings if not r['removed']) + 1}"
        cur = c.execute(
            "INSERT INTO agenda_items"
            " (session_id, parent_id, position, depth, number, title, added)"
            " VALUES (?,?,?,?,?,?,1)",
            (session_id, parent_id, position, depth, number, title),
        )
        return int(cur.lastrowid or 0)

    def merge_chapter(self, session_id: int, marker_id: int) -> Marker:
        """Delete an item start: its chapter joins the previous one; returns the marker deleted."""
        with self._tx() as c:
            self._ended(session_id, "correct markers")
            marker = self._marker(session_id, marker_id)
            if marker.kind != "item_start":
                raise InvalidEdit(
                    f"marker {marker_id} is a {marker.kind}; only an item_start can be deleted "
                    "(its chapter joins the previous one)"
                )
            timeline = self.timeline(session_id)
            starts = sorted(
                (timeline.offset_of(m.at) or 0.0, m.id)
                for m in self.markers(session_id)
                if m.kind == "item_start"
            )
            if starts[0][1] == marker_id:
                raise Conflict(
                    f"marker {marker_id} starts the first chapter; there is no previous chapter "
                    "to join it to: move it or re-point it instead"
                )
            c.execute("DELETE FROM markers WHERE id = ?", (marker_id,))
        return marker

    def rename_item(self, session_id: int, item_id: int, title: str) -> tuple[AgendaRow, AgendaRow]:
        """Correct an agenda item's title after the session; returns the item before and after."""
        text = _clean_title(title)
        with self._tx() as c:
            self._ended(session_id, "rename agenda items")
            rows = {row.id: row for row in self.agenda(session_id)}
            if item_id not in rows:
                raise NotFound(f"agenda item {item_id} does not exist in session {session_id}")
            c.execute("UPDATE agenda_items SET title = ? WHERE id = ?", (text, item_id))
        after = next(row for row in self.agenda(session_id) if row.id == item_id)
        return rows[item_id], after

    # publication

    def set_published(self, session_id: int, published: bool) -> tuple[bool, bool]:
        """Publish or withdraw a session's recording; returns (before, after)."""
        with self._tx() as c:
            before = self.get_session(session_id).published
            c.execute(
                "UPDATE sessions SET published = ? WHERE id = ?", (int(published), session_id)
            )
        return before, published

    # redaction

    def redactions(self, session_id: int) -> list[Redaction]:
        """The session's redactions in time order."""
        self.get_session(session_id)
        rows = self._conn.execute(
            "SELECT * FROM redactions WHERE session_id = ? ORDER BY start_seconds, id",
            (session_id,),
        ).fetchall()
        return [_redaction(r) for r in rows]

    def plan_redaction(self, session_id: int, start: float, end: float) -> list[Segment]:
        """Check a range for redaction and return the program segments it covers (whole), in
        order; nothing is stored."""
        self._ended(session_id, "redact")
        return self._check_range(session_id, start, end)

    def _check_range(self, session_id: int, start: float, end: float) -> list[Segment]:
        if not (math.isfinite(start) and math.isfinite(end)):
            raise InvalidEdit("start_seconds and end_seconds must be numbers of seconds")
        if start >= end:
            raise InvalidEdit(f"start_seconds ({start:g}) must be before end_seconds ({end:g})")
        segments = self.segments(session_id)
        total = sum(s.duration for s in segments)
        if not segments:
            raise Conflict(f"session {session_id} has no recording to redact")
        if start < 0 or end > total + OVERLAP_EPSILON:
            raise InvalidEdit(
                f"the range {start:g}-{end:g} s is outside the recording: it runs from 0 to "
                f"{total:.3f} s"
            )
        for other in self.redactions(session_id):
            if start < other.end_seconds and end > other.start_seconds:
                raise Conflict(
                    f"the range {start:g}-{end:g} s overlaps redaction {other.id} "
                    f"({other.start_seconds:g}-{other.end_seconds:g} s); delete it and redact "
                    "the joined range, or redact only what lies outside it"
                )
        durations = [(s.id, s.duration) for s in segments]
        covered = {c.segment_id for c in covered_segments(durations, [(start, end)])}
        return [s for s in segments if s.id in covered]

    def add_redaction(
        self, session_id: int, start: float, end: float, reason: str, created_by: str | None
    ) -> Redaction:
        """Store a redaction after checking it again (the range may have been taken meanwhile)."""
        text = " ".join(reason.split())
        if not text or len(text) > MAX_REASON:
            raise InvalidEdit(
                f"reason is required: why this range is redacted, at most {MAX_REASON} characters"
            )
        with self._tx() as c:
            self._ended(session_id, "redact")
            self._check_range(session_id, start, end)
            cur = c.execute(
                "INSERT INTO redactions"
                " (session_id, start_seconds, end_seconds, reason, created_by, created_at)"
                " VALUES (?,?,?,?,?,?)",
                (session_id, start, end, text, created_by, to_text(utc_now())),
            )
            redaction_id = int(cur.lastrowid or 0)
        return self._redaction_of(session_id, redaction_id)

    def _redaction_of(self, session_id: int, redaction_id: int) -> Redaction:
        row = self._conn.execute(
            "SELECT * FROM redactions WHERE id = ? AND session_id = ?", (redaction_id, session_id)
        ).fetchone()
        if row is None:
            raise NotFound(f"redaction {redaction_id} does not exist in session {session_id}")
        return _redaction(row)

    def remove_redaction(self, session_id: int, redaction_id: int) -> Redaction:
        """Delete a redaction (the public copy shows that range again); returns it."""
        with self._tx() as c:
            self.get_session(session_id)
            redaction = self._redaction_of(session_id, redaction_id)
            c.execute("DELETE FROM redactions WHERE id = ?", (redaction_id,))
        return redaction

    def hidden_ranges(self, session_id: int) -> list[tuple[float, float]]:
        """The stretches of the public timeline (seconds) that slates replace: each redaction
        widened to the whole segments it covers, as the public copy shows it."""
        ranges = [(r.start_seconds, r.end_seconds) for r in self.redactions(session_id)]
        if not ranges:
            return []
        durations = [(s.id, s.duration) for s in self.segments(session_id)]
        return [(c.start, c.start + c.duration) for c in covered_segments(durations, ranges)]

    def redacted_segment_ids(self, session_id: int) -> frozenset[int]:
        """Ids of the program segments the public copy replaces with slates."""
        ranges = tuple(
            (float(r[0]), float(r[1]))
            for r in self._conn.execute(
                "SELECT start_seconds, end_seconds FROM redactions WHERE session_id = ?"
                " ORDER BY start_seconds, id",
                (session_id,),
            )
        )
        if not ranges:
            return frozenset()
        count = self._conn.execute(
            "SELECT COUNT(*) FROM program WHERE session_id = ?", (session_id,)
        ).fetchone()[0]
        # Media requests ask this for every segment: the answer is kept until the redactions
        # or the program change.
        key = (ranges, count)
        if not hasattr(self, "_redacted_memo"):
            self._redacted_memo = {}
        memo = self._redacted_memo.get(session_id)
        if memo is not None and memo[0] == key:
            return memo[1]
        durations = [(s.id, s.duration) for s in self.segments(session_id)]
        found = frozenset(c.segment_id for c in covered_segments(durations, ranges))
        self._redacted_memo[session_id] = (key, found)
        return found

    def redaction_cover(self, session_id: int) -> dict[int, list[CoveredSegment]]:
        """For each redaction (by id), the whole segments the public copy replaces for it."""
        durations = [(s.id, s.duration) for s in self.segments(session_id)]
        return {
            r.id: covered_segments(durations, [(r.start_seconds, r.end_seconds)])
            for r in self.redactions(session_id)
        }

    def is_redacted_file(self, session_id: int, camera: str, run_dir: str, file: str) -> bool:
        """Whether a media file is a program segment the public copy replaces with a slate."""
        row = self._conn.execute(
            "SELECT s.id FROM segments s JOIN runs r ON r.id = s.run_id"
            " JOIN program p ON p.segment_id = s.id"
            " WHERE s.session_id = ? AND r.camera = ? AND r.dir = ? AND s.file = ?",
            (session_id, camera, run_dir, file),
        ).fetchone()
        return row is not None and int(row[0]) in self.redacted_segment_ids(session_id)
