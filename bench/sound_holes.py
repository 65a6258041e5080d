"""Measures how well the chamber sound's hub (recorder/audiohub.py) reports a hole in the
chamber's sound, against the recording itself.

A test camera (tests/cameras/rtsp_camera.py, 320x180 25 fps H.264) stamps every frame with
the wall clock it was made at; a sound-only test server stands in for the microphone system
and sends a steady tone (G.711). A hub shares that sound; the camera is recorded with it by
the capture argv (copied, 1 s segments, as the recorder runs it). After --before seconds the
microphones fail for --outage seconds, in one of two ways:

- "stopped": the microphones' server is stopped (connections closed) and started again;
- "stalled": the server is frozen (SIGSTOP: the connection stays open, nothing comes) and
  thawed.

The real hole is the silence in the recorded sound (the tone below -50 dB for 0.1 s or more),
placed on the wall clock by the picture's clock at the same media time; the reported one is
what the hub reported. Errors in ms: reported minus real, for the hole's start and length.

Usage (from the repository root):
    PYTHONPATH=. .venv/bin/python bench/sound_holes.py [--rounds 2] [--outage 3]
        [--kinds stopped stalled]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

from config.settings import RtspAudio, RtspSource
from recorder.audiohub import AudioHub, SoundHole
from recorder.ffmpeg import SEGMENT_LIST, capture_argv, parse_segment_line

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT / "tests"))

from cameras.camera import RtspCamera  # noqa: E402
from cameras.media_clock import read_media_clock  # noqa: E402
from conftest import free_port, hub_receiving  # noqa: E402

WIDTH, FPS = 320, 25


async def one_round(folder: Path, kind: str, before: float, outage: float) -> str:
    """One recording with one failure of the microphones; its table row."""
    camera = RtspCamera(free_port(), audio="none", fps=FPS, clock_code=True, watched=True)
    port = free_port()
    mics = RtspCamera(port, video="none", audio="pcma", watched=True)
    found: list[SoundHole] = []
    lock = threading.Lock()

    def collect(hole: SoundHole) -> None:
        with lock:
            found.append(hole)

    hub = AudioHub(RtspAudio(kind="rtsp", url=mics.url), on_hole=collect)
    run_dir = folder / "run"
    run_dir.mkdir(parents=True)
    proc = None
    try:
        async with asyncio.TaskGroup() as starting:
            starting.create_task(camera.start())
            starting.create_task(mics.start())
        hub.start()

        await hub_receiving(hub)
        source = RtspSource(kind="rtsp", url=camera.url, video="copy")
        proc = await asyncio.create_subprocess_exec(
            *capture_argv(source, run_dir, 1, hub.link),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        await asyncio.sleep(before)
        if kind == "stopped":
            await mics.stop()
            await asyncio.sleep(outage)
            mics = RtspCamera(port, video="none", audio="pcma", watched=True)
            await mics.start()
        else:
            pid = mics.pid
            assert pid is not None
            os.kill(pid, signal.SIGSTOP)
            await asyncio.sleep(outage)
            os.kill(pid, signal.SIGCONT)
        await hub_receiving(hub, 20, "the hub's sound again")
        await asyncio.sleep(4)
    finally:
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            await asyncio.wait_for(proc.wait(), 15)
        await asyncio.to_thread(hub.stop)
        await camera.stop()
        await mics.stop()
    listing = (run_dir / SEGMENT_LIST).read_text().split()
    files = [run_dir / e.file for e in map(parse_segment_line, listing) if e is not None]
    clock = await read_media_clock(files, WIDTH)
    first = clock.changes[1][0]  # the sound before the picture's start is not compared
    silences = [(a, b) for a, b in clock.silences if b - a >= 0.3 and a > first]
    if len(silences) != 1 or len(found) != 1:
        return f"| {kind} | {outage:g} | silences {silences}, reported {found} | | | |"
    (a, b), hole = silences[0], found[0]
    real_start, real_end = clock.picture_at(a), clock.picture_at(b)
    start = hole.start.timestamp()
    return (
        f"| {kind} | {outage:g} | {real_end - real_start:.3f} | {hole.seconds:.3f} | "
        f"{1000 * (start - real_start):+.0f} | "
        f"{1000 * (hole.seconds - (real_end - real_start)):+.0f} |"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--before", type=float, default=4.0)
    parser.add_argument("--outage", type=float, default=3.0)
    parser.add_argument("--kinds", nargs="+", default=["stopped", "stalled"])
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="obrady-sound-holes-"))
    try:
        print(
            "| microphones | for (s) | real hole in the recording (s) | reported (s)"
            " | start error (ms) | length error (ms) |"
        )
        print("|---|---|---|---|---|---|")
        for kind in args.kinds:
            for n in range(args.rounds):
                began = time.time()
                row = await one_round(folder / f"{kind}-{n}", kind, args.before, args.outage)
                print(row, f"<!-- {time.time() - began:.0f} s -->", flush=True)
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(folder)


if __name__ == "__main__":
    asyncio.run(main())
