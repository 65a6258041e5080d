"""Measures the CPU obrady adds over a bare ffmpeg when it records an RTSP camera in copy mode.

One real RTSP camera (GStreamer, 1280x720, 25 fps, H.264 + AAC) is recorded twice, one after the
other, each for --seconds seconds once the first segment exists:

(a) a bare ffmpeg with exactly the argv obrady builds for this camera once it has found that
    the camera sends AAC (`capture_argv(RtspSource(kind="rtsp", url=..., audio="copy"), ...)`:
    H.264 and AAC both copied), run alone as a subprocess; counted: its utime+stime;
(b) obrady in this process (create_app) recording a session from the same camera with 2 s
    segments; counted: the capture ffmpeg's utime+stime (/proc/PID/stat), this Python process's
    utime+stime (all its threads: event loop, HTTP server, archive thread, SHA-256 of segments;
    nothing else runs in it during the interval, the benchmark only sleeps), the utime+stime of
    the long-lived ffmpeg that analyses the finished segments (frozen picture, silence), and the
    cutime+cstime of /proc/self/stat (children reaped during the interval, normally none).

The camera's own CPU is counted in neither. Usage (from the repository root):
    .venv/bin/python bench/copy_overhead.py [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from archive.index import ArchiveIndex
from config.settings import RtspSource, parse_settings
from recorder.ffmpeg import SEGMENT_LIST, capture_argv
from streaming.app.service import create_app
from streaming.auth.passwords import hash_password
from streaming.keys import RECORDER

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from cameras.camera import RtspCamera  # noqa: E402
from conftest import config_text, free_port  # noqa: E402

WIDTH, HEIGHT, FPS = 1280, 720, 25
SEGMENT_SECONDS = 2
WARMUP_SECONDS = 2.0  # after the first segment: past probing and the first keyframe wait
USER = ("bench", "bench-password")
TICK = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    """Something the benchmark needs did not happen; the message says what."""


def stat_fields(pid: int | str) -> list[str]:
    """Fields of /proc/PID/stat after the command name (index 0 is field 3, the state)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int | str) -> float:
    """utime + stime of a process (all its threads, children excluded)."""
    fields = stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / TICK


def reaped_children_seconds() -> float:
    """cutime + cstime of this process: CPU of the children it has waited for."""
    fields = stat_fields("self")
    return (int(fields[13]) + int(fields[14])) / TICK


async def until(probe: Any, timeout: float, what: str) -> Any:
    """Poll probe until it returns something truthy; TimeoutError naming `what` after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await probe()
        if found:
            return found
        await asyncio.sleep(0.1)
    raise TimeoutError(f"no {what} within {timeout:g} s")


def analysis_pids() -> list[int]:
    """This process's long-lived segment-analysis ffmpeg (fed on stdin, keyframes only)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError):
            if int(stat_fields(entry.name)[1]) != os.getpid():
                continue
            argv = process_argv(int(entry.name))
            if "-skip_frame" in argv and "pipe:0" in argv:
                found.append(int(entry.name))
    return sorted(found)


def process_argv(pid: int) -> list[str]:
    """The command line a process runs."""
    return [a.decode() for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]]


def listed_segments(run_dir: Path) -> int:
    """Finished segments in a run's segment list."""
    try:
        return sum(1 for line in (run_dir / SEGMENT_LIST).read_text().splitlines() if line)
    except FileNotFoundError:
        return 0


@dataclass
class Bare:
    """(a): the bare ffmpeg."""

    ffmpeg: float  # CPU seconds per wall second
    segments: int
    argv: list[str]
    run_dir: Path


@dataclass
class Obrady:
    """(b): obrady recording the same camera."""

    ffmpeg: float
    python: float
    children: float
    segments: int
    same_argv: bool

    @property
    def total(self) -> float:
        """Everything counted for obrady."""
        return self.ffmpeg + self.python + self.children


