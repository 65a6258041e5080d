"""Measures what each kind of fault costs a recording: media lost and time to recover.

A real RTSP camera (GStreamer, 640x360, 25 fps, H.264 + AAC, a keyframe a second) is recorded
with 1 s segments. Four faults are injected --times times each into a running session:

1. the capture's ffmpeg is SIGKILLed (no outage of the source);
2. the camera drops off for --outage seconds and comes back on the same port;
3. the camera stalls with its connection open (SIGSTOP for --stall seconds, then SIGCONT;
   stall_timeout_seconds = 3);
4. obrady itself (`python -m streaming serve`, a process of its own) is SIGKILLed mid-session and
   started again as soon as its orphaned ffmpeg has finished.

Faults 1-3 run against obrady in-process (create_app), one session per fault type. For every
injection it reports the gap the fault left in the session's recording timeline
(`recording.gaps[].seconds`), the part of that gap beyond the time the source itself was away,
and the time from the end of the fault (ffmpeg killed / camera listening again / SIGCONT /
obrady relaunched) to the new run's `media_started_at` (obrady's estimate of the wall-clock
time of the run's first recorded frame). Each injection waits until the new run has recorded
SETTLE_SEGMENTS segments before the next one, and the injections are spread evenly over the
phase of a segment (a killed ffmpeg loses the segment in flight).

Usage (from the repository root):
    .venv/bin/python bench/faults.py [--times 3] [--outage 10] [--stall 5] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import aiohttp
from aiohttp import web

from archive.index import ArchiveIndex
from config.settings import parse_settings
from recorder.ffmpeg import SEGMENT_LIST
from streaming.app.service import create_app
from streaming.auth.passwords import hash_password
from streaming.keys import RECORDER

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from cameras.camera import RtspCamera  # noqa: E402
from conftest import config_text, free_port, rtsp_source  # noqa: E402

WIDTH, HEIGHT, FPS = 640, 360, 25
USER = ("bench", "bench-password")
AGENDA = "1. Otwarcie sesji.\n2. Zamknięcie obrad.\n"
# 1 s segments; stall detection after 3 s. healthy_reset_seconds = 3 (default 30) because the
# injections here are seconds apart: with the default each one would inherit the back-off the
# previous one built up, which a fault half a minute after the last one would not.
RECORDING: dict[str, float] = {
    "segment_seconds": 1,
    "stall_timeout_seconds": 3,
    "healthy_reset_seconds": 3,
}
SETTLE_SEGMENTS = 4  # segments the new run records (> healthy_reset_seconds) before the next fault
RECOVER_TIMEOUT = 60.0
POLL = 0.05


class BenchError(RuntimeError):
    """Something the benchmark needs did not happen; the message says what."""


@dataclass
class Injection:
    """One injected fault and what it cost."""

    fault: str
    outage: float  # seconds the source was away (0 when the source itself never went away)
    gap: float | None = None  # the recording gap(s) this injection left, summed
    gaps: int = 0
    recover: float | None = None  # fault ended -> first recorded frame of the new run
    causes: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def beyond(self) -> float | None:
        """Media lost beyond the time the source itself was away."""
        return None if self.gap is None else self.gap - self.outage


class Api:
    """The obrady HTTP API as an operator's client sees it."""

    def __init__(self, base: str) -> None:
        self.base = base
        self._headers = {"Authorization": aiohttp.encode_basic_auth(*USER)}
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.close()

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        """One request; BenchError on a status of 300 or more."""
        async with self._http.request(
            method, self.base + path, json=body, headers=self._headers
        ) as resp:
            data = await resp.json(content_type=None)
            if resp.status >= 300:
                raise BenchError(f"{method} {path}: HTTP {resp.status} {data}")
            return data

    async def up(self) -> bool:
        """Whether the service answers."""
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
            async with self._http.get(self.base + "/api/v1/status") as resp:
                return resp.status == 200
        return False

    async def session(self, sid: int) -> dict[str, Any]:
        """The session's detail, recording included."""
        return await self.call("GET", f"/api/v1/sessions/{sid}")  # type: ignore[no-any-return]

    async def begin(self) -> int:
        """Create a session and start recording it now; wait for SETTLE_SEGMENTS segments."""
        start = datetime.now(UTC) + timedelta(hours=1)
        created = await self.call(
            "POST",
            "/api/v1/sessions",
            {
                "title": "Bench",
                "scheduled_start": start.isoformat(),
                "scheduled_end": (start + timedelta(hours=1)).isoformat(),
                "agenda_text": AGENDA,
            },
        )
        sid = int(created["id"])
        await self.call("POST", f"/api/v1/sessions/{sid}/start")

        async def recording() -> bool:
            runs = (await self.session(sid))["recording"]["runs"]
            return sum(r["segments"] for r in runs) >= SETTLE_SEGMENTS

        await until(recording, 30, "the first segments of a new session")
        return sid


