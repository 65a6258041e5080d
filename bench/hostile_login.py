"""The control process's memory under anonymous requests with made-up HTTP Basic credentials.

Starts `obrady serve` (from this tree, or from --tree, e.g. an older commit's files) with one
synthetic chamber, nothing recording, and sends --requests GETs of /api/v1/me, --concurrency at
a time, each with Basic credentials of a user that does not exist (so each costs a full argon2
check against the dummy hash). With --spread (the default) each request says it comes from its
own address in X-Forwarded-For, as many clients behind the shipped proxy would: the per-address
throttle does not help, only the bound on checks at once does. --no-spread sends all from one
address (the throttle stops the checks after max_failed_logins_per_address).

Prints the process's resident memory before, its peak during the run (sampled every 20 ms, and
the kernel's VmHWM high-water mark), its CPU seconds, the answers by status and the wall time.

    .venv/bin/python bench/hostile_login.py [--tree PATH] [--requests 200] [--concurrency 20]
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from base64 import b64encode
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from _common import BenchError, free_port, http, until  # noqa: E402

CONFIG = """
[server]
host = "127.0.0.1"
port = {port}
data_dir = "{data}"

[live]
gateway_port = {gateway_port}
gateway_processes = 1

[monitoring]
offair = false

[[chambers]]
id = "sala"
name = "Sala obrad"

[chambers.source]
kind = "synthetic"
width = 320
height = 180
fps = 10
"""
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024


def status_kib(pid: int, field: str) -> int:
    """A field of /proc/PID/status in KiB (VmRSS, VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise BenchError(f"no {field} in /proc/{pid}/status")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def bogus(url: str, n: int, spread: bool) -> tuple[int, str]:
    """One GET with made-up Basic credentials; its status (0: no answer) and error's start."""
    headers = {"Authorization": "Basic " + b64encode(f"nobody{n}:guess{n}".encode()).decode()}
    if spread:
        headers["X-Forwarded-For"] = f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return int(resp.status), ""
    except urllib.error.HTTPError as exc:
        try:
            error = str(json.loads(exc.read())["error"])
        except (ValueError, KeyError, TypeError):
            error = "?"
        return int(exc.code), " ".join(error.split()[:4])
    except (urllib.error.URLError, OSError):
        return 0, ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=BENCH.parent, help="obrady source tree")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--spread", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="obrady-hostile-") as work:
        port, gateway_port = free_port(), free_port()
        config = Path(work) / "obrady.toml"
        config.write_text(CONFIG.format(port=port, gateway_port=gateway_port, data=work + "/data"))
        command = [sys.executable, "-m", "streaming"]
        added = subprocess.run(
            [*command, "user", "add", "bench", "--role", "operator", "--password-stdin",
             "--config", str(config)],
            input=b"bench-password\n", capture_output=True, timeout=60, cwd=args.tree,
            check=False,
        )  # fmt: skip
        if added.returncode != 0:
            raise BenchError(f"obrady user add exited {added.returncode}: {added.stderr!r}")
        log = (Path(work) / "obrady.log").open("wb")
        proc = subprocess.Popen(
            [*command, "serve", "--config", str(config)],
            cwd=args.tree, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            until(lambda: http("GET", base + "/api/v1/status")[0] == 200, 60, "obrady serve")
            time.sleep(2)  # let start-up settle before the baseline
            before_rss = status_kib(proc.pid, "VmRSS")
            before_hwm = status_kib(proc.pid, "VmHWM")
            before_cpu = cpu_seconds(proc.pid)
            peak = [before_rss]
            done = threading.Event()

            def sample() -> None:
                while not done.wait(0.02):
                    peak[0] = max(peak[0], status_kib(proc.pid, "VmRSS"))

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            started = time.monotonic()
            with concurrent.futures.ThreadPoolExecutor(args.concurrency) as pool:
                statuses = list(
                    pool.map(
                        lambda n: bogus(base + "/api/v1/me", n, args.spread), range(args.requests)
                    )
                )
            took = time.monotonic() - started
            done.set()
            sampler.join()
            after_hwm = status_kib(proc.pid, "VmHWM")
            used_cpu = cpu_seconds(proc.pid) - before_cpu
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            log.close()
    counts = collections.Counter(f"{status} {error}".strip() for status, error in statuses)
    print(f"tree: {args.tree}")
    print(
        f"{args.requests} requests, {args.concurrency} at a time, "
        f"{'each from its own forwarded address' if args.spread else 'all from one address'}"
    )
    print(f"answers: {dict(sorted(counts.items()))} in {took:.1f} s")
    print(f"RSS before: {before_rss / 1024:.0f} MiB; peak sampled: {peak[0] / 1024:.0f} MiB")
    print(f"VmHWM before: {before_hwm / 1024:.0f} MiB; after: {after_hwm / 1024:.0f} MiB")
    print(f"CPU: {used_cpu:.1f} s over {took:.1f} s = {100 * used_cpu / took:.0f}% of one core")


if __name__ == "__main__":
    main()
