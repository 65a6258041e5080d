"""How many Low-Latency HLS viewers one viewers' gateway holds on this machine, directly and
through nginx (config/nginx.conf) or Varnish (config/varnish.vcl).

It starts `obrady serve` (a process of its own, with the viewers' gateway as a further process
on `live.gateway_port`) with a simulated chamber (1280x720, 25 fps, 2 s segments, 0.2 s parts)
on free ports and a temporary data folder, and starts a session through the API. Simulated
LL-HLS viewers (bench/_viewers.py: hls.js-like blocking playlist reloads with `_HLS_skip=YES`
plus the preload-hinted part requested in parallel) run in --workers load processes. The number
of viewers is stepped through --levels; at each level new viewers join spread over --ramp
seconds, and after --warmup seconds the level is measured for --measure seconds.

Delivery delay of a part = the moment its body was fully received by a viewer minus the moment
the part became available: when the capture process published it in the live window file
`<data>/live/<chamber>.json` (which the gateway reads when inotify says it was replaced, and
every 20 ms in any case). A watcher process, at a raised priority, is woken by inotify each time
that file is replaced and timestamps every new part with the earlier of its own wake-up and the
file's modification time (written just before the file replaced the old one; the kernel's
coarse clock may put it a few ms early, so delays are never understated, even when the gateway
is woken before the watcher); all processes share one clock (CLOCK_MONOTONIC, the modification
time converted from the wall clock).

For each level: viewers, requests/s, parts delivered (and as a share of viewers x parts
published), p50/p99/max delay, errors (non-200 answers, timeouts, dropped connections), and the
CPU use of the gateway, the capture process, ffmpeg, nginx or Varnish, the load processes and the
whole machine, and the load processes' own event-loop delay. A level passes with p99 <
--limit-ms, no errors and at least 90% of the expected parts delivered in the window. Then the
highest level passed (with every lower one passed too), for the gateway directly and through
each cache, and the ratio.

Targets: `gateway` (the gateway directly), `nginx` (config/nginx.conf as shipped, in front of
the gateway, with this run's ports and folders, as tests/config/test_nginx.py does) and
`nginx-nolock` (the same with `proxy_cache_lock off`: nginx makes the requests that wait for a
cache lock poll for it every 500 ms, which an LL-HLS part cannot afford) and `varnish`
(config/varnish.vcl as shipped in front of the gateway, as tests/config/test_varnish.py does:
Varnish wakes the requests waiting for another's fetch as soon as it completes). The ratio is
each proxied target's held level over the gateway's.

Everything runs on this one machine: the load processes compete with the gateway, nginx, ffmpeg
and the capture for the same cores. The figures printed for their CPU use and event-loop delay
say how much of the result that explains.

Usage (from the repository root):
    .venv/bin/python bench/scale.py [--levels 100,250,500,1000,1500,2000] [--workers 4]
        [--ramp 5] [--warmup 3] [--measure 20] [--targets gateway,nginx,nginx-nolock,varnish]
        [--json out.json] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import multiprocessing
import os
import platform
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BenchError, free_port, http, until  # noqa: E402
from _viewers import KEY_PARTS, worker_main  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
USER = ("bench", "bench-password")
CHAMBER = "sala-obrad"
PLAYLIST = f"/live/{CHAMBER}/index.m3u8"
CONFIG = """
[server]
host = "127.0.0.1"
port = {port}
data_dir = "{data}"

[recording]
segment_seconds = {segment_seconds:g}
preroll_seconds = 0
overrun_limit_minutes = 60

[live]
gateway_port = {gateway_port}
gateway_processes = {gateway_processes}
part_target_seconds = {part_seconds:g}

