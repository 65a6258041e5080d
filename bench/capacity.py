"""The CPU and memory each part of obrady costs on this machine at its working load: the figures
from which a machine for a chamber is sized (bench/README.md, "capacity.py"; README, "Sizing").

Each part runs alone, in an `obrady serve` of its own (a process, started from this tree with
`python -m streaming`, on free ports and a temporary data folder, `monitoring.offair = false`,
`live.announce_minutes = 0`), or in the one process it needs:

- `copy`: a real RTSP camera (tests/cameras/rtsp_camera.py, GStreamer, 1280x720 25 fps H.264 +
  AAC) recorded in a session started through the API, 2 s segments, `video = "auto"` (probed:
  copied). Measured: `obrady serve` itself idle (before the session), then with the session
  live: the capture ffmpeg, the segment-analysis ffmpeg and `obrady serve` itself. The same
  session goes on recording until it is --export-minutes long, is stopped, and then:
- `export`: the whole-recording MP4 that obrady makes by itself after the stop (a remux, the
  export ffmpeg a child of `obrady serve`): its CPU (the parent's cutime+cstime gained while it
  ran, i.e. exact, read once it was reaped), its peak memory (sampled every 20 ms) and its
  elapsed time, per minute of recording (the MP4's duration by ffprobe).
- `reencode`: the same camera sending H.265 (x265 ultrafast in GStreamer, on this machine too;
  its CPU is shown, not counted), which obrady re-encodes to H.264: the capture ffmpeg.
- `viewers`: --viewers simulated LL-HLS viewers (bench/scale.py's load processes and edge
  watcher: a blocking playlist reload plus the hinted part, about 10 requests a second each)
  against the viewers' gateway directly, the simulated 1280x720 25 fps chamber live: the
  gateway process idle, then with the viewers, and the parts' delivery delay p50/p99.
- `captions`: the simulated chamber with `sound_file` = Polish speech (espeak-ng, the held set
  of bench/speech/council_pl.toml, as bench/transcript_delay.py makes it), `[transcription]`
  with Whisper base (`.cache/whisper-base`), `live = true`, 15 s windows, 2 CPU threads.
  Recognition runs on a worker thread of `obrady serve` at nice +10 (recorder/transcribe.py);
  CTranslate2's threads and the ffmpeg decoding each window's sound inherit that nice value.
  Counted: every thread of `obrady serve` whose nice value is at least 10, plus the CPU of the
  children `obrady serve` reaped meanwhile (the decoding ffmpeg runs; normally nothing else is
  reaped in a live session). Memory: `obrady serve` with the model loaded, idle and live,
  against `obrady serve` live in `copy` (the difference is the model and recognition's work).
  The live captions' windows, real-time factor and lag at the end (/api/v1/status).
- `push`: nginx with the RTMP module (as tests/servers.py `NginxRtmp`, recording to FLV) as the
  destination, the H.264 camera copied, one `[[chambers.push]]`: the push ffmpeg.
- `search`: a synthetic 20-year archive (bench/search.py's `build`, 1,400 meetings, indexed)
  served by a viewers' gateway alone (`python -m streaming gateway`), `/api/v1/search?q=` with
  bench/search.py's Polish queries at --qps a second (open loop, 8 client threads, one
  keep-alive-less request each) after a warm-up of 100 queries: the gateway's CPU and memory,
  the latency p50/p95/max seen by the client; and the gateway's memory before its first query
  (the first query loads the Polish word tables, simplemma and pystempel).
- `offair`: the off-air monitor (`monitoring.offair`, on by default: libvlc in `obrady serve`
  playing the chamber's live URL through the gateway), the simulated chamber live, measured
  off and then on: `obrady serve` and the gateway.
- After the export, `obrady serve` and the gateway once the ended session is in the archive.

CPU is the utime+stime of the process (all its threads) from /proc/PID/stat over the window, in
% of one core. Memory is sampled every second from /proc/PID/smaps_rollup: RSS, PSS (shared
pages divided among the processes sharing them) and USS (private pages), mean and peak over the
window, in MiB. The machine's load average and its whole CPU use over each window are printed:
on a shared machine other work moves the figures.

Usage (from the repository root; about 10 minutes with the defaults):
    .venv/bin/python bench/capacity.py [--parts copy,reencode,viewers,captions,push,search,offair]
        [--seconds 30] [--idle-seconds 15] [--export-minutes 2] [--viewers 100]
        [--captions-seconds 90] [--qps 20] [--json out.json] [--keep]
(`export` is measured with `copy`: --parts copy measures both.)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import IO, Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))  # this tree's packages, not another checkout installed editable
sys.path.append(str(ROOT / "tests"))  # cameras/, servers.py (after ours: tests/archive exists)

from _common import BenchError, free_port, http, until  # noqa: E402

USER = ("bench", "bench-password")
CHAMBER = "sala-obrad"
WIDTH, HEIGHT, FPS = 1280, 720, 25
SEGMENT_SECONDS = 2
PARTS = ("copy", "reencode", "viewers", "captions", "push", "search", "offair")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024
NICE_MIN = 10  # transcription.nice's default: recognition's threads run at least this nice

CONFIG = """
[server]
host = "127.0.0.1"
port = {port}
data_dir = "{data}"

[recording]
segment_seconds = {segment}
preroll_seconds = 0
overrun_limit_minutes = 60

[live]
gateway_port = {gateway_port}
part_target_seconds = 0.2
announce_minutes = 0

