"""Whether anonymous hostile load hurts the viewers or the recording (issue 16's goals: memory
bounded by configuration, no media lost, viewers unaffected).

Each phase starts `obrady serve` afresh (bench/scale.py's `Obrady`: its own ports and folder,
the viewers' gateway as a process of its own) with a simulated chamber that burns a wall-clock
code into every frame, under the open-files limit a service gets by default on Debian (soft
1024, `--nofile`), starts a session and lets --viewers simulated LL-HLS viewers
(bench/_viewers.py, in --workers processes) watch the gateway. After their ramp, for --seconds:

- `quiet`: nothing else;
- `hostile`: one attack process, straight at obrady's two ports (as without a proxy in front),
  runs at once:
  - `basic`: --basic requests at a time of `GET /api/v1/me` on the control port with made-up
    HTTP Basic credentials, each from its own address in X-Forwarded-For (so the per-address
    throttle does not help), at most --basic-rate a second;
  - `slow`: slow-header connections (slowloris), --slow to each port: each sends a request
    line, then one byte of a header every --drip seconds and never ends its head; one the
    server closes is opened again (at most 500 new a second per port);
  - `far`: --far blocking playlist reloads at a time on the gateway, each asking for the last
    part number allowed (`_HLS_part=1000`) of a segment ahead of the edge (`_HLS_msn` = the
    preload hint's segment + 1, at most the newest + 2 that obrady accepts), so each is held
    until that segment is complete or obrady's hold runs out ("edge"); one in ten asks 1,000
    segments ahead instead ("far": the LL-HLS spec says 400);
  - `operator`: meanwhile, the operator's script asks `GET /api/v1/me` with the right
    credentials once a second (what anonymous load does to the staff's own work).

Measured per phase:
- the viewers' part delivery delay (a part fully received minus the moment the capture process
  published it, as bench/scale.py measures it): p50/p99/max, parts delivered as a share of
  viewers x parts published, their errors;
- the peak resident memory (VmRSS sampled every 100 ms; VmHWM at the end) and open files of each
  obrady process: `serve` (capture, control port), the gateway, ffmpeg;
- the recording's lost time: after the session is stopped and its media checked, what the
  session's continuity report (`GET /api/v1/sessions/{id}`, signed in) lists, and the holes in
  the recorded picture itself (bench/live_under_load.py's `lost_time`: frame-to-frame steps of
  the clock code over 250 ms);
- the attack's answers by status per kind, slow connections opened, refused and closed by the
  server (and how long those lived), and the CPU of each part.

Usage (from the repository root):
    .venv/bin/python bench/hostile_load.py [--phases quiet,hostile] [--seconds 60]
        [--viewers 100] [--basic 20] [--slow 1500] [--far 300] [--nofile 1024] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import resource
import sys
import tempfile
import threading
import time
from base64 import b64encode
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BenchError, http, until  # noqa: E402
from _viewers import HINT_LINE, Client  # noqa: E402
from live_under_load import lost_time, wait_session_live  # noqa: E402
from scale import PLAYLIST, USER, CpuMeter, LoadWorkers, Obrady, Watcher, summarise  # noqa: E402

KINDS = ("basic", "slow", "far", "operator")
SLOW_OPEN_PER_SECOND = 500


# The attack (a process of its own) ---------------------------------------------------------------


class Attack:
    """What the attack process sends and what it got back."""

    def __init__(self, args: dict[str, Any]) -> None:
        self.a = args
        self.deadline = time.monotonic() + float(args["seconds"])
        self.statuses: dict[str, Counter[str]] = {kind: Counter() for kind in KINDS}
        self.slow_open: dict[str, int] = {}
        self.slow_peak: dict[str, int] = {}
        # How long each slow connection lived until the server shut it (seconds).
        self.slow_lived: list[float] = []
        self.newest_msn = -1
        self.far_asked = 0

    def over(self) -> bool:
        return time.monotonic() >= self.deadline

    async def run(self) -> dict[str, Any]:
        tasks = [asyncio.create_task(self._edge())]
        for i in range(int(self.a["basic"])):
            tasks.append(asyncio.create_task(self._basic(i)))
        for role in ("control", "gateway"):
            if int(self.a["slow"]):
                tasks.append(asyncio.create_task(self._slow(role)))
        for _ in range(int(self.a["far"])):
            tasks.append(asyncio.create_task(self._far()))
        tasks.append(asyncio.create_task(self._operator()))
        await asyncio.sleep(max(0.0, self.deadline - time.monotonic()))
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return {
            "statuses": {kind: dict(sorted(c.items())) for kind, c in self.statuses.items()},
            "slow_peak_open": dict(self.slow_peak),
            "slow_closed_by_server": len(self.slow_lived),
            "slow_lived_median_s": (
                round(sorted(self.slow_lived)[len(self.slow_lived) // 2], 1)
                if self.slow_lived
                else None
            ),
        }

    async def _edge(self) -> None:
        """Keep newest_msn current (the preload hint of the plain playlist, once a second)."""
        client = Client("127.0.0.1", int(self.a["gateway"]), 10)
        try:
            while True:
                with contextlib.suppress(TimeoutError, ConnectionError, OSError):
                    status, _, body = await client.fetch(PLAYLIST, True)
                    hint = HINT_LINE.search(body) if status == 200 else None
                    if hint is not None:
                        self.newest_msn = int(hint[1])
                await asyncio.sleep(1)
        finally:
            client.close()

    async def _basic(self, n: int) -> None:
        pace = int(self.a["basic"]) / float(self.a["basic_rate"])
        while not self.over():
            began = time.monotonic()
            n += int(self.a["basic"])
            token = b64encode(f"nobody{n}:guess{n}".encode()).decode()
            forwarded = f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"
            raw = (
                f"GET /api/v1/me HTTP/1.1\r\nHost: obrady\r\nAuthorization: Basic {token}\r\n"
                f"X-Forwarded-For: {forwarded}\r\nConnection: close\r\n\r\n"
            ).encode()
            self.statuses["basic"][await _once(int(self.a["control"]), raw, 60)] += 1
            await asyncio.sleep(max(0.0, pace - (time.monotonic() - began)))

    async def _operator(self) -> None:
        """The operator's script meanwhile: its right credentials, once a second."""
        token = b64encode(":".join(USER).encode()).decode()
        raw = (
            f"GET /api/v1/me HTTP/1.1\r\nHost: obrady\r\nAuthorization: Basic {token}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        while not self.over():
            self.statuses["operator"][await _once(int(self.a["control"]), raw, 30)] += 1
            await asyncio.sleep(1)

    async def _slow(self, role: str) -> None:
        """Hold --slow slow-header connections to a port ("control" or "gateway"), opening
        again those the server shut."""
        port = int(self.a[role])
        target = int(self.a["slow"])
        drip = float(self.a["drip"])
        open_now: set[asyncio.Task[None]] = set()

        async def one() -> None:
            counts = self.statuses["slow"]
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", port), 10
                )
            except (OSError, TimeoutError) as exc:
                counts[f"{role}: connect failed ({type(exc).__name__})"] += 1
                await asyncio.sleep(1)
                return
            opened = time.monotonic()
            counts[f"{role}: opened"] += 1
            try:
                writer.write(b"GET / HTTP/1.1\r\nHost: obrady\r\nX-Slow: ")
                while True:
                    try:
                        got = await asyncio.wait_for(reader.read(4096), drip)
                    except TimeoutError:
                        writer.write(b"a")  # one more byte of a header that never ends
                        continue
                    head = got.split(b"\r\n", 1)[0].decode(errors="replace")[9:12]
                    counts[f"{role}: shut by the server ({head or 'no answer'})"] += 1
                    self.slow_lived.append(time.monotonic() - opened)
                    return
            except (ConnectionError, OSError):
                counts[f"{role}: reset by the server"] += 1
                self.slow_lived.append(time.monotonic() - opened)
            finally:
                writer.close()

        while True:
            missing = target - len(open_now)
            for _ in range(min(missing, SLOW_OPEN_PER_SECOND // 10)):
                task = asyncio.create_task(one())
                open_now.add(task)
                task.add_done_callback(open_now.discard)
            self.slow_open[role] = len(open_now)
            self.slow_peak[role] = max(self.slow_peak.get(role, 0), len(open_now))
            try:
                await asyncio.sleep(0.1)
            except asyncio.CancelledError:
                for task in open_now:
                    task.cancel()
                raise

    async def _far(self) -> None:
        client = Client("127.0.0.1", int(self.a["gateway"]), 30)
        try:
            while not self.over():
                if self.newest_msn < 0:
                    await asyncio.sleep(0.2)
                    continue
                self.far_asked += 1
                # The hint's segment is the newest listed or the next: +1 is at most newest + 2.
                ahead = 1000 if self.far_asked % 10 == 0 else 1
                path = f"{PLAYLIST}?_HLS_msn={self.newest_msn + ahead}&_HLS_part=1000"
                try:
                    status, _, _ = await client.fetch(path, False)
                    key = f"{'far' if ahead == 1000 else 'edge'}: {status}"
                except (TimeoutError, ConnectionError, OSError) as exc:
                    key = f"{'far' if ahead == 1000 else 'edge'}: {type(exc).__name__}"
                    await asyncio.sleep(0.5)
                self.statuses["far"][key] += 1
        finally:
            client.close()


async def _once(port: int, raw: bytes, timeout: float) -> str:
    """Send one request on a connection of its own; the answer's status ("" if none)."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(raw)
                line = await reader.readline()
                await reader.read()  # to the end: the server closes (Connection: close)
            finally:
                writer.close()
    except (TimeoutError, ConnectionError, OSError) as exc:
        return type(exc).__name__
    return line[9:12].decode(errors="replace") or "no answer"


def attack_main(conn: Connection, args: dict[str, Any]) -> None:
    """The attack process: runs for args["seconds"], then sends what it counted."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        conn.send(asyncio.run(Attack(args).run()))
    finally:
        conn.close()


# Memory and open files of obrady's processes ----------------------------------------------------


def _status_kib(pid: int, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def _open_files(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


class MemoryWatch:
    """Peak VmRSS (every 100 ms) and peak open files (every 500 ms) per group of obrady's
    processes (each group's sum); the pids are looked up again every 2 s (a restarted gateway
    or ffmpeg counts)."""

    def __init__(self, obrady: Obrady) -> None:
        self.obrady = obrady
        self.rss_kib: dict[str, int] = {}
        self.files: dict[str, int] = {}
        self.hwm_kib: dict[str, int] = {}
        self.pids_seen: dict[str, set[int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        groups: dict[str, list[int]] = {}
        tick = 0
        while not self._stop.is_set():
            if tick % 20 == 0:
                groups = self.obrady.pids()
                for name, pids in groups.items():
                    self.pids_seen.setdefault(name, set()).update(pids)
            for name, pids in groups.items():
                rss = sum(v for v in (_status_kib(p, "VmRSS") for p in pids) if v is not None)
                self.rss_kib[name] = max(self.rss_kib.get(name, 0), rss)
                hwm = max((v for v in (_status_kib(p, "VmHWM") for p in pids) if v), default=0)
                self.hwm_kib[name] = max(self.hwm_kib.get(name, 0), hwm)
                if tick % 5 == 0:
                    files = sum(v for v in (_open_files(p) for p in pids) if v is not None)
                    self.files[name] = max(self.files.get(name, 0), files)
            tick += 1
            self._stop.wait(0.1)

    def result(self) -> dict[str, Any]:
        return {
            "peak_rss_mib": {k: round(v / 1024) for k, v in self.rss_kib.items()},
            "largest_vmhwm_mib": {k: round(v / 1024) for k, v in self.hwm_kib.items()},
            "peak_open_files": dict(self.files),
            "processes_seen": {k: len(v) for k, v in self.pids_seen.items()},
        }


def stop_session(obrady: Obrady, sid: int) -> None:
    """Stop the session, trying again (up to 60 s) while obrady answers 429 or 503."""

    def stopped() -> bool:
        status, body = http("POST", f"{obrady.base}/api/v1/sessions/{sid}/stop", None, USER)
        if status in (429, 503, 0):
            return False
        if status != 200:
            raise BenchError(f"stop {sid}: HTTP {status} {body!r}")
        return True

    until(stopped, 60, f"stop of session {sid}", 1.0)


# The recording --------------------------------------------------------------------------------


def continuity(obrady: Obrady, sid: int) -> dict[str, Any]:
    """The stopped session's continuity report, once its media are checked (up to 120 s)."""

    def checked() -> dict[str, Any] | None:
        status, body = http("GET", f"{obrady.base}/api/v1/sessions/{sid}", auth=USER)
        if status != 200:
            return None
        recording: dict[str, Any] = json.loads(body)["recording"]
        return recording if recording["media_checked"] else None

    try:
        recording = until(checked, 120, f"media check of session {sid}", 1.0)
    except BenchError:
        status, body = http("GET", f"{obrady.base}/api/v1/sessions/{sid}", auth=USER)
        recording = json.loads(body)["recording"] if status == 200 else {}
    found = recording.get("continuity", [])
    return {
        "media_checked": recording.get("media_checked"),
        "complete": recording.get("complete"),
        "duration_seconds": recording.get("duration_seconds"),
        "reported_lost_seconds": round(sum(float(e["seconds"]) for e in found), 3),
        "reported": [
            {k: e.get(k) for k in ("kind", "seconds", "offset_seconds", "cause")} for e in found
        ][:10],
    }


# A phase --------------------------------------------------------------------------------------


def _sleep(seconds: float, obrady: Obrady) -> None:
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        obrady.check_alive()
        time.sleep(min(0.5, left))


def _log_counts(obrady: Obrady) -> dict[str, int]:
    text = obrady.log_path.read_text(errors="replace") if obrady.log_path.exists() else ""
    lines = text.splitlines()
    return {
        "lines": len(lines),
        "error_or_traceback": sum(1 for ln in lines if "ERROR" in ln or "Traceback" in ln),
        "too_many_open_files": sum(1 for ln in lines if "Too many open files" in ln),
    }


def run_phase(phase: str, args: argparse.Namespace, work: Path, ctx: Any) -> dict[str, Any]:
    obrady = Obrady(work, args)
    text = obrady.config.read_text().replace(
        'label = "scale"\n', 'label = "hostile"\nclock_code = true\n'
    )
    obrady.config.write_text(text)
    # obrady serve (and the gateway it starts) inherit this limit; this process's is restored.
    limits = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(args.nofile, limits[1]), limits[1]))
    try:
        obrady.start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, limits)
    watcher: Watcher | None = None
    workers: LoadWorkers | None = None
    attack: multiprocessing.Process | None = None
    memory = MemoryWatch(obrady)
    try:
        sid = obrady.begin_session()
        wait_session_live(obrady, sid)
        obrady.wait_live(2)
        watcher = Watcher(ctx, obrady.edge_path)
        workers = LoadWorkers(ctx, args.workers, obrady.gateway_port, args.timeout)
        workers.target(args.viewers, args.ramp)
        _sleep(args.ramp + args.warmup, obrady)
        workers.flush()
        watcher.update()
        memory.start()
        receiver = None
        groups = {**obrady.pids(), "viewers (load)": workers.pids}
        if phase == "hostile":
            receiver, sender = ctx.Pipe(duplex=False)
            plan = {
                "seconds": args.seconds,
                "control": obrady.port,
                "gateway": obrady.gateway_port,
                "basic": args.basic,
                "basic_rate": args.basic_rate,
                "slow": args.slow,
                "drip": args.drip,
                "far": args.far,
            }
            attack = ctx.Process(target=attack_main, args=(sender, plan), name="attack")
            attack.start()
            sender.close()
            groups["attack (load)"] = [attack.pid]
        meter = CpuMeter(groups)
        meter.start()
        w0 = time.monotonic()
        _sleep(args.seconds, obrady)
        w1 = time.monotonic()
        cpu = meter.stop()
        data = workers.flush()
        level = summarise(args.viewers, (w0, w1), data, watcher.update(), cpu, args.limit_ms)
        answers = None
        if attack is not None and receiver is not None:
            if receiver.poll(60):
                answers = receiver.recv()
            attack.join(30)
        # Memory is watched until the slow connections are gone and the held requests answered.
        memory.stop()
        alive_after = {name: len(pids) for name, pids in obrady.pids().items()}
        workers.stop()
        workers = None
        stop_session(obrady, sid)
        recording = continuity(obrady, sid)
        recording["picture"] = lost_time(obrady, sid, args)
        return {
            "phase": phase,
            "seconds": round(w1 - w0, 1),
            "viewers": {
                "count": args.viewers,
                "p50_ms": level.p50_ms,
                "p99_ms": level.p99_ms,
                "max_ms": level.max_ms,
                "parts_delivered_percent": round(100 * level.coverage, 1),
                "requests_per_s": level.requests_per_s,
                "errors": level.errors,
            },
            "memory": memory.result(),
            "processes_at_end": alive_after,
            "recording": recording,
            "attack": answers,
            "cpu_percent": cpu,
            "log": _log_counts(obrady),
            "nofile_soft_limit": args.nofile,
        }
    finally:
        if attack is not None and attack.is_alive():
            attack.terminate()
            attack.join(10)
        if workers is not None:
            workers.stop()
        if watcher is not None:
            watcher.stop()
        memory.stop()
        obrady.stop()


# Figures ----------------------------------------------------------------------------------------


def table(results: list[dict[str, Any]]) -> str:
    """The phases side by side."""

    def cell(r: dict[str, Any], what: str) -> str:
        v, m, rec = r["viewers"], r["memory"], r["recording"]
        pic = rec.get("picture", {})
        if what == "delay":
            return f"{v['p50_ms']} / {v['p99_ms']} / {v['max_ms']} ms"
        if what == "parts":
            return f"{v['parts_delivered_percent']}%, errors {sum(v['errors'].values())}"
        if what in ("capture", "gateway", "ffmpeg"):
            return (
                f"{m['peak_rss_mib'].get(what, 0)} MiB, {m['peak_open_files'].get(what, 0)} files"
            )
        if what == "lost":
            return (
                f"{rec['reported_lost_seconds']} s reported; picture {pic.get('lost_seconds')} s, "
                f"{pic.get('segments_indexed')}/{pic.get('segments_listed')} indexed"
            )
        if what == "attack":
            a = r["attack"]
            if not a:
                return "-"
            return "; ".join(f"{kind} {sum(c.values())}" for kind, c in a["statuses"].items() if c)
        return ""

    rows = [
        ("viewers' part delay p50 / p99 / max", "delay"),
        ("parts delivered, viewer errors", "parts"),
        ("peak RSS, open files: serve (capture)", "capture"),
        ("peak RSS, open files: gateway", "gateway"),
        ("peak RSS, open files: ffmpeg", "ffmpeg"),
        ("recording lost", "lost"),
        ("attack requests / connections", "attack"),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{'':<{width}}  " + "  |  ".join(r["phase"] for r in results)]
    for name, what in rows:
        lines.append(f"{name:<{width}}  " + "  |  ".join(cell(r, what) for r in results))
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phases", default="quiet,hostile")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--viewers", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2, help="viewer load processes")
    parser.add_argument("--ramp", type=float, default=5)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--timeout", type=float, default=15, help="a viewer's request timeout")
    parser.add_argument("--limit-ms", type=float, default=200)
    parser.add_argument("--basic", type=int, default=20, help="bogus Basic requests at a time")
    parser.add_argument("--basic-rate", type=float, default=200, help="at most, per second")
    parser.add_argument("--slow", type=int, default=1500, help="slow connections per port")
    parser.add_argument("--drip", type=float, default=5, help="seconds between their bytes")
    parser.add_argument("--far", type=int, default=300, help="far blocking reloads at a time")
    parser.add_argument("--nofile", type=int, default=1024, help="obrady's soft open-files limit")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--segment-seconds", type=float, default=2.0)
    parser.add_argument("--part-seconds", type=float, default=0.2)
    parser.add_argument("--gateway-processes", type=int, default=1)
    parser.add_argument("--json", type=Path)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ctx = multiprocessing.get_context("fork")
    results = []
    with tempfile.TemporaryDirectory(prefix="obrady-hostile-") as tmp:
        for phase in args.phases.split(","):
            work = Path(tmp) / phase
            work.mkdir()
            result = run_phase(phase, args, work, ctx)
            results.append(result)
            print(json.dumps(result, ensure_ascii=False, indent=1), flush=True)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()}")
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
