"""Pushing the program to an RTMP platform (a real nginx-rtmp here): it arrives as sent, it
reconnects when the platform drops, and the platform's trouble never touches the recording."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import SYNTHETIC_SOURCE, free_port, start_service, stop_service, wait_for
from helpers import clock_stamps, ffprobe, stamp_within
from servers import NginxRtmp

from config.settings import ConfigError, PushDestination, Settings, parse_settings


async def test_program_is_pushed_and_reconnects_after_the_platform_drops(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    nginx = NginxRtmp(free_port(), tmp_path / "nginx")
    await nginx.start()
    settings = make_settings(SYNTHETIC_SOURCE)
    chamber = settings.chambers[0].model_copy(
        update={"push": [PushDestination(name="youtube", url=nginx.url("sekretny-klucz"))]}
    )
    settings = settings.model_copy(update={"chambers": [chamber]})
    service = await start_service(settings)
    try:
        created = await service.begin()
        sid = created["id"]

        async def push(state: str) -> dict[str, Any] | None:
            [p] = (await service.status())["pushes"]
            return p if p["state"] == state else None

        pushing = await wait_for(lambda: push("pushing"), 30, "the push to start")
        assert "sekretny-klucz" not in pushing["url"]  # the stream key is a password

        async def recorded(n: int) -> Path | None:
            files = nginx.recordings()
            ok = len(files) >= n and files[-1].stat().st_size > 50_000
            return files[-1] if ok else None

        first = await wait_for(lambda: recorded(1), 30, "nginx to receive the program")
        probe = await ffprobe(str(first))
        assert sorted(s["codec_name"] for s in probe["streams"]) == ["aac", "h264"]

        await nginx.stop()  # the platform drops
        dropped = await wait_for(lambda: push("reconnecting"), 30, "the drop to be noticed")
        assert dropped["last_error"]
        assert "sekretny-klucz" not in dropped["last_error"]
        await nginx.start()
        await wait_for(lambda: push("pushing"), 60, "the push to reconnect")
        await wait_for(lambda: recorded(2), 30, "a new stream at the platform")

        detail = await service.post_json(f"/api/v1/sessions/{sid}/stop")
        assert detail["recording"]["gaps"] == []
        assert len(detail["recording"]["runs"]) == 1
        metrics = await service.get_text("/metrics")
        assert 'obrady_push_restarts_total{chamber="sala",destination="youtube"}' in metrics
    finally:
        await stop_service(service)
        await nginx.stop()


def test_a_push_url_must_be_rtmp() -> None:
    text = """
[[chambers]]
id = "sala"
name = "Sala"
[chambers.source]
kind = "synthetic"
[[chambers.push]]
name = "youtube"
url = "https://youtube.com/live"
"""
    try:
        parse_settings(text)
    except ConfigError as exc:
        assert "chambers.0.push.0.url: must be an rtmp://" in str(exc)
    else:
        raise AssertionError("an https push URL was accepted")


async def test_a_closed_part_never_reaches_the_platform(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    # The simulated camera stamps the wall clock into every frame: no frame the platform
    # receives may have been filmed while the session was closed.
    nginx = NginxRtmp(free_port(), tmp_path / "nginx")
    await nginx.start()
    source = SYNTHETIC_SOURCE.replace("width = 320", "width = 640").replace(
        "height = 180", "height = 360"
    )
    settings = make_settings(source + "clock_code = true\n")
    chamber = settings.chambers[0].model_copy(
        update={"push": [PushDestination(name="youtube", url=nginx.url("klucz"))]}
    )
    service = await start_service(settings.model_copy(update={"chambers": [chamber]}))
    try:
        created = await service.begin()
        sid = created["id"]

        async def sent(n: int) -> int | None:
            [p] = (await service.status())["pushes"]
            return int(p["segments_sent"]) if p["segments_sent"] >= n else None

        before = await wait_for(lambda: sent(3), 30, "the room pushed")
        await service.post_json(f"/api/v1/sessions/{sid}/closed", {"on": True})
        closed_at = time.time_ns() // 1_000_000  # after the answer: surely closed by now
        await wait_for(lambda: sent(before + 5), 30, "the closed part's slate pushed")
        reopened_at = time.time_ns() // 1_000_000  # before the request: surely still closed
        await service.post_json(f"/api/v1/sessions/{sid}/closed", {"on": False})
        reopened = await wait_for(lambda: sent(before + 5), 5, "the count")
        await wait_for(lambda: sent(reopened + 4), 30, "the room pushed again")
        await service.post_json(f"/api/v1/sessions/{sid}/stop")
    finally:
        await stop_service(service)
        await nginx.stop()
    stamps: list[int | None] = []
    for flv in nginx.recordings():
        stamps += await clock_stamps(flv, 640, 360)
    room = [s for s in stamps if s is not None]
    # The room before and after, the slate (no stamp) between, and nothing from the closed part.
    assert any(s is None for s in stamps)
    assert any(not stamp_within(s, closed_at - 60_000, reopened_at) for s in room)
    assert any(stamp_within(s, reopened_at, reopened_at + 60_000) for s in room)
    leaked = [s for s in room if stamp_within(s, closed_at, reopened_at)]
    assert leaked == [], f"{len(leaked)} frames filmed in the closed part reached the platform"
