"""Maps wall-clock moments onto a session recording's playback timeline (runs joined end to end)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class RunSpan:
    """One ffmpeg run as it appears in the session's playback timeline."""

    run_id: int
    ordinal: int
    anchor_at: datetime
    position: float
    duration: float
    end_reason: str | None = None

    @property
    def wall_end(self) -> datetime:
        """The wall-clock time of the last recorded moment of this run."""
        return self.anchor_at + timedelta(seconds=self.duration)


@dataclass(frozen=True)
class Gap:
    """Wall-clock time between two runs that was not recorded."""

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
    """A session's runs in playback order; offsets are seconds from the recording's start."""

    spans: tuple[RunSpan, ...]
    ongoing: bool

    @property
    def duration(self) -> float:
        """Total playable duration."""
        return sum(span.duration for span in self.spans)

    def offset_of(self, at: datetime) -> float | None:
        """Playback offset of a wall-clock moment; moments in a gap map to the next run's start."""
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

    def gaps(self) -> list[Gap]:
        """Unrecorded stretches between consecutive runs."""
        found = []
        for before, after in zip(self.spans, self.spans[1:], strict=False):
            if after.anchor_at > before.wall_end:
                cause = before.end_reason or "capture was interrupted"
                found.append(Gap(before.wall_end, after.anchor_at, after.position, cause))
        return found


def build_timeline(
    runs: Sequence[tuple[int, int, datetime | None, float, str | None]], ongoing: bool
) -> Timeline:
    """Build a timeline from (run_id, ordinal, anchor_at, duration, end_reason) by ordinal.

    Runs that produced no segment (no anchor, or zero duration) take no place in it.
    """
    spans = []
    position = 0.0
    for run_id, ordinal, anchor_at, duration, reason in sorted(runs, key=lambda r: r[1]):
        if anchor_at is None or duration <= 0:
            continue
        spans.append(RunSpan(run_id, ordinal, anchor_at, position, duration, reason))
        position += duration
    return Timeline(tuple(spans), ongoing)