[monitoring]
offair = {offair}
{extra}
[[chambers]]
id = "{chamber}"
name = "Sala obrad"
{chamber_extra}
[chambers.source]
{source}
"""


# /proc -------------------------------------------------------------------------------------------


def _stat(pid: int | str) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (index 0 is field 3), None if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of pid (all its threads), None if it is gone."""
    fields = _stat(pid)
    return None if fields is None else (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def reaped_seconds(pid: int) -> float:
    """cutime + cstime of pid: CPU of the children it has waited for."""
    fields = _stat(pid)
    return 0.0 if fields is None else (int(fields[13]) + int(fields[14])) / CLOCK_TICKS


def niced_thread_seconds(pid: int, minimum: int = NICE_MIN) -> float:
    """utime + stime of pid's threads whose nice value is at least `minimum` (live threads
    only: a thread that ended takes its time with it, so recognition's threads, which live as
    long as the model, are what this counts)."""
    total = 0.0
    with contextlib.suppress(FileNotFoundError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            fields = _stat(f"{pid}/task/{task.name}")
            if fields is not None and int(fields[16]) >= minimum:
                total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


def memory(pid: int) -> tuple[int, int, int] | None:
    """(RSS, PSS, USS) of pid in bytes from /proc/PID/smaps_rollup, None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    values: dict[str, int] = {}
    for line in text.splitlines()[1:]:
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[name.strip()] = int(parts[0]) * 1024
    if "Rss" not in values:
        return None  # a zombie
    uss = values.get("Private_Clean", 0) + values.get("Private_Dirty", 0)
    return values["Rss"], values.get("Pss", 0), uss


def argv_of(pid: int) -> list[str]:
    """The command line pid runs ([] if gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0")[:-1]]


def children(pid: int) -> list[int]:
    """The processes whose parent is pid."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(entry.name)
            if fields is not None and int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


def kind_of(argv: list[str]) -> str:
    """What a child of `obrady serve` is, from its command line."""
    if not argv:
        return "gone"
    joined = " ".join(argv)
    if "recorder.guardian" in joined:
        return "guardian"
    if "streaming" in joined and "gateway" in argv:
        return "gateway"
    if "ffmpeg" not in Path(argv[0]).name:
        return "other"
    if "segments.csv" in joined:
        return "capture ffmpeg"
    if "-skip_frame" in argv and "pipe:0" in argv:
        return "analysis ffmpeg"
    if "rtmp://" in joined or "rtmps://" in joined:
        return "push ffmpeg"
    if "concat" in argv and any(a.endswith(".mp4") or a.endswith(".mp4.part") for a in argv):
        return "export ffmpeg"
    if "concat" in argv:
        return "export ffmpeg"
    return "other ffmpeg"


# Sampling ----------------------------------------------------------------------------------------


@dataclass
class Usage:
    """One group of processes over one window."""

    cpu: float  # % of one core
    rss_mean: float  # MiB
    rss_peak: float
    pss_mean: float
    pss_peak: float
    uss_mean: float
    uss_peak: float
    processes: int


class Window:
    """Samples named groups of processes (re-found at every sample) every `interval` seconds
    over a window; CPU from the first and last look at each process, memory as mean and peak of
    the group's sum. `counters` are extra cumulative CPU-second readers (for CPU that is not a
    whole process: niced threads, reaped children)."""

    def __init__(
        self,
        groups: dict[str, Callable[[], list[int]]],
        counters: dict[str, Callable[[], float]] | None = None,
        interval: float = 1.0,
    ) -> None:
        self.groups = groups
        self.counters = counters or {}
        self.interval = interval
        self._first: dict[str, dict[int, float]] = {n: {} for n in groups}
        self._last: dict[str, dict[int, float]] = {n: {} for n in groups}
        self._mem: dict[str, list[tuple[int, int, int]]] = {n: [] for n in groups}
        self._pids: dict[str, set[int]] = {n: set() for n in groups}
        self._counter0: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._began = 0.0
        self._machine0 = (0.0, 0.0)
        self.seconds = 0.0
        self.machine = 0.0
        self.load: list[float] = []

    def _sample(self, initial: bool) -> None:
        for name, find in self.groups.items():
            total = [0, 0, 0]
            for pid in find():
                cpu = cpu_seconds(pid)
                mem = memory(pid)
                if cpu is None:
                    continue
                if pid not in self._first[name]:
                    # A process that began during the window counts from zero.
                    self._first[name][pid] = cpu if initial else 0.0
                self._last[name][pid] = cpu
                self._pids[name].add(pid)
                if mem is not None:
                    total = [a + b for a, b in zip(total, mem, strict=True)]
            self._mem[name].append((total[0], total[1], total[2]))
        self.load.append(os.getloadavg()[0])

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample(False)

    def __enter__(self) -> Window:
        self._counter0 = {n: read() for n, read in self.counters.items()}
        self._machine0 = machine_busy()
        self._began = time.monotonic()
        self._sample(True)
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self._sample(False)
        self.seconds = time.monotonic() - self._began
        counters1 = {n: read() for n, read in self.counters.items()}
        self._counter1 = counters1
        busy, total = machine_busy()
        span = total - self._machine0[1]
        cores = os.cpu_count() or 1
        self.machine = 100 * cores * (busy - self._machine0[0]) / span if span else 0.0

    def usage(self, name: str) -> Usage:
        """The figures of one group."""
        cpu = sum(self._last[name][p] - self._first[name][p] for p in self._last[name])
        mem = self._mem[name] or [(0, 0, 0)]

        def mean(i: int) -> float:
            return round(statistics.fmean(m[i] for m in mem) / MIB, 1)

        def peak(i: int) -> float:
            return round(max(m[i] for m in mem) / MIB, 1)

        return Usage(
            round(100 * cpu / self.seconds, 1), mean(0), peak(0), mean(1), peak(1), mean(2),
            peak(2), len(self._pids[name]),
        )  # fmt: skip

    def counter(self, name: str) -> float:
        """% of one core an extra counter gained over the window."""
        return round(100 * (self._counter1[name] - self._counter0[name]) / self.seconds, 1)

    @property
    def load_mean(self) -> float:
        """Mean 1-minute load average over the window."""
        return round(statistics.fmean(self.load), 2) if self.load else 0.0


# Results -----------------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the capacity table."""

    part: str
    load: str  # the working load
    process: str  # what was measured
    cpu: float | None  # % of one core
    rss_mean: float | None = None
    rss_peak: float | None = None
    pss_mean: float | None = None
    pss_peak: float | None = None
    uss_mean: float | None = None
    uss_peak: float | None = None
    seconds: float = 0.0
    machine: float = 0.0  # whole machine, % of one core (200% = 2 cores)
    load_average: float = 0.0
    note: str = ""


def row_of(part: str, load: str, process: str, window: Window, group: str, note: str = "") -> Row:
    """A table row from a group of a window."""
    u = window.usage(group)
    if u.processes == 0:
        note = (note + "; " if note else "") + "no such process was running"
    return Row(
        part, load, process, u.cpu, u.rss_mean, u.rss_peak, u.pss_mean, u.pss_peak, u.uss_mean,
        u.uss_peak, round(window.seconds, 1), round(window.machine, 1), window.load_mean, note,
    )  # fmt: skip


@dataclass
class Results:
    """Everything measured."""

    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        print(format_row(row), flush=True)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"   {text}", flush=True)


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def format_row(r: Row) -> str:
    """One line for the terminal."""
    cpu = "-" if r.cpu is None else f"{r.cpu:.1f}"
    return (
        f"{r.part:<9} {r.process:<38} cpu {cpu:>6}%  "
        f"rss {_mib(r.rss_mean):>4}/{_mib(r.rss_peak):>4}"
        f"  pss {_mib(r.pss_mean):>4}/{_mib(r.pss_peak):>4}  uss {_mib(r.uss_mean):>4}/"
        f"{_mib(r.uss_peak):>4} MiB  ({r.seconds:.0f} s, machine {r.machine:.0f}%, load "
        f"{r.load_average:.2f}){'  ' + r.note if r.note else ''}"
    )


# Processes we start ----------------------------------------------------------------------------


def wait_file(path: Path, text: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait until `text` appears in the file a process writes."""

    def found() -> bool:
        if proc.poll() is not None:
            raise BenchError(f"{proc.args!r} exited with {proc.returncode}: {tail(path)}")
        return path.exists() and text in path.read_text(errors="replace")

    until(found, timeout, f"{text!r} in {path.name}", 0.1)


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log."""
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def stop_process(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM) -> None:
    """One signal, SIGKILL after 30 s."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


class Camera:
    """The RTSP test camera (tests/cameras/rtsp_camera.py) as a plain process."""

    def __init__(self, work: Path, video: str) -> None:
        from cameras.camera import RtspCamera

        self.spec = RtspCamera(free_port(), video=video, width=WIDTH, height=HEIGHT, fps=FPS)
        self.url = self.spec.url
        self.log = work / f"camera-{video}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Camera:
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                self.spec.argv(), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True,
            )  # fmt: skip
        wait_file(self.log, "READY ", self.proc, 30)
        return self

    def __exit__(self, *exc: object) -> None:
        stop_process(self.proc)


class Nginx:
    """nginx accepting RTMP pushes and recording them to FLV (as tests/servers.py NginxRtmp)."""

    def __init__(self, work: Path) -> None:
        from servers import MODULE

        self.work = work
        self.port = free_port()
        self.url = f"rtmp://127.0.0.1:{self.port}/live/obrady"
        (work / "records").mkdir(parents=True, exist_ok=True)
        self.conf = work / "nginx.conf"
        self.conf.write_text(
            f"""load_module {MODULE};
user root;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log info;
events {{ worker_connections 64; }}
rtmp {{
    server {{
        listen 127.0.0.1:{self.port};
        application live {{
            live on;
            record all;
            record_path {work}/records;
            record_unique on;
        }}
    }}
}}
"""
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Nginx:
        self.proc = subprocess.Popen(
            ["nginx", "-p", str(self.work), "-c", str(self.conf), "-g", "daemon off;"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=(self.work / "nginx.stderr").open("wb"), start_new_session=True,
        )  # fmt: skip

        def up() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise BenchError(f"nginx exited: {tail(self.work / 'nginx.stderr')}")
            import socket

            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 1),
            ):
                return True
            return False

        until(up, 15, "nginx RTMP listening")
        return self

    def pids(self) -> list[int]:
        """nginx master and workers."""
        if self.proc is None or self.proc.poll() is not None:
            return []
        return [self.proc.pid, *children(self.proc.pid)]

    def __exit__(self, *exc: object) -> None:
        stop_process(self.proc, signal.SIGQUIT)


class Obrady:
    """`obrady serve` as a process of its own (from this tree), on free ports."""

    def __init__(
        self,
        work: Path,
        source: str,
        extra: str = "",
        chamber_extra: str = "",
        offair: bool = False,
    ) -> None:
        self.work = work
        self.port = free_port()
        self.gateway_port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.gateway = f"http://127.0.0.1:{self.gateway_port}"
        self.data = work / "data"
        self.config = work / "obrady.toml"
        self.config.write_text(
            CONFIG.format(
                port=self.port, gateway_port=self.gateway_port, data=self.data,
                segment=SEGMENT_SECONDS, chamber=CHAMBER, source=source, extra=extra,
                chamber_extra=chamber_extra, offair=str(offair).lower(),
            )
        )  # fmt: skip
        self.command = [sys.executable, "-m", "streaming"]
        self.log_path = work / "obrady.log"
        self._log: IO[bytes] | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Obrady:
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
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
            start_new_session=True,
        )  # fmt: skip
        try:
            until(lambda: self.alive() and http("GET", self.base + "/api/v1/status")[0] == 200,
                  60, "answer from obrady serve")  # fmt: skip
            until(
                lambda: (
                    self.alive()
                    # 404: the gateway answers, nothing is live yet.
                    and http("GET", f"{self.gateway}/live/{CHAMBER}/index.m3u8")[0] in (200, 404)
                ),
                60,
                "answer from the viewers' gateway",
            )
        except BaseException:
            self.__exit__()
            raise
        return self

    def alive(self) -> bool:
        """True while it runs; BenchError with the log's tail once it has exited."""
        if self.proc is not None and self.proc.poll() is not None:
            raise BenchError(f"obrady serve exited {self.proc.returncode}:\n{tail(self.log_path)}")
        return True

    def __exit__(self, *exc: object) -> None:
        stop_process(self.proc, signal.SIGINT)
        if self._log is not None:
            self._log.close()
            self._log = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kids(self, kind: str) -> Callable[[], list[int]]:
        """A finder of the children of one kind (see kind_of)."""
        return lambda: [p for p in children(self.pid) if kind_of(argv_of(p)) == kind]

    def me(self) -> list[int]:
        """`obrady serve` itself."""
        return [self.pid] if self.proc is not None and self.proc.poll() is None else []

    def get(self, path: str) -> Any:
        """GET a JSON route of the API as the bench's operator."""
        status, body = http("GET", self.base + path, None, USER)
        if status != 200:
            raise BenchError(f"GET {path}: HTTP {status} {body[:200]!r}")
        return json.loads(body)

    def begin_session(self, agenda: str = "1. Otwarcie sesji.\n2. Zamknięcie obrad.\n") -> int:
        """Schedule a session an hour ahead and start recording it now."""
        at = datetime.now(UTC) + timedelta(hours=1)
        status, body = http(
            "POST", self.base + "/api/v1/sessions",
            {"title": "Sesja Rady Miasta (capacity)", "scheduled_start": at.isoformat(),
             "scheduled_end": (at + timedelta(hours=1)).isoformat(), "agenda_text": agenda},
            USER,
        )  # fmt: skip
        if status != 201:
            raise BenchError(f"POST /api/v1/sessions: HTTP {status} {body!r}")
        sid = int(json.loads(body)["id"])
        status, body = http("POST", f"{self.base}/api/v1/sessions/{sid}/start", None, USER)
        if status != 200:
            raise BenchError(f"POST /api/v1/sessions/{sid}/start: HTTP {status} {body!r}")
        return sid

    def stop_session(self, sid: int) -> dict[str, Any]:
        """Stop recording; the session's JSON."""
        status, body = http("POST", f"{self.base}/api/v1/sessions/{sid}/stop", None, USER)
        if status != 200:
            raise BenchError(f"POST /api/v1/sessions/{sid}/stop: HTTP {status} {body!r}")
        answer: dict[str, Any] = json.loads(body)
        return answer

    def wait_live(self, segments: int = 2) -> None:
        """Until the live window holds `segments` complete segments."""
        path = self.data / "live" / f"{CHAMBER}.json"

        def ready() -> bool:
            self.alive()
            try:
                edge = json.loads(path.read_text())
            except (FileNotFoundError, ValueError):
                return False
            return sum(1 for s in edge["segments"] if s["end"] is not None) >= segments

        until(ready, 60 + 3 * segments, f"{segments} live segments", 0.5)

    def recorded_seconds(self, sid: int) -> float:
        """The session's recording so far."""
        return float(self.get(f"/api/v1/sessions/{sid}")["recording"]["duration_seconds"] or 0)


def pause(seconds: float, obrady: Obrady | None = None) -> None:
    """Sleep, checking the service is alive every second."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if obrady is not None:
            obrady.alive()
        time.sleep(min(1.0, left))


@contextlib.contextmanager
def part_dir(root: Path, name: str) -> Iterator[Path]:
    """A folder of one part."""
    path = root / name
    path.mkdir()
    yield path


def rtsp_source(url: str) -> str:
    return f'kind = "rtsp"\nurl = "{url}"\n'


SYNTHETIC = f'kind = "synthetic"\nwidth = {WIDTH}\nheight = {HEIGHT}\nfps = {FPS}\n'


# Parts -------------------------------------------------------------------------------------------


def measure_copy(work: Path, args: argparse.Namespace, out: Results) -> None:
    """`copy` and `export` (and `obrady serve` idle and with one live session)."""
    with Camera(work, "h264") as camera, Obrady(work, rtsp_source(camera.url)) as obrady:
        pause(3, obrady)
        groups = {"serve": obrady.me, "gateway": obrady.kids("gateway"),
                  "guardian": obrady.kids("guardian")}  # fmt: skip
        with Window(groups) as w:
            pause(args.idle_seconds, obrady)
        out.add(row_of("idle", "no session", "obrady serve (capture process)", w, "serve"))
        out.add(row_of("idle", "no viewers", "viewers' gateway process", w, "gateway"))
        out.add(row_of("idle", "-", "guardian process", w, "guardian"))
        out.extra["serve_idle"] = asdict(w.usage("serve"))
        began = time.monotonic()
        sid = obrady.begin_session()
        obrady.wait_live(2)
        pause(2, obrady)
        groups = {
            "serve": obrady.me, "capture": obrady.kids("capture ffmpeg"),
            "analysis": obrady.kids("analysis ffmpeg"), "gateway": obrady.kids("gateway"),
            "camera": lambda: [camera.proc.pid] if camera.proc else [],
        }  # fmt: skip
        with Window(groups) as w:
            pause(args.seconds, obrady)
        load = "1280x720 25 fps H.264+AAC, RTSP, copied"
        out.add(row_of("copy", load, "capture ffmpeg (copy)", w, "capture"))
        out.add(row_of("copy", load, "segment analysis ffmpeg", w, "analysis"))
        out.add(row_of("live", "one live session, 1 camera", "obrady serve (capture process)",
                       w, "serve"))  # fmt: skip
        out.add(row_of("live", "no viewers", "viewers' gateway process", w, "gateway"))
        out.note(f"the camera (GStreamer x264, not counted) used {w.usage('camera').cpu:.0f}%")
        out.extra["serve_live"] = asdict(w.usage("serve"))

        # Go on recording until the session is --export-minutes long, then the export.
        target = args.export_minutes * 60
        while obrady.recorded_seconds(sid) < target - SEGMENT_SECONDS:
            if time.monotonic() - began > target + 60:
                raise BenchError("the recording does not grow")
            pause(2, obrady)
        measure_export(obrady, sid, out)
        pause(5, obrady)
        groups = {"serve": obrady.me, "gateway": obrady.kids("gateway")}
        with Window(groups) as w:
            pause(min(args.idle_seconds, 10), obrady)
        out.add(row_of("ended", "the session ended, archived, exported",
                       "obrady serve (capture process)", w, "serve"))  # fmt: skip
        out.add(row_of("ended", "no viewers", "viewers' gateway process", w, "gateway"))


def measure_export(obrady: Obrady, sid: int, out: Results) -> None:
    """Stop the session and follow the whole-recording export obrady makes by itself."""
    stopped = obrady.stop_session(sid)
    published = stopped.get("published", True)
    found = obrady.kids("export ffmpeg")
    deadline = time.monotonic() + 60
    pid = None
    while time.monotonic() < deadline and pid is None:
        pids = found()
        pid = pids[0] if pids else None
        if pid is None:
            time.sleep(0.01)
    if pid is None:
        raise BenchError(f"no export ffmpeg within 60 s of the stop (published: {published})")
    seen_at = time.monotonic()
    reaped0 = reaped_seconds(obrady.pid)
    last_cpu = cpu_seconds(pid) or 0.0
    peak = (0, 0, 0)
    samples = 0
    while (cpu := cpu_seconds(pid)) is not None:
        fields = _stat(pid)
        if fields is not None and fields[0] == "Z":
            break
        last_cpu = cpu
        mem = memory(pid)
        if mem is not None:
            peak = tuple(max(a, b) for a, b in zip(peak, mem, strict=True))  # type: ignore[assignment]
            samples += 1
        time.sleep(0.02)
    ended_at = time.monotonic()
    until(lambda: reaped_seconds(obrady.pid) > reaped0 or cpu_seconds(pid) is None, 5,
          "the export ffmpeg reaped")  # fmt: skip
    time.sleep(0.2)
    reaped = reaped_seconds(obrady.pid) - reaped0
    elapsed = ended_at - seen_at
    mp4s = sorted(obrady.data.rglob("*.mp4"), key=lambda p: p.stat().st_mtime)
    if not mp4s:
        raise BenchError("the export ffmpeg ended but no MP4 is in the data folder")
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
         str(mp4s[-1])], capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    minutes = float(probe.stdout.strip() or 0) / 60
    size = mp4s[-1].stat().st_size / MIB
    status, _ = http("GET", f"{obrady.base}/sessions/{sid}/recording.mp4")
    cpu = max(reaped, last_cpu)
    out.add(Row(
        "export", f"MP4 of a {minutes:.2f}-minute recording ({size:.0f} MiB), remux",
        "export ffmpeg", round(100 * cpu / elapsed, 1) if elapsed else None,
        rss_peak=round(peak[0] / MIB, 1), pss_peak=round(peak[1] / MIB, 1),
        uss_peak=round(peak[2] / MIB, 1), seconds=round(elapsed, 2),
        load_average=round(os.getloadavg()[0], 2),
        note=f"{samples} memory samples",
    ))  # fmt: skip
    per_minute = {
        "recording_minutes": round(minutes, 3),
        "mp4_mib": round(size, 1),
        "elapsed_s": round(elapsed, 3),
        "cpu_s": round(cpu, 3),
        "cpu_s_by_parent_cutime": round(reaped, 3),
        "cpu_s_last_seen": round(last_cpu, 3),
        "elapsed_s_per_minute": round(elapsed / minutes, 3) if minutes else None,
        "cpu_s_per_minute": round(cpu / minutes, 3) if minutes else None,
        "download_status": status,
    }
    out.extra["export"] = per_minute
    out.note(
        f"export: {minutes:.2f} min recorded -> {elapsed:.2f} s elapsed, {cpu:.2f} CPU s "
        f"({per_minute['elapsed_s_per_minute']} s and {per_minute['cpu_s_per_minute']} CPU s "
        f"per minute of recording); download answered {status}"
    )


def measure_reencode(work: Path, args: argparse.Namespace, out: Results) -> None:
    """`reencode`: an H.265 camera, re-encoded to H.264."""
    with Camera(work, "h265") as camera, Obrady(work, rtsp_source(camera.url)) as obrady:
        obrady.begin_session()
        obrady.wait_live(2)
        pause(2, obrady)
        capture = obrady.kids("capture ffmpeg")
        argv = argv_of(capture()[0]) if capture() else []
        encoder = argv[argv.index("-c:v") + 1] if "-c:v" in argv else "?"
        preset = argv[argv.index("-preset") + 1] if "-preset" in argv else "-"
        groups = {"capture": capture, "serve": obrady.me,
                  "analysis": obrady.kids("analysis ffmpeg"),
                  "camera": lambda: [camera.proc.pid] if camera.proc else []}  # fmt: skip
        with Window(groups) as w:
            pause(args.seconds, obrady)
        load = f"1280x720 25 fps H.265+AAC, RTSP, re-encoded ({encoder}, preset {preset})"
        out.add(row_of("reencode", load, "capture ffmpeg (re-encode)", w, "capture"))
        out.add(row_of("reencode", load, "segment analysis ffmpeg", w, "analysis"))
        out.add(row_of("reencode", load, "obrady serve (capture process)", w, "serve"))
        out.note(f"the camera (GStreamer x265, not counted) used {w.usage('camera').cpu:.0f}%")


def measure_viewers(work: Path, args: argparse.Namespace, out: Results) -> None:
    """`viewers`: LL-HLS viewers on the gateway, with bench/scale.py's load and watcher."""
    import scale

    ctx = multiprocessing.get_context("fork")
    with Obrady(work, SYNTHETIC) as obrady:
        obrady.begin_session()
        obrady.wait_live(3)
        watcher = scale.Watcher(ctx, obrady.data / "live" / f"{CHAMBER}.json")
        workers: scale.LoadWorkers | None = None
        try:
            groups = {"gateway": obrady.kids("gateway"), "serve": obrady.me}
            with Window(groups) as w:
                pause(min(args.idle_seconds, 10), obrady)
            out.add(row_of("viewers", "0 viewers (live, idle)", "viewers' gateway process", w,
                           "gateway"))  # fmt: skip
            workers = scale.LoadWorkers(ctx, 2, obrady.gateway_port, 15)
            workers.target(args.viewers, 5)
            pause(5 + 5, obrady)
            workers.flush()
            watcher.update()
            groups = {"gateway": obrady.kids("gateway"), "serve": obrady.me,
                      "load": lambda: workers.pids if workers else []}  # fmt: skip
            with Window(groups) as w:
                w0 = time.monotonic()
                pause(args.seconds, obrady)
                w1 = time.monotonic()
            data = workers.flush()
            available = watcher.update()
            level = scale.summarise(args.viewers, (w0, w1), data, available, {}, 200)
            load = f"{args.viewers} LL-HLS viewers, {level.requests_per_s:.0f} requests/s"
            out.add(
                row_of(
                    "viewers",
                    load,
                    "viewers' gateway process",
                    w,
                    "gateway",
                    f"delivery p50 {level.p50_ms} ms, p99 {level.p99_ms} ms, "
                    f"{100 * level.coverage:.0f}% of parts, errors {level.errors or 0}",
                )
            )
            out.add(row_of("viewers", load, "obrady serve (capture process)", w, "serve"))
            out.note(f"the load processes (not counted) used {w.usage('load').cpu:.0f}%")
            out.extra["viewers"] = asdict(level) | {"cpu": None}
        finally:
            if workers is not None:
                workers.stop()
            watcher.stop()


def measure_captions(work: Path, args: argparse.Namespace, out: Results) -> None:
    """`captions`: live captions with Whisper base on the simulated chamber speaking Polish."""
    from _speech import load_held_set
    from wer import make_session

    from recorder.whisper_model import assemble_model

    model = assemble_model(ROOT / ".cache" / "whisper-base")
    held = load_held_set(BENCH / "speech" / "council_pl.toml")
    sound, _, _ = make_session(held, ROOT / ".cache" / "speech", 1.5)
    extra = f"""
[transcription]
model_dir = "{model}"
cpu_threads = 2
live = true
live_window_seconds = 15
refine_after_live = false
"""
    agenda = "".join(f"{n}. {t}.\n" for n, t in held.agenda)
    with Obrady(work, SYNTHETIC + f'sound_file = "{sound}"\n', extra) as obrady:
        until(lambda: obrady.get("/api/v1/status")["transcription"]["state"] not in
              ("loading", "starting"), 60, "the model loaded")  # fmt: skip
        state = obrady.get("/api/v1/status")["transcription"]["state"]
        pause(3, obrady)
        with Window({"serve": obrady.me}) as w:
            pause(min(args.idle_seconds, 10), obrady)
        out.add(row_of("captions", f"model loaded (state {state}), no session",
                       "obrady serve (capture process)", w, "serve"))  # fmt: skip
        sid = obrady.begin_session(agenda)
        obrady.wait_live(2)
        counters = {
            "recognition": lambda: niced_thread_seconds(obrady.pid),
            "reaped": lambda: reaped_seconds(obrady.pid),
        }
        with Window({"serve": obrady.me, "capture": obrady.kids("capture ffmpeg")},
                    counters) as w:  # fmt: skip
            pause(args.captions_seconds, obrady)
        live = [c for c in obrady.get("/api/v1/status")["transcription"]["live"]
                if c["session_id"] == sid]  # fmt: skip
        status = live[0] if live else {}
        serve = w.usage("serve")
        load = "live captions, Whisper base int8, 2 threads, 15 s windows"
        recognition = w.counter("recognition") + w.counter("reaped")
        out.add(Row(
            "captions", load, "recognition (nice +10 threads, decoding ffmpeg)", recognition,
            seconds=round(w.seconds, 1), machine=round(w.machine, 1), load_average=w.load_mean,
            note=f"threads {w.counter('recognition')}% + decoding ffmpeg {w.counter('reaped')}%;"
            f" {status.get('windows')} windows, real-time factor"
            f" {status.get('realtime_factor')}, lag {status.get('lag_seconds')} s,"
            f" skipped {status.get('skipped_seconds')} s",
        ))  # fmt: skip
        out.add(row_of("captions", load + ", session live",
                       "obrady serve (capture process), all threads", w, "serve"))  # fmt: skip
        base = out.extra.get("serve_live")
        if base:
            out.note(
                f"obrady serve with captions against without (copy part, live): "
                f"RSS {serve.rss_mean - base['rss_mean']:+.0f} MiB, "
                f"USS {serve.uss_mean - base['uss_mean']:+.0f} MiB (means)"
            )
        out.extra["captions"] = status
        obrady.stop_session(sid)


def measure_push(work: Path, args: argparse.Namespace, out: Results) -> None:
    """`push`: one RTMP push of the copied H.264 camera to nginx-rtmp."""
    with (
        Nginx(work / "nginx") as nginx,
        Camera(work, "h264") as camera,
        Obrady(work, rtsp_source(camera.url),
               chamber_extra=f'[[chambers.push]]\nname = "rtmp"\nurl = "{nginx.url}"\n') as obrady,
    ):  # fmt: skip
        obrady.begin_session()
        obrady.wait_live(2)

        def pushing() -> bool:
            obrady.alive()
            pushes = obrady.get("/api/v1/status")["pushes"]
            return bool(pushes) and pushes[0]["bytes_sent"] > 0

        until(pushing, 60, "bytes pushed to nginx")
        pause(2, obrady)
        groups = {"push": obrady.kids("push ffmpeg"), "serve": obrady.me, "nginx": nginx.pids}
        with Window(groups) as w:
            pause(args.seconds, obrady)
        push = obrady.get("/api/v1/status")["pushes"][0]
        out.add(row_of("push", "one RTMP push of the copied 720p25 camera", "push ffmpeg", w,
                       "push", f"state {push['state']}, {push['segments_sent']} segments sent,"
                       f" {push['restarts']} restarts"))  # fmt: skip
        out.add(row_of("push", "one RTMP push", "obrady serve (capture process)", w, "serve"))
        out.note(f"nginx-rtmp, the destination (not counted), used {w.usage('nginx').cpu:.0f}%")


def measure_search(work: Path, args: argparse.Namespace, out: Results) -> None:
    """`search`: a gateway alone over a synthetic 20-year archive, --qps queries a second."""
    import search as search_bench

    from archive.index import ArchiveIndex

    data = work / "data"
    data.mkdir()
    rng = random.Random(2026)
    began = time.monotonic()
    index = ArchiveIndex(data / "obrady.sqlite3")
    try:
        search_bench.build(index, rng)
        index.reindex_search()
        docs = index._conn.execute("SELECT COUNT(*) FROM search_docs").fetchone()[0]
    finally:
        index.close()
    out.note(f"search: archive built and indexed in {time.monotonic() - began:.0f} s, "
             f"{docs} documents")  # fmt: skip
    queries = search_bench.queries(rng)
    port = free_port()
    config = work / "obrady.toml"
    config.write_text(CONFIG.format(port=free_port(), gateway_port=port, data=data,
                                    segment=SEGMENT_SECONDS, chamber=CHAMBER, source=SYNTHETIC,
                                    extra="", chamber_extra="", offair="false"))  # fmt: skip
    log_path = work / "gateway.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streaming", "gateway", "--config", str(config), "--port",
             str(port)], cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}/api/v1/search?q="

    def alive() -> None:
        if proc.poll() is not None:
            raise BenchError(f"the gateway exited {proc.returncode}: {tail(log_path)}")

    def one(q: str) -> tuple[float, int, int]:
        t0 = time.perf_counter()
        status, body = http("GET", base + urllib.parse.quote(q))
        hits = -1
        if status == 200:
            with contextlib.suppress(ValueError, TypeError):
                answer = json.loads(body)
                hits = len(answer.get("results", answer.get("hits", [])))
        return (time.perf_counter() - t0) * 1000, status, hits

    try:

        def answering() -> bool:
            alive()
            # 404: the gateway answers, nothing is live.
            return http("GET", f"http://127.0.0.1:{port}/live/{CHAMBER}/index.m3u8")[0] in (
                200,
                404,
            )

        until(answering, 60, "an answer from the gateway")
        pause(1)
        before = memory(proc.pid)
        if before is not None:
            out.note(f"search: the gateway before its first query: RSS {before[0] / MIB:.0f} MiB,"
                     f" USS {before[2] / MIB:.0f} MiB")  # fmt: skip
            out.extra["search_gateway_before_queries"] = [round(v / MIB, 1) for v in before]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, queries[:100]))  # warm-up
            with Window({"gateway": lambda: [proc.pid] if proc.poll() is None else []}) as w:
                pause(min(args.idle_seconds, 10))
            out.add(row_of("search", "no queries", "viewers' gateway process (alone)", w,
                           "gateway"))  # fmt: skip
            futures = []
            with Window({"gateway": lambda: [proc.pid] if proc.poll() is None else []}) as w:
                start = time.monotonic()
                count = int(args.seconds * args.qps)
                for i in range(count):
                    at = start + i / args.qps
                    delay = at - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    futures.append(pool.submit(one, queries[100 + i % (len(queries) - 100)]))
                results = [f.result() for f in futures]
            alive()
        times = sorted(r[0] for r in results)
        errors = sum(1 for r in results if r[1] != 200)
        empty = sum(1 for r in results if r[2] == 0)
        p50 = statistics.median(times)
        p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
        rate = len(results) / w.seconds
        out.add(row_of("search", f"{args.qps:g} queries/s ({rate:.1f} done/s), 1,400 meetings",
                       "viewers' gateway process (alone)", w, "gateway",
                       f"latency p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {times[-1]:.1f} ms;"
                       f" {errors} errors, {empty} empty"))  # fmt: skip
        out.extra["search"] = {"p50_ms": round(p50, 1), "p95_ms": round(p95, 1),
                               "max_ms": round(times[-1], 1), "queries": len(results),
                               "errors": errors, "empty": empty, "documents": docs}  # fmt: skip
    finally:
        stop_process(proc, signal.SIGINT)


