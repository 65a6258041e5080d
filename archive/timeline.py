"""Maps wall-clock moments onto a session recording's playback timeline: the program's pieces
(stretches of one ffmpeg run of one camera) joined end to end."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

# Media stamps from different segments of one run are contiguous to within float noise.
CONTIGUOUS_SECONDS = 0.05


@dataclass(frozen=True)
class Piece:
    """A stretch of the program recorded by one run of one camera, without a break."""

    run_id: int
    camera: str
    anchor_at: datetime
    duration: float
    end_reason: str | None = None


@dataclass(frozen=True)
class RunSpan:
    """A piece as it appears in the session's playback timeline."""

    run_id: int
    camera: str
    anchor_at: datetime
    position: float
    duration: float
    end_reason: str | None = None

    @property
    def wall_end(self) -> datetime:
        """The wall-clock time of the last recorded moment of this piece."""
        return self.anchor_at + timedelta(seconds=self.duration)


@dataclass(frozen=True)
class Gap:
    """Wall-clock time between two pieces that the program does not cover, and why."""

    start: datetime
    end: datetime
    offset_seconds: float
    cause: str

    @property
    def seconds(self) -> float:
        """Length of the gap."""
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True)
class Timeline:
    """A session's program pieces in playback order; offsets are seconds from its start."""

    spans: tuple[RunSpan, ...]
    ongoing: bool

    @property
    def duration(self) -> float:
        """Total playable duration."""
        return sum(span.duration for span in self.spans)

    def offset_of(self, at: datetime) -> float | None:
        """Playback offset of a wall-clock moment; moments in a gap map to the next piece."""
        if not self.spans:
            return None
        for span in self.spans:
            if at <= span.anchor_at:
                return span.position
            if at <= span.wall_end:
                return span.position + (at - span.anchor_at).total_seconds()
        last = self.spans[-1]
        offset = last.position + (at - last.anchor_at).total_seconds()
        # While recording, the moment lies in the segment still being written.
        return offset if self.ongoing else min(offset, self.duration)

    def at_offset(self, offset: float) -> datetime | None:
        """The wall-clock moment shown at a playback offset (the inverse of offset_of); None
        outside the recording."""
        if not self.spans or offset < 0 or offset > self.duration:
            return None
        for span in self.spans:
            # A boundary between two pieces belongs to the earlier one: its last moment.
            if offset <= span.position + span.duration:
                return span.anchor_at + timedelta(seconds=offset - span.position)
        last = self.spans[-1]
        return last.wall_end

    def gaps(self) -> list[Gap]:
        """Unrecorded stretches between consecutive pieces, with their causes."""
        found = []
        for before, after in zip(self.spans, self.spans[1:], strict=False):
            missing = (after.anchor_at - before.wall_end).total_seconds()
            if missing <= CONTIGUOUS_SECONDS:
                continue
            if before.camera != after.camera:
                cause = f"program switched from camera {before.camera} to {after.camera}"
            elif before.run_id != after.run_id:
                cause = before.end_reason or "capture was interrupted"
            else:
                cause = "segments missing from the index"
            found.append(Gap(before.wall_end, after.anchor_at, after.position, cause))
        return found


def build_timeline(pieces: Sequence[Piece], ongoing: bool) -> Timeline:
    """Lay pieces (in program order) end to end; empty pieces take no place."""
    spans = []
    position = 0.0
    for piece in pieces:
        if piece.duration <= 0:
            continue
        spans.append(
            RunSpan(
                piece.run_id,
                piece.camera,
                piece.anchor_at,
                position,
                piece.duration,
                piece.end_reason,
            )
        )
        position += piece.duration
    return Timeline(tuple(spans), ongoing)
