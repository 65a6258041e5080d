"""The composition root's lifecycle: closing the app stops every task, timer and process that
obrady started while it ran."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from pathlib import Path

import aiohttp
from conftest import (
    SYNTHETIC_SOURCE,
    Service,
    free_port,
    segments_of,
    start_service,
    stop_service,
    wait_for,
)

from config.settings import Settings
from streaming.keys import CONTROL, GATEWAY


def child_processes() -> list[tuple[int, str]]:
    """(pid, name) of every process whose parent is this one, zombies included."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            status = (entry / "status").read_text()
            fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
            if int(fields["PPid"]) == os.getpid():
                found.append((int(entry.name), fields["Name"].strip()))
    return found


async def test_closing_the_app_leaves_no_task_timer_or_process(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(SYNTHETIC_SOURCE)
    gateway_port = free_port()
    live = settings.live.model_copy(update={"gateway_port": gateway_port})
    settings = settings.model_copy(update={"live": live})
    before = asyncio.all_tasks()
    assert not [name for _, name in child_processes() if name == "ffmpeg"]
    service = await start_service(settings)
    stopped = False
    try:

        async def gateway_answers() -> bool:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                url = f"http://127.0.0.1:{gateway_port}/live/index.m3u8"
                async with service.http.get(url) as resp:
                    return resp.status == 404
            return False

        await wait_for(gateway_answers, 30, "the gateway process to answer")
        sid = (await service.begin())["id"]
        await wait_for(lambda: _at_least(service, sid, 2), 20, "two segments")
        # A break ended at once leaves the slate bridging to the room: SessionControl holds a
        # task that ends the bridge at the latest a few segments later.
        await service.post_json(f"/api/v1/sessions/{sid}/break", {"on": True})
        await service.post_json(f"/api/v1/sessions/{sid}/break", {"on": False})
        control = service.app[CONTROL]
        assert control.background(), "the bridge should be pending"
        running = child_processes()
        assert [name for _, name in running].count("ffmpeg") >= 2, running  # camera and slate
        assert service.app[GATEWAY].pid in {pid for pid, _ in running}
        stopped = True
        await asyncio.wait_for(stop_service(service), 60)
    finally:
        if not stopped:
            await stop_service(service)

    assert control.background() == []
    leftover = [
        task
        for task in asyncio.all_tasks() - before
        if task is not asyncio.current_task() and not task.done()
    ]
    assert leftover == [], [task.get_name() for task in leftover]
    assert child_processes() == []


async def _at_least(service: Service, sid: int, count: int) -> bool:
    return await segments_of(service, sid) >= count