[[chambers]]
id = "{chamber}"
name = "Sala obrad"
[chambers.source]
kind = "synthetic"
width = {width}
height = {height}
fps = {fps}
label = "scale"
"""
NGINX_MAIN = """{user}worker_processes {workers};
worker_rlimit_nofile 65536;
pid {work}/nginx.pid;
error_log {work}/error.log;
events {{ worker_connections 16384; }}
http {{
    access_log off;
    client_body_temp_path {work}/tmp/body;
    proxy_temp_path {work}/tmp/proxy;
    fastcgi_temp_path {work}/tmp/fastcgi;
    uwsgi_temp_path {work}/tmp/uwsgi;
    scgi_temp_path {work}/tmp/scgi;
    include {work}/obrady-site.conf;
}}
"""
# inotify(7)
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_TO = 0x00000080
COVERAGE_PASS = 0.9  # share of the expected parts that must be delivered in the window


# Processes and their CPU --------------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of pid so far, None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def background_cpu(seconds: float) -> float:
    """% of one core the machine was busy for over the next `seconds` (200% = 2 cores)."""
    busy0, total0 = machine_busy()
    time.sleep(seconds)
    busy1, total1 = machine_busy()
    span = total1 - total0
    return 100 * (os.cpu_count() or 1) * (busy1 - busy0) / span if span else 0.0


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


def children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the processes whose parent is pid."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append((int(entry.name), cmdline.strip()))
    return found


class CpuMeter:
    """CPU use of named groups of processes over a window, in % of one core."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups
        self._start: dict[str, float] = {}
        self._machine: tuple[float, float] = (0.0, 0.0)
        self._began = 0.0

    def _read(self) -> dict[str, float]:
        out = {}
        for name, pids in self.groups.items():
            values = [cpu_seconds(pid) for pid in pids]
            out[name] = sum(v for v in values if v is not None)
        return out

    def start(self) -> None:
        """Begin the window."""
        self._start = self._read()
        self._machine = machine_busy()
        self._began = time.monotonic()

    def stop(self) -> dict[str, float]:
        """% of one core each group used since start(); "machine" is all cores (200% = 2),
        "other" the machine less the groups."""
        wall = time.monotonic() - self._began
        now = self._read()
        busy, total = machine_busy()
        out = {
            name: round(100 * (now[name] - self._start.get(name, 0.0)) / wall, 1)
            for name in self.groups
        }
        cores = os.cpu_count() or 1
        span = total - self._machine[1]
        out["machine"] = round(100 * cores * (busy - self._machine[0]) / span, 1) if span else 0.0
        # Whatever else this machine ran meanwhile (other people's work included).
        out["other"] = round(max(0.0, out["machine"] - sum(out[name] for name in self.groups)), 1)
        return out


# obrady -------------------------------------------------------------------------------------------


