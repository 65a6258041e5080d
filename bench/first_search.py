"""The first search after start-up, the event loop during the dictionaries' load, and search at a
steady 20 queries a second.

Seeds a temporary data folder with the synthetic 20-year archive of bench/search.py (indexed
beforehand, so that only the dictionaries are left to the service), then starts the service
with the demo configuration (config/demo.toml: its simulated 1280x720 chamber and its session
a few seconds after start-up) in a child process, which runs a 10 ms asyncio ticker on the
service's own event loop and reports its longest stall when asked. Measures:

- the first search (GET /api/v1/search?q=budżet), sent as soon as the service listens, and how
  long the live routes (/live/index.m3u8, /api/v1/status) took meanwhile;
- the event loop's longest stall from listening until that search answered (the dictionaries'
  load) and how long the load took (/api/v1/status, where the service reports it);
- searches at --rate a second for --seconds (the queries of bench/search.py, sent on a fixed
  schedule whatever the answers' delay): median, p95 and max latency, answers other than 200,
  the service process's CPU (user + system, of one core), the live playlist's latency
  meanwhile and the event loop's longest stall.

--repo runs another checkout's service with the same measurement (e.g. the code before the
search workers), for a comparison.

Usage (from the repository root):
    .venv/bin/python bench/first_search.py [--seconds 15] [--rate 20] [--repo PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import BenchError, free_port, http, read_status, until  # noqa: E402

USER = ("bench", "bench-password")

FIRST_QUERY = "budżet"


# The child: the service, with a ticker on its loop


async def _serve(config: Path, warm_up: bool) -> None:
    from aiohttp import web

    from config.settings import load_settings
    from streaming.app import service
    from streaming.app.service import create_app

    if not warm_up and hasattr(service, "load_in_background"):

        async def nothing() -> None:
            pass

        service.load_in_background = nothing  # type: ignore[assignment]

    loop = asyncio.get_running_loop()
    worst = [0.0]
    gaps: list[tuple[float, float]] = []  # (seconds since listening, stall) over 50 ms
    listening = [time.perf_counter()]

    async def tick() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gap = now - last - 0.01
            worst[0] = max(worst[0], gap)
            if gap > 0.05:
                gaps.append((round(last - listening[0], 2), round(gap * 1000)))
            last = now

    settings = load_settings(config)
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.server.host, settings.server.port).start()
    listening[0] = time.perf_counter()
    ticker = loop.create_task(tick())
    print(json.dumps({"event": "listening"}), flush=True)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while line := await reader.readline():
            if line.strip() == b"stall":  # the longest stall since the last question
                answer = {"stall_ms": round(worst[0] * 1000, 1), "gaps": gaps[:]}
                print(json.dumps(answer), flush=True)
                worst[0] = 0.0
                gaps.clear()
    finally:
        ticker.cancel()
        await runner.cleanup()


class Child:
    """The service in a child process, and its answers about its loop."""

    def __init__(self, repo: Path, config: Path, log: Path, warm_up: bool = True) -> None:
        env = {**os.environ, "PYTHONPATH": str(repo)}
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve", str(config)]
            + ([] if warm_up else ["--no-warm-up"]),
            cwd=repo,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        self.log = log
        self.gaps: list[list[float]] = []

    def event(self, timeout: float) -> dict[str, Any]:
        """The child's next JSON line (other lines on its stdout are skipped)."""
        assert self.proc.stdout is not None
        stdout = self.proc.stdout
        deadline = time.monotonic() + timeout
        while True:
            found: list[bytes] = []

            def read(into: list[bytes] = found) -> None:
                into.append(stdout.readline())

            reading = threading.Thread(target=read)
            reading.start()
            reading.join(max(0.0, deadline - time.monotonic()))
            if not found or not found[0]:
                raise BenchError(f"the service said nothing within {timeout:g} s")
            if found[0].startswith(b"{"):
                return json.loads(found[0])  # type: ignore[no-any-return]

    def stall_ms(self) -> float:
        """The event loop's longest stall since the last question, in ms (the stalls over
        50 ms, as (seconds since listening, ms), in self.gaps)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"stall\n")
        self.proc.stdin.flush()
        answer = self.event(10)
        self.gaps = answer["gaps"]
        return float(answer["stall_ms"])

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the service process so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait(10)
        self._log.close()

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


# The parent: the archive, the load and the figures


def _config(work: Path) -> Path:
    """config/demo.toml with this run's data folder and free ports."""
    text = (HERE.parent / "config" / "demo.toml").read_text(encoding="utf-8")
    text = re.sub(r"(?m)^data_dir = .*$", f'data_dir = "{work / "data"}"', text)
    text = re.sub(r"(?m)^port = \d+$", f"port = {free_port()}", text, count=1)
    text = re.sub(r"(?m)^gateway_port = \d+$", f"gateway_port = {free_port()}", text)
    path = work / "demo.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _seed(database: Path, meetings: bool) -> tuple[int, float]:
    """The synthetic archive of bench/search.py, indexed; (documents, seconds to index)."""
    from archive.index import ArchiveIndex
    from streaming.auth.passwords import hash_password

    index = ArchiveIndex(database)
    try:
        # Who reads the status's details (anonymous callers get only the public facts).
        index.add_user(USER[0], "operator", hash_password(USER[1]))
        if meetings:
            import search as search_bench  # bench/search.py

            search_bench.build(index, random.Random(2026))
        began = time.perf_counter()
        index.reindex_search()
        took = time.perf_counter() - began
        docs = int(index._conn.execute("SELECT COUNT(*) FROM search_docs").fetchone()[0])
    finally:
        index.close()
    return docs, took


