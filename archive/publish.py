"""Published forms of a recording: the VOD playlist and WebVTT chapters, from the index alone."""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from archive.records import AgendaRow, Marker, Segment
from archive.timeline import Timeline


@dataclass(frozen=True)
class Chapter:
    """One agenda item's stretch of the recording."""

    item_id: int
    number: str
    title: str
    start: float
    end: float

    @property
    def label(self) -> str:
        """How the chapter is named: the item's number and title."""
        return f"{self.number}. {self.title}"


def chapters(
    agenda: Sequence[AgendaRow], markers: Sequence[Marker], timeline: Timeline
) -> list[Chapter]:
    """One chapter per item start, ending at the next item start or the end of the recording."""
    items = {row.id: row for row in agenda}
    starts: list[tuple[float, AgendaRow]] = []
    for marker in markers:
        if marker.kind != "item_start" or marker.item_id not in items:
            continue
        offset = timeline.offset_of(marker.at)
        if offset is None:
            continue
        starts.append((offset, items[marker.item_id]))
    starts.sort(key=lambda pair: pair[0])
    total = timeline.duration
    found = []
    for index, (start, row) in enumerate(starts):
        end = starts[index + 1][0] if index + 1 < len(starts) else total
        start = min(start, total)
        if end <= start:
            continue  # an item superseded at once (or started after the recording) has no span
        found.append(Chapter(row.id, row.number, row.title, start, end))
    return found


def vtt_time(seconds: float) -> str:
    """WebVTT timestamp HH:MM:SS.mmm."""
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def _cue_text(text: str) -> str:
    # A cue payload may not contain "-->" or blank lines; & and < must be escaped.
    text = " ".join(text.split()).replace("-->", "->")
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def chapters_vtt(found: Sequence[Chapter]) -> str:
    """A WebVTT chapters track."""
    lines = ["WEBVTT", ""]
    for index, chapter in enumerate(found, start=1):
        lines += [
            f"item-{chapter.item_id}-{index}",
            f"{vtt_time(chapter.start)} --> {vtt_time(chapter.end)}",
            _cue_text(chapter.label),
            "",
        ]
    return "\n".join(lines)


def media_playlist(
    segments: Sequence[Segment],
    *,
    uri_prefix: str,
    ended: bool,
    target_seconds: float,
    window: bool = False,
    redacted: Collection[int] = frozenset(),
) -> str:
    """An HLS media playlist; a discontinuity is marked wherever ffmpeg runs change.

    For a live window the media and discontinuity sequences are the chamber's own, so they never
    go backwards on the same URL, across sessions and restarts. A segment whose id is in
    `redacted` is replaced by a slate of the same duration (see slate_uri), with a
    discontinuity on both sides, so the public timeline keeps its length and its offsets.
    """
    # RFC 8216: each EXTINF, rounded to the nearest integer, must not exceed the target.
    longest = max([target_seconds] + [s.duration for s in segments])
    target = max(1, math.floor(longest + 0.5))
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{target}"]
    if window:
        first = segments[0] if segments else None
        lines.append(f"#EXT-X-MEDIA-SEQUENCE:{(first.program_seq or 0) if first else 0}")
        lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{(first.program_disc or 0) if first else 0}")
    else:
        lines.append("#EXT-X-MEDIA-SEQUENCE:0")
        lines.append(f"#EXT-X-PLAYLIST-TYPE:{'VOD' if ended else 'EVENT'}")
    previous_run: int | None = None
    previous_slate = False
    for segment in segments:
        slate = segment.id in redacted
        # A slate's timestamps start afresh: the player must reset its clock before and after.
        if previous_run is not None and (segment.run_id != previous_run or slate or previous_slate):
            lines.append("#EXT-X-DISCONTINUITY")
        previous_run, previous_slate = segment.run_id, slate
        lines.append(f"#EXTINF:{segment.duration:.6f},")
        if slate:
            lines.append(uri_prefix + slate_uri(segment))
        else:
            lines.append(f"{uri_prefix}{segment.session_id}/media/{segment.rel_path}")
    if ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def slate_name(duration: float) -> str:
    """The file name of a redaction slate lasting `duration` seconds (to the millisecond)."""
    return f"slate-{max(1, round(duration * 1000)):d}.ts"


def slate_uri(segment: Segment) -> str:
    """Where the slate that replaces a redacted segment is served, below /sessions/: one slate
    per run and duration, in the run's own format."""
    return (
        f"{segment.session_id}/redacted/{segment.camera}/{segment.run_dir}/"
        f"{slate_name(segment.duration)}"
    )
