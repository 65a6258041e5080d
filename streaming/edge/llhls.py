"""Low-Latency HLS for the live URL: partial segments cut from the files the recorder is
still writing, without re-encoding.

The recorder's ffmpeg writes each MPEG-TS segment as it goes (flushing every packet). The
`LiveEdge` of the capture process follows the file that is the chamber's program right now and
cuts it into parts at video access-unit boundaries, about `part_target` seconds each. It keeps a
window of the newest live segments with their parts and writes it to `live/<chamber>.json` in the
data folder after every change, so that the viewers' gateway (another process) sees a new part
within a few milliseconds (`EdgeReader`). Both serve the same playlists (`render_playlist`).

The live media sequence is the edge's own: it only grows, across sessions and restarts, because
it is kept in that file. Which file is live is decided when the file begins, so a part once
published always stays part of its segment; a closed part of the session cuts the live segment
short at once, at its last published part, so nothing filmed after the closed part began is ever
published.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import math
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, Self

from recorder.lifecycle import TaskSet

log = logging.getLogger(__name__)

TS_PACKET = 188
PTS_HZ = 90_000
# How often the edge looks at the file being written; ffmpeg writes a frame every 20-40 ms.
TAIL_SECONDS = 0.02
# Parts are listed for segments this many target durations from the end (RFC 8216bis 6.2.2).
PART_WINDOW_TARGETS = 3
# A live file whose camera began a newer one is over once it stops growing this long (seconds),
# even if its end was never reported.
STALE_HEAD_SECONDS = 1.0
# How many finished files each chamber remembers (see LiveEdge.file_started).
FINISHED_KEPT = 64
# The gateway reads each edge file at least this often, changed or not (seconds).
REREAD = 0.5


@dataclass(frozen=True)
class Part:
    """A partial segment: a byte range of its segment's file."""

    start: int
    end: int
    duration: float
    independent: bool


class PartCutter:
    """Cuts a growing MPEG-TS file into parts that begin where a video frame begins.

    A part ends before the first frame that would make it longer than `target` seconds; frames
    are found by the start of a video PES packet, their times by its DTS (or PTS)."""

    def __init__(self, target: float) -> None:
        self.target = target
        self.offset = 0  # bytes consumed; always whole packets
        self._video_pid: int | None = None
        self._part_start = 0
        self._part_time: int | None = None  # 90 kHz time of the part's first frame
        self._part_key = False
        self._first_time: int | None = None
        self._last_time: int | None = None
        self._frame = 0  # the shortest positive gap between frames seen, 90 kHz
        self.parts: list[Part] = []

    def feed(self, data: bytes) -> list[Part]:
        """Consume the whole packets in data (the bytes after `offset`); returns new parts."""
        found: list[Part] = []
        usable = len(data) - len(data) % TS_PACKET
        for at in range(0, usable, TS_PACKET):
            packet = data[at : at + TS_PACKET]
            frame = self._video_frame(packet)
            if frame is not None:
                part = self._frame_starts(self.offset + at, *frame)
                if part is not None:
                    found.append(part)
        self.offset += usable
        self.parts.extend(found)
        return found

    def finish(self, size: int, duration: float) -> Part | None:
        """The file is complete at `size` bytes: the last part, timed by its video frames
        (ending one frame after the last frame began), or by the file's `duration`."""
        if size <= self._part_start:
            return None
        if self._part_time is not None and self._last_time is not None and self._frame:
            length = (self._last_time - self._part_time + self._frame) / PTS_HZ
        else:
            length = duration - sum(p.duration for p in self.parts)
        part = Part(self._part_start, size, max(0.001, length), self._part_key or not self.parts)
        self.parts.append(part)
        self._part_start = size
        return part

    def _video_frame(self, packet: bytes) -> tuple[int, bool] | None:
        """(time, keyframe) if this packet begins a video frame."""
        if packet[0] != 0x47 or not packet[1] & 0x40:
            return None
        pid = ((packet[1] & 0x1F) << 8) | packet[2]
        control = (packet[3] >> 4) & 3
        payload = 4
        random_access = False
        if control & 2:
            length = packet[4]
            if length and len(packet) > 5:
                random_access = bool(packet[5] & 0x40)
            payload = 5 + length
        if not control & 1 or payload + 14 > len(packet):
            return None
        pes = packet[payload:]
        if pes[0:3] != b"\x00\x00\x01":
            return None
        if self._video_pid is None:
            if not 0xE0 <= pes[3] <= 0xEF:
                return None
            self._video_pid = pid
        elif pid != self._video_pid:
            return None
        flags = pes[7] >> 6
        if flags == 0:
            return None
        at = 14 if flags == 3 else 9  # the DTS, when present, orders frames as decoded
        stamp = pes[at : at + 5]
        time_90k = (
            ((stamp[0] >> 1) & 7) << 30
            | stamp[1] << 22
            | (stamp[2] >> 1) << 15
            | stamp[3] << 7
            | stamp[4] >> 1
        )
        return time_90k, random_access

    def _frame_starts(self, offset: int, at: int, key: bool) -> Part | None:
        if self._last_time is not None and at > self._last_time:
            gap = at - self._last_time
            self._frame = gap if not self._frame else min(self._frame, gap)
        self._last_time = at
        if self._part_time is None:
            self._first_time = at
            self._part_time = at
            self._part_key = key or offset == 0
            return None
        elapsed = at - self._part_time
        if elapsed <= 0 or (elapsed + self._frame) / PTS_HZ <= self.target + 0.001:
            return None
        part = Part(self._part_start, offset, elapsed / PTS_HZ, self._part_key)
        self._part_start = offset
        self._part_time = at
        self._part_key = key
        return part


