"""Whether the live edge and the recording hold while residents, staff work and CPU hogs crowd
the machine (issue 14's goals: the public live edge never stands still longer than 1 s beyond
its part duration, and no media are lost).

Each run starts `obrady serve` afresh (bench/scale.py's `Obrady`: its own ports and folder, the
viewers' gateway as a process of its own) with a simulated chamber that burns a wall-clock code
into every frame and speaks Polish (espeak-ng), live captions on when the Whisper model is in
`.cache/whisper-base`. It records a short first session and stops it (something to download and
search), then starts the measured session and, for --seconds:

- `quiet`: nothing else runs;
- `crowd`: --residents simulated residents (one process, asyncio) each, after a pause of about
  a second, search (`/api/v1/search` and `/search` on the gateway; the first search of each
  process included, since the service was just started), open a page (`/`, `/archive`, the
  first session's page, `/live`) or start a download (`/sessions/{id}/recording.mp4` on the
  control port, as the shipped nginx routes it), while --hogs processes spin on the CPU at
  nice 0.

Measured:
- the public live edge: the gateway's live playlist is fetched every 50 ms, and the longest
  time between two changes of its newest part is the edge's longest standstill (its excess over
  the part duration is the figure to hold under 1 s); the same from the capture process's
  window file `live/<chamber>.json` (its modification times, read every 20 ms);
- the recording's lost time: every frame of the measured session's recorded segments is read
  back, and the wall-clock codes are compared: each step between consecutive frames longer than
  HOLE_MS counts as lost (its excess over one frame); how far the picture's clock ran ahead of
  its frame count (the camera falling behind real time); and whether every segment ffmpeg
  listed is in the index (the session's API);
- the residents' answers (count, statuses, p50/p95 latency per kind) and the CPU of each part.

Usage (from the repository root):
    .venv/bin/python bench/live_under_load.py [--phases quiet,crowd] [--seconds 60]
        [--residents 100] [--hogs 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import BenchError, http, read_status, until  # noqa: E402
from scale import CHAMBER, PLAYLIST, USER, CpuMeter, Obrady  # noqa: E402

from recorder.ffmpeg import SEGMENT_LIST, clock_stamps, parse_segment_line  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / ".cache" / "whisper-base"
SPEECH = (
    "Otwieram sesję Rady Miasta. Przechodzimy do punktu drugiego porządku obrad: budżet miasta "
    "na rok dwa tysiące dwudziesty siódmy. Proszę radnych o zajęcie miejsc. Głosujemy nad "
    "projektem uchwały w sprawie zmian w budżecie. Dziękuję, uchwała została podjęta."
)
# A step between two frames' clock codes longer than this is a hole in the recording (ms); the
# simulated camera stamps each frame when -re pacing lets it through, which jitters by tens of
# milliseconds without any frame being lost.
HOLE_MS = 250
QUERIES = ["budżet", "uchwała", "sesja rady", "porządek obrad", "pas drogowy", "głosowanie"]


# The residents (a process of their own) ---------------------------------------------------------


async def _residents(
    count: int, seconds: float, gateway: str, control: str, session_id: int
) -> dict[str, Any]:
    import aiohttp

    results: dict[str, list[tuple[int, float]]] = {}
    deadline = time.monotonic() + seconds
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as http_session:

        async def one(kind: str, url: str) -> None:
            began = time.monotonic()
            try:
                async with http_session.get(url) as resp:
                    await resp.read()
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            results.setdefault(kind, []).append((status, time.monotonic() - began))

        async def resident(n: int) -> None:
            rng = random.Random(n)
            await asyncio.sleep(rng.uniform(0, 1))
            while time.monotonic() < deadline:
                pick = rng.random()
                query = rng.choice(QUERIES)
                if pick < 0.2:
                    await one("search api", f"{gateway}/api/v1/search?q={query}")
                elif pick < 0.4:
                    await one("search page", f"{gateway}/search?q={query}")
                elif pick < 0.8:
                    page = rng.choice(["/", "/archive", f"/sessions/{session_id}", "/live"])
                    await one("page", gateway + page)
                else:
                    await one("download", f"{control}/sessions/{session_id}/recording.mp4")
                await asyncio.sleep(rng.expovariate(1.0))

        await asyncio.gather(*(resident(n) for n in range(count)))
    summary: dict[str, Any] = {}
    for kind, got in sorted(results.items()):
        times = sorted(t for _, t in got)
        statuses: dict[str, int] = {}
        for status, _ in got:
            statuses[str(status)] = statuses.get(str(status), 0) + 1
        summary[kind] = {
            "requests": len(got),
            "statuses": statuses,
            "p50_ms": round(1000 * times[len(times) // 2], 1),
            "p95_ms": round(1000 * times[int(len(times) * 0.95)], 1),
            "max_ms": round(1000 * times[-1], 1),
        }
    return summary


def residents_main(
    conn: Any, count: int, seconds: float, gateway: str, control: str, session_id: int
) -> None:
    conn.send(asyncio.run(_residents(count, seconds, gateway, control, session_id)))


# Watching the live edge -------------------------------------------------------------------------


class EdgeWatch:
    """The longest standstill of the public playlist's newest part, and of the window file."""

    def __init__(self, obrady: Obrady) -> None:
        self.obrady = obrady
        self.public: list[float] = []
        self.capture: list[float] = []
        self.errors = 0
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._watch_public, daemon=True),
            threading.Thread(target=self._watch_file, daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def _watch_public(self) -> None:
        url = f"http://127.0.0.1:{self.obrady.gateway_port}{PLAYLIST}"
        last = None
        while not self._stop.is_set():
            status, body = http("GET", url)
            if status != 200:
                self.errors += 1
            else:
                parts = [ln for ln in body.decode().splitlines() if ln.startswith("#EXT-X-PART:")]
                newest = parts[-1] if parts else None
                if newest != last:
                    last = newest
                    self.public.append(time.monotonic())
            time.sleep(0.05)

    def _watch_file(self) -> None:
        path = self.obrady.edge_path
        last = 0
        while not self._stop.is_set():
            try:
                mtime = path.stat().st_mtime_ns
            except FileNotFoundError:
                mtime = 0
            if mtime != last:
                last = mtime
                self.capture.append(time.monotonic())
            time.sleep(0.02)

    @staticmethod
    def longest(times: list[float], end: float) -> float:
        marks = [*times, end]
        return max((b - a for a, b in zip(marks, marks[1:], strict=False)), default=0.0)


# The recording's lost time ----------------------------------------------------------------------


def frame_stamps(path: Path, width: int, height: int) -> list[int | None]:
    raw = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "rawvideo",
         "-pix_fmt", "gray", "pipe:1"],
        capture_output=True, check=True, timeout=300,
    ).stdout  # fmt: skip
    return clock_stamps(raw, width, height)


