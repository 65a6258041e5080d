"""Measures glass-to-glass latency of the live stream in Chromium with hls.js, frame by frame.

The simulated chamber (1280x720, 25 fps, `clock_code = true`) stamps the wall-clock
milliseconds into every frame as a row of black and white squares (recorder/ffmpeg.py). A page
(bench/glass.html) plays the live playlist with hls.js in headless Chromium, and for every frame
it displays (requestVideoFrameCallback) reads the squares back from the picture and takes
Date.now() - stamp: the camera and the browser share this machine's clock. After --warmup
seconds it measures for --seconds and reports the median, 95th percentile and maximum latency,
stalls (`waiting` after playback began) and dropped frames (getVideoPlaybackQuality).

Modes: `ll` is hls.js with lowLatencyMode: true (what the live page uses; LL-HLS parts are
used when the playlist has them), `plain` is hls.js defaults with lowLatencyMode: false.

Unless --url names a running server, it starts `obrady serve` with a configuration of its own
on free ports and a temporary data folder, and starts a session through the API.

Usage (from the repository root):
    .venv/bin/python bench/glass.py [--mode ll|plain] [--seconds 60] [--warmup 10]
        [--url http://host:port/live/index.m3u8] [--json out.json] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import IO, Any
from urllib.parse import urlencode, urlsplit

from playwright.sync_api import Page, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BenchError, free_port, http, until  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PAGE = Path(__file__).with_name("glass.html")
PAGE_PATH = "/bench/glass.html"  # fulfilled by Playwright on the server's origin
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
USER = ("bench", "bench-password")
WIDTH, HEIGHT, FPS = 1280, 720, 25

CONFIG = """
[server]
host = "127.0.0.1"
port = {port}
data_dir = "{data}"

[recording]
segment_seconds = {segment_seconds:g}
preroll_seconds = 0
overrun_limit_minutes = 60

[[chambers]]
id = "sala-obrad"
name = "Sala obrad"
[chambers.source]
kind = "synthetic"
width = {width}
height = {height}
fps = {fps}
label = "glass-to-glass"
clock_code = true
"""


class Obrady:
    """`obrady serve` as a process of its own, on free ports and a data folder of its own."""

    def __init__(self, work: Path, segment_seconds: float) -> None:
        self.work = work
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.config = work / "obrady.toml"
        self.config.write_text(
            CONFIG.format(
                port=self.port,
                data=work / "data",
                segment_seconds=segment_seconds,
                width=WIDTH,
                height=HEIGHT,
                fps=FPS,
            )
        )
        exe = Path(sys.executable).with_name("obrady")
        self.command = [str(exe)] if exe.exists() else [sys.executable, "-m", "streaming"]
        self.log_path = work / "obrady.log"
        self._log: IO[bytes] | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Add the operator, start the service, wait until it answers."""
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
                "title": "Glass-to-glass",
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

    def stop(self) -> None:
        """One SIGINT (captures finish their segment), SIGKILL after 30 s."""
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


