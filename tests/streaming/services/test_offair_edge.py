"""The off-air watch on a real service and a real session, with the demo's live settings (2 s
segments, 0.2 s parts): the public playlist's live edge is fetched as the public gets it, a
standstill is an alarm within 10 s with its cause, a healthy start or a break is not."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cameras.camera import RtspCamera
from conftest import (
    SYNTHETIC_SOURCE,
    Service,
    config_text,
    free_port,
    rtsp_source,
    start_service,
    stop_service,
    wait_for,
)

from config.settings import Settings, parse_settings
from streaming.keys import RECORDER

DETECT_SECONDS = 10.0


async def report(service: Service) -> dict[str, Any]:
    status = await service.status()
    [chamber] = status["offair"]
    assert isinstance(chamber, dict)
    return chamber


class Timeline:
    """The chamber's off-air report every quarter second, while `async with` lasts."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.seen: list[tuple[float, dict[str, Any]]] = []
        self.began = time.monotonic()
        self._task: asyncio.Task[None] | None = None

    async def _poll(self) -> None:
        while True:
            self.seen.append((time.monotonic() - self.began, await report(self.service)))
            await asyncio.sleep(0.25)

    async def __aenter__(self) -> Timeline:
        self._task = asyncio.create_task(self._poll())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    def alarms(self) -> list[tuple[float, list[dict[str, Any]]]]:
        return [(round(t, 1), r["alarms"]) for t, r in self.seen if r.get("alarm")]

    def first(self, check: Callable[[dict[str, Any]], bool]) -> float | None:
        return next((t for t, r in self.seen if check(r)), None)


async def the_player_plays(service: Service) -> dict[str, Any]:
    async def playing() -> dict[str, Any] | None:
        r = await report(service)
        return r if r.get("player") == "playing" and r["edge"]["moving"] else None

    return await wait_for(playing, 30, "the off-air player to play the session")


async def test_a_healthy_start_raises_no_alarm(watched: Service) -> None:
    async with Timeline(watched) as timeline:
        began = time.monotonic()
        await watched.begin()
        await the_player_plays(watched)
        # Longer than an alarm takes to come (DETECT_SECONDS) once the player plays.
        await asyncio.sleep(DETECT_SECONDS + 2)
    assert timeline.alarms() == []
    first_part = timeline.first(lambda r: r.get("edge", {}).get("moving"))
    playing = timeline.first(lambda r: r.get("player") == "playing")
    assert first_part is not None and first_part < began - timeline.began + 10, timeline.seen[-1][1]
    assert playing is not None, timeline.seen[-1][1]
    # Between the first part and the first picture the player is "starting", never an alarm.
    between = [r["state"] for t, r in timeline.seen if first_part <= t < playing]
    assert set(between) <= {"starting"}, between
    last = timeline.seen[-1][1]
    assert last["state"] == "playing" and last["alarm"] is False and last["expected"] is True
    print(f"first part after {first_part:.1f} s, the player played after {playing:.1f} s")


async def test_a_still_public_edge_is_an_alarm_within_ten_seconds_and_recovers(
    watched: Service, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="streaming.services.offair")
    await watched.begin()
    await the_player_plays(watched)
    [camera] = [s for s in watched.app[RECORDER].statuses() if s.camera_id != "slate"]
    assert camera.pid is not None
    stopped: int | None = camera.pid
    try:
        os.kill(camera.pid, signal.SIGSTOP)  # capture stands still: so does the public edge
        stopped_at = time.monotonic()

        async def alarmed() -> dict[str, Any] | None:
            r = await report(watched)
            return r if "edge_still" in r["alarm_problems"] else None

        alarm = await wait_for(alarmed, 15, "the edge_still alarm")
        alarmed_at = time.monotonic()
        took = alarmed_at - stopped_at
        assert took < DETECT_SECONDS, f"edge_still after {took:.1f} s"
        [cause] = [a for a in alarm["alarms"] if a["cause"] == "edge_still"]
        assert cause["message"].startswith("the public live playlist has not gained a part for")
        assert cause["since"]
        metrics = await watched.get_text("/metrics")
        assert 'obrady_offair_alarm{cause="edge_still",chamber="sala"} 1.0' in metrics
        assert 'obrady_offair_alarms_total{cause="edge_still",chamber="sala"} 1.0' in metrics

        # It stays raised as long as the edge stands still (the player replaying the
        # playlist's tail after a restart changes nothing).
        async with Timeline(watched) as timeline:
            await asyncio.sleep(10)
        assert all("edge_still" in r["alarm_problems"] for _, r in timeline.seen), [
            (round(t, 1), r["alarm_problems"], r["player"]) for t, r in timeline.seen
        ]

        os.kill(camera.pid, signal.SIGCONT)
        stopped = None
        resumed_at = time.monotonic()

        async def recovered() -> dict[str, Any] | None:
            r = await report(watched)
            return r if "edge_still" not in r["alarm_problems"] else None

        back = await wait_for(recovered, 15, "the recovery")
        print(f"edge_still after {took:.1f} s, recovered {time.monotonic() - resumed_at:.1f} s")
        recovery = back["last_recovery"]
        assert recovery["cause"] == "edge_still"
        # It began when the alarm was raised and ended when the edge moved again.
        assert 0 < recovery["duration_seconds"] <= time.monotonic() - alarmed_at + 2
        assert recovery["began"] == cause["since"]
        assert any("recovered from edge_still" in record.getMessage() for record in caplog.records)
        assert any(
            "OFF AIR" in r.getMessage() and "edge_still" in r.getMessage() for r in caplog.records
        )
        metrics = await watched.get_text("/metrics")
        assert 'obrady_offair_alarm{cause="edge_still",chamber="sala"} 0.0' in metrics
        assert 'obrady_offair_recoveries_total{cause="edge_still",chamber="sala"} 1.0' in metrics
        assert (
            'obrady_offair_last_recovery_duration_seconds{cause="edge_still",chamber="sala"} '
            f"{recovery['duration_seconds']}" in metrics
        )
    finally:
        if stopped is not None:
            os.kill(stopped, signal.SIGCONT)


