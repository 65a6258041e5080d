"""Faults injected into a running recording: the record survives and says what it missed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from conftest import OPERATOR, Service, basic, config_text, free_port, wait_for
from helpers import decoded_duration

AGENDA = "1. Otwarcie sesji.\n2. Zamknięcie obrad.\n"


class ServeProcess:
    """`obrady serve` as its own process, as an operator would run it."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, base: str) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "streaming",
            "serve",
            "--config",
            str(self.config),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )

        async def up() -> bool:
            with contextlib.suppress(aiohttp.ClientError):
                async with aiohttp.ClientSession() as http, http.get(base + "/api/v1/status") as r:
                    return r.status == 200
            return False

        await wait_for(up, 30, "obrady serve to answer")

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        await asyncio.wait_for(self.proc.wait(), 10)

    async def terminate(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self.proc.wait(), 30)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    with contextlib.suppress(FileNotFoundError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return False


async def test_service_killed_mid_session_resumes_the_same_session(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = tmp_path / "obrady.toml"
    config.write_text(config_text(tmp_path / "data", port))
    add = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "streaming",
        "user",
        "add",
        OPERATOR[0],
        "--role",
        "operator",
        "--password-stdin",
        "--config",
        str(config),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
    )
    await asyncio.wait_for(add.communicate(f"{OPERATOR[1]}\n".encode()), 30)
    assert add.returncode == 0

    serve = ServeProcess(config)
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
    try:
        await serve.start(base)

        async def call(method: str, path: str, body: Any = None) -> Any:
            async with http.request(method, base + path, json=body, headers=basic(OPERATOR)) as r:
                assert r.status < 300, (r.status, await r.text())
                return await r.json()

        start = datetime.now(UTC) + timedelta(hours=1)
        created = await call(
            "POST",
            "/api/v1/sessions",
            {
                "title": "Sesja",
                "scheduled_start": start.isoformat(),
                "scheduled_end": (start + timedelta(hours=1)).isoformat(),
                "agenda_text": AGENDA,
            },
        )
        sid = created["id"]
        await call("POST", f"/api/v1/sessions/{sid}/start")

        async def segments() -> int:
            detail = await call("GET", f"/api/v1/sessions/{sid}")
            return sum(run["segments"] for run in detail["recording"]["runs"])

        await wait_for(lambda: _at_least(segments, 3), 30, "three segments")
        [capture] = (await call("GET", "/api/v1/status"))["captures"]
        ffmpeg_pid = capture["pid"]
        assert ffmpeg_pid and pid_alive(ffmpeg_pid)

        await serve.kill()
        # ffmpeg was told (once, by the guardian process) to finish its segment and exit.
        await wait_for(lambda: _async(not pid_alive(ffmpeg_pid)), 15, "ffmpeg to finish")
        run1 = tmp_path / "data" / "media" / "sala" / str(sid) / "main" / "run-0001"
        on_disk = [line for line in (run1 / "segments.csv").read_text().splitlines() if line]
        assert len(on_disk) >= 3
        # The segment ffmpeg was writing when obrady died was finished, not left behind:
        # every file is listed and none is empty.
        listed = {line.split(",")[0] for line in on_disk}
        files = {p.name: p.stat().st_size for p in run1.glob("*.ts")}
        assert set(files) == listed, (sorted(files), sorted(listed))
        assert all(size > 0 for size in files.values()), files

        await serve.start(base)
        await wait_for(
            lambda: _at_least(segments, len(on_disk) + 2),
            30,
            "recording to resume in the same session",
        )
        detail = await call("POST", f"/api/v1/sessions/{sid}/stop")
        runs = detail["recording"]["runs"]
        assert [r["ordinal"] for r in runs] == [1, 2]
        # Everything ffmpeg wrote before and after the kill of obrady is indexed.
        assert runs[0]["segments"] == len(on_disk)
        assert runs[0]["end_reason"] == "obrady stopped unexpectedly"
        [gap] = detail["recording"]["gaps"]
        assert gap["cause"] == "obrady stopped unexpectedly"
        assert len((await call("GET", "/api/v1/sessions"))["sessions"]) == 1

        duration = await decoded_duration(f"{base}/sessions/{sid}/index.m3u8")
        assert abs(duration - detail["recording"]["duration_seconds"]) < 1.0
    finally:
        await http.close()
        await serve.terminate()

    code, out, err = await run_verify(sid, config)
    assert code == 0, err
    assert "OK" in out

    # Damage one file: verify names it and fails; nothing else is touched.
    victim = run1 / "seg-000001.ts"
    data = bytearray(victim.read_bytes())
    data[1000] ^= 0xFF
    victim.write_bytes(bytes(data))
    code, out, err = await run_verify(sid, config)
    assert code == 1
    assert "main/run-0001/seg-000001.ts: SHA-256 mismatch" in err
    (run1 / "seg-000002.ts").unlink()
    code, out, err = await run_verify(sid, config)
    assert code == 1
    assert "main/run-0001/seg-000002.ts: file is missing" in err


async def run_verify(sid: int, config: Path) -> tuple[int, str, str]:
    """`obrady verify SESSION`: exit code, stdout, stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streaming", "verify", str(sid), "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def _at_least(probe: Any, n: int) -> bool:
    return bool(await probe() >= n)


async def _async(value: bool) -> bool:
    return value


async def test_viewer_load_cannot_stall_capture(service: Service) -> None:
    """Many viewers hammer the gateway during a recording: the recording has no gap."""
    start = datetime.now(UTC) + timedelta(hours=1)
    created = await service.post_json(
        "/api/v1/sessions",
        {
            "title": "Sesja",
            "scheduled_start": start.isoformat(),
            "scheduled_end": (start + timedelta(hours=1)).isoformat(),
            "agenda_text": AGENDA,
        },
        status=201,
    )
    sid = created["id"]
    t_start = time.time()
    await service.post_json(f"/api/v1/sessions/{sid}/start")
    requests = 0
    deadline = time.monotonic() + 12

    async def viewer() -> None:
        nonlocal requests
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                async with http.get(service.base + "/live/index.m3u8") as r:
                    text = await r.text()
                requests += 1
                uris = [line for line in text.splitlines() if line.endswith(".ts")]
                if uris:
                    async with http.get(f"{service.base}/live/{uris[-1]}") as r:
                        await r.read()
                    requests += 1
                async with http.get(f"{service.base}/api/v1/sessions/{sid}") as r:
                    await r.read()
                requests += 1

    async def first_segment() -> bool:
        return (await service.get_text("/live/index.m3u8", status=None)).startswith("#EXTM3U")

    await wait_for(first_segment, 20, "the live playlist")
    await asyncio.gather(*(viewer() for _ in range(40)))
    t_stop = time.time()
    detail = await service.post_json(f"/api/v1/sessions/{sid}/stop")
    print(f"viewer requests served during the recording: {requests}")
    assert requests > 500, requests
    assert len(detail["recording"]["runs"]) == 1
    assert detail["recording"]["gaps"] == []
    duration = await decoded_duration(f"{service.base}/sessions/{sid}/index.m3u8")
    assert abs(duration - (t_stop - t_start)) < 1.0, (duration, t_stop - t_start)