def playlist_window(body: bytes) -> tuple[float, int]:
    """(media seconds of the whole segments listed, media sequence) of a media playlist."""
    total, sequence = 0.0, 0
    for line in body.decode(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            if line.startswith("#EXTINF:"):
                total += float(line[len("#EXTINF:") :].split(",")[0])
            elif line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
                sequence = int(line[len("#EXT-X-MEDIA-SEQUENCE:") :])
    return total, sequence


def wait_for_live(
    url: str, seconds: float, timeout: float, alive: Callable[[], None] = lambda: None
) -> None:
    """Wait until the live playlist lists at least `seconds` of whole segments, or has begun
    to slide (its window is full).

    A player that joins a stream younger than its hold-back starts at the oldest segment and,
    without catch-up, keeps that smaller delay: joining too early flatters the figures.
    """

    def ready() -> bool:
        alive()
        status, body = http("GET", url)
        if status != 200:
            return False
        listed, sequence = playlist_window(body)
        return listed > 0 and (listed >= seconds or sequence > 0)

    until(ready, timeout, f"live playlist with {seconds:g} s of segments at {url}")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summarize(raw: dict[str, Any], url: str, warmup: float) -> dict[str, Any]:
    """The figures the benchmark reports, from what the page measured."""
    latencies: list[float] = raw["latencies"]
    hls_latencies: list[float] = raw["hlsLatencies"]
    total = int(raw["total"])
    dropped = int(raw["dropped"])
    return {
        "url": url,
        "mode": raw["mode"],
        "hls_js": raw["hlsVersion"],
        "chromium": raw.get("browserVersion"),
        "video": f"{raw['videoWidth']}x{raw['videoHeight']}",
        "ll_hls_parts": raw["parts"],
        "part_target_seconds": raw["partTarget"],
        "target_duration_seconds": raw["targetDuration"],
        "warmup_seconds": warmup,
        "measured_seconds": round(raw["seconds"], 1),
        "frames_measured": len(latencies),
        "frames_rejected": raw["rejected"],
        "frames_presented": raw["presented"],
        "latency_ms": None
        if not latencies
        else {
            "median": round(statistics.median(latencies)),
            "p95": round(percentile(latencies, 95)),
            "max": round(max(latencies)),
            "min": round(min(latencies)),
        },
        "hls_js_latency_median_ms": round(statistics.median(hls_latencies))
        if hls_latencies
        else None,
        "stalls": raw["stalls"],
        "stalled_seconds": round(raw["stalledMs"] / 1000, 2),
        "stalled_at_end": raw["stalledNow"],
        "dropped_frames": dropped,
        "total_frames": total,
        "dropped_percent": round(100 * dropped / total, 2) if total else None,
        "window_epoch_ms": [raw["startedAtMs"], raw["endedAtMs"]],
        "hls_errors": raw["hlsErrors"],  # since the page loaded; "at" is epoch ms
        "hls_errors_in_window": sum(
            raw["startedAtMs"] <= e["at"] <= raw["endedAtMs"] for e in raw["hlsErrors"]
        ),
        "latencies_ms": latencies,
    }


def print_table(result: dict[str, Any]) -> None:
    """The figures as a small table."""
    lat = result["latency_ms"]
    parts = (
        f"yes, part target {result['part_target_seconds']} s" if result["ll_hls_parts"] else "no"
    )
    rows = [
        ("url", result["url"]),
        ("player", f"hls.js {result['hls_js']} ({result['mode']}), Chromium "
                   f"{result['chromium']}"),
        ("video", f"{result['video']}, target duration {result['target_duration_seconds']} s"),
        ("LL-HLS parts", parts),
        ("window", f"{result['measured_seconds']} s after {result['warmup_seconds']:g} s "
                   "warm-up"),
        ("frames measured", f"{result['frames_measured']} (rejected {result['frames_rejected']},"
                            f" presented {result['frames_presented']})"),
    ]  # fmt: skip
    if lat is not None:
        rows += [
            ("latency median", f"{lat['median']} ms"),
            ("latency p95", f"{lat['p95']} ms"),
            ("latency max", f"{lat['max']} ms (min {lat['min']} ms)"),
        ]
    if result["hls_js_latency_median_ms"] is not None:
        rows.append(("hls.js latency", f"{result['hls_js_latency_median_ms']} ms (its own "
                                       "estimate, median)"))  # fmt: skip
    stalled = f"{result['stalls']} ({result['stalled_seconds']} s stalled"
    stalled += ", still stalled at the end)" if result["stalled_at_end"] else ")"
    rows.append(("stalls", stalled))
    percent = result["dropped_percent"]
    rows.append(
        (
            "dropped frames",
            f"{result['dropped_frames']} of {result['total_frames']}"
            + (f" ({percent:.2f}%)" if percent is not None else ""),
        )
    )
    errors = result["hls_errors"]
    kinds = sorted({e["details"] + (" (fatal)" if e["fatal"] else "") for e in errors})
    rows.append(
        (
            "hls.js errors",
            f"{len(errors)} since load, {result['hls_errors_in_window']} in the window"
            + (f": {', '.join(kinds)}" if kinds else ""),
        )
    )
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def measure(live_url: str, mode: str, warmup: float, seconds: float) -> dict[str, Any]:
    """Play live_url in headless Chromium and measure; returns the page's raw figures."""
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(live_url))
    html = PAGE.read_text()
    console: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, timeout=60_000
        )
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
            page.set_default_timeout(30_000)
            page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
            page.on("pageerror", lambda exc: console.append(f"pageerror: {exc}"))
            page.route(
                origin + PAGE_PATH + "*",
                lambda route: route.fulfill(body=html, content_type="text/html; charset=utf-8"),
            )
            query = urlencode({"src": live_url, "mode": mode})
            page.goto(f"{origin}{PAGE_PATH}?{query}", wait_until="load")
            try:
                first_frame(page, 60)
                page.wait_for_timeout(warmup * 1000)
                page_error(page)
                page.evaluate("glass.begin()")
                page.wait_for_timeout(seconds * 1000)
                raw: dict[str, Any] = page.evaluate("glass.finish()")
            except BenchError:
                for line in console[-20:]:
                    print(f"  page {line}", file=sys.stderr)
                raise
            raw["browserVersion"] = browser.version
            return raw
        finally:
            browser.close()


