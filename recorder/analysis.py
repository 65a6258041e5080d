"""Looks inside each finished segment, off the capture path, so that a source that sends a frozen
picture or silence is reported instead of passing for a healthy recording.

One long-lived ffmpeg per camera is fed the finished segments on stdin and decodes only
keyframes (a 64x36 gray thumbnail each) and the audio (its peak level each second). Measured
here, starting ffmpeg costs about 70 ms of CPU, so one process per segment cost more than the
capture itself; a persistent one costs a fraction of that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from config.settings import MonitoringSettings
from recorder.lifecycle import TaskSet
from recorder.priority import ANALYSIS, spawn

log = logging.getLogger(__name__)

THUMB_W, THUMB_H = 64, 36
THUMB_BYTES = THUMB_W * THUMB_H
PEAK_KEY = "lavfi.astats.Overall.Peak_level="
QUEUE_LIMIT = 32
WRITE_TIMEOUT_SECONDS = 10.0
IDLE_SECONDS = 30.0
# After this many analysed keyframes without a single audio level, the source has no audio.
NO_AUDIO_AFTER_KEYFRAMES = 4

Key = tuple[int, str]


def analysis_argv() -> list[str]:
    """ffmpeg argv: MPEG-TS on stdin; keyframe thumbnails on stdout; audio peaks (one a second)
    in its log on stderr."""
    return [
        # ametadata prints through the log (unbuffered); its file= output is held in a buffer.
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "info",
        "-skip_frame", "nokey", "-analyzeduration", "1000000", "-probesize", "1000000",
        "-f", "mpegts", "-i", "pipe:0",
        "-map", "0:v:0?", "-vf", f"scale={THUMB_W}:{THUMB_H},format=gray",
        "-fps_mode", "passthrough", "-flush_packets", "1", "-f", "rawvideo", "pipe:1",
        "-map", "0:a:0?",
        "-af", "asetnsamples=n=48000:p=0,astats=metadata=1:reset=1,"
        f"ametadata=mode=print:key={PEAK_KEY[:-1]}",
        "-f", "null", "-",
    ]  # fmt: skip


def picture_difference(a: bytes, b: bytes) -> float:
    """Mean absolute difference of two gray thumbnails (0 = identical, 255 = opposite)."""
    if not a or len(a) != len(b):
        return 255.0
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)


@dataclass
class SourceHealth:
    """What a capture's recent media looked and sounded like."""

    session_id: int
    chamber_id: str
    camera_id: str
    segments_fed: int = 0
    keyframes: int = 0
    audio_seconds: int = 0
    audio_max_db: float | None = None
    thumbnail: bytes = b""
    frozen_since: float | None = None
    silent_since: float | None = None

    @property
    def has_audio(self) -> bool | None:
        """True once audio was heard; False if pictures came through analysis but no sound did;
        None until then (the analyser buffers a little before its first output)."""
        if self.audio_seconds:
            return True
        return False if self.keyframes >= NO_AUDIO_AFTER_KEYFRAMES else None

    @property
    def frozen_seconds(self) -> float:
        """How long the picture has stayed the same."""
        return 0.0 if self.frozen_since is None else time.monotonic() - self.frozen_since

    @property
    def silent_seconds(self) -> float:
        """How long the audio has stayed below the silence level."""
        return 0.0 if self.silent_since is None else time.monotonic() - self.silent_since

    def problems(self, settings: MonitoringSettings) -> list[str]:
        """Human-readable problems with the source now (empty when it looks healthy)."""
        found = []
        if self.frozen_seconds >= settings.frozen_after_seconds:
            found.append(f"picture frozen for {self.frozen_seconds:.0f} s")
        if self.has_audio is False:
            found.append("no audio track")
        elif self.silent_seconds >= settings.silent_after_seconds:
            found.append(f"audio silent for {self.silent_seconds:.0f} s")
        return found


