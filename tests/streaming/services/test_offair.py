"""The off-air monitor inside obrady: it watches the public live URL as a viewer would and raises
an alarm when the public receives nothing, even while capture is healthy."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any

from conftest import SYNTHETIC_SOURCE, free_port, start_service, stop_service, wait_for

from config.settings import Settings
from streaming.keys import GATEWAY


async def test_the_public_stream_is_watched_and_an_outage_raised(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(SYNTHETIC_SOURCE)
    live = settings.live.model_copy(update={"gateway_port": free_port()})
    monitoring = settings.monitoring.model_copy(update={"offair": True})
    service = await start_service(
        settings.model_copy(update={"live": live, "monitoring": monitoring})
    )
    stopped_pid: int | None = None
    try:

        async def offair(check: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
            status = await service.status()
            [report] = status["offair"]
            return report if check(report) else None

        # Nothing is on air and nothing should be: no alarm.
        idle = await wait_for(lambda: offair(lambda r: "expected" in r), 10, "a first verdict")
        assert idle["expected"] is False and idle["alarm"] is False
        assert idle["url"] == f"http://127.0.0.1:{live.gateway_port}/live/sala/index.m3u8"

        created = await service.begin()
        sid = created["id"]
        playing = await wait_for(
            lambda: offair(lambda r: r["state"] == "playing" and r["expected"]),
            40,
            "the monitor to play the public stream",
        )
        assert playing["alarm"] is False and playing["problems"] == []
        # The monitor is not a viewer.
        assert (await service.status())["viewers"] == {"sala": 0}

        # A break: the slate is silent by design, which is no alarm.
        await service.post_json(f"/api/v1/sessions/{sid}/break", {"on": True})
        slate = await wait_for(
            lambda: offair(lambda r: "silent" in r["problems"]), 40, "the silent slate"
        )
        assert slate["slate"] is True and slate["alarm"] is False
        await service.post_json(f"/api/v1/sessions/{sid}/break", {"on": False})
        await wait_for(
            lambda: offair(lambda r: r["problems"] == [] and not r["slate"]),
            40,
            "the room back in the monitor",
        )

        # The viewers' gateway hangs: capture goes on, the public gets nothing: an alarm.
        stopped_pid = service.app[GATEWAY].pid
        assert stopped_pid is not None
        os.kill(stopped_pid, signal.SIGSTOP)
        alarm = await wait_for(lambda: offair(lambda r: r["alarm"]), 30, "the off-air alarm")
        # The playlist cannot be fetched: that is the cause (the player's stall follows from it).
        assert alarm["alarm_problems"] == ["playlist_unreachable"]
        [cause] = alarm["alarms"]
        assert cause["message"].startswith("the public live playlist could not be fetched")
        status = await service.status()
        assert [c["state"] for c in status["captures"]] == ["recording"]
        metrics = await service.get_text("/metrics")
        assert 'obrady_offair_alarm{cause="playlist_unreachable",chamber="sala"} 1.0' in metrics
        assert 'obrady_offair_alarm{cause="edge_still",chamber="sala"} 0.0' in metrics

        os.kill(stopped_pid, signal.SIGCONT)
        stopped_pid = None
        back = await wait_for(
            lambda: offair(lambda r: not r["alarm"] and r["state"] == "playing"),
            60,
            "the alarm to clear",
        )
        assert back["last_recovery"]["cause"] == "playlist_unreachable"
    finally:
        if stopped_pid is not None:
            os.kill(stopped_pid, signal.SIGCONT)
        await stop_service(service)