async def _slate_moving(service: Service) -> bool:
    r = await report(service)
    return bool(r["slate"] and r["edge"]["moving"])


async def _room_moving(service: Service) -> bool:
    r = await report(service)
    return bool(not r["slate"] and r["edge"]["moving"])


async def test_a_frozen_public_picture_is_an_alarm_within_ten_seconds(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """The operator switches the program to a camera whose picture stands still (with sound):
    the public edge moves on, the player sees the picture frozen. The public gets that camera
    from the next segment on, so the alarm must come within 10 s of that, one segment after
    the switch at most."""
    frozen = RtspCamera(free_port(), pattern="frozen")
    await frozen.start()
    base = make_settings(SYNTHETIC_SOURCE, segment_seconds=2, stall_timeout_seconds=60)
    text = config_text(
        tmp_path / "frozen-data", free_port(), SYNTHETIC_SOURCE, segment_seconds=2
    ).replace(
        f"[chambers.source]\n{SYNTHETIC_SOURCE}",
        'program = "room"\n'
        f'[[chambers.cameras]]\nid = "room"\n[chambers.cameras.source]\n{SYNTHETIC_SOURCE}\n'
        f'[[chambers.cameras]]\nid = "still"\n[chambers.cameras.source]\n'
        f"{rtsp_source(frozen.url)}",
    )
    settings = parse_settings(text)
    live = settings.live.model_copy(update={"gateway_port": free_port()})
    monitoring = settings.monitoring.model_copy(update={"offair": True})
    assert monitoring.frozen_after_seconds == base.monitoring.frozen_after_seconds == 6
    service = await start_service(
        settings.model_copy(update={"live": live, "monitoring": monitoring})
    )
    try:
        await service.begin()
        await the_player_plays(service)
        await service.post_json("/api/v1/chambers/sala/program", {"camera": "still"})
        switched_at = time.monotonic()

        async def alarmed() -> dict[str, Any] | None:
            r = await report(service)
            return r if "frozen" in r["alarm_problems"] else None

        alarm = await wait_for(alarmed, 20, "the frozen alarm")
        took = time.monotonic() - switched_at
        print(f"frozen alarm {took:.1f} s after the switch")
        assert took < DETECT_SECONDS + 2, f"frozen after {took:.1f} s"
        assert alarm["alarm_problems"] == ["frozen"]
        [cause] = alarm["alarms"]
        assert cause["message"].startswith("the public picture has not changed for")
    finally:
        await stop_service(service)
        await frozen.stop()


async def test_the_slate_before_a_session_the_room_and_a_break_raise_no_alarm(
    make_settings: Callable[..., Settings],
) -> None:
    """The slate that announces a session is due on air (the watch looks at it), the session's
    start switches the same URL to the room, and a break to the slate and back: none is an
    alarm."""
    settings = make_settings(SYNTHETIC_SOURCE, segment_seconds=2)
    live = settings.live.model_copy(update={"gateway_port": free_port(), "announce_minutes": 120})
    monitoring = settings.monitoring.model_copy(update={"offair": True})
    service = await start_service(
        settings.model_copy(update={"live": live, "monitoring": monitoring})
    )
    try:
        async with Timeline(service) as timeline:
            created = await service.begin(start=False)

            async def announcing() -> bool:
                r = await report(service)
                return bool(r.get("expected") and r["slate"] and r["edge"]["moving"])

            await wait_for(announcing, 30, "the announcing slate on air")
            await asyncio.sleep(8)
            sid = created["id"]
            await service.post_json(f"/api/v1/sessions/{sid}/start")
            await wait_for(lambda: _room_moving(service), 30, "the room on the same URL")
            await the_player_plays(service)
            await asyncio.sleep(6)
            # A break switches the same URL to the slate and back: no alarm either.
            switched = len(timeline.seen)
            await service.post_json(f"/api/v1/sessions/{sid}/break", {"on": True})
            await wait_for(lambda: _slate_moving(service), 20, "the slate on air for the break")
            await asyncio.sleep(6)
            await service.post_json(f"/api/v1/sessions/{sid}/break", {"on": False})
            await wait_for(lambda: _room_moving(service), 20, "the room back on air")
            await asyncio.sleep(6)
        assert timeline.alarms() == []
        assert any(r["slate"] for _, r in timeline.seen[switched:])
        assert timeline.seen[-1][1]["expected"] is True
    finally:
        await stop_service(service)
