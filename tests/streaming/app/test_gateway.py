"""The viewers' gateway runs as its own process: killing it, or loading it, never touches
capture, and it comes back on the same URL."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web
from conftest import SYNTHETIC_SOURCE, Service, free_port, start_service, stop_service, wait_for
from helpers import decoded_duration

from config.settings import Settings
from streaming.app.gateway import create_gateway_app
from streaming.edge.viewers import counts_file
from streaming.keys import GATEWAY, LIVE_EDGE
from streaming.services.gateway_process import _worker


async def fetch(url: str) -> tuple[int, str]:
    """Status and body, or (0, error) when nothing answers."""
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            async with http.get(url) as resp:
                return resp.status, await resp.text()
    except (aiohttp.ClientError, TimeoutError) as exc:
        return 0, repr(exc)


async def segments(service: Service, sid: int) -> int:
    detail = await service.get_json(f"/api/v1/sessions/{sid}")
    return sum(run["segments"] for run in detail["recording"]["runs"])


async def test_killed_or_loaded_gateway_never_touches_capture(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(SYNTHETIC_SOURCE)
    gateway_port = free_port()
    live = settings.live.model_copy(update={"gateway_port": gateway_port})
    settings = settings.model_copy(update={"live": live})
    gw = f"http://127.0.0.1:{gateway_port}"
    service = await start_service(settings)
    try:

        async def answering() -> bool:
            return (await fetch(gw + "/live/index.m3u8"))[0] == 404

        await wait_for(answering, 30, "the gateway process to answer")
        created = await service.begin(start=False)
        sid = created["id"]
        t_start = time.time()
        await service.post_json(f"/api/v1/sessions/{sid}/start")

        async def live_on_gateway() -> str | None:
            status, text = await fetch(gw + "/live/index.m3u8")
            return text if status == 200 and text.count(".ts\n") >= 2 else None

        before = await wait_for(live_on_gateway, 30, "the live playlist on the gateway")
        first_sequence = int(before.split("#EXT-X-MEDIA-SEQUENCE:")[1].split()[0])
        # Low-Latency HLS from the gateway process: the hinted part is held until the capture
        # process publishes it, then served.
        hint = before.split('#EXT-X-PRELOAD-HINT:TYPE=PART,URI="')[1].split('"')[0]
        began = time.monotonic()
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{gw}/live/{hint}") as r:
                assert r.status == 200 and (await r.read())[0] == 0x47
        assert time.monotonic() - began < 2

        # Load: 40 viewers on the gateway for 6 s.
        served = 0
        deadline = time.monotonic() + 6

        async def viewer() -> None:
            nonlocal served
            async with aiohttp.ClientSession() as http:
                while time.monotonic() < deadline:
                    async with http.get(gw + "/live/index.m3u8") as r:
                        text = await r.text()
                    uris = [x for x in text.splitlines() if x.endswith(".ts")]
                    async with http.get(f"{gw}/live/{uris[-1]}") as r:
                        assert r.status == 200
                        await r.read()
                    served += 2

        await asyncio.gather(*(viewer() for _ in range(40)))
        assert served > 200, served

        # Kill: capture goes on while the gateway is down, and it returns on the same URL.
        gateway = service.app[GATEWAY]
        pid = gateway.pid
        assert pid is not None
        recorded = await segments(service, sid)
        os.kill(pid, signal.SIGKILL)
        await wait_for(lambda: _async(gateway.pid not in (None, pid)), 20, "a new gateway")
        await wait_for(
            lambda: _ge(segments(service, sid), recorded + 2),
            20,
            "capture to go on while the gateway restarts",
        )
        after = await wait_for(live_on_gateway, 30, "the live playlist on the new gateway")
        assert int(after.split("#EXT-X-MEDIA-SEQUENCE:")[1].split()[0]) > first_sequence
        assert gateway.restarts == 1

        t_stop = time.time()
        detail = await service.post_json(f"/api/v1/sessions/{sid}/stop")
        assert len(detail["recording"]["runs"]) == 1 and detail["recording"]["gaps"] == []
        status, vod = await fetch(f"{gw}/sessions/{sid}/index.m3u8")
        assert status == 200 and vod.rstrip().endswith("#EXT-X-ENDLIST")
        duration = await decoded_duration(f"{gw}/sessions/{sid}/index.m3u8")
        assert abs(duration - (t_stop - t_start)) < 1.0, (duration, t_stop - t_start)
    finally:
        with contextlib.suppress(Exception):
            await stop_service(service)
    assert (await fetch(gw + "/live/index.m3u8"))[0] == 0  # the gateway stopped with obrady


async def _ge(value: Any, n: int) -> bool:
    return bool(await value >= n)


async def _async(value: bool) -> bool:
    return value


async def test_gateway_processes_share_the_port_and_count_each_viewer_once(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(SYNTHETIC_SOURCE)
    port = free_port()
    live = settings.live.model_copy(update={"gateway_port": port, "gateway_processes": 2})
    service = await start_service(settings.model_copy(update={"live": live}))
    gw = f"http://127.0.0.1:{port}"
    try:
        await service.begin()
        seen_pids: set[str] = set()

        async def one_request(agent: str) -> int:
            # A connection of its own each time, so the kernel may pick either process.
            headers = {"User-Agent": agent, "Connection": "close"}
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
                async with http.get(gw + "/live/sala/index.m3u8", headers=headers) as resp:
                    if resp.status == 200:  # before the first segment both answer 404
                        seen_pids.add(resp.headers.get("X-Obrady-Worker", "?"))
                    return resp.status

        async def playing() -> bool:
            try:
                return await one_request("vlc/A") == 200
            except (aiohttp.ClientError, TimeoutError):
                return False  # the gateway processes are still starting

        async def both_served() -> bool:
            return await playing() and seen_pids == {"0", "1"}

        await wait_for(both_served, 30, "both gateway processes to serve the live playlist")
        for _ in range(10):
            assert await one_request("vlc/A") == 200
            assert await one_request("web/B") == 200
        async with aiohttp.ClientSession() as http:
            url = gw + "/live/sala/viewers"
            async with http.post(
                url, json={"id": "viewer-b-0001"}, headers={"User-Agent": "web/B"}
            ) as r:
                assert r.status == 204

        async def counted() -> dict[str, int] | None:
            viewers: dict[str, int] = (await service.status())["viewers"]
            return viewers if viewers == {"sala": 2} else None

        # vlc/A once (it reached both processes), web/B once (requests and its beacon).
        await wait_for(counted, 10, "two viewers, each counted once")
    finally:
        await stop_service(service)


async def test_closing_the_gateway_app_leaves_no_task(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(SYNTHETIC_SOURCE)
    counts = counts_file(settings.data_path, _worker())
    # The capture process makes the folder the live windows and the counts are shared in.
    await asyncio.to_thread(counts.parent.mkdir, parents=True)
    before = asyncio.all_tasks()
    app = create_gateway_app(settings)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    try:

        async def counted() -> bool:
            return await asyncio.to_thread(counts.is_file)

        await wait_for(counted, 10, "the viewer counts written")
        assert app[LIVE_EDGE].snapshot("sala") is None
    finally:
        await runner.cleanup()
    leftover = [
        task
        for task in asyncio.all_tasks() - before
        if task is not asyncio.current_task() and not task.done()
    ]
    assert leftover == [], [task.get_name() for task in leftover]
