"""Checks a finished segment's media against the wall clock: every stretch of video or audio
that is missing from it (or from between it and the segment before, in one run) longer than a
threshold is found, with its best known cause, and so are audio and video drifting apart.

Measured here (ffmpeg 5.1, the GStreamer test camera, copy mode): a camera that stalls with its
connection open (SIGSTOP) and then resumes sends what it missed in a burst, with timestamps that
go on as if nothing happened. The segment list and the packets' timestamps then show no hole at
all; only the moments the bytes reached the file do. So the supervisor notes, at every poll, the
newest segment file's size and mtime (`FileGrowth`: the kernel's time of the last write, so a
late poll does not move it), and a packet arrived at the latest at the mtime of the first poll
that saw the file pass its byte position. Found:

- a jump in a stream's timestamps (a camera that drops what it could not send);
- an arrival gap: two packets of a stream written further apart on the wall clock than in media
  time. A poll that came late (a busy event loop) is no evidence: a gap counts only from the
  last poll that saw nothing new;
- media steadily slower than the wall clock: a stream's lateness (arrival less timestamp)
  beyond the least of its run, less what a hole already explains, that did not catch up: an
  encoder a second behind that then catches up delivered everything, late (LAG_SECONDS);
- drift: where audio and video end in a segment, against the run's first segment.

Everything found is in the run's timeline as its segment list gives it, where the index places
the run on the wall clock (archive/index.py: the anchor). The file's own timestamps are that
plus the MPEG-TS muxer's offset (1.4 s measured here, copied with -copyts and re-encoded alike);
it is taken off as a segment's packets are read, from where the list says its first frame is.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from recorder.priority import ANALYSIS, spawn

NO_MEDIA = "the source sent no media"
VIDEO_BEHIND = "the encoder fell behind real time: the video lags the audio"
AUDIO_BEHIND = "the audio fell behind the video"
SLOWER = "the encoder fell behind real time: media time ran slower than the wall clock"
AUDIO_LATE = "the encoder fell behind real time: its audio came late"
# Audio and video that drift apart by more than this are reported (seconds).
DRIFT_SECONDS = 0.1
PROBE_TIMEOUT_SECONDS = 30.0
# Media that fell behind the wall clock and then caught up were late but complete: no hole. A
# lag is reported once it passes LAG_SECONDS (measured: an encoder behind real time lagged
# 0.5-1 s and caught up; a re-encode drops frames past 1 s) or has not caught up for
# BEHIND_SECONDS of media (a camera whose clock runs slow).
LAG_SECONDS = 1.5
BEHIND_SECONDS = 10.0


class ContinuityError(RuntimeError):
    """A segment's packets could not be read."""


@dataclass(frozen=True)
class Packet:
    """One packet of a segment: its stream's kind, presentation time, duration and byte offset."""

    kind: str  # "video" or "audio"
    pts: float
    duration: float
    pos: int


@dataclass(frozen=True)
class Hole:
    """A stretch of one stream's media that is missing (or, for "drift", by how much audio and
    video disagree): from media time `media_at` (in the run's timeline, the segment list's)
    for `seconds`."""

    kind: str  # "video", "audio" or "drift"
    media_at: float
    seconds: float
    cause: str


@dataclass(frozen=True)
class Extent:
    """Where a stream's media begins and ends in a segment (run media time, the segment
    list's)."""

    start: float
    end: float


@dataclass
class StreamTail:
    """The last packet of a stream seen in a run: its end in media time, when it arrived and the
    last poll before the next segment appeared."""

    end: float
    arrived: float | None
    start: float | None = None  # its timestamp (None: known only where it ended)


@dataclass
class RunState:
    """What the check of one segment leaves for the next segment of the same run."""

    tails: dict[str, StreamTail] = field(default_factory=dict)
    last_poll: float | None = None
    # Where the audio ended relative to the video at the end of the run's first segment, and the
    # drift from that last reported.
    skew_base: float | None = None
    drift_reported: float = 0.0
    # Per stream: the least lateness (arrival less timestamp) seen in the run, and how much of
    # the lateness now is already told (by a hole, or by an earlier report of slowness).
    base: dict[str, float] = field(default_factory=dict)
    explained: dict[str, float] = field(default_factory=dict)
    # Per stream: where its media went further behind the wall clock than told, not yet
    # reported (a lag that may still catch up).
    behind: dict[str, float] = field(default_factory=dict)
    # The file's timestamps less the segment list's (the muxer's offset), once known.
    offset: float | None = None