def measure_offair(work: Path, args: argparse.Namespace, out: Results) -> None:
    """`offair`: the off-air monitor (libvlc in `obrady serve`, on by default) watching the
    simulated chamber's live stream through the gateway, against the same without it."""
    for offair in (False, True):
        with (
            part_dir(work, f"offair-{str(offair).lower()}") as folder,
            Obrady(folder, SYNTHETIC, offair=offair) as obrady,
        ):
            obrady.begin_session()
            obrady.wait_live(3)
            pause(5, obrady)
            groups = {"serve": obrady.me, "gateway": obrady.kids("gateway")}
            with Window(groups) as w:
                pause(args.seconds, obrady)
            state = "on" if offair else "off"
            out.add(row_of("offair", f"simulated 720p25 chamber live, off-air monitor {state}",
                           "obrady serve (capture process)", w, "serve"))  # fmt: skip
            out.add(row_of("offair", f"off-air monitor {state}", "viewers' gateway process", w,
                           "gateway"))  # fmt: skip


MEASURES = {
    "copy": measure_copy,
    "reencode": measure_reencode,
    "viewers": measure_viewers,
    "captions": measure_captions,
    "push": measure_push,
    "search": measure_search,
    "offair": measure_offair,
}


# Report ------------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    """What this machine is."""
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem = "?"
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    debian = "?"
    with contextlib.suppress(OSError):
        debian = Path("/etc/debian_version").read_text().strip()
    ffmpeg = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, timeout=10,
                            check=False).stdout.split("\n", 1)[0]  # fmt: skip
    return {"cpu": model, "cores": str(os.cpu_count()), "memory": mem, "debian": debian,
            "ffmpeg": ffmpeg, "python": platform.python_version()}  # fmt: skip


