"""What the media of a session's segments hold: which were checked against the wall clock, and
the holes in their video and audio (found by recorder/continuity.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from archive.db import NotFound, Store, to_text

# (kind, media time in the run (the segment list's timeline), seconds, cause)
HoleRow = tuple[str, float, float, str]


@dataclass(frozen=True)
class MediaHole:
    """A stretch of a program segment's video or audio that is missing, on the wall clock."""

    kind: str
    start: datetime
    seconds: float
    cause: str
    camera: str

    @property
    def end(self) -> datetime:
        """Where the hole ends on the wall clock."""
        return self.start + timedelta(seconds=self.seconds)


@dataclass(frozen=True)
class UncheckedSegment:
    """A program segment whose media were not checked, where its segment list placed it, and
    where the run's previous segment ended (run media time; None when unknown or not checked)."""

    camera: str
    run_dir: str
    seq: int
    file: str
    media_start: float
    previous_video_end: float | None
    previous_audio_end: float | None


class ContinuityStore(Store):
    """The results of the media checks."""

    def record_media_check(
        self,
        session_id: int,
        camera: str,
        run_dir: str,
        seq: int,
        video: tuple[float, float] | None,
        audio: tuple[float, float] | None,
        holes: Sequence[HoleRow],
    ) -> None:
        """Mark a segment checked, with its streams' extents and the holes found (a check
        repeated replaces the previous one)."""
        with self._tx() as c:
            row = c.execute(
                "SELECT s.id FROM segments s JOIN runs r ON r.id = s.run_id"
                " WHERE r.session_id = ? AND r.camera = ? AND r.dir = ? AND s.seq = ?",
                (session_id, camera, run_dir, seq),
            ).fetchone()
            if row is None:
                raise NotFound(f"segment {seq} of {camera}/{run_dir} is not indexed")
            segment_id = row[0]
            c.execute(
                "UPDATE segments SET media_checked = 1, video_start = ?, video_end = ?,"
                " audio_start = ?, audio_end = ? WHERE id = ?",
                (*(video or (None, None)), *(audio or (None, None)), segment_id),
            )
            c.execute("DELETE FROM media_holes WHERE segment_id = ?", (segment_id,))
            c.executemany(
                "INSERT INTO media_holes (segment_id, session_id, kind, media_at, seconds, cause)"
                " VALUES (?,?,?,?,?,?)",
                [(segment_id, session_id, *hole) for hole in holes],
            )

    def unchecked_program_segments(self, session_id: int) -> int:
        """How many segments of the session's program have not been checked yet."""
        row = self._conn.execute(
            "SELECT COUNT(*) FROM program p JOIN segments s ON s.id = p.segment_id"
            " WHERE p.session_id = ? AND s.media_checked = 0",
            (session_id,),
        ).fetchone()
        return int(row[0])

    def ended_unchecked(self) -> list[tuple[int, str]]:
        """(id, chamber) of each ended session with program segments never checked (recorded
        before the check existed, or whose check failed), the newest first."""
        rows = self._conn.execute(
            "SELECT DISTINCT se.id, se.chamber FROM sessions se"
            " JOIN program p ON p.session_id = se.id JOIN segments s ON s.id = p.segment_id"
            " WHERE se.state = 'ended' AND s.media_checked = 0 ORDER BY se.id DESC"
        ).fetchall()
        return [(int(row[0]), str(row[1])) for row in rows]

    def unchecked_segments(self, session_id: int) -> list[UncheckedSegment]:
        """The session's program segments not checked yet, in run order."""
        rows = self._conn.execute(
            "SELECT r.camera, r.dir, s.seq, s.file, s.media_start, prev.video_end, prev.audio_end"
            " FROM program p JOIN segments s ON s.id = p.segment_id JOIN runs r ON r.id = s.run_id"
            " LEFT JOIN segments prev ON prev.run_id = s.run_id AND prev.seq = s.seq - 1"
            " WHERE p.session_id = ? AND s.media_checked = 0 ORDER BY r.camera, r.ordinal, s.seq",
            (session_id,),
        ).fetchall()
        return [UncheckedSegment(*row) for row in rows]

    def record_sound_hole(
        self, session_id: int, start: datetime, seconds: float, cause: str
    ) -> None:
        """A stretch where the chamber's shared sound had nothing from its source (silence was
        recorded in its place), on the wall clock."""
        if seconds <= 0:
            raise ValueError(f"a sound hole must last more than 0 s, not {seconds}")
        with self._tx() as c:
            if c.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone() is None:
                raise NotFound(f"session {session_id} does not exist")
            c.execute(
                "INSERT INTO sound_holes (session_id, start, seconds, cause) VALUES (?,?,?,?)",
                (session_id, to_text(start), seconds, cause),
            )

    def sound_hole_starts(self, session_id: int) -> set[datetime]:
        """When each recorded sound hole of the session began."""
        rows = self._conn.execute(
            "SELECT start FROM sound_holes WHERE session_id = ?", (session_id,)
        ).fetchall()
        return {datetime.fromisoformat(r[0]) for r in rows}

    def _sound_holes_in_program(self, session_id: int) -> list[MediaHole]:
        """The session's sound holes where they fall in its program's room cameras (a hole
        while the slate was the program, or while nothing was recorded, is no hole in the
        recording): one piece per program segment it overlaps."""
        holes = self._conn.execute(
            "SELECT start, seconds, cause FROM sound_holes WHERE session_id = ? ORDER BY start",
            (session_id,),
        ).fetchall()
        if not holes:
            return []
        rows = self._conn.execute(
            "SELECT r.camera, r.anchor_at, r.media_origin, s.media_start, s.duration"
            " FROM program p JOIN segments s ON s.id = p.segment_id JOIN runs r ON r.id = s.run_id"
            " WHERE p.session_id = ? AND r.anchor_at IS NOT NULL AND r.camera != 'slate'"
            " ORDER BY p.seq",
            (session_id,),
        ).fetchall()
        spans = []
        for camera, anchor_at, origin, media_start, duration in rows:
            begin = datetime.fromisoformat(anchor_at) + timedelta(
                seconds=media_start - (origin or 0.0)
            )
            spans.append((begin, begin + timedelta(seconds=duration), camera))
        found: list[MediaHole] = []
        for start_text, seconds, cause in holes:
            start = datetime.fromisoformat(start_text)
            end = start + timedelta(seconds=seconds)
            for begin, finish, camera in spans:
                lo, hi = max(start, begin), min(end, finish)
                if hi <= lo:
                    continue
                last = found[-1] if found else None
                if (
                    last is not None
                    and last.cause == cause
                    and last.camera == camera
                    and (abs((lo - last.end).total_seconds()) < 0.05)
                ):
                    # Consecutive segments of one camera: one hole, not one per segment.
                    merged = (hi - last.start).total_seconds()
                    found[-1] = MediaHole("audio", last.start, merged, cause, camera)
                else:
                    found.append(MediaHole("audio", lo, (hi - lo).total_seconds(), cause, camera))
        return found

    def media_holes(self, session_id: int) -> list[MediaHole]:
        """The holes found in the session's program, in wall-clock order (placed by their run's
        anchor: media time origin at anchor_at), with the chamber sound's holes among them."""
        rows = self._conn.execute(
            "SELECT h.kind, h.media_at, h.seconds, h.cause, r.camera, r.anchor_at, r.media_origin"
            " FROM media_holes h JOIN program p ON p.segment_id = h.segment_id"
            " JOIN segments s ON s.id = h.segment_id JOIN runs r ON r.id = s.run_id"
            " WHERE h.session_id = ? AND r.anchor_at IS NOT NULL ORDER BY p.seq, h.media_at",
            (session_id,),
        ).fetchall()
        holes = []
        for kind, media_at, seconds, cause, camera, anchor_at, origin in rows:
            start = datetime.fromisoformat(anchor_at) + timedelta(
                seconds=media_at - (origin or 0.0)
            )
            holes.append(MediaHole(kind, start, seconds, cause, camera))
        holes += self._sound_holes_in_program(session_id)
        return sorted(holes, key=lambda hole: hole.start)