async def stop_process(proc: asyncio.subprocess.Process) -> None:
    """One SIGINT (ffmpeg finishes its segment), SIGKILL after 10 s."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGINT)
    try:
        await asyncio.wait_for(proc.wait(), 10)
    except TimeoutError:
        proc.kill()
        await asyncio.wait_for(proc.wait(), 10)


async def measure_bare(camera: RtspCamera, work: Path, seconds: float) -> Bare:
    """(a) ffmpeg alone, with obrady's argv."""
    run_dir = work / "bare" / "run-0001"
    run_dir.mkdir(parents=True)
    argv = capture_argv(
        RtspSource(kind="rtsp", url=camera.url, audio="copy"), run_dir, SEGMENT_SECONDS
    )
    with (work / "bare.log").open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,  # -progress pipe:1 goes nowhere
            stderr=log,
            start_new_session=True,
        )
        try:

            async def first() -> bool:
                if proc.returncode is not None:
                    raise BenchError(f"bare ffmpeg exited with {proc.returncode}")
                return listed_segments(run_dir) > 0

            await until(first, 30, "first segment from the bare ffmpeg")
            await asyncio.sleep(WARMUP_SECONDS)
            segments0, cpu0, wall0 = listed_segments(run_dir), cpu_seconds(proc.pid), time.time()
            await asyncio.sleep(seconds)
            if proc.returncode is not None:
                raise BenchError(f"bare ffmpeg exited with {proc.returncode} while measured")
            cpu1, wall1 = cpu_seconds(proc.pid), time.time()
            segments = listed_segments(run_dir) - segments0
        finally:
            await stop_process(proc)
    return Bare((cpu1 - cpu0) / (wall1 - wall0), segments, argv, run_dir)


async def measure_obrady(camera: RtspCamera, work: Path, seconds: float) -> Obrady:
    """(b) obrady in this process, recording a session from the camera."""
    port = free_port()
    data = work / "obrady"
    data.mkdir()
    source = f'kind = "rtsp"\nurl = "{camera.url}"\n'  # every other key at its default
    settings = parse_settings(
        config_text(data, port, source, segment_seconds=SEGMENT_SECONDS, stall_timeout_seconds=6)
    )
    index = ArchiveIndex(settings.data_path / "obrady.sqlite3")
    index.add_user(USER[0], "operator", hash_password(USER[1]))
    index.close()
    app = create_app(settings)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": aiohttp.encode_basic_auth(*USER)}
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:

            async def call(method: str, path: str, body: Any = None) -> Any:
                async with http.request(method, base + path, json=body, headers=headers) as r:
                    answer = await r.json(content_type=None)
                    if r.status >= 300:
                        raise BenchError(f"{method} {path}: HTTP {r.status} {answer}")
                    return answer

            start = datetime.now(UTC) + timedelta(hours=1)
            created = await call(
                "POST",
                "/api/v1/sessions",
                {
                    "title": "Bench",
                    "scheduled_start": start.isoformat(),
                    "scheduled_end": (start + timedelta(hours=1)).isoformat(),
                    "agenda_text": "1. Otwarcie sesji.\n",
                },
            )
            sid = created["id"]
            await call("POST", f"/api/v1/sessions/{sid}/start")

            async def segments() -> int:
                runs = (await call("GET", f"/api/v1/sessions/{sid}"))["recording"]["runs"]
                return sum(r["segments"] for r in runs)

            await until(segments, 30, "first segment recorded by obrady")
            await asyncio.sleep(WARMUP_SECONDS)
            supervisor = app[RECORDER].supervisor(sid)
            if supervisor is None or supervisor.pid is None:
                raise BenchError("obrady runs no capture ffmpeg")
            pid = supervisor.pid
            running = process_argv(pid)
            run_dir = Path(next(a for a in running if a.endswith(".ts"))).parent
            expected = capture_argv(
                RtspSource(kind="rtsp", url=camera.url, audio="copy"), run_dir, SEGMENT_SECONDS
            )
            same_argv = running == expected
            segments0 = await segments()
            analysers = analysis_pids()
            ffmpeg0, python0, children0 = (
                cpu_seconds(pid),
                cpu_seconds("self"),
                reaped_children_seconds() + sum(cpu_seconds(a) for a in analysers),
            )
            wall0 = time.time()
            await asyncio.sleep(seconds)  # no requests: only obrady works in this process
            ffmpeg1, python1, children1 = (
                cpu_seconds(pid),
                cpu_seconds("self"),
                reaped_children_seconds() + sum(cpu_seconds(a) for a in analysers),
            )
            if analysers != analysis_pids():
                raise BenchError("the analysing ffmpeg was restarted during the measurement")
            wall = time.time() - wall0
            if supervisor.pid != pid:
                raise BenchError("the capture ffmpeg was restarted during the measurement")
            count = await segments() - segments0
            await call("POST", f"/api/v1/sessions/{sid}/stop")
    finally:
        await runner.cleanup()
    return Obrady(
        (ffmpeg1 - ffmpeg0) / wall,
        (python1 - python0) / wall,
        (children1 - children0) / wall,
        count,
        same_argv,
    )