@dataclass(frozen=True)
class SegmentCheck:
    """The result of checking one segment."""

    holes: tuple[Hole, ...]
    video: Extent | None
    audio: Extent | None


def packets_argv(path: Path) -> list[str]:
    """ffprobe argv listing a segment's streams and packets (kind, pts, duration, position)."""
    return [
        "ffprobe", "-v", "error",
        "-show_entries", "stream=index,codec_type:packet=stream_index,pts_time,duration_time,pos",
        "-of", "compact=p=0:nk=0", str(path),
    ]  # fmt: skip


def parse_packets(text: str) -> list[Packet]:
    """Packets from ffprobe's compact output of packets_argv, in file order."""
    kinds: dict[int, str] = {}
    packets: list[Packet] = []
    pending: list[dict[str, str]] = []
    for line in text.splitlines():
        fields = dict(part.split("=", 1) for part in line.split("|") if "=" in part)
        if "codec_type" in fields and "index" in fields:
            kinds[int(fields["index"])] = fields["codec_type"]
        elif "stream_index" in fields:
            pending.append(fields)
    for fields in pending:
        kind = kinds.get(int(fields["stream_index"]))
        if kind not in ("video", "audio"):
            continue
        try:
            pts = float(fields.get("pts_time", ""))
            pos = int(fields.get("pos", ""))
        except ValueError:
            continue  # no timestamp or position: nothing to place
        try:
            duration = float(fields.get("duration_time", ""))
        except ValueError:
            duration = 0.0
        packets.append(Packet(kind, pts, duration, pos))
    return packets