async def until(probe: Callable[[], Awaitable[Any]], timeout: float, what: str) -> Any:
    """Poll probe until it returns something truthy; TimeoutError naming `what` after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await probe()
        if found:
            return found
        await asyncio.sleep(POLL)
    raise TimeoutError(f"no {what} within {timeout:g} s")


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def pid_alive(pid: int) -> bool:
    """Whether pid runs and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


Action = Callable[[], Awaitable[tuple[float, float]]]  # -> (outage seconds, wall time it ended)


def phase(i: int, times: int) -> float:
    """Delay after a segment was seen finished before injection i of times.

    The segment in flight is what a killed ffmpeg loses, so injecting right after a segment
    boundary would flatter the figures: the injections are spread evenly over a segment.
    """
    return RECORDING["segment_seconds"] * (i + 0.5) / times


async def inject(api: Api, sid: int, fault: str, action: Action, delay: float) -> Injection:
    """Inject one fault; measure the gap it left and how long recording took to resume."""
    runs = (await api.session(sid))["recording"]["runs"]
    last = max(r["ordinal"] for r in runs)
    await asyncio.sleep(delay)
    injected = time.time()
    outage, ended = await action()
    result = Injection(fault, outage)

    async def resumed() -> dict[str, Any] | None:
        detail = await api.session(sid)
        new = [r for r in detail["recording"]["runs"] if r["ordinal"] > last]
        return detail if new and new[-1]["segments"] >= SETTLE_SEGMENTS else None

    try:
        detail = await until(resumed, RECOVER_TIMEOUT, "new run")
    except TimeoutError as exc:
        result.note = str(exc)
        return result
    new = [r for r in detail["recording"]["runs"] if r["ordinal"] > last]
    if len(new) > 1:
        result.note = f"{len(new)} new runs"
    result.recover = _ts(new[0]["media_started_at"]) - ended
    newest = _ts(new[-1]["media_started_at"])
    mine = [
        g for g in detail["recording"]["gaps"] if injected - 0.5 < _ts(g["end"]) <= newest + 0.001
    ]
    result.gap = sum(g["seconds"] for g in mine)
    result.gaps = len(mine)
    result.causes = [g["cause"] for g in mine]
    return result


def report(injection: Injection, index: int) -> None:
    """Print one injection's figures as they are measured."""
    if injection.gap is None or injection.recover is None:
        print(f"  {injection.fault} #{index}: NOT RECOVERED ({injection.note})", flush=True)
        return
    causes = "; ".join(injection.causes) or "no gap listed"
    extra = f"; {injection.note}" if injection.note else ""
    print(
        f"  {injection.fault} #{index}: gap {injection.gap:.2f} s ({injection.gaps}: {causes}),"
        f" away {injection.outage:.2f} s, beyond {injection.beyond:.2f} s,"
        f" recovered {injection.recover:.2f} s after the fault ended{extra}",
        flush=True,
    )