def _get(url: str) -> tuple[int, float]:
    started = time.perf_counter()
    status, _ = http("GET", url)
    return status, time.perf_counter() - started


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def _warm_up_phase(base: str, child: Child, delay: float) -> dict[str, Any]:
    """The first search after `delay` seconds, the live routes polled meanwhile."""
    live: list[float] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            for path in ("/live/index.m3u8", "/api/v1/status"):
                status, took = _get(base + path)
                if status in (200, 404):
                    live.append(took)
            time.sleep(0.02)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        time.sleep(delay)
        status, first = _get(base + "/api/v1/search?q=" + urllib.parse.quote(FIRST_QUERY))
    finally:
        done.set()
        poller.join()
    if status != 200:
        raise BenchError(f"the first search answered HTTP {status}")
    stall = child.stall_ms()
    gaps = child.gaps
    search = read_status(base, USER).get("search", {})
    return {"first": first, "live": live, "stall_ms": stall, "gaps": gaps, "search": search}


def _load_phase(base: str, child: Child, rate: float, seconds: float) -> dict[str, Any]:
    """Searches on a fixed schedule at `rate` a second, the live playlist polled meanwhile."""
    import search as search_bench  # bench/search.py

    queries = search_bench.queries(random.Random(7))
    count = int(rate * seconds)
    latencies: list[float] = []
    refused: dict[int, int] = {}
    live: list[float] = []
    lock = threading.Lock()
    done = threading.Event()

    def one(q: str) -> None:
        status, took = _get(base + "/api/v1/search?q=" + urllib.parse.quote(q))
        with lock:
            if status == 200:
                latencies.append(took)
            else:
                refused[status] = refused.get(status, 0) + 1

    def poll() -> None:
        while not done.is_set():
            status, took = _get(base + "/live/index.m3u8")
            if status in (200, 404):
                live.append(took)
            time.sleep(0.1)

    child.stall_ms()  # from now on
    cpu0, wall0 = child.cpu_seconds(), time.perf_counter()
    poller = threading.Thread(target=poll)
    poller.start()
    with ThreadPoolExecutor(max_workers=32) as pool:
        start = time.perf_counter()
        for i in range(count):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(one, queries[i % len(queries)])
    done.set()
    poller.join()
    cpu = (child.cpu_seconds() - cpu0) / (time.perf_counter() - wall0)
    return {
        "latencies": latencies,
        "refused": refused,
        "cpu": cpu,
        "live": live,
        "stall_ms": child.stall_ms(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="length of the load")
    parser.add_argument("--rate", type=float, default=20.0, help="searches a second")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of the idle window")
    parser.add_argument("--repo", type=Path, default=HERE.parent, help="checkout to measure")
    parser.add_argument(
        "--empty", action="store_true", help="the demo's archive only, no synthetic archive"
    )
    parser.add_argument(
        "--delay", type=float, default=0.0, help="seconds from listening to the first search"
    )
    parser.add_argument(
        "--no-warm-up",
        action="store_true",
        help="the capture process loads no dictionaries at start-up (the first search does)",
    )
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        asyncio.run(_serve(args.serve, not args.no_warm_up))
        return 0
    repo = args.repo.resolve()
    sys.path.insert(0, str(repo))
    work = Path(tempfile.mkdtemp(prefix="obrady-first-search-"))
    child: Child | None = None
    try:
        config = _config(work)
        from config.settings import load_settings

        settings = load_settings(config)
        docs, indexing = _seed(settings.paths.database, not args.empty)
        print(f"archive: {docs} documents, indexed beforehand in {indexing:.1f} s ({repo})")
        base = f"http://{settings.server.host}:{settings.server.port}"
        began = time.perf_counter()
        child = Child(repo, config, work / "service.log", not args.no_warm_up)
        if child.event(120).get("event") != "listening":
            raise BenchError("the service did not start")
        up = time.perf_counter() - began
        warm = _warm_up_phase(base, child, args.delay)
        search = warm["search"]

        def loaded() -> bool:
            return not search or bool(read_status(base, USER)["search"]["dictionaries_loaded"])

        until(loaded, 60, "dictionaries loaded")
        # The same loop with nothing loading and nothing searched: what the machine and the
        # demo (its recording, the gateways) cost the loop anyway.
        child.stall_ms()
        cpu0 = child.cpu_seconds()
        time.sleep(args.idle)
        idle, idle_gaps = child.stall_ms(), child.gaps
        idle_cpu = (child.cpu_seconds() - cpu0) / args.idle
        load = _load_phase(base, child, args.rate, args.seconds)
        lat = [x * 1000 for x in load["latencies"]]
        print(f"service listening {up:.2f} s after it was started (Python imports included)")
        print(
            f"first search, sent {args.delay:g} s after it listened: {warm['first']:.2f} s; "
            f"live routes meanwhile: {len(warm['live'])} answers, max "
            f"{max(warm['live'], default=0) * 1000:.0f} ms; event loop's longest stall until "
            f"it answered: {warm['stall_ms']:.0f} ms"
        )
        print(
            f"  {len(warm['gaps'])} stalls over 50 ms then (s since listening, ms): {warm['gaps']}"
        )
        print(
            f"event loop's longest stall in {args.idle:g} s idle after that: {idle:.0f} ms "
            f"({len(idle_gaps)} over 50 ms); service CPU {idle_cpu * 100:.0f}% of one core"
        )
        if search:
            print(
                f"dictionaries loaded in {search['dictionaries_load_seconds']} s "
                "(in the background, per /api/v1/status)"
            )
        if lat:
            print(
                f"{len(lat)} searches at {args.rate:g}/s for {args.seconds:g} s: median "
                f"{statistics.median(lat):.1f} ms, p95 {_pct(lat, 0.95):.1f} ms, max "
                f"{max(lat):.1f} ms; refused {load['refused'] or 'none'}; service CPU "
                f"{load['cpu'] * 100:.0f}% of one core; live playlist meanwhile max "
                f"{max(load['live'], default=0) * 1000:.0f} ms; event loop's longest stall "
                f"{load['stall_ms']:.0f} ms"
            )
        else:
            print(f"no search answered 200 under load: {load['refused']}")
        return 0
    except BenchError as exc:
        tail = child.log_tail() if child is not None else ""
        print(f"first_search: {exc}\n{tail}", file=sys.stderr)
        return 1
    finally:
        if child is not None:
            child.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