class Obrady:
    """`obrady serve` as a process of its own, on free ports and a data folder of its own."""

    def __init__(self, work: Path, args: argparse.Namespace) -> None:
        self.work = work
        self.port = free_port()
        self.gateway_port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.data = work / "data"
        self.config = work / "obrady.toml"
        self.config.write_text(
            CONFIG.format(
                port=self.port,
                gateway_port=self.gateway_port,
                gateway_processes=args.gateway_processes,
                data=self.data,
                segment_seconds=args.segment_seconds,
                part_seconds=args.part_seconds,
                chamber=CHAMBER,
                width=args.width,
                height=args.height,
                fps=args.fps,
            )
        )
        # `python -m streaming` from the root of this tree: the code measured is this tree's
        # (the `obrady` script may import another checkout installed in editable mode).
        self.command = [sys.executable, "-m", "streaming"]
        self.log_path = work / "obrady.log"
        self._log: IO[bytes] | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Add the operator, start the service, wait until the API and the gateway answer."""
        added = subprocess.run(
            [*self.command, "user", "add", USER[0], "--role", "operator", "--password-stdin",
             "--config", str(self.config)],
            input=f"{USER[1]}\n".encode(), capture_output=True, timeout=60, cwd=ROOT,
            check=False,
        )  # fmt: skip
        if added.returncode != 0:
            raise BenchError(f"obrady user add exited {added.returncode}: {added.stderr!r}")
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [*self.command, "serve", "--config", str(self.config)],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            # Our Ctrl-C is not obrady's: stop() sends it exactly one SIGINT.
            start_new_session=True,
        )

        def up() -> bool:
            self.check_alive()
            return http("GET", self.base + "/api/v1/status")[0] == 200

        until(up, 60, "answer from obrady serve")

        def gateway_up() -> bool:
            self.check_alive()
            # 404: the gateway answers, nothing is live yet.
            return http("GET", f"http://127.0.0.1:{self.gateway_port}{PLAYLIST}")[0] in (200, 404)

        until(gateway_up, 60, "answer from the viewers' gateway")

    def check_alive(self) -> None:
        """BenchError (with the log's tail) if the service has exited."""
        if self.proc is not None and self.proc.poll() is not None:
            raise BenchError(f"obrady serve exited {self.proc.returncode}:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the service's output."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def begin_session(self) -> int:
        """Schedule a session an hour ahead and start recording it now."""
        at = datetime.now(UTC) + timedelta(hours=1)
        status, body = http(
            "POST",
            self.base + "/api/v1/sessions",
            {
                "title": "Scale",
                "scheduled_start": at.isoformat(),
                "scheduled_end": (at + timedelta(hours=1)).isoformat(),
                "agenda_text": "1. Otwarcie sesji.\n2. Zamknięcie obrad.\n",
            },
            USER,
        )
        if status != 201:
            raise BenchError(f"POST /api/v1/sessions: HTTP {status} {body!r}")
        sid = int(json.loads(body)["id"])
        status, body = http("POST", f"{self.base}/api/v1/sessions/{sid}/start", None, USER)
        if status != 200:
            raise BenchError(f"POST /api/v1/sessions/{sid}/start: HTTP {status} {body!r}")
        return sid

    @property
    def edge_path(self) -> Path:
        """The live window file the capture process writes and the gateway polls."""
        return self.data / "live" / f"{CHAMBER}.json"

    def wait_live(self, segments: int) -> None:
        """Wait until the live window holds `segments` complete segments and the gateway
        serves the live playlist."""

        def ready() -> bool:
            self.check_alive()
            try:
                edge = json.loads(self.edge_path.read_text())
            except (FileNotFoundError, ValueError):
                return False
            complete = [s for s in edge["segments"] if s["end"] is not None]
            if len(complete) < segments:
                return False
            return http("GET", f"http://127.0.0.1:{self.gateway_port}{PLAYLIST}")[0] == 200

        until(ready, 60 + 3 * segments, f"{segments} live segments on the gateway", 0.5)

    def pids(self) -> dict[str, list[int]]:
        """The service's processes: capture (serve itself), the gateway, ffmpeg."""
        assert self.proc is not None
        out: dict[str, list[int]] = {"capture": [self.proc.pid], "gateway": [], "ffmpeg": []}
        for pid, cmdline in children(self.proc.pid):
            if "gateway" in cmdline:
                out["gateway"].append(pid)
            elif "ffmpeg" in cmdline.split(" ", 1)[0]:
                out["ffmpeg"].append(pid)
        return out

    def stop(self) -> None:
        """One SIGINT (captures finish their segment, the gateway is stopped), SIGKILL after
        30 s."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                print("obrady did not stop within 30 s of SIGINT: SIGKILL", file=sys.stderr)
                proc.kill()
                proc.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None


# nginx -------------------------------------------------------------------------------------------


class Nginx:
    """nginx with the shipped site (config/nginx.conf) on a port and folders of its own."""

    def __init__(self, work: Path, upstream_control: int, upstream_viewers: int,
                 workers: str, cache_lock: str) -> None:  # fmt: skip
        self.work = work
        self.port = free_port()
        site = (ROOT / "config" / "nginx.conf").read_text()
        # The cache as shipped, over plain http: TLS is the same in front of any of the targets
        # and is left out of this measure (the shipped https server's TLS lines are dropped).
        site = "\n".join(ln for ln in site.splitlines() if not ln.strip().startswith("ssl_"))
        replacements = [
            ("listen 443 ssl http2;", f"listen 127.0.0.1:{self.port} backlog=4096;"),
            ("listen 80;", f"listen 127.0.0.1:{free_port()};"),
            ("server 127.0.0.1:8080;", f"server 127.0.0.1:{upstream_control};"),
            ("server 127.0.0.1:8081;", f"server 127.0.0.1:{upstream_viewers};"),
            ("/var/cache/nginx/obrady", str(work / "cache")),
        ]
        if cache_lock == "off":
            replacements.append(("proxy_cache_lock on;", "proxy_cache_lock off;"))
        for old, new in replacements:
            if old not in site:
                raise BenchError(f"config/nginx.conf no longer contains {old!r}")
            site = site.replace(old, new)
        (work / "tmp").mkdir(parents=True, exist_ok=True)
        (work / "obrady-site.conf").write_text(site)
        self.conf = work / "nginx.conf"
        user = "user root;\n" if os.geteuid() == 0 else ""
        self.conf.write_text(NGINX_MAIN.format(user=user, workers=workers, work=work))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start nginx in the foreground and wait until it passes the live playlist through."""
        self.proc = subprocess.Popen(
            ["nginx", "-p", str(self.work), "-c", str(self.conf), "-g", "daemon off;"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=(self.work / "stderr.log").open("ab"),
            start_new_session=True,
        )

        def up() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                log = (self.work / "stderr.log").read_text(errors="replace")
                raise BenchError(f"nginx exited {self.proc.returncode}: {log[-2000:]}")
            return http("GET", f"http://127.0.0.1:{self.port}{PLAYLIST}")[0] == 200

        until(up, 30, "the live playlist through nginx")

    def pids(self) -> list[int]:
        """The master and its workers."""
        if self.proc is None:
            return []
        return [self.proc.pid] + [pid for pid, _ in children(self.proc.pid)]

    def stop(self) -> None:
        """SIGTERM (fast shutdown), SIGKILL after 10 s."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


class Varnish:
    """varnishd with the shipped VCL (config/varnish.vcl) on a port and folder of its own."""

    def __init__(self, work: Path, upstream_control: int, upstream_viewers: int) -> None:
        self.work = work
        self.port = free_port()
        vcl = (ROOT / "config" / "varnish.vcl").read_text()
        for old, new in (('.port = "8080";', f'.port = "{upstream_control}";'),
                         ('.port = "8081";', f'.port = "{upstream_viewers}";')):  # fmt: skip
            if vcl.count(old) != 1:
                raise BenchError(f"config/varnish.vcl no longer contains {old!r} once")
            vcl = vcl.replace(old, new)
        self.vcl = work / "obrady.vcl"
        self.vcl.write_text(vcl)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start varnishd in the foreground and wait until it passes the live playlist through.
        As root `-j none`: the default jail's varnish user cannot enter this private folder."""
        jail = ["-j", "none"] if os.geteuid() == 0 else []
        self.proc = subprocess.Popen(
            ["varnishd", "-F", *jail, "-a", f"127.0.0.1:{self.port}", "-f", str(self.vcl),
             "-n", str(self.work / "varnishd"), "-s", "malloc,256m",
             "-p", "listen_depth=4096"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=(self.work / "stderr.log").open("ab"),
            start_new_session=True,
        )  # fmt: skip

        def up() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                log = (self.work / "stderr.log").read_text(errors="replace")
                raise BenchError(f"varnishd exited {self.proc.returncode}: {log[-2000:]}")
            return http("GET", f"http://127.0.0.1:{self.port}{PLAYLIST}")[0] == 200

        until(up, 30, "the live playlist through Varnish")

    def pids(self) -> list[int]:
        """The manager and its child (the cache process)."""
        if self.proc is None:
            return []
        return [self.proc.pid] + [pid for pid, _ in children(self.proc.pid)]

    def stop(self) -> None:
        """SIGTERM (the manager stops its child), SIGKILL after 10 s."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


# When each part became available ------------------------------------------------------------------


def _edge_parts(data: bytes) -> list[int]:
    """Keys of every part listed in the live window file's content."""
    edge = json.loads(data)
    return [int(s["msn"]) * KEY_PARTS + n for s in edge["segments"] for n in range(len(s["parts"]))]


def watch_edge(conn: Connection, path: Path) -> None:
    """Timestamp each new part of the live window file until told to stop (a process).

    inotify wakes it when the capture process replaces the file; without inotify the file is
    polled every 2 ms. On ("get",) it sends the (key, time) pairs found since the last get."""
    with contextlib.suppress(PermissionError, OSError):
        os.setpriority(os.PRIO_PROCESS, 0, -10)
    libc = ctypes.CDLL(None, use_errno=True)
    flags = os.O_NONBLOCK | os.O_CLOEXEC
    notify = int(libc.inotify_init1(flags))
    if (
        notify >= 0
        and libc.inotify_add_watch(notify, str(path.parent).encode(), IN_MOVED_TO | IN_CLOSE_WRITE)
        < 0
    ):
        os.close(notify)
        notify = -1
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN)
    if notify >= 0:
        poller.register(notify, select.POLLIN)
    interval_ms = 50 if notify >= 0 else 2
    seen: set[int] = set()
    found: list[tuple[int, float]] = []
    stamp: tuple[int, int] | None = None

    def check(now: float) -> None:
        nonlocal stamp
        try:
            with path.open("rb") as fh:  # the content read and its stamp are the same file's
                st = os.fstat(fh.fileno())
                if (st.st_mtime_ns, st.st_ino) == stamp:
                    return
                keys = _edge_parts(fh.read())
        except (FileNotFoundError, ValueError, KeyError):
            return
        stamp = (st.st_mtime_ns, st.st_ino)
        written = st.st_mtime_ns / 1e9 - (time.time() - time.monotonic())
        at = min(now, written)
        for key in keys:
            if key not in seen:
                seen.add(key)
                found.append((key, at))

    try:
        while True:
            events = poller.poll(interval_ms)
            now = time.monotonic()
            if notify >= 0:
                # Drain the events before looking at the file: an event that arrives after the
                # look wakes the next poll, and none is lost.
                with contextlib.suppress(BlockingIOError):
                    while os.read(notify, 65536):
                        pass
            check(now)
            for fd, _ in events:
                if fd == conn.fileno():
                    command = conn.recv()
                    if command[0] == "get":
                        conn.send(found)
                        found = []
                    elif command[0] == "stop":
                        return
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        return
    finally:
        if notify >= 0:
            os.close(notify)


class Watcher:
    """The edge watcher process and what it reported."""

    def __init__(self, ctx: Any, path: Path) -> None:
        self.conn, child = ctx.Pipe()
        self.proc: BaseProcess = ctx.Process(
            target=watch_edge, args=(child, path), name="edge-watcher", daemon=True
        )
        self.proc.start()
        child.close()
        self.available: dict[int, float] = {}

    def update(self) -> dict[int, float]:
        """Fetch the new timestamps; all known so far."""
        self.conn.send(("get",))
        if not self.conn.poll(10):
            raise BenchError("the edge watcher did not answer within 10 s")
        for key, at in self.conn.recv():
            self.available.setdefault(key, at)
        return self.available

    def stop(self) -> None:
        """Stop the process (bounded)."""
        with contextlib.suppress(OSError):
            self.conn.send(("stop",))
        _join(self.proc)


def _join(proc: BaseProcess) -> None:
    proc.join(5)
    if proc.is_alive():
        proc.terminate()
        proc.join(5)
    if proc.is_alive():
        proc.kill()
        proc.join(5)


# Load --------------------------------------------------------------------------------


class LoadWorkers:
    """The load processes (bench/_viewers.py) for one target."""

    def __init__(self, ctx: Any, count: int, port: int, timeout: float) -> None:
        self.conns: list[Connection] = []
        self.procs: list[BaseProcess] = []
        for i in range(count):
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=worker_main,
                args=(child, "127.0.0.1", port, PLAYLIST, timeout),
                name=f"viewers-{i}",
                daemon=True,
            )
            proc.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(proc)

    @property
    def pids(self) -> list[int]:
        """The load processes' pids."""
        return [p.pid for p in self.procs if p.pid is not None]

    def target(self, viewers: int, ramp: float) -> None:
        """Run this many viewers in all, spread evenly over the processes."""
        count = len(self.conns)
        for i, conn in enumerate(self.conns):
            conn.send(("target", viewers // count + (1 if i < viewers % count else 0), ramp))

    def flush(self) -> list[dict[str, Any]]:
        """Each process's measurements since the last flush."""
        for conn in self.conns:
            conn.send(("flush",))
        return [self._receive(conn) for conn in self.conns]

    def _receive(self, conn: Connection) -> dict[str, Any]:
        if not conn.poll(60):
            raise BenchError("a load process did not answer within 60 s")
        data: dict[str, Any] = conn.recv()
        return data

    def stop(self) -> None:
        """Stop every viewer and process (bounded)."""
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.send(("stop",))
        for conn in self.conns:
            with contextlib.suppress(OSError, EOFError, BenchError):
                self._receive(conn)
        for proc in self.procs:
            _join(proc)


# Figures --------------------------------------------------------------------------------


@dataclass
class Level:
    """What one level of load measured."""

    viewers: int
    seconds: float
    requests_per_s: float
    parts: int
    expected_parts: int
    published_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    below_zero: int  # deliveries timed before the watcher saw the part (should be 0)
    unmatched: int  # deliveries of parts the watcher never saw
    errors: dict[str, int]
    cpu: dict[str, float]
    load_lag_p99_ms: float | None
    connects: int
    passed: bool = False
    note: str = ""

    @property
    def coverage(self) -> float:
        """Parts delivered as a share of viewers x parts published in the window."""
        return self.parts / self.expected_parts if self.expected_parts else 0.0


@dataclass
class TargetResult:
    """One server measured at every level."""

    name: str
    levels: list[Level] = field(default_factory=list)
    held: int = 0
    stopped_because: str = ""


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted values."""
    index = max(0, min(len(values) - 1, int(round(q / 100 * len(values) + 0.5)) - 1))
    return values[index]


def summarise(
    viewers: int,
    window: tuple[float, float],
    data: list[dict[str, Any]],
    available: dict[int, float],
    cpu: dict[str, float],
    limit_ms: float,
) -> Level:
    """The figures of one level from the load processes' records."""
    w0, w1 = window
    delays: list[float] = []
    below = unmatched = 0
    requests = 0
    errors: Counter[str] = Counter()
    lags: list[float] = []
    for chunk in data:
        keys = array("q")
        keys.frombytes(chunk["keys"])
        times = array("d")
        times.frombytes(chunk["times"])
        for key, done in zip(keys, times, strict=True):
            if not w0 <= done <= w1:
                continue
            at = available.get(key)
            if at is None:
                unmatched += 1
                continue
            delay = done - at
            if delay < 0:
                below += 1
            delays.append(delay * 1000)
        requests += sum(n for b, n in chunk["requests"].items() if w0 <= b / 10 < w1)
        errors.update(kind for t, kind in chunk["errors"] if w0 <= t <= w1)
        lag = array("d")
        lag.frombytes(chunk["lags"])
        lags.extend(x * 1000 for x in lag)
    seconds = w1 - w0
    published = sum(1 for at in available.values() if w0 <= at <= w1)
    delays.sort()
    lags.sort()
    level = Level(
        viewers=viewers,
        seconds=round(seconds, 1),
        requests_per_s=round(requests / seconds, 1),
        parts=len(delays) + unmatched,
        expected_parts=published * viewers,
        published_per_s=round(published / seconds, 2),
        p50_ms=round(percentile(delays, 50), 1) if delays else None,
        p99_ms=round(percentile(delays, 99), 1) if delays else None,
        max_ms=round(delays[-1], 1) if delays else None,
        below_zero=below,
        unmatched=unmatched,
        errors=dict(errors),
        cpu=cpu,
        load_lag_p99_ms=round(percentile(lags, 99), 1) if lags else None,
        connects=sum(int(chunk["connects"]) for chunk in data),
    )
    level.passed = (
        level.p99_ms is not None
        and level.p99_ms < limit_ms
        and not level.errors
        and level.coverage >= COVERAGE_PASS
    )
    return level


HEADER = (
    f"{'viewers':>7} {'req/s':>7} {'parts':>7} {'got%':>5} {'p50ms':>6} {'p99ms':>6} "
    f"{'maxms':>6} {'errors':>8} {'gw%':>4} {'cap%':>4} {'ffm%':>4} {'prx%':>4} {'load%':>5} "
    f"{'oth%':>4} {'all%':>4} {'lag99':>5} pass"
)


def row(level: Level) -> str:
    """One line of the table."""

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}"

    cpu = level.cpu
    errors = sum(level.errors.values())
    proxy = cpu.get("nginx", cpu.get("varnish", 0))  # the cache in front, if any
    return (
        f"{level.viewers:>7} {level.requests_per_s:>7.0f} {level.parts:>7} "
        f"{100 * level.coverage:>5.1f} {ms(level.p50_ms):>6} {ms(level.p99_ms):>6} "
        f"{ms(level.max_ms):>6} {errors:>8} {cpu.get('gateway', 0):>4.0f} "
        f"{cpu.get('capture', 0):>4.0f} {cpu.get('ffmpeg', 0):>4.0f} {proxy:>4.0f} "
        f"{cpu.get('load', 0):>5.0f} {cpu.get('other', 0):>4.0f} {cpu.get('machine', 0):>4.0f} "
        f"{ms(level.load_lag_p99_ms):>5} "
        f"{'yes' if level.passed else 'no'}"
    )


def run_target(
    name: str,
    port: int,
    obrady: Obrady,
    watcher: Watcher,
    extra_pids: dict[str, list[int]],
    ctx: Any,
    args: argparse.Namespace,
) -> TargetResult:
    """Step the viewers against one server (the gateway, or nginx in front of it)."""
    result = TargetResult(name)
    print(f"\n== {name} (port {port}) ==", flush=True)
    print(HEADER, flush=True)
    workers = LoadWorkers(ctx, args.workers, port, args.timeout)
    try:
        for viewers in args.levels:
            obrady.check_alive()
            workers.target(viewers, args.ramp)
            _sleep(args.ramp + args.warmup, obrady)
            workers.flush()  # the ramp and warm-up are not measured
            watcher.update()
            groups = {**obrady.pids(), **extra_pids, "load": workers.pids}
            groups["watcher"] = [watcher.proc.pid] if watcher.proc.pid is not None else []
            meter = CpuMeter(groups)
            meter.start()
            w0 = time.monotonic()
            _sleep(args.measure, obrady)
            w1 = time.monotonic()
            cpu = meter.stop()
            data = workers.flush()
            # Parts published just before w1 are timestamped by now; let the watcher report.
            available = watcher.update()
            level = summarise(viewers, (w0, w1), data, available, cpu, args.limit_ms)
            running = sum(int(chunk["viewers"]) for chunk in data)
            if running != viewers:
                level.note = f"{running} viewers running"
            if not obrady.pids()["gateway"]:
                level.note += " gateway process not running"
            result.levels.append(level)
            print(row(level) + (f"  ({level.note.strip()})" if level.note else ""), flush=True)
            if level.errors:
                print(f"        errors: {level.errors}", flush=True)
            if level.below_zero or level.unmatched:
                print(
                    f"        {level.below_zero} deliveries before the watcher saw the part, "
                    f"{level.unmatched} of parts it never saw",
                    flush=True,
                )
            if (
                level.p99_ms is None
                or level.p99_ms > args.give_up_ms
                or level.coverage < 0.5
                or sum(level.errors.values())
                > 0.05 * max(1.0, level.requests_per_s * level.seconds)
            ):
                result.stopped_because = (
                    f"stopped after {viewers} viewers: p99 {level.p99_ms} ms, "
                    f"{100 * level.coverage:.0f}% of parts, {sum(level.errors.values())} errors"
                )
                print(f"   {result.stopped_because}", flush=True)
                break
    finally:
        workers.stop()
    for level in result.levels:
        if not level.passed:
            break
        result.held = level.viewers
    return result


def _sleep(seconds: float, obrady: Obrady) -> None:
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        obrady.check_alive()
        time.sleep(min(1.0, left))


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def workdir(keep: bool) -> Iterator[Path]:
    """A temporary folder, removed afterwards unless keep."""
    path = Path(tempfile.mkdtemp(prefix="obrady-scale-"))
    try:
        yield path
    finally:
        if keep:
            print(f"kept {path}", file=sys.stderr)
        else:
            shutil.rmtree(path, ignore_errors=True)


def main(args: argparse.Namespace) -> int:
    """Run the benchmark; 0 when it measured (whatever the figures), 1 when it could not."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < 4 * max(args.levels) + 1000:
        print(f"warning: only {hard} open files allowed", file=sys.stderr)
    # Both end the run through the finally blocks that stop every process (SIGINT too: a
    # shell may start a background job with SIGINT ignored).
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    ctx = multiprocessing.get_context("fork")
    results: list[TargetResult] = []
    background = background_cpu(3)
    print(f"CPU busy before start (other people's work): {background:.0f}% of 200%", flush=True)
    if background > 20:
        print("warning: this machine is busy; the figures will be lower than on an idle one")
    started = time.monotonic()
    with workdir(args.keep) as work:
        obrady = Obrady(work, args)
        watcher: Watcher | None = None
        nginx: Nginx | None = None
        proxy: Varnish | None = None
        try:
            obrady.start()
            obrady.begin_session()
            obrady.wait_live(3)
            watcher = Watcher(ctx, obrady.edge_path)
            for name in args.targets:
                if name == "gateway":
                    results.append(
                        run_target(name, obrady.gateway_port, obrady, watcher, {}, ctx, args)
                    )
                    continue
                if name == "varnish":
                    (work / name).mkdir()
                    proxy = Varnish(work / name, obrady.port, obrady.gateway_port)
                    proxy.start()
                    results.append(
                        run_target(
                            "varnish", proxy.port, obrady, watcher,
                            {"varnish": proxy.pids()}, ctx, args,
                        )
                    )  # fmt: skip
                    proxy.stop()
                    proxy = None
                    continue
                lock = "off" if name == "nginx-nolock" else "on"
                (work / name).mkdir()
                nginx = Nginx(
                    work / name, obrady.port, obrady.gateway_port, args.nginx_workers, lock
                )
                nginx.start()
                label = "nginx" if lock == "on" else "nginx, proxy_cache_lock off"
                results.append(
                    run_target(
                        label, nginx.port, obrady, watcher, {"nginx": nginx.pids()}, ctx, args
                    )
                )
                nginx.stop()
                nginx = None
        except BenchError as exc:
            print(f"bench/scale.py: {exc}", file=sys.stderr)
            return 1
        finally:
            if nginx is not None:
                nginx.stop()
            if proxy is not None:
                proxy.stop()
            if watcher is not None:
                watcher.stop()
            obrady.stop()
    report(results, args, time.monotonic() - started, background)
    return 0


def describe_failure(level: Level, limit_ms: float) -> str:
    """Why a level failed, and what the machine was doing meanwhile."""
    cpu = level.cpu
    reasons = []
    if level.p99_ms is None or level.p99_ms >= limit_ms:
        reasons.append(f"p99 {level.p99_ms} ms")
    if level.errors:
        reasons.append(f"errors {level.errors}")
    if level.coverage < COVERAGE_PASS:
        reasons.append(f"{100 * level.coverage:.0f}% of parts")
    busy = (
        f"gateway {cpu.get('gateway', 0):.0f}%, nginx {cpu.get('nginx', 0):.0f}%, "
        f"varnish {cpu.get('varnish', 0):.0f}%, "
        f"load {cpu.get('load', 0):.0f}% (loop delay p99 {level.load_lag_p99_ms} ms), "
        f"others {cpu.get('other', 0):.0f}%, machine {cpu.get('machine', 0):.0f}% of 200%"
    )
    return f"{level.viewers} viewers: {'; '.join(reasons)} -- CPU: {busy}"


def report(
    results: list[TargetResult], args: argparse.Namespace, wall: float, background: float
) -> None:
    """The summary, and the JSON file when asked for."""
    print(f"\nheld with p99 < {args.limit_ms:g} ms, no errors, >= {COVERAGE_PASS:.0%} of parts:")
    for result in results:
        print(f"  {result.name:<28} {result.held:>6} viewers")
    for result in results:
        failed = next((level for level in result.levels if not level.passed), None)
        if failed is not None:
            print(
                f"  {result.name}: first level not held: {describe_failure(failed, args.limit_ms)}"
            )
    ratios: dict[str, float | None] = {}
    direct = next((r for r in results if r.name == "gateway"), None)
    for proxied in results:
        if direct is None or proxied is direct:
            continue
        ratio = round(proxied.held / direct.held, 2) if direct.held else None
        ratios[proxied.name] = ratio
        shown = "undefined (the gateway held no level)" if ratio is None else f"{ratio:g}"
        print(f"  ratio {proxied.name} / gateway: {shown}")
    machine = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    print(
        f"machine: {machine}; load: {args.workers} processes; "
        f"{wall:.0f} s in all\n"
        "gw/cap/ffm/prx/load% = CPU of the gateway, the capture process, ffmpeg, the cache in "
        "front (nginx or Varnish) and the "
        "load processes in % of one core; oth% = other processes on this machine (not ours); "
        "all% = the whole machine (200% = both cores busy); "
        "lag99 = p99 of the load processes' own event-loop delay (ms): what the load side adds."
    )
    if args.json:
        doc = {
            "machine": machine,
            "settings": {
                k: v for k, v in vars(args).items() if k not in ("json",)
            },
            "limit_ms": args.limit_ms,
            "targets": [
                {
                    "name": r.name,
                    "held_viewers": r.held,
                    "stopped_because": r.stopped_because,
                    "levels": [{**asdict(level), "coverage": round(level.coverage, 4)}
                               for level in r.levels],
                }
                for r in results
            ],
            "ratio_to_gateway": ratios,
            "background_cpu_percent_before": round(background, 1),
            "seconds": round(wall),
        }  # fmt: skip
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
        print(f"wrote {args.json}")


def _levels(text: str) -> list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or any(v <= 0 for v in values) or values != sorted(values):
        raise argparse.ArgumentTypeError("levels must be rising whole numbers above 0")
    return values


TARGETS = ("gateway", "nginx", "nginx-nolock", "varnish")


def _targets(text: str) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    if not values or any(v not in TARGETS for v in values):
        raise argparse.ArgumentTypeError(f"targets are among {', '.join(TARGETS)}")
    return values


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--levels", type=_levels, default=_levels("100,250,500,1000,1500,2000"))
    parser.add_argument(
        "--targets",
        type=_targets,
        default=["gateway", "nginx"],
        help="gateway: the gateway directly; nginx: config/nginx.conf in front of it; "
        "nginx-nolock: the same with proxy_cache_lock off; varnish: config/varnish.vcl in front",
    )
    parser.add_argument("--workers", type=int, default=4, help="load processes")
    parser.add_argument("--ramp", type=float, default=5, help="seconds over which viewers join")
    parser.add_argument("--warmup", type=float, default=3, help="seconds after the ramp")
    parser.add_argument("--measure", type=float, default=20, help="seconds measured per level")
    parser.add_argument("--limit-ms", type=float, default=200, help="p99 delay a level must beat")
    parser.add_argument(
        "--give-up-ms", type=float, default=1000, help="stop stepping once p99 exceeds this"
    )
    parser.add_argument("--timeout", type=float, default=15, help="seconds per request")
    parser.add_argument("--nginx-workers", default="auto", help="nginx worker_processes")
    parser.add_argument("--segment-seconds", type=float, default=2)
    parser.add_argument("--part-seconds", type=float, default=0.2)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument(
        "--gateway-processes", type=int, default=1, help="live.gateway_processes (default 1)"
    )
    parser.add_argument("--json", metavar="PATH", help="write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    return parser.parse_args(argv)


if __name__ == "__main__":
    try:
        sys.exit(main(parse_args()))
    except KeyboardInterrupt as exc:
        print(f"bench/scale.py: interrupted ({exc}); every process it started was stopped",
              file=sys.stderr)  # fmt: skip
        sys.exit(130)