async def in_process_faults(
    work: Path, camera: RtspCamera, times: int, outage: float, stall: float
) -> list[Injection]:
    """Faults 1-3 against obrady running in this process."""
    port = free_port()
    data = work / "inproc"
    data.mkdir()
    settings = parse_settings(config_text(data, port, rtsp_source(camera.url), **RECORDING))
    index = ArchiveIndex(settings.data_path / "obrady.sqlite3")
    index.add_user(USER[0], "operator", hash_password(USER[1]))
    index.close()
    app = create_app(settings)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    results: list[Injection] = []
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        api = Api(f"http://127.0.0.1:{port}")
        try:
            sid = 0

            async def kill_ffmpeg() -> tuple[float, float]:
                supervisor = app[RECORDER].supervisor(sid)
                pid = supervisor.pid if supervisor is not None else None
                if pid is None:
                    raise BenchError("no capture ffmpeg is running")
                ended = time.time()
                os.kill(pid, signal.SIGKILL)
                return 0.0, ended

            async def drop_camera() -> tuple[float, float]:
                began = time.time()
                await camera.stop()
                await asyncio.sleep(outage)
                await camera.start()
                ended = time.time()
                return ended - began, ended

            async def stall_camera() -> tuple[float, float]:
                pid = camera.pid
                if pid is None:
                    raise BenchError("the camera is not running")
                began = time.time()
                os.kill(pid, signal.SIGSTOP)
                try:
                    await asyncio.sleep(stall)
                finally:
                    os.kill(pid, signal.SIGCONT)
                ended = time.time()
                return ended - began, ended

            faults: list[tuple[str, Action]] = [
                ("ffmpeg SIGKILL", kill_ffmpeg),
                (f"camera drop ({outage:g} s)", drop_camera),
                (f"camera stall ({stall:g} s, connection open)", stall_camera),
            ]
            for name, action in faults:
                sid = await api.begin()
                for i in range(times):
                    result = await inject(api, sid, name, action, phase(i, times))
                    report(result, i + 1)
                    results.append(result)
                await api.call("POST", f"/api/v1/sessions/{sid}/stop")
        finally:
            await api.close()
    finally:
        await runner.cleanup()
    return results


class ServeProcess:
    """`python -m streaming serve` as its own process, as an operator runs obrady."""

    def __init__(self, config: Path, log: IO[bytes]) -> None:
        self.config = config
        self.log = log
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Spawn the service (not waiting for it to answer)."""
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "streaming",
            "serve",
            "--config",
            str(self.config),
            cwd=ROOT,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self.log,
            stderr=self.log,
        )

    async def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would."""
        assert self.proc is not None
        self.proc.kill()
        await asyncio.wait_for(self.proc.wait(), 10)

    async def terminate(self) -> None:
        """Ctrl-C (captures finish their segment), SIGKILL after 30 s."""
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await asyncio.wait_for(proc.wait(), 10)


async def restart_faults(work: Path, camera: RtspCamera, times: int) -> list[Injection]:
    """Fault 4: obrady SIGKILLed mid-session and started again."""
    port = free_port()
    data = work / "serve"
    data.mkdir()
    config = work / "obrady.toml"
    config.write_text(config_text(data, port, rtsp_source(camera.url), **RECORDING))
    add = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "streaming",
        "user",
        "add",
        USER[0],
        "--role",
        "operator",
        "--password-stdin",
        "--config",
        str(config),
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(add.communicate(f"{USER[1]}\n".encode()), 30)
    except TimeoutError:
        add.kill()
        await add.wait()
        raise
    if add.returncode != 0:
        raise BenchError(f"obrady user add exited {add.returncode}: {err.decode().strip()}")

    results: list[Injection] = []
    seen_ffmpeg: set[int] = set()
    api = Api(f"http://127.0.0.1:{port}")
    with (work / "serve.log").open("ab") as log:
        serve = ServeProcess(config, log)
        try:
            await serve.start()
            await until(api.up, 30, "answer from obrady serve")
            sid = await api.begin()

            async def kill_obrady() -> tuple[float, float]:
                captures = (await api.call("GET", "/api/v1/status"))["captures"]
                pid = captures[0]["pid"] if captures else None
                if not pid:
                    raise BenchError(f"no capture ffmpeg is running: {captures}")
                seen_ffmpeg.add(pid)
                began = time.time()
                await serve.kill()
                # Its ffmpeg gets SIGINT from the kernel (PR_SET_PDEATHSIG) and is meant to
                # finish its segment; a new obrady only indexes what is on disk when it starts.
                await until(lambda: _now(not pid_alive(pid)), 15, "exit of the orphaned ffmpeg")
                ended = time.time()
                unlisted.append(unlisted_segments(data / "media", sid))
                await serve.start()
                await until(api.up, 30, "answer from the restarted obrady")
                timings.append((ended - began, time.time() - ended))
                return 0.0, ended

            timings: list[tuple[float, float]] = []  # (obrady down, relaunch -> answering)
            unlisted: list[list[str]] = []  # per kill: segment files ffmpeg did not finish
            for i in range(times):
                result = await inject(
                    api, sid, "obrady SIGKILL + restart", kill_obrady, phase(i, times)
                )
                down, answering = timings[-1]
                in_flight = (
                    f"segment in flight LOST ({', '.join(unlisted[-1])})"
                    if unlisted[-1]
                    else "segment in flight finished"
                )
                result.note = (result.note + "; " if result.note else "") + (
                    f"obrady down {down:.2f} s, answering {answering:.2f} s after relaunch;"
                    f" {in_flight}"
                )
                report(result, i + 1)
                results.append(result)
            captures = (await api.call("GET", "/api/v1/status"))["captures"]
            seen_ffmpeg.update(c["pid"] for c in captures if c["pid"])
            await api.call("POST", f"/api/v1/sessions/{sid}/stop")
        finally:
            await api.close()
            await serve.terminate()
            await _reap_orphans(seen_ffmpeg)
    return results