def page_error(page: Page) -> None:
    """BenchError if the page reports that it cannot measure."""
    error = page.evaluate("window.glass ? window.glass.error : 'the page did not start'")
    if error:
        raise BenchError(f"glass page: {error}")


def first_frame(page: Page, timeout: float) -> None:
    """Wait until the page has shown a frame whose clock code validates."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page_error(page)
        if page.evaluate("window.glass.validFrames") > 0:
            return
        page.wait_for_timeout(200)
    state = page.evaluate(
        "({played: glass.everPlayed, errors: glass.hlsErrors.slice(-5), "
        "w: document.getElementById('video').videoWidth})"
    )
    raise BenchError(f"no frame with a valid clock code within {timeout:g} s: {state}")


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise BenchError in the main thread if the whole run takes longer than seconds."""

    def expire(_signum: int, _frame: FrameType | None) -> None:
        raise BenchError(f"the benchmark did not finish within {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(max(1, math.ceil(seconds)))
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start obrady unless --url is given, measure, stop what was started."""
    if args.url:
        url = args.url
        if not urlsplit(url).path.endswith(".m3u8"):
            url = url.rstrip("/") + "/live/index.m3u8"
        wait_for_live(url, args.join_after, args.join_after + 30)
        return summarize(measure(url, args.mode, args.warmup, args.seconds), url, args.warmup)
    work = Path(tempfile.mkdtemp(prefix="obrady-glass-"))
    server = Obrady(work, args.segment_seconds)
    try:
        server.start()
        server.begin_session()
        url = server.base + "/live/index.m3u8"
        wait_for_live(url, args.join_after, args.join_after + 60, server.check_alive)
        raw = measure(url, args.mode, args.warmup, args.seconds)
        server.check_alive()
        return summarize(raw, url, args.warmup)
    except BenchError:
        tail = server.log_tail()
        if tail:
            print(f"obrady log ({server.log_path}):\n{tail}", file=sys.stderr)
        raise
    finally:
        server.stop()
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--mode",
        choices=["ll", "plain"],
        default="ll",
        help="hls.js lowLatencyMode true (ll, as the live page) or false",
    )
    parser.add_argument("--seconds", type=float, default=60, help="measuring window")
    parser.add_argument("--warmup", type=float, default=10, help="seconds played before it")
    parser.add_argument(
        "--url",
        help="measure this running server (base or playlist URL); "
        "its chamber must have clock_code = true",
    )
    parser.add_argument(
        "--segment-seconds",
        type=float,
        default=2,
        help="recording.segment_seconds of the obrady it starts",
    )
    parser.add_argument(
        "--join-after",
        type=float,
        default=10,
        metavar="SECONDS",
        help="open the page once the live playlist lists this much media or "
        "slides (a viewer joins a running stream)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data folder")
    args = parser.parse_args()  # fmt: skip
    if args.seconds <= 0 or args.warmup < 0:
        parser.error("--seconds must be positive and --warmup not negative")
    try:
        with deadline(args.join_after + args.warmup + args.seconds + 300):
            result = run(args)
    except BenchError as exc:
        print(f"glass: {exc}", file=sys.stderr)
        return 1
    print_table(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
