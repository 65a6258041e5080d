"""Measures the capture path on this machine and prints figures for the README.

Runs obrady in-process on a temporary folder with the demo's simulated chamber (1280x720,
25 fps, H.264 + AAC, 2 s segments) and reports: time from "start" to the first recorded segment
and to a playable live playlist, ffmpeg's CPU use, marker offset error, how fast a killed ffmpeg
is replaced, and API read latency.  Usage: .venv/bin/python bench/capture.py [--seconds N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import socket
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from aiohttp import web

from archive.index import ArchiveIndex
from config.settings import parse_settings
from streaming.app.service import create_app
from streaming.auth.passwords import hash_password
from streaming.keys import RECORDER

CONFIG = """
[server]
port = {port}
data_dir = "{data}"
[recording]
segment_seconds = 2
preroll_seconds = 0
[[chambers]]
id = "sala-obrad"
name = "Sala obrad"
[chambers.source]
kind = "synthetic"
width = 1280
height = 720
fps = 25
"""


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _until(probe, timeout: float) -> float:  # type: ignore[no-untyped-def]
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if await probe():
            return time.monotonic() - began
        await asyncio.sleep(0.02)
    raise TimeoutError


async def main(seconds: float) -> None:
    data = Path(tempfile.mkdtemp(prefix="obrady-bench-"))
    port = _port()
    settings = parse_settings(CONFIG.format(port=port, data=data))
    index = ArchiveIndex(data / "obrady.sqlite3")
    index.add_user("bench", "operator", hash_password("bench-password"))
    index.close()
    app = create_app(settings)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": aiohttp.encode_basic_auth("bench", "bench-password")}
    async with aiohttp.ClientSession() as http:
        start = datetime.now(UTC) + timedelta(days=1)
        async with http.post(
            f"{base}/api/v1/sessions",
            headers=auth,
            json={
                "title": "Bench",
                "scheduled_start": start.isoformat(),
                "scheduled_end": (start + timedelta(hours=1)).isoformat(),
                "agenda_text": "\n".join(f"{i}. Punkt {i}." for i in range(1, 21)),
            },
        ) as resp:
            session = await resp.json()
        sid = session["id"]
        items = [i["id"] for i in session["agenda"]]

        async def segments() -> int:
            async with http.get(f"{base}/api/v1/sessions/{sid}") as r:
                return sum(run["segments"] for run in (await r.json())["recording"]["runs"])

        async def live_ok() -> bool:
            async with http.get(f"{base}/live/index.m3u8") as r:
                return r.status == 200

        t_start = time.time()
        async with http.post(f"{base}/api/v1/sessions/{sid}/start", headers=auth) as resp:
            assert resp.status == 200, await resp.text()
        first_segment = await _until(segments, 30)
        live_ready = await _until(live_ok, 30)

        supervisor = app[RECORDER].supervisor(sid)
        assert supervisor is not None and supervisor.pid is not None
        pid = supervisor.pid
        cpu0, wall0 = _cpu_seconds(pid), time.monotonic()
        marks: list[float] = []
        for item in items[: max(1, int(seconds // 3))]:
            await asyncio.sleep(3)
            marks.append(time.time() - t_start)
            async with http.post(
                f"{base}/api/v1/sessions/{sid}/items/{item}/start", headers=auth
            ) as resp:
                assert resp.status == 200
        # Let the last marker's segment finish: a SIGKILL loses the segment in flight, and a
        # marker inside lost media is (rightly) placed at the start of the next run.
        await asyncio.sleep(3)
        cpu = (_cpu_seconds(pid) - cpu0) / (time.monotonic() - wall0)

        before = await segments()
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        await _until(lambda: _async(supervisor.pid not in (None, pid)), 30)
        respawn = time.monotonic() - killed

        async def new_segment() -> bool:
            return await segments() > before + 1

        await _until(new_segment, 30)
        back = time.monotonic() - killed

        latencies = []
        for _ in range(200):
            t0 = time.perf_counter()
            async with http.get(f"{base}/api/v1/sessions/{sid}") as r:
                await r.read()
            latencies.append((time.perf_counter() - t0) * 1000)

        async with http.post(f"{base}/api/v1/sessions/{sid}/stop", headers=auth) as resp:
            detail = await resp.json()
        errors = [
            abs(m["offset_seconds"] - mark)
            for m, mark in zip(detail["markers"], marks, strict=True)
        ]
    await runner.cleanup()

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    print(f"start -> first segment indexed:      {first_segment:.2f} s (2 s segments)")
    print(f"start -> live playlist served:       {live_ready + first_segment:.2f} s")
    print(f"ffmpeg CPU, 720p25 x264 veryfast:    {cpu * 100:.0f}% of one core")
    print(
        f"marker offset error ({len(errors)} markers):   "
        f"max {max(errors) * 1000:.0f} ms, mean {statistics.mean(errors) * 1000:.0f} ms"
    )
    print(f"SIGKILLed ffmpeg replaced after:     {respawn * 1000:.0f} ms")
    print(f"  and recording again (2 segments):  {back:.2f} s")
    print(
        f"GET /api/v1/sessions/{{id}} latency:  p50 {statistics.median(latencies):.1f} ms, "
        f"p95 {statistics.quantiles(latencies, n=20)[18]:.1f} ms"
    )
    print(
        f"recording: {detail['recording']['duration_seconds']:.1f} s in "
        f"{len(detail['recording']['runs'])} runs, gaps "
        f"{[round(g['seconds'], 2) for g in detail['recording']['gaps']]}"
    )


async def _async(value: bool) -> bool:
    return value


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=30, help="how long to measure CPU")
    asyncio.run(main(parser.parse_args().seconds))