async def read_packets(path: Path) -> list[Packet]:
    """A segment's packets, read by ffprobe at the analysis priority (below capture)."""
    proc = await spawn(
        ANALYSIS,
        packets_argv(path),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
            out, err = await proc.communicate()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await asyncio.shield(proc.wait())
        raise
    if proc.returncode != 0:
        raise ContinuityError(f"ffprobe {path}: {err.decode('utf-8', 'replace').strip()[-300:]}")
    return parse_packets(out.decode("utf-8", "replace"))


@dataclass(frozen=True)
class FileGrowth:
    """One growing segment file, poll by poll: after each write seen, the file's size, the time of
    that write (its mtime: the kernel's, not the poll's, so a late poll does not move it) and the
    last poll that saw the file still at that size (all wall-clock epoch seconds)."""

    times: tuple[float, ...]
    sizes: tuple[int, ...]
    looked: tuple[float, ...]

    def arrival(self, pos: int) -> tuple[float, float | None] | None:
        """(when byte `pos` was written at the latest, the last poll that had not seen it yet),
        or None if no poll saw it."""
        index = bisect.bisect_right(self.sizes, pos)
        if index >= len(self.sizes):
            return None
        return self.times[index], (self.looked[index - 1] if index > 0 else None)


@dataclass(frozen=True)
class Dropped:
    """Frames the encoder dropped to keep time, as the capture saw it: from media time `start`
    to `end` of the segment list's timeline (the file's timestamps are that plus the muxer's
    offset), and why."""

    start: float
    end: float
    cause: str


def check_segment(
    packets: Sequence[Packet],
    growth: FileGrowth | None,
    state: RunState,
    threshold: float,
    dropped: Sequence[Dropped] = (),
    listed_start: float | None = None,
) -> SegmentCheck:
    """Holes in a segment's video and audio longer than threshold seconds, counting from the end
    of the run's previous segment (state, which is updated for the next one), in the segment
    list's timeline: `listed_start` is where the list says the segment starts (its first video
    frame); without it, the run's offset found before, or the file's own timestamps. A video
    hole where the capture dropped frames (`dropped`) takes the drop's cause, and so does an
    audio hole there that only a wait for media showed."""
    offset = _list_offset(packets, state, listed_start)
    if offset:
        packets = [replace(packet, pts=packet.pts - offset) for packet in packets]
    holes: list[Hole] = []
    waits: dict[int, float] = {}  # a hole seen only as a wait: when its stream's wait began
    extents: dict[str, Extent] = {}
    previous_poll = state.last_poll
    for kind in ("video", "audio"):
        stream = [p for p in packets if p.kind == kind]
        if not stream:
            continue
        extents[kind] = Extent(stream[0].pts, max(p.pts + p.duration for p in stream))
        tail: StreamTail | None = state.tails.get(kind)
        resumed: float | None = None  # where media came again after this stream's last hole
        late: float | None = None  # the lateness of the last packet beyond the run's least
        for packet in stream:
            seen = growth.arrival(packet.pos) if growth is not None else None
            arrived = seen[0] if seen is not None else None
            # The poll before the one that saw it; for a file's first bytes, the last poll of
            # the run's previous file.
            before = seen[1] if seen is not None and seen[1] is not None else previous_poll
            if tail is not None:
                advance = packet.pts - tail.end
                missing = max(0.0, advance)
                if tail.arrived is not None and arrived is not None and before is not None:
                    # Wall time between two packets of this stream arriving, beyond the media
                    # time between them; only from polls that looked and saw nothing.
                    between = packet.pts - (tail.start if tail.start is not None else tail.end)
                    waited = max(0.0, before - tail.arrived)
                    if waited - max(0.0, between) > threshold:
                        missing = max(missing, arrived - tail.arrived - max(0.0, between))
                if missing > threshold:
                    last = holes[-1] if holes and holes[-1].kind == kind else None
                    if last is not None and resumed is not None and tail.end - resumed <= threshold:
                        # A stall seen as two, one packet apart (a burst that came in two
                        # goes): one hole, as long as both.
                        holes[-1] = Hole(kind, last.media_at, last.seconds + missing, NO_MEDIA)
                    else:
                        at = tail.end
                        if advance <= threshold and tail.arrived is not None:
                            # Seen only as a wait, which began when the last packet came: the
                            # media made by then, but still on their way (a burst after an
                            # earlier stall, an encoder behind), came after it, not missing.
                            waits[len(holes)] = tail.arrived
                            if kind in state.base:
                                at = max(at, tail.arrived - state.base[kind])
                        holes.append(Hole(kind, at, missing, NO_MEDIA))
                    resumed = packet.pts
            if arrived is not None:
                late = _lateness(state, kind, arrived - packet.pts, resumed == packet.pts)
                if late - state.explained[kind] > threshold:
                    state.behind.setdefault(kind, packet.pts)
                else:
                    # Caught up with the wall clock: what came late was all there.
                    state.behind.pop(kind, None)
            tail = StreamTail(packet.pts + packet.duration, arrived, packet.pts)
        since = state.behind.get(kind)
        if late is not None and since is not None and tail is not None:
            excess = late - state.explained[kind]
            if excess > LAG_SECONDS or tail.end - since >= BEHIND_SECONDS:
                # Media came too little for the wall clock and did not catch up: each second
                # brought less than a second of media (an encoder behind real time, a camera's
                # slow clock, a stall sent on late in a burst no poll saw begin).
                holes.append(Hole(kind, since, excess, SLOWER))
                state.explained[kind] = late
                del state.behind[kind]
        if tail is not None:
            state.tails[kind] = tail
    if growth is not None and growth.looked:
        state.last_poll = growth.looked[-1]
    video, audio = extents.get("video"), extents.get("audio")
    holes = _one_stall(holes, waits, threshold)
    if dropped:
        holes = _attribute(holes, dropped) + _drops(holes, dropped, threshold)
    if video is not None and audio is not None:
        drift = _drift(video, audio, state, _frames(state))
        if drift is not None:
            holes.append(drift)
    return SegmentCheck(tuple(holes), video, audio)


def _list_offset(packets: Sequence[Packet], state: RunState, listed_start: float | None) -> float:
    """How far the file's timestamps are ahead of the segment list's: the muxer's offset, the
    same in every segment of a run, so taken once, from the first segment whose list start is
    known (the segmenter starts a segment on a video frame, or an audio one without video)."""
    if state.offset is None and listed_start is not None:
        first = next((p for p in packets if p.kind == "video"), None)
        first = first or next((p for p in packets if p.kind == "audio"), None)
        if first is not None:
            state.offset = first.pts - listed_start
    return state.offset or 0.0


def _one_stall(holes: list[Hole], waits: dict[int, float], threshold: float) -> list[Hole]:
    """Holes of both streams seen only as waits that began together (within threshold) are one
    stall of the source, which began where the stream that got furthest before it stopped: an
    encoder holds media back (measured here: the AAC audio's last packet before a stall ended
    about 0.09 s of media before the video's, both written at the same moment), and what it
    held came after the wait, not missing."""
    found = list(holes)
    for i, began in waits.items():
        for j, other in waits.items():
            if holes[i].kind != holes[j].kind and abs(began - other) <= threshold:
                later = max(found[i].media_at, holes[j].media_at)
                found[i] = replace(found[i], media_at=later)
    return found


def _lateness(state: RunState, kind: str, lateness: float, hole_here: bool) -> float:
    """A packet's lateness beyond the least of its run; what a hole just reported explains
    holds until the media catch up with the wall clock again (a burst after a stall)."""
    base = min(state.base.get(kind, lateness), lateness)
    state.base[kind] = base
    late = lateness - base
    explained = min(state.explained.get(kind, 0.0), late)
    state.explained[kind] = max(explained, late) if hole_here else explained
    return late


def _frames(state: RunState) -> float:
    """One video frame and one audio frame (seconds), from the run's last packets: how far
    apart the segmenter may cut the two streams of a segment."""
    total = 0.0
    for kind in ("video", "audio"):
        tail = state.tails.get(kind)
        if tail is not None and tail.start is not None:
            total += max(0.0, tail.end - tail.start)
    return total


def _drift(video: Extent, audio: Extent, state: RunState, frames: float) -> Hole | None:
    """Audio and video drifting apart: where each ends in a segment (the segmenter cuts both at
    one moment, in timestamp order) against where they ended in the run's first. A cut knows
    each stream's end only to one of its frames, so the drift is reported once it passes
    DRIFT_SECONDS plus a video and an audio frame (a 10 fps camera's 100 ms frame alone made a
    drift of 103 ms out of a whole recording), and again each time it doubles."""
    skew = audio.end - video.end
    if state.skew_base is None:
        state.skew_base = skew
        return None
    drift = skew - state.skew_base
    if abs(drift) <= max(DRIFT_SECONDS + frames, 2 * abs(state.drift_reported)):
        return None
    state.drift_reported = drift
    cause = VIDEO_BEHIND if drift > 0 else AUDIO_BEHIND
    return Hole("drift", min(video.end, audio.end), abs(drift), cause)


def _drops(holes: list[Hole], dropped: Sequence[Dropped], threshold: float) -> list[Hole]:
    """Frames dropped to keep time a little at a time (each jump under the threshold, as a
    re-encode starved in slices drops them) that together miss more than the threshold, within
    threshold of each other, and that no video hole covers: one video hole, their sum."""
    found: list[Hole] = []
    spans: list[tuple[float, float, float, str]] = []  # start, end, missing, cause
    for drop in sorted(dropped, key=lambda d: d.start):
        if spans and drop.start - spans[-1][1] <= threshold:
            start, _, missing, cause = spans[-1]
            spans[-1] = (start, drop.end, missing + drop.end - drop.start, cause)
        else:
            spans.append((drop.start, drop.end, drop.end - drop.start, drop.cause))
    for start, end, missing, cause in spans:
        covered = any(
            h.kind == "video" and h.media_at <= end and h.media_at + h.seconds >= start
            for h in holes
        )
        if missing > threshold and not covered:
            found.append(Hole("video", start, missing, cause))
    return found


def _attribute(holes: list[Hole], dropped: Sequence[Dropped]) -> list[Hole]:
    """Holes that overlap frames dropped to keep time, with the drop's cause: in the video, the
    drop is the hole; in the audio, a wait for media there is the same process behind real
    time (measured: a starved re-encode's audio came in bursts, seen as "no media")."""
    found = []
    for hole in holes:
        if hole.kind == "video" or (hole.kind == "audio" and hole.cause == NO_MEDIA):
            for drop in dropped:
                if drop.end >= hole.media_at and drop.start <= hole.media_at + hole.seconds:
                    cause = drop.cause if hole.kind == "video" else AUDIO_LATE
                    hole = Hole(hole.kind, hole.media_at, hole.seconds, cause)
                    break
        found.append(hole)
    return found