def report(out: Results, info: dict[str, str], args: argparse.Namespace, wall: float) -> None:
    """The table, in Markdown."""
    print()
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; whole run {wall / 60:.1f} min")
    print("machine: " + "; ".join(f"{k} {v}" for k, v in info.items()))
    print()
    print("| part | working load | process | CPU, % of one core | RSS mean / peak | "
          "PSS mean / peak | USS mean / peak | window | load average |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for r in out.rows:
        cpu = "-" if r.cpu is None else f"{r.cpu:.1f}%"
        print(
            f"| {r.part} | {r.load} | {r.process} | {cpu} | {_mib(r.rss_mean)} / "
            f"{_mib(r.rss_peak)} MiB | {_mib(r.pss_mean)} / {_mib(r.pss_peak)} MiB | "
            f"{_mib(r.uss_mean)} / {_mib(r.uss_peak)} MiB | {r.seconds:g} s | "
            f"{r.load_average:.2f} |"
        )
    for note in out.notes:
        print(f"- {note}")
    for part, why in out.failed.items():
        print(f"- {part}: NOT MEASURED: {why}")


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(args: argparse.Namespace) -> int:
    """Measure each part; 0 when every part was measured, 1 otherwise."""
    signal.signal(signal.SIGTERM, _terminate)
    out = Results()
    info = machine()
    print("machine: " + "; ".join(f"{k} {v}" for k, v in info.items()))
    print(f"load average at the start: {os.getloadavg()}", flush=True)
    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="obrady-capacity-"))
    try:
        for name in args.parts:
            print(f"\n== {name} ==", flush=True)
            try:
                with part_dir(root, name) as work:
                    MEASURES[name](work, args, out)
            except BenchError as exc:
                out.failed[name] = str(exc)
                print(f"bench/capacity.py: {name}: {exc}", file=sys.stderr, flush=True)
    finally:
        if args.keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    wall = time.monotonic() - started
    report(out, info, args, wall)
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": info,
             "argv": sys.argv, "rows": [asdict(r) for r in out.rows], "notes": out.notes,
             "failed": out.failed, "extra": out.extra}, indent=2, ensure_ascii=False,
        ))  # fmt: skip
    return 1 if out.failed else 0


def _parts(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names or any(n not in PARTS for n in names):
        raise argparse.ArgumentTypeError(f"parts are among {', '.join(PARTS)}")
    return names


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--parts", type=_parts, default=list(PARTS))
    parser.add_argument("--seconds", type=float, default=30, help="measured window per part")
    parser.add_argument("--idle-seconds", type=float, default=15, help="idle window")
    parser.add_argument("--export-minutes", type=float, default=2,
                        help="length of the recording exported")  # fmt: skip
    parser.add_argument("--viewers", type=int, default=100)
    parser.add_argument("--captions-seconds", type=float, default=90)
    parser.add_argument("--qps", type=float, default=20, help="search queries a second")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main(parse_args()))