@dataclass
class LiveSegment:
    """One segment of the live window, complete or still being written."""

    msn: int
    path: str  # below the data folder
    camera: str
    run: str  # camera/run folder: a change of run is a discontinuity
    started_at: str  # wall clock, ISO 8601 (EXT-X-PROGRAM-DATE-TIME)
    discontinuity: bool
    parts: list[Part] = field(default_factory=list)
    duration: float = 0.0
    end: int | None = None  # bytes of the file that belong to the segment, once complete

    @property
    def complete(self) -> bool:
        """Whether the segment is finished (its parts will not change)."""
        return self.end is not None

    def to_json(self) -> dict[str, Any]:
        """The form written to the edge file."""
        return {
            "msn": self.msn,
            "path": self.path,
            "camera": self.camera,
            "run": self.run,
            "started_at": self.started_at,
            "discontinuity": self.discontinuity,
            "parts": [[p.start, p.end, round(p.duration, 6), p.independent] for p in self.parts],
            "duration": round(self.duration, 6),
            "end": self.end,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LiveSegment:
        """Read the edge file's form."""
        return cls(
            msn=int(data["msn"]),
            path=str(data["path"]),
            camera=str(data["camera"]),
            run=str(data["run"]),
            started_at=str(data["started_at"]),
            discontinuity=bool(data["discontinuity"]),
            parts=[Part(int(a), int(b), float(d), bool(i)) for a, b, d, i in data["parts"]],
            duration=float(data["duration"]),
            end=None if data["end"] is None else int(data["end"]),
        )


@dataclass(frozen=True)
class EdgeSnapshot:
    """A chamber's live window at one moment: what every playlist request answers from."""

    version: int
    segments: tuple[LiveSegment, ...]
    disc_sequence: int  # discontinuity sequence of the first segment
    part_target: float
    target: int

    @property
    def head(self) -> LiveSegment | None:
        """The segment being written, if the live picture is flowing."""
        last = self.segments[-1] if self.segments else None
        return last if last is not None and not last.complete else None

    @property
    def last_msn(self) -> int:
        """The media sequence number of the last segment listed (complete or not)."""
        return self.segments[-1].msn if self.segments else -1

    def find(self, msn: int) -> LiveSegment | None:
        """The segment with this media sequence number, if still in the window."""
        for segment in reversed(self.segments):
            if segment.msn == msn:
                return segment
        return None

    def has(self, msn: int, part: int | None) -> bool:
        """Whether the window holds segment msn complete (part None), or its part `part`."""
        for segment in reversed(self.segments):
            if segment.msn > msn:
                return True
            if segment.msn == msn:
                return segment.complete or (part is not None and len(segment.parts) > part)
        return False

    def to_json(self) -> dict[str, Any]:
        """The edge file's content."""
        return {
            "version": self.version,
            "disc_sequence": self.disc_sequence,
            "part_target": self.part_target,
            "target": self.target,
            "segments": [s.to_json() for s in self.segments],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EdgeSnapshot:
        """Read the edge file."""
        return cls(
            version=int(data["version"]),
            segments=tuple(LiveSegment.from_json(s) for s in data["segments"]),
            disc_sequence=int(data["disc_sequence"]),
            part_target=float(data["part_target"]),
            target=int(data["target"]),
        )


class EdgeSource(Protocol):
    """What the live routes need: each chamber's window now, and a way to wait for more."""

    def snapshot(self, chamber: str) -> EdgeSnapshot | None:
        """The chamber's live window, or None before anything was transmitted."""
        ...

    async def wait(
        self, chamber: str, ready: Callable[[EdgeSnapshot], bool], timeout: float
    ) -> EdgeSnapshot | None:
        """The first snapshot for which ready() holds, or None after timeout seconds."""
        ...


class _Changes:
    """Wakes the requests waiting for a chamber's window to change."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self.listeners: list[Callable[[str], None]] = []

    def notify(self, chamber: str) -> None:
        # Callbacks first: they answer held requests straight away, without a task each.
        for listener in self.listeners:
            try:
                listener(chamber)
            except Exception:
                log.exception("live window listener failed")
        event = self._events.pop(chamber, None)
        if event is not None:
            event.set()

    async def wait(
        self,
        chamber: str,
        current: Callable[[], EdgeSnapshot | None],
        ready: Callable[[EdgeSnapshot], bool],
        timeout: float,
    ) -> EdgeSnapshot | None:
        deadline = time.monotonic() + timeout
        while True:
            snap = current()
            if snap is not None and ready(snap):
                return snap
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            event = self._events.setdefault(chamber, asyncio.Event())
            # asyncio.timeout rather than wait_for: no task per waiting request.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await event.wait()


def edge_file(data_path: Path, chamber: str) -> Path:
    """Where a chamber's live window is written for the gateway."""
    return data_path / "live" / f"{chamber}.json"


def _target(segments: Sequence[LiveSegment], segment_seconds: float) -> int:
    longest = max([segment_seconds] + [s.duration for s in segments if s.complete])
    return max(1, math.floor(longest + 0.5))


@dataclass
class _Candidate:
    """A file that began while its camera could be live; its parts are cut as it grows."""

    camera: str
    path: Path
    started_at: datetime
    cutter: PartCutter
    used: bool = False
    grew_at: float = 0.0  # when it last gained bytes while live (time.monotonic())


class _EdgeView:
    """What both sides share: the latest snapshot of each chamber, and waiting for a newer one;
    `async with edge:` follows the files (run()) until the block is left."""

    def __init__(self) -> None:
        self._snap: dict[str, EdgeSnapshot] = {}
        self._changes = _Changes()
        self._tasks = TaskSet(type(self).__name__)

    _task_name = "live-edge"

    async def run(self) -> None:
        """Follow the live windows until cancelled."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        self._tasks.spawn(self.run(), name=self._task_name)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._tasks.close()

    def snapshot(self, chamber: str) -> EdgeSnapshot | None:
        """The chamber's live window now, or None before anything was transmitted."""
        snap = self._snap.get(chamber)
        return snap if snap is not None and snap.segments else None

    async def wait(
        self, chamber: str, ready: Callable[[EdgeSnapshot], bool], timeout: float
    ) -> EdgeSnapshot | None:
        """Wait (bounded) until the chamber's window satisfies ready()."""
        return await self._changes.wait(chamber, lambda: self.snapshot(chamber), ready, timeout)

    def listen(self, callback: Callable[[str], None]) -> None:
        """Call callback(chamber) each time a chamber's window changes (on the event loop)."""
        self._changes.listeners.append(callback)


class LiveEdge(_EdgeView):
    """The capture process's view of each chamber's live window (see the module docstring).

    `allowed(chamber, camera, started_at)` says whether a file of camera that began at
    started_at may be on the public live stream now; the session control owns that rule."""

    def __init__(
        self,
        data_path: Path,
        chambers: Sequence[str],
        *,
        window_segments: int,
        part_target: float,
        segment_seconds: float,
        allowed: Callable[[str, str, datetime], bool],
        fallback_camera: str = "slate",
        went_live: Callable[[str, str], None] | None = None,
    ) -> None:
        self._data = data_path
        self._window = window_segments
        self._part_target = part_target
        self._segment_seconds = segment_seconds
        self._allowed = allowed
        self._fallback = fallback_camera
        self._went_live = went_live
        super().__init__()
        self._segments: dict[str, list[LiveSegment]] = {c: [] for c in chambers}
        self._disc: dict[str, int] = dict.fromkeys(chambers, 0)
        self._next_msn: dict[str, int] = dict.fromkeys(chambers, 0)
        # The next live segment follows a restart or a segment cut short: a discontinuity.
        self._restart_disc: dict[str, bool] = dict.fromkeys(chambers, False)
        self._version = 0
        self._candidates: dict[str, dict[str, _Candidate]] = {c: {} for c in chambers}
        self._head: dict[str, _Candidate | None] = dict.fromkeys(chambers)
        # Files whose end was heard, newest last, with their durations: a late start of one of
        # them must not make it live and wait for an end that has come already.
        self._finished: dict[str, OrderedDict[Path, float]] = {c: OrderedDict() for c in chambers}
        (data_path / "live").mkdir(parents=True, exist_ok=True)
        for chamber in chambers:
            self._restore(chamber)

    def _restore(self, chamber: str) -> None:
        """Take the window from the last run: numbering never goes back on the same URL."""
        path = edge_file(self._data, chamber)
        try:
            snap = EdgeSnapshot.from_json(json.loads(path.read_text("utf-8")))
        except FileNotFoundError:
            return
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("live window %s unreadable (%s); numbering starts afresh", path, exc)
            return
        kept = [s for s in snap.segments if s.complete]
        self._segments[chamber] = kept
        self._disc[chamber] = snap.disc_sequence
        self._next_msn[chamber] = snap.last_msn + 1
        # Whatever comes next follows a restart: a discontinuity.
        self._restart_disc[chamber] = True
        self._version = max(self._version, snap.version)
        self._publish(chamber)

    # The recorder's side ---------------------------------------------------------------------

    def file_started(self, chamber: str, camera: str, path: Path, started_at: datetime) -> None:
        """A camera began a new segment file.

        Reports may come late or out of order (a busy machine): a late start of a file older
        than the camera's newest is ignored, and a file whose end was heard before its start
        is no candidate any more (shown whole, at once, only if nothing else is live)."""
        if chamber not in self._candidates:
            return
        candidates = self._candidates[chamber]
        newest = candidates.get(camera)
        if newest is not None and newest.started_at > started_at:
            return
        candidate = _Candidate(camera, path, started_at, PartCutter(self._part_target))
        candidates[camera] = candidate
        if self._head[chamber] is None:
            self._choose_head(chamber)
        if path in self._finished[chamber] and candidates.get(camera) is candidate:
            del candidates[camera]

    def file_finished(self, chamber: str, camera: str, path: Path, duration: float) -> None:
        """A segment file is complete (listed by ffmpeg): close it if it is live."""
        if chamber not in self._candidates:
            return
        finished = self._finished[chamber]
        finished[path] = duration
        while len(finished) > FINISHED_KEPT:
            finished.popitem(last=False)
        candidate = self._candidates[chamber].get(camera)
        if candidate is not None and candidate.path == path:
            del self._candidates[chamber][camera]
        head = self._head[chamber]
        if head is None or head.path != path:
            return
        self._close_head(chamber, head, duration)

    def _close_head(self, chamber: str, head: _Candidate, duration: float) -> None:
        """The live file is complete: its last part, then the next live segment."""
        self._advance(chamber, head)
        try:
            size = head.path.stat().st_size
        except FileNotFoundError:
            size = head.cutter.offset
        last = head.cutter.finish(size, duration)
        segment = self._segments[chamber][-1]
        if last is not None:
            segment.parts.append(last)
        segment.end = size
        segment.duration = sum(p.duration for p in segment.parts)
        self._head[chamber] = None
        self._choose_head(chamber)
        self._publish(chamber)

    def _stale(self, chamber: str, head: _Candidate, now: float) -> bool:
        """Whether the live file is over although its end was not heard: its camera began a
        newer file, and it has not grown for STALE_HEAD_SECONDS."""
        newer = self._candidates[chamber].get(head.camera)
        return (
            newer is not None
            and newer is not head
            and newer.started_at >= head.started_at
            and now - head.grew_at > STALE_HEAD_SECONDS
        )

    def run_ended(self, chamber: str, camera: str) -> None:
        """A camera's ffmpeg ended: its unfinished file will never be listed."""
        if chamber not in self._candidates:
            return
        self._candidates[chamber].pop(camera, None)
        head = self._head[chamber]
        if head is not None and head.camera == camera:
            self.cut(chamber)

    def cut(self, chamber: str) -> None:
        """End the live segment at its last published part, now (a closed part began)."""
        head = self._head.get(chamber)
        if head is None:
            return
        self._head[chamber] = None
        self._restart_disc[chamber] = True
        segments = self._segments[chamber]
        segment = segments[-1]
        if segment.parts:
            segment.end = segment.parts[-1].end
            segment.duration = sum(p.duration for p in segment.parts)
        else:
            segments.pop()  # nothing of it was published: as if it never began
            self._next_msn[chamber] -= 1
        self._choose_head(chamber)
        self._publish(chamber)

    def reconsider(self, chamber: str) -> None:
        """The program changed: start a live segment now if none runs and one may."""
        if chamber in self._head and self._head[chamber] is None:
            self._choose_head(chamber)

    def _choose_head(self, chamber: str) -> None:
        """The next live segment: the newest file of a camera that may be live now."""
        # The newest file of a camera first; the slate only when no camera may be shown.
        for candidate in sorted(
            self._candidates[chamber].values(),
            key=lambda c: (c.camera != self._fallback, c.started_at),
            reverse=True,
        ):
            if not candidate.used and self._allowed(
                chamber, candidate.camera, candidate.started_at
            ):
                break
        else:
            return
        segments = self._segments[chamber]
        run = f"{candidate.camera}/{candidate.path.parent.name}"
        previous = segments[-1] if segments else None
        discontinuity = previous is not None and (
            self._restart_disc[chamber] or previous.run != run
        )
        self._restart_disc[chamber] = False
        msn = self._next_msn[chamber]
        self._next_msn[chamber] = msn + 1
        segments.append(
            LiveSegment(
                msn=msn,
                path=os.path.relpath(candidate.path, self._data),
                camera=candidate.camera,
                run=run,
                started_at=candidate.started_at.isoformat(),
                discontinuity=discontinuity,
            )
        )
        candidate.used = True
        candidate.grew_at = time.monotonic()
        self._head[chamber] = candidate
        self._advance(chamber, candidate)
        self._publish(chamber)
        if self._went_live is not None:
            self._went_live(chamber, candidate.camera)
        done = self._finished[chamber].get(candidate.path)
        if done is not None and self._head[chamber] is candidate:
            self._close_head(chamber, candidate, done)  # its end was heard before its start

    def _advance(self, chamber: str, head: _Candidate) -> bool:
        """Cut the parts the head file has gained; whether any were."""
        try:
            with head.path.open("rb") as fh:
                fh.seek(head.cutter.offset)
                data = fh.read()
        except FileNotFoundError:
            return False
        parts = head.cutter.feed(data)
        if parts:
            self._segments[chamber][-1].parts.extend(parts)
        return bool(parts)

    def _publish(self, chamber: str) -> None:
        segments = self._segments[chamber]
        complete = [s for s in segments if s.complete]
        excess = len(complete) - self._window
        while excess > 0 and segments and segments[0].complete:
            dropped = segments.pop(0)
            excess -= 1
            if segments and segments[0].discontinuity:
                self._disc[chamber] += 1
            del dropped
        # Parts are listed only near the live edge.
        target = _target(segments, self._segment_seconds)
        horizon = 0.0
        for segment in reversed(segments):
            if horizon > PART_WINDOW_TARGETS * target and segment.complete:
                segment.parts = []
            horizon += segment.duration
        self._version += 1
        snap = EdgeSnapshot(
            self._version,
            tuple(replace(s, parts=list(s.parts)) for s in segments),
            self._disc[chamber],
            self._part_target,
            target,
        )
        self._snap[chamber] = snap
        path = edge_file(self._data, chamber)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(snap.to_json(), separators=(",", ":")), "utf-8")
        os.replace(tmp, path)
        self._changes.notify(chamber)

    async def run(self) -> None:
        """Follow the live files until cancelled."""
        while True:
            now = time.monotonic()
            for chamber, head in list(self._head.items()):
                if head is None:
                    continue
                if self._advance(chamber, head):
                    head.grew_at = now
                    self._publish(chamber)
                elif self._stale(chamber, head, now):
                    log.warning(
                        "chamber %s: %s ended without a word from the recorder (camera %s "
                        "began a newer file); the live edge moves on",
                        chamber,
                        head.path,
                        head.camera,
                    )
                    self._close_head(chamber, head, sum(p.duration for p in head.cutter.parts))
            await asyncio.sleep(TAIL_SECONDS)


class ByteCache:
    """The newest parts and segments in memory: every viewer asks for the same few, and the
    viewers released together when a part appears share one read of it."""

    def __init__(self, root: Path, max_bytes: int = 64 * 1024 * 1024) -> None:
        self._root = root.resolve()
        self._max = max_bytes
        self._size = 0
        self._items: OrderedDict[tuple[str, int, int], bytes] = OrderedDict()
        self._reading: dict[tuple[str, int, int], asyncio.Future[bytes]] = {}

    async def read(self, rel: str, start: int, end: int) -> bytes:
        """Bytes start..end of the file at rel (below the root); FileNotFoundError if gone."""
        found = self.lookup(rel, start, end)
        if isinstance(found, bytes):
            return found
        return await asyncio.shield(found)

    def lookup(self, rel: str, start: int, end: int) -> bytes | asyncio.Future[bytes]:
        """The bytes if held, else the (shared) read of them under way: a future that gives
        them or FileNotFoundError."""
        key = (rel, start, end)
        data = self.get(key)
        if data is not None:
            return data
        pending = self._reading.get(key)
        if pending is None:
            path = self._root / rel

            def read() -> bytes:
                with path.open("rb") as fh:
                    fh.seek(start)
                    return fh.read(end - start)

            pending = asyncio.ensure_future(asyncio.to_thread(read))
            self._reading[key] = pending

            def done(future: asyncio.Future[bytes]) -> None:
                self._reading.pop(key, None)
                if not future.cancelled() and future.exception() is None:
                    self.put(key, future.result())

            pending.add_done_callback(done)
        return pending

    def get(self, key: tuple[str, int, int]) -> bytes | None:
        """The bytes, if held (and mark them recently used)."""
        data = self._items.get(key)
        if data is not None:
            self._items.move_to_end(key)
        return data

    def put(self, key: tuple[str, int, int], data: bytes) -> None:
        """Keep the bytes, forgetting the least recently used beyond the budget."""
        if key in self._items:
            return
        self._items[key] = data
        self._size += len(data)
        while self._size > self._max and self._items:
            _, old = self._items.popitem(last=False)
            self._size -= len(old)


class RenderedPlaylists:
    """Each version of a window is rendered once per form (prefix, delta), not per request: a
    thousand players blocking on the same part all get the same bytes."""

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._items: OrderedDict[tuple[str, int, str, bool], bytes] = OrderedDict()

    def get(self, chamber: str, snap: EdgeSnapshot, prefix: str, skip: bool) -> bytes:
        """The playlist of snap, rendered."""
        key = (chamber, snap.version, prefix, skip)
        body = self._items.get(key)
        if body is None:
            body = render_playlist(snap, prefix=prefix, skip=skip).encode()
            self._items[key] = body
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return body


class EdgeReader(_EdgeView):
    """The gateway's view: reads the windows the capture process writes, when they change."""

    _task_name = "live-edge-reader"

    def __init__(self, data_path: Path, chambers: Sequence[str]) -> None:
        self._data = data_path
        super().__init__()
        self._chambers = list(chambers)
        self._stamp: dict[str, tuple[int, int, int]] = {}
        self._read_at: dict[str, float] = {}
        for chamber in self._chambers:
            self._poll(chamber)

    def _poll(self, chamber: str) -> bool:
        path = edge_file(self._data, chamber)
        try:
            st = path.stat()
        except FileNotFoundError:
            return False
        # A new file replaces the old one each time; its inode number may be reused and two
        # writes may share a coarse mtime, so besides the size, the file is read again at
        # least every REREAD_SECONDS whatever its stamp, and the version inside decides.
        stamp = (st.st_mtime_ns, st.st_ino, st.st_size)
        now = time.monotonic()
        if self._stamp.get(chamber) == stamp and now - self._read_at.get(chamber, 0) < REREAD:
            return False
        try:
            snap = EdgeSnapshot.from_json(json.loads(path.read_text("utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("live window %s unreadable: %s", path, exc)
            return False
        self._stamp[chamber] = stamp
        self._read_at[chamber] = now
        old = self._snap.get(chamber)
        if old is not None and old.version == snap.version:
            return False
        self._snap[chamber] = snap
        self._changes.notify(chamber)
        return True

    async def run(self) -> None:
        """Read the edge files until cancelled: at once when one is replaced (inotify, where
        the kernel offers it: a part reaches the viewers up to TAIL_SECONDS sooner), and in any
        case every TAIL_SECONDS."""
        changed = asyncio.Event()
        watch = _DirectoryWatch(self._data / "live", changed.set)
        try:
            while True:
                changed.clear()
                for chamber in self._chambers:
                    self._poll(chamber)
                watch.start()  # until it can (the folder may not be there yet)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(TAIL_SECONDS):
                        await changed.wait()
        finally:
            watch.stop()


class _DirectoryWatch:
    """Calls `changed()` (on the event loop) when a file in `folder` is written or replaced,
    through Linux's inotify; does nothing where that is not available."""

    IN_CLOSE_WRITE = 0x00000008
    IN_MOVED_TO = 0x00000080

    def __init__(self, folder: Path, changed: Callable[[], None]) -> None:
        self._folder = folder
        self._changed = changed
        self._fd: int | None = None
        self._tried_at = -math.inf

    def start(self) -> None:
        """Begin watching, unless watching already (or tried less than a second ago)."""
        now = time.monotonic()
        if self._fd is not None or now - self._tried_at < 1.0:
            return
        self._tried_at = now
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = int(libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC))
        except (OSError, AttributeError):
            return
        if fd < 0:
            return
        mask = self.IN_CLOSE_WRITE | self.IN_MOVED_TO
        if libc.inotify_add_watch(fd, os.fsencode(self._folder), mask) < 0:
            os.close(fd)
            return
        self._fd = fd
        asyncio.get_running_loop().add_reader(fd, self._readable)

    def _readable(self) -> None:
        assert self._fd is not None
        with contextlib.suppress(BlockingIOError):
            while os.read(self._fd, 65536):
                pass
        self._changed()

    def stop(self) -> None:
        """Stop watching."""
        if self._fd is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closing
                asyncio.get_running_loop().remove_reader(self._fd)
            os.close(self._fd)
            self._fd = None


def render_playlist(
    snap: EdgeSnapshot, *, prefix: str, skip: bool = False, hold_back_parts: float = 3.0
) -> str:
    """The live media playlist with parts, preload hint and (when asked) a delta update."""
    target = snap.target
    part_target = snap.part_target
    skip_until = 6 * target
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:9",
        f"#EXT-X-TARGETDURATION:{target}",
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,"
        f"PART-HOLD-BACK={hold_back_parts * part_target:.3f},"
        f"HOLD-BACK={3 * target:.3f},CAN-SKIP-UNTIL={skip_until:.1f}",
        f"#EXT-X-PART-INF:PART-TARGET={part_target:.3f}",
        f"#EXT-X-MEDIA-SEQUENCE:{snap.segments[0].msn}",
        f"#EXT-X-DISCONTINUITY-SEQUENCE:{snap.disc_sequence}",
        "#EXT-X-INDEPENDENT-SEGMENTS",
    ]
    segments = list(snap.segments)
    skipped = 0
    if skip:
        # Segments more than CAN-SKIP-UNTIL from the end may be left out of a delta update
        # (but never one that begins a discontinuity: its tag would be lost with it).
        remaining = sum(s.duration for s in segments)
        for index, segment in enumerate(segments):
            if remaining - segment.duration < skip_until or (index and segment.discontinuity):
                break
            remaining -= segment.duration
            skipped += 1
        if skipped:
            lines.append(f"#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}")
    for index, segment in enumerate(segments[skipped:], start=skipped):
        if segment.discontinuity and index > 0:  # the first one's is counted in the sequence
            lines.append("#EXT-X-DISCONTINUITY")
        lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{_pdt(segment.started_at)}")
        for number, part in enumerate(segment.parts):
            attrs = f'DURATION={part.duration:.5f},URI="{prefix}p/{segment.msn}.{number}.ts"'
            if part.independent:
                attrs += ",INDEPENDENT=YES"
            lines.append(f"#EXT-X-PART:{attrs}")
        if segment.complete:
            lines.append(f"#EXTINF:{segment.duration:.5f},")
            lines.append(f"{prefix}s/{segment.msn}-{segment.camera}.ts")
    head = snap.head
    if head is not None:
        hint = f"{prefix}p/{head.msn}.{len(head.parts)}.ts"
    else:
        hint = f"{prefix}p/{snap.last_msn + 1}.0.ts"
    lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="{hint}"')
    return "\n".join(lines) + "\n"


def _pdt(iso: str) -> str:
    at = datetime.fromisoformat(iso)
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