def lost_time(obrady: Obrady, session_id: int, args: argparse.Namespace) -> dict[str, Any]:
    """Holes in the recorded picture, read from the clock codes of every frame."""
    folder = obrady.data / "media" / CHAMBER / str(session_id)
    frame = 1000 / args.fps
    lost_ms = 0.0
    holes: list[float] = []
    listed = 0
    unreadable = 0
    previous: int | None = None
    first: int | None = None
    steps: list[int] = []
    for listing in sorted(folder.glob("*/run-*/" + SEGMENT_LIST)):
        for line in listing.read_text().splitlines():
            entry = parse_segment_line(line)
            if entry is None:
                continue
            listed += 1
            for stamp in frame_stamps(listing.parent / entry.file, args.width, args.height):
                if stamp is None:
                    unreadable += 1
                    continue
                if previous is not None:
                    step = (stamp - previous) % 2**32
                    steps.append(step)
                    if step > HOLE_MS:
                        lost_ms += step - frame
                        holes.append(round(step - frame))
                else:
                    first = stamp
                previous = stamp
    status, body = http("GET", f"{obrady.base}/api/v1/sessions/{session_id}", auth=USER)
    indexed = 0
    if status == 200:
        indexed = sum(run["segments"] for run in json.loads(body)["recording"]["runs"])
    return {
        "segments_listed": listed,
        "segments_indexed": indexed,
        "lost_seconds": round(lost_ms / 1000, 3),
        # The picture's clock against its frame count: how far the camera fell behind.
        "behind_real_time_seconds": (
            round(((previous - first) % 2**32 - len(steps) * frame) / 1000, 3)
            if previous is not None and first is not None
            else None
        ),
        "frame_step_p99_ms": sorted(steps)[int(len(steps) * 0.99)] if steps else None,
        "holes_ms": holes[:20],
        "frames_without_code": unreadable,
    }


# A run --------------------------------------------------------------------------------------------