class _CameraProbe:
    """The long-lived analysing ffmpeg of one capture, and the readers of its output."""

    def __init__(self, health: SourceHealth, settings: MonitoringSettings) -> None:
        self.health = health
        self._settings = settings
        self._proc: asyncio.subprocess.Process | None = None
        self._readers = TaskSet("segment analysis: ffmpeg output")
        self.last_fed = time.monotonic()

    async def feed(self, path: Path) -> None:
        """Send one finished segment to the analysing ffmpeg (started on first use)."""
        data = await asyncio.to_thread(path.read_bytes)
        if self._proc is None or self._proc.returncode is not None:
            await self._spawn()
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write(data)
        async with asyncio.timeout(WRITE_TIMEOUT_SECONDS):
            await self._proc.stdin.drain()
        self.health.segments_fed += 1
        self.last_fed = time.monotonic()

    async def _spawn(self) -> None:
        await self.close()
        # Below capture and the live edge (recorder/priority.py): when it cannot keep up, the
        # queue skips segments.
        self._proc = await spawn(
            ANALYSIS,
            analysis_argv(),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        assert self._proc.stdout is not None and self._proc.stderr is not None
        self._readers = TaskSet("segment analysis: ffmpeg output")
        self._readers.spawn(self._read_pictures(self._proc.stdout), name="analysis-pictures")
        self._readers.spawn(self._read_levels(self._proc.stderr), name="analysis-levels")

    async def _read_pictures(self, stream: asyncio.StreamReader) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError):
            while True:
                thumb = await stream.readexactly(THUMB_BYTES)
                health = self.health
                same = (
                    picture_difference(thumb, health.thumbnail) < self._settings.frozen_difference
                )
                if not same:
                    health.frozen_since = None
                elif health.frozen_since is None:
                    health.frozen_since = time.monotonic()
                health.thumbnail = thumb
                health.keyframes += 1

    async def _read_levels(self, stream: asyncio.StreamReader) -> None:
        async for raw in stream:
            line = raw.decode("ascii", "replace").strip()
            if PEAK_KEY not in line:
                continue
            value = line.split(PEAK_KEY, 1)[1].strip()
            try:
                peak = float(value)
            except ValueError:
                continue
            if peak != peak or peak == float("-inf"):  # nan or -inf: digital silence
                peak = -200.0
            health = self.health
            health.audio_max_db = peak
            health.audio_seconds += 1
            if peak >= self._settings.silent_below_db:
                health.silent_since = None
            elif health.silent_since is None:
                health.silent_since = time.monotonic()

    async def close(self) -> None:
        """End the analysing ffmpeg and its readers."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await asyncio.shield(proc.wait())
        await self._readers.close()


class SegmentAnalyzer:
    """A bounded queue of finished segments and one worker feeding each camera's analyser."""

    def __init__(self, settings: MonitoringSettings) -> None:
        self._settings = settings
        self._queue: asyncio.Queue[tuple[Key, str, Path]] = asyncio.Queue(QUEUE_LIMIT)
        self._probes: dict[Key, _CameraProbe] = {}
        self.dropped = 0
        self._tasks = TaskSet("segment analyzer")

    async def __aenter__(self) -> Self:
        self._tasks.spawn(self.run(), name="segment-analyzer")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._tasks.close()  # run() closes every analyser on its way out

    def submit(self, key: Key, chamber_id: str, path: Path, duration: float) -> None:
        """Queue a segment; when analysis falls behind, segments are skipped, never waited for."""
        try:
            self._queue.put_nowait((key, chamber_id, path))
        except asyncio.QueueFull:
            self.dropped += 1

    def health(self, key: Key) -> SourceHealth | None:
        """The latest analysis of a capture (session, camera), if any."""
        probe = self._probes.get(key)
        return None if probe is None else probe.health

    async def run(self) -> None:
        """Feed queued segments until cancelled; closes every analyser on the way out."""
        try:
            while True:
                try:
                    async with asyncio.timeout(5.0):
                        key, chamber_id, path = await self._queue.get()
                except TimeoutError:
                    await self._close_idle()
                    continue
                await self._feed(key, chamber_id, path)
        finally:
            for probe in list(self._probes.values()):
                await probe.close()

    async def _feed(self, key: Key, chamber_id: str, path: Path) -> None:
        probe = self._probes.get(key)
        if probe is None:
            probe = _CameraProbe(SourceHealth(key[0], chamber_id, key[1]), self._settings)
            self._probes[key] = probe
        before = _kinds(probe.health.problems(self._settings))
        try:
            await probe.feed(path)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the analyser is restarted with the next segment
            log.warning("analysis of %s failed: %s", path, exc)
            await probe.close()
        after = probe.health.problems(self._settings)
        if _kinds(after) != before and after:
            log.warning("session %s, camera %s: %s", key[0], key[1], "; ".join(after))
        elif before and not after:
            log.info("session %s, camera %s: source looks healthy again", key[0], key[1])

    async def _close_idle(self) -> None:
        now = time.monotonic()
        for key, probe in list(self._probes.items()):
            if now - probe.last_fed > IDLE_SECONDS:
                await probe.close()
                del self._probes[key]


def _kinds(problems: list[str]) -> list[str]:
    return [p.split(" for ")[0] for p in problems]