def unlisted_segments(media: Path, sid: int) -> list[str]:
    """Segment files of the session's newest run that its segment list does not name.

    A segment ffmpeg did not finish (it died without writing the trailer) is left like this.
    """
    runs = sorted(media.glob(f"*/{sid}/**/run-*"), key=lambda p: p.name)
    if not runs:
        return []
    listing = runs[-1] / SEGMENT_LIST
    listed = listing.read_text().splitlines() if listing.is_file() else []
    names = {line.split(",", 1)[0] for line in listed}
    return [
        f"{p.name}, {p.stat().st_size} bytes, not listed"
        for p in sorted(runs[-1].glob("seg-*.ts"))
        if p.name not in names
    ]


async def _now(value: bool) -> bool:
    return value


async def _reap_orphans(pids: set[int]) -> None:
    """Make sure no ffmpeg started by the obrady we ran outlives this script."""
    with contextlib.suppress(TimeoutError):
        await until(lambda: _now(not any(map(pid_alive, pids))), 15, "exit of every ffmpeg")
    for pid in pids:
        if _is_ffmpeg(pid):
            print(f"  ffmpeg {pid} outlived obrady by 15 s: killing it", flush=True)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _is_ffmpeg(pid: int) -> bool:
    """Whether pid is a live ffmpeg (and not a process that reused the pid)."""
    try:
        return pid_alive(pid) and b"ffmpeg" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return False


def _max_mean(values: list[float], unit: str = "s") -> str:
    if not values:
        return "n/a"
    return f"{max(values):.2f} / {statistics.mean(values):.2f} {unit}"


def table(results: list[Injection]) -> list[str]:
    """The Markdown table: one row per fault type."""
    rows = [
        "| fault | times injected | source away (mean) | media lost: gap (max / mean) "
        "| media lost beyond the outage (max / mean) | time to recover (max / mean) |",
        "|---|---|---|---|---|---|",
    ]
    for fault in dict.fromkeys(r.fault for r in results):
        mine = [r for r in results if r.fault == fault]
        done = [r for r in mine if r.gap is not None and r.recover is not None]
        failed = len(mine) - len(done)
        injected = f"{len(mine)}" + (f" ({failed} not recovered)" if failed else "")
        away = statistics.mean(r.outage for r in mine)
        rows.append(
            f"| {fault} | {injected} | {away:.2f} s "
            f"| {_max_mean([r.gap for r in done if r.gap is not None])} "
            f"| {_max_mean([r.beyond for r in done if r.beyond is not None])} "
            f"| {_max_mean([r.recover for r in done if r.recover is not None])} |"
        )
    return rows


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


async def main(args: argparse.Namespace, work: Path) -> None:
    """Run every fault type against one camera and print the figures."""
    camera = RtspCamera(free_port(), width=WIDTH, height=HEIGHT, fps=FPS)
    await camera.start()
    try:
        print(f"camera: {WIDTH}x{HEIGHT} {FPS} fps H.264 + AAC at {camera.url}", flush=True)
        results = await in_process_faults(work, camera, args.times, args.outage, args.stall)
        if camera.pid is None:
            await camera.start()
        results += await restart_faults(work, camera, args.times)
    finally:
        await camera.stop()
    print()
    for line in table(results):
        print(line)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--times", type=int, default=3, help="injections per fault type")
    parser.add_argument("--outage", type=float, default=10, help="camera drop, seconds")
    parser.add_argument("--stall", type=float, default=5, help="camera stall, seconds")
    parser.add_argument("--keep", action="store_true", help="keep the data and logs")
    arguments = parser.parse_args()
    began = time.monotonic()
    print(f"machine: {machine()}")
    folder = Path(tempfile.mkdtemp(prefix="obrady-faults-"))
    logging.basicConfig(
        filename=folder / "obrady.log",
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        asyncio.run(main(arguments, folder))
    finally:
        logging.shutdown()
        if arguments.keep:
            print(f"data and logs kept in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"run time: {time.monotonic() - began:.0f} s")