def wait_session_live(obrady: Obrady, sid: int) -> None:
    """Until the live window's newest complete segment is this session's."""

    def ready() -> bool:
        obrady.check_alive()
        try:
            edge = json.loads(obrady.edge_path.read_text())
        except (FileNotFoundError, ValueError):
            return False
        done = [s for s in edge["segments"] if s["end"] is not None]
        return bool(done) and f"/{sid}/" in done[-1]["path"]

    until(ready, 60, f"session {sid} on the live edge", 0.1)


def stop_session(obrady: Obrady, sid: int) -> None:
    status, body = http("POST", f"{obrady.base}/api/v1/sessions/{sid}/stop", None, USER)
    if status != 200:
        raise BenchError(f"stop {sid}: HTTP {status} {body!r}")


def hog() -> None:
    while True:
        pass


def run_phase(phase: str, args: argparse.Namespace, work: Path, speech: Path) -> dict[str, Any]:
    obrady = Obrady(work, args)
    source = f'clock_code = true\nsound_file = "{speech}"\n'
    text = obrady.config.read_text().replace('label = "scale"\n', f'label = "load"\n{source}')
    if MODEL.is_dir():
        text += f'\n[transcription]\nmodel_dir = "{MODEL}"\nlive = true\n'
    obrady.config.write_text(text)
    obrady.start()
    hogs: list[multiprocessing.Process] = []
    try:
        # A first session to search, open and download; long enough for a caption window.
        first = obrady.begin_session()
        wait_session_live(obrady, first)
        time.sleep(args.first_seconds)
        stop_session(obrady, first)
        sid = obrady.begin_session()
        wait_session_live(obrady, sid)
        pids = obrady.pids()
        meter = CpuMeter(pids)
        watch = EdgeWatch(obrady)
        crowd = None
        receiver = None
        if phase == "crowd":
            for _ in range(args.hogs):
                process = multiprocessing.Process(target=hog, daemon=True)
                process.start()
                hogs.append(process)
            receiver, sender = multiprocessing.Pipe(duplex=False)
            crowd = multiprocessing.Process(
                target=residents_main,
                args=(
                    sender,
                    args.residents,
                    args.seconds,
                    f"http://127.0.0.1:{obrady.gateway_port}",
                    obrady.base,
                    first,
                ),
            )
            crowd.start()
        meter.start()
        watch.start()
        began = time.monotonic()
        time.sleep(args.seconds)
        end = time.monotonic()
        watch.stop()
        cpu = meter.stop()
        answers = None
        if crowd is not None and receiver is not None:
            if receiver.poll(60):
                answers = receiver.recv()
            crowd.join(30)
        for process in hogs:
            process.terminate()
        hogs.clear()
        index = read_status(obrady.base, USER).get("index")
        stop_session(obrady, sid)
        return {
            "phase": phase,
            "seconds": round(end - began, 1),
            "public_edge_longest_standstill_s": round(EdgeWatch.longest(watch.public, end), 3),
            "capture_edge_longest_standstill_s": round(EdgeWatch.longest(watch.capture, end), 3),
            "part_seconds": args.part_seconds,
            "playlist_errors": watch.errors,
            "recording": lost_time(obrady, sid, args),
            "index_at_end": index,
            "cpu_percent": cpu,
            "residents": answers,
            "captions": MODEL.is_dir(),
        }
    finally:
        for process in hogs:
            process.terminate()
        obrady.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phases", default="quiet,crowd")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--residents", type=int, default=100)
    parser.add_argument("--first-seconds", type=float, default=20)
    parser.add_argument("--hogs", type=int, default=2)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--segment-seconds", type=float, default=2.0)
    parser.add_argument("--part-seconds", type=float, default=0.2)
    parser.add_argument("--gateway-processes", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    from _speech import speak

    results = []
    with tempfile.TemporaryDirectory(prefix="obrady-load-") as tmp:
        speech = speak(SPEECH, Path(tmp) / "speech")
        for phase in args.phases.split(","):
            work = Path(tmp) / phase
            work.mkdir()
            result = run_phase(phase, args, work, speech)
            results.append(result)
            print(json.dumps(result, ensure_ascii=False, indent=1), flush=True)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()}")
    for r in results:
        public = r["public_edge_longest_standstill_s"]
        capture = r["capture_edge_longest_standstill_s"]
        rec = r["recording"]
        print(
            f"{r['phase']:>6}: public edge longest standstill {public} s"
            f" ({public - r['part_seconds']:+.2f} s beyond a part), capture edge {capture} s,"
            f" lost {rec['lost_seconds']} s,"
            f" segments {rec['segments_indexed']}/{rec['segments_listed']} indexed"
        )
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