def machine() -> str:
    """CPU model, cores and ffmpeg version of this machine."""
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    version = subprocess.run(
        ["ffmpeg", "-version"], capture_output=True, text=True, timeout=10, check=False
    ).stdout.splitlines()
    return f"{model}, {os.cpu_count()} cores; {version[0] if version else 'ffmpeg: no output'}"


async def main(seconds: float, work: Path) -> None:
    """Measure (a), then (b), against one camera, and print the figures."""
    camera = RtspCamera(free_port(), width=WIDTH, height=HEIGHT, fps=FPS)
    await camera.start()
    try:
        bare = await measure_bare(camera, work, seconds)
        obrady = await measure_obrady(camera, work, seconds)
    finally:
        await camera.stop()

    def pct(value: float) -> str:
        return f"{value * 100:.1f}%"

    points = (obrady.total - bare.ffmpeg) * 100
    relative = (obrady.total / bare.ffmpeg - 1) * 100 if bare.ffmpeg > 0 else float("nan")
    print(f"camera: {WIDTH}x{HEIGHT} {FPS} fps H.264 + AAC over RTSP/TCP (its CPU not counted)")
    print(f"each measured for {seconds:g} s, {SEGMENT_SECONDS} s segments, one after the other")
    print(f"ffmpeg argv: {' '.join(bare.argv)}")
    same = "yes" if obrady.same_argv else "NO"
    print(f"(a) bare ffmpeg:                      {pct(bare.ffmpeg)} ({bare.segments} segments)")
    print(f"(b) obrady, capture ffmpeg:           {pct(obrady.ffmpeg)} (same argv as (a): {same})")
    print(f"    obrady Python process:            {pct(obrady.python)} (all threads)")
    print(
        f"    segment analysis (one ffmpeg):    {pct(obrady.children)}"
        f" ({obrady.segments} segments analysed or in flight)"
    )
    print(f"    obrady total:                     {pct(obrady.total)} of one core")
    print(f"overhead: {points:+.1f} percentage points, {relative:+.0f}% relative to bare ffmpeg")
    print()
    print("| what | CPU, % of one core |")
    print("|---|---|")
    print(f"| bare ffmpeg, obrady's argv (H.264 and AAC copied) | {pct(bare.ffmpeg)} |")
    print(f"| obrady: capture ffmpeg | {pct(obrady.ffmpeg)} |")
    print(f"| obrady: Python process (server, indexing, SHA-256) | {pct(obrady.python)} |")
    print(f"| obrady: segment analysis (one ffmpeg, keyframes only) | {pct(obrady.children)} |")
    print(f"| obrady total | {pct(obrady.total)} |")
    print(f"| overhead over bare ffmpeg | {points:+.1f} points ({relative:+.0f}%) |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30, help="length of each measurement")
    parser.add_argument("--keep", action="store_true", help="keep the recordings and logs")
    arguments = parser.parse_args()
    began = time.monotonic()
    print(f"machine: {machine()}")
    folder = Path(tempfile.mkdtemp(prefix="obrady-copy-"))
    logging.basicConfig(
        filename=folder / "obrady.log",
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        asyncio.run(main(arguments.seconds, folder))
    finally:
        logging.shutdown()
        if arguments.keep:
            print(f"recordings and logs kept in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"run time: {time.monotonic() - began:.0f} s")
