"""Measures how well the media check (recorder/continuity.py) sizes a camera stall, and what it
costs.

A real RTSP camera (GStreamer, 320x180, 10 fps, H.264 + AAC, copied) is recorded by the capture
supervisor with 1 s segments. The camera stalls with its connection open (SIGSTOP for each of
--stalls seconds, then SIGCONT), a few healthy segments apart, shorter than the socket and stall
timeouts, so ffmpeg stays in one run. Every segment is then checked as the service checks it
(ffprobe at the analysis priority, the file's growth as the supervisor noted it). For each stall
it prints the hole as the camera's own clock shows it (the longest wait between two frames, or
audio buffers, it made, less their usual spacing: `rtsp_camera.py --frame-times`), the hole the
check reported, and the error; then the CPU time of the checks per segment.

Usage (from the repository root):
    .venv/bin/python bench/continuity.py [--stalls 2 4 8] [--rounds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from config.settings import RecordingSettings, RtspSource
from recorder.continuity import RunState, check_segment, read_packets
from recorder.supervisor import CaptureJob, CaptureSupervisor

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from cameras.camera import RtspCamera  # noqa: E402
from conftest import free_port  # noqa: E402
from flashes import Collected  # noqa: E402

FPS = 10
THRESHOLD = 0.5


def real_hole(
    made: list[tuple[str, float]], kind: str, began: float, ended: float
) -> tuple[float, float]:
    """(start on the wall clock: when the last one before the wait was made, length)."""
    times = [at for k, at in made if k == kind and began - 2 <= at <= ended + 2]
    pairs = list(zip(times, times[1:], strict=False))
    spacing = statistics.median(b - a for a, b in pairs)
    before, after = max(pairs, key=lambda pair: pair[1] - pair[0])
    return before, after - before - spacing


async def one_round(stalls: list[float], folder: Path) -> tuple[list[str], float, int]:
    camera = RtspCamera(free_port(), fps=FPS, frame_times=True)
    await camera.start()
    events = Collected()
    source = RtspSource(kind="rtsp", url=camera.url, timeout_seconds=30)
    job = CaptureJob(1, "sala", "main", source, folder)
    settings = RecordingSettings(segment_seconds=1, stall_timeout_seconds=30)
    supervisor = CaptureSupervisor(job, settings, events)
    task = asyncio.create_task(supervisor.run())
    windows = []
    try:
        for stall in stalls:
            await events.wait_for(len(events.segments) + 3)
            assert camera.pid is not None
            began = time.time()
            os.kill(camera.pid, signal.SIGSTOP)
            await asyncio.sleep(stall)
            ended = time.time()
            os.kill(camera.pid, signal.SIGCONT)
            windows.append((began, ended))
        await events.wait_for(len(events.segments) + 3)
    finally:
        await supervisor.stop()
        await task
        await camera.stop()
    state = RunState()
    holes = []
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for segment in events.segments:
        result = check_segment(
            await read_packets(segment.path), segment.growth, state, THRESHOLD,
            listed_start=segment.entry.start,
        )  # fmt: skip
        holes += result.holes
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # Where the index places the run: the wall time of the segment list's media time 0.
    zero = min(s.observed_at.timestamp() - s.entry.end for s in events.segments)
    rows = []
    for kind in ("video", "audio"):
        found = [h for h in holes if h.kind == kind]
        for i, (stall, window) in enumerate(zip(stalls, windows, strict=True)):
            start, real = real_hole(camera.made, kind, *window)
            if i < len(found) and len(found) == len(stalls):
                reported = found[i].seconds
                placed = zero + found[i].media_at - start
                rows.append(
                    f"| {stall:g} s | {kind} | {real:.3f} | {reported:.3f} | "
                    f"{1000 * (reported - real):+.0f} | {1000 * placed:+.0f} |"
                )
            else:
                rows.append(f"| {stall:g} s | {kind} | {real:.3f} | {len(found)} holes | - | - |")
    return rows, cpu, len(events.segments)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stalls", type=float, nargs="+", default=[2.0, 4.0, 8.0])
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    print("| stall | stream | camera's clock (s) | reported (s) | error (ms) | start placed (ms) |")
    print("|---|---|---|---|---|---|")
    cpu_total, checked = 0.0, 0
    for _ in range(args.rounds):
        folder = Path(tempfile.mkdtemp(prefix="obrady-continuity-"))
        try:
            rows, cpu, segments = await one_round(args.stalls, folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        print("\n".join(rows))
        cpu_total += cpu
        checked += segments
    print(f"\nchecks: {checked} segments, {1000 * cpu_total / max(1, checked):.0f} ms CPU each")


if __name__ == "__main__":
    asyncio.run(main())
