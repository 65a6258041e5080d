"""Where a run's media sit on the wall clock, by the test camera's own clock: the camera makes one
white frame every so often and says when (RtspCamera(flash_seconds=...)); finding those frames
in the segments gives the true wall time of the run's media time 0. Also records one camera
twice at once, copied and re-encoded, optionally starving the re-encode of CPU for a while (for
tests/recorder/test_reencode.py and bench/continuity.py)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cameras.camera import RtspCamera
from conftest import free_port, wait_for

from archive.timeline import Piece, build_timeline
from config.settings import RecordingSettings, RtspSource
from recorder.continuity import read_packets
from recorder.supervisor import CaptureJob, CaptureStatus, CaptureSupervisor, FinishedSegment

# A white frame's mean luma (the camera's clock overlay is small); the SMPTE bars are ~120.
WHITE = 200.0


async def _lumas(source: str) -> list[tuple[float, float]]:
    """(pts in the file, mean luma) of each decoded video frame."""
    proc = await asyncio.create_subprocess_exec(
        "ffprobe", "-v", "error", "-f", "lavfi", f"movie='{source}',scale=32:18,signalstats",
        "-show_entries", "frame=pts_time:frame_tags=lavfi.signalstats.YAVG",
        "-of", "csv=p=0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    frames = []
    for line in out.decode().splitlines():
        parts = line.strip(",").split(",")
        if len(parts) == 2:
            frames.append((float(parts[0]), float(parts[1])))
    return frames


async def white_frames(segments: Sequence[FinishedSegment]) -> list[float]:
    """Media times (in the segment list's timeline, as the index places runs) of the first
    frame of each white flash in a run's segments."""
    if not segments:
        return []
    # The file's timestamps carry the muxer's offset, the same in every segment of a run; a
    # segment starts with a video frame.
    packets = [p for p in await read_packets(segments[0].path) if p.kind == "video"]
    offset = packets[0].pts - segments[0].entry.start
    # MPEG-TS files of one run joined byte for byte are one stream: one decoder for them all.
    joined = "concat\\:" + "|".join(str(s.path) for s in segments)
    found: list[float] = []
    was_white = False
    for pts, luma in await _lumas(joined):
        white = luma >= WHITE
        if white and not was_white:
            found.append(pts - offset)
        was_white = white
    return found


def true_zeros(flashes: Sequence[float], white: Sequence[float], near: float) -> list[float]:
    """For each white frame at media time t, the wall time of media time 0 that the camera's
    clock gives: the flash made nearest to near + t (near: a guess within half the flashes'
    spacing), less t."""
    zeros = []
    for t in white:
        made = min(flashes, key=lambda at: abs(at - (near + t)))
        zeros.append(made - t)
    return zeros


def observed_anchor(segments: Sequence[FinishedSegment]) -> float:
    """Wall time of media time 0 as the index placed every run before re-encodes had frame
    times: the least (seen finished - media end) over the run's segments."""
    return min(s.observed_at.timestamp() - s.entry.end for s in segments)


def anchor(segments: Sequence[FinishedSegment]) -> float:
    """Wall time of media time 0 as archive/index.py add_segment places the run now."""
    zeros = [s.zero_at for s in segments if s.zero_at is not None]
    return min([observed_anchor(segments), *zeros])


class Collected:
    """Capture events for a supervisor run without the service: keeps the finished segments."""

    def __init__(self) -> None:
        self.segments: list[FinishedSegment] = []
        self.more = asyncio.Event()

    async def wait_for(self, count: int, timeout: float = 30) -> None:
        """Until `count` segments are finished (at most `timeout` s between two)."""
        while len(self.segments) < count:
            self.more.clear()
            await asyncio.wait_for(self.more.wait(), timeout)

    async def run_started(self, *args: object) -> int:
        return 1

    async def segment_started(self, *args: object) -> None:
        pass

    async def segment_finished(self, job: CaptureJob, segment: FinishedSegment) -> None:
        self.segments.append(segment)
        self.more.set()

    async def capture_exited(self, job: CaptureJob) -> None:
        pass

    async def run_ended(self, *args: object) -> None:
        pass

    async def sound_missing(self, *args: object) -> None:
        pass


@dataclass
class Recorded:
    """One camera recorded copied and re-encoded at once, with the camera's clock of both."""

    flashes: list[float]
    segments: dict[str, list[FinishedSegment]]  # "copy" / "h264": that run's segments
    status: dict[str, CaptureStatus]
    starved: tuple[float, float] | None  # wall-clock window the re-encode was starved
    truth: dict[str, float] = field(default_factory=dict)  # true wall time of media time 0
    white: dict[str, list[float]] = field(default_factory=dict)

    def error(self, mode: str) -> float:
        """How late (s) the run is placed against the camera's clock."""
        return anchor(self.segments[mode]) - self.truth[mode]


async def record_copied_and_reencoded(
    folder: Path,
    *,
    width: int = 640,
    height: int = 360,
    fps: int = 25,
    preset: str = "slow",
    before: float = 4.0,
    starve: float = 0.0,
    after: float = 3.0,
    stopped: float = 0.2,
    running: float = 0.03,
    starve_from_start: bool = False,
) -> Recorded:
    """Record an H.265 camera that flashes white every second, once copied and once re-encoded,
    both by CaptureSupervisor with 1 s segments; after `before` seconds of segments, starve the
    re-encode for `starve` seconds (SIGSTOP for `stopped`, SIGCONT for `running`, over and over:
    a CPU it gets a few percent of), then record `after` seconds more. starve_from_start: the
    starving begins as soon as the re-encode's ffmpeg runs, before its first frame (a machine
    too busy for it all along)."""
    camera = RtspCamera(
        free_port(), video="h265", width=width, height=height, fps=fps, flash_seconds=1.0
    )
    await camera.start()
    supervisors: dict[str, tuple[CaptureSupervisor, Collected]] = {}
    tasks = []
    settings = RecordingSettings(segment_seconds=1)
    starved = None
    try:
        for mode in ("copy", "h264"):
            events = Collected()
            source = RtspSource(
                kind="rtsp", url=camera.url, video=mode, audio="aac",
                transcoding={"preset": preset, "fps": fps},
            )  # fmt: skip
            job = CaptureJob(1, "sala", mode, source, folder / mode)
            supervisor = CaptureSupervisor(job, settings, events)
            supervisors[mode] = (supervisor, events)
            tasks.append(asyncio.create_task(supervisor.run()))
        reencode, reencoded = supervisors["h264"]

        async def segments(count: int) -> bool:
            return all(len(events.segments) >= count for _, events in supervisors.values())

        async def started() -> int | None:
            return reencode.pid

        if starve_from_start:
            await wait_for(started, 30, "the re-encode's ffmpeg")
        else:
            await wait_for(lambda: segments(1), 30, "a segment of each run")
            await asyncio.sleep(before)
        if starve > 0:
            pid = reencode.pid
            assert pid is not None
            began = time.time()
            try:
                while time.time() - began < starve:
                    os.kill(pid, signal.SIGSTOP)
                    await asyncio.sleep(stopped)
                    os.kill(pid, signal.SIGCONT)
                    await asyncio.sleep(running)
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
            starved = (began, time.time())
        await asyncio.sleep(after)
    finally:
        for supervisor, _ in supervisors.values():
            await supervisor.stop()
        await asyncio.gather(*tasks)
        await camera.stop()
    recorded = Recorded(
        [at for kind, at in camera.made if kind == "flash"],
        {mode: events.segments for mode, (_, events) in supervisors.items()},
        {mode: supervisor.status for mode, (supervisor, _) in supervisors.items()},
        starved,
    )
    for mode, segs in recorded.segments.items():
        white = await white_frames(segs)
        recorded.white[mode] = white
        if white:  # a re-encode starved enough may drop every flash
            # The median: one flash matched to the wrong second does not move it.
            zeros = true_zeros(recorded.flashes, white, anchor(segs))
            recorded.truth[mode] = statistics.median(zeros)
    return recorded


def switch_gap(
    before: Sequence[FinishedSegment],
    after: Sequence[FinishedSegment],
    zeros: tuple[float, float],
) -> float:
    """The gap the timeline reports where the program switches from the run of `before` (its
    segments up to the switch) to the run of `after` (its segments from the switch), 0 if none.
    Each segment is placed as the index places it: its run's anchor (`zeros`: the wall time of
    each run's media time 0, from all its segments) plus its media start."""
    pieces = []
    for camera, segments, run, zero in (("a", before, 1, zeros[0]), ("b", after, 2, zeros[1])):
        for s in segments:
            at = datetime.fromtimestamp(zero + s.entry.start, UTC)
            pieces.append(Piece(run, camera, at, s.entry.duration))
    gaps = build_timeline(pieces, ongoing=False).gaps()
    switch = [g for g in gaps if g.cause.startswith("program switched")]
    return switch[0].seconds if switch else 0.0


def real_gap(
    recorded: Recorded,
    first: str,
    before: Sequence[FinishedSegment],
    after: Sequence[FinishedSegment],
) -> float:
    """The gap the camera's clock shows at the same switch (negative: an overlap)."""
    second = "h264" if first == "copy" else "copy"
    ends = recorded.truth[first] + before[-1].entry.end
    starts = recorded.truth[second] + after[0].entry.start
    return starts - ends
