"""Looks inside each finished segment, off the capture path, so that a source that sends a frozen
picture or silence is reported instead of passing for a healthy recording."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from config.settings import MonitoringSettings

log = logging.getLogger(__name__)

THUMB_W, THUMB_H = 64, 36
MAX_VOLUME = re.compile(rb"max_volume:\s*(-?[\d.]+|-inf) dB")
QUEUE_LIMIT = 32
PROBE_TIMEOUT_SECONDS = 20.0


def analysis_argv(path: Path) -> list[str]:
    """ffmpeg argv: the first keyframe as a tiny gray thumbnail on stdout, and the audio's peak.

    Only keyframes are decoded (-skip_frame nokey), so this costs little even for 1080p.
    """
    return [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "info",
        "-skip_frame", "nokey", "-i", str(path),
        "-map", "0:v:0", "-vf", f"scale={THUMB_W}:{THUMB_H},format=gray", "-frames:v", "1",
        "-f", "rawvideo", "pipe:1",
        "-map", "0:a:0?", "-af", "volumedetect", "-f", "null", "-",
    ]  # fmt: skip


def picture_difference(a: bytes, b: bytes) -> float:
    """Mean absolute difference of two gray thumbnails (0 = identical, 255 = opposite)."""
    if not a or len(a) != len(b):
        return 255.0
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)


@dataclass
class SourceHealth:
    """What the last segments of a capture looked and sounded like."""

    session_id: int
    chamber_id: str
    camera_id: str
    analysed: int = 0
    frozen_seconds: float = 0.0
    silent_seconds: float = 0.0
    audio_max_db: float | None = None
    has_audio: bool | None = None
    thumbnail: bytes = b""

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


def _kinds(problems: list[str]) -> list[str]:
    return [p.split(" for ")[0] for p in problems]


class SegmentAnalyzer:
    """A bounded queue of segments and one worker that analyses them in order."""

    def __init__(self, settings: MonitoringSettings) -> None:
        self._settings = settings
        self._queue: asyncio.Queue[tuple[tuple[int, str], str, Path, float]] = asyncio.Queue(
            QUEUE_LIMIT
        )
        self._health: dict[tuple[int, str], SourceHealth] = {}
        self.dropped = 0

    def submit(self, key: tuple[int, str], chamber_id: str, path: Path, duration: float) -> None:
        """Queue a segment; when analysis falls behind, segments are skipped, never waited for."""
        try:
            self._queue.put_nowait((key, chamber_id, path, duration))
        except asyncio.QueueFull:
            self.dropped += 1

    def health(self, key: tuple[int, str]) -> SourceHealth | None:
        """The latest analysis of a capture (session, camera), if any."""
        return self._health.get(key)

    async def run(self) -> None:
        """Analyse queued segments until cancelled."""
        while True:
            key, chamber_id, path, duration = await self._queue.get()
            try:
                await self._analyse(key, chamber_id, path, duration)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("analysis of %s failed", path)

    async def _analyse(
        self, key: tuple[int, str], chamber_id: str, path: Path, duration: float
    ) -> None:
        proc = await asyncio.create_subprocess_exec(
            *analysis_argv(path),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            thumb, err = await asyncio.wait_for(proc.communicate(), PROBE_TIMEOUT_SECONDS)
        except (TimeoutError, asyncio.CancelledError) as exc:
            # Never leave an analysis ffmpeg behind, also when obrady shuts down.
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await asyncio.shield(proc.wait())
            if isinstance(exc, asyncio.CancelledError):
                raise
            log.warning("analysis of %s timed out", path)
            return
        health = self._health.setdefault(key, SourceHealth(key[0], chamber_id, key[1]))
        before = health.problems(self._settings)
        if len(thumb) == THUMB_W * THUMB_H:
            same = picture_difference(thumb, health.thumbnail) < self._settings.frozen_difference
            health.frozen_seconds = health.frozen_seconds + duration if same else 0.0
            health.thumbnail = thumb
        match = MAX_VOLUME.search(err)
        health.has_audio = match is not None
        if match is not None:
            raw = match.group(1)
            peak = -200.0 if raw == b"-inf" else float(raw)
            health.audio_max_db = peak
            quiet = peak < self._settings.silent_below_db
            health.silent_seconds = health.silent_seconds + duration if quiet else 0.0
        health.analysed += 1
        after = health.problems(self._settings)
        if _kinds(after) != _kinds(before) and after:
            log.warning("session %s, camera %s: %s", key[0], key[1], "; ".join(after))
        elif before and not after:
            log.info("session %s, camera %s: source looks healthy again", key[0], key[1])
