"""The off-air watch: one OffAirMonitor per chamber playing the public live URL, judged against
what should be on air.

A problem is an alarm only while something should be on air (a live session, or the slate
before one) and after a short grace from the start; a slate is a still picture with silence by
design, so "frozen" and "silent" are not alarms while one is on air. Alarms are logged when
they begin and end, and shown in GET /api/v1/status and /metrics.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Self

from archive.index import AsyncArchive
from config.settings import Settings
from recorder.lifecycle import TaskSet
from recorder.offair import OffAirMonitor
from streaming.services.control import SLATE, ProgramSelector

log = logging.getLogger(__name__)
# A session's first seconds: the public stream needs a segment or two to reach a player.
GRACE_SECONDS = 15.0
CHECK_SECONDS = 1.0
SLATE_PROBLEMS = {"frozen", "silent"}
PROBLEMS = ("not_playing", "black", "frozen", "silent")
USER_AGENT = "obrady-offair"


def watched_url(settings: Settings, chamber: str) -> str:
    """The live URL the monitor plays: the public address, else this machine's viewers' port."""
    base = settings.live.public_url
    if base is None:
        host = settings.server.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        port = settings.live.gateway_port or settings.server.port
        base = f"http://{host}:{port}"
    return f"{base.rstrip('/')}/live/{chamber}/index.m3u8"


class OffAirWatch:
    """Keeps every chamber's monitor running and its latest verdict at hand, while
    `async with watch:` lasts."""

    def __init__(
        self,
        settings: Settings,
        archive: AsyncArchive,
        program: ProgramSelector,
        clock: Callable[[], datetime],
    ) -> None:
        self._archive = archive
        self._program = program
        self._clock = clock
        monitoring = settings.monitoring
        self.monitors = {
            chamber.id: OffAirMonitor(
                watched_url(settings, chamber.id),
                frozen_after_seconds=monitoring.frozen_after_seconds,
                silent_below_db=monitoring.silent_below_db,
                silent_after_seconds=monitoring.silent_after_seconds,
                user_agent=USER_AGENT,
            )
            for chamber in settings.chambers
        }
        self._reports: dict[str, dict[str, Any]] = {}
        self._tasks = TaskSet("off-air watch")

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def start(self) -> None:
        """Start the monitors and the judging loop."""
        for chamber, monitor in self.monitors.items():
            self._tasks.spawn(monitor.run(), name=f"offair-{chamber}")
        self._tasks.spawn(self._judge_forever(), name="offair-watch")

    async def close(self) -> None:
        """Stop the monitors (libvlc released) and the loop."""
        for monitor in self.monitors.values():
            await monitor.stop()
        await self._tasks.close()

    def reports(self) -> list[dict[str, Any]]:
        """Each chamber's latest verdict, JSON-ready."""
        return [
            self._reports.get(chamber) or {"chamber": chamber, **monitor.status()}
            for chamber, monitor in self.monitors.items()
        ]

    async def _judge_forever(self) -> None:
        while True:
            try:
                await self.judge()
            except Exception:
                log.exception("off-air watch failed; trying again")
            await asyncio.sleep(CHECK_SECONDS)

    async def judge(self) -> None:
        """Bring every chamber's verdict up to date; log alarms as they begin and end."""
        now = self._clock()
        for chamber, monitor in self.monitors.items():
            status = monitor.status()
            live = await self._archive.call(self._archive.index.live_session, chamber)
            announcing = self._program.is_announcing(chamber)
            expected = live is not None or announcing
            slate = announcing or self._program.camera(chamber) == SLATE
            problems = set(status["problems"])
            if slate:
                problems -= SLATE_PROBLEMS
            started = live.started_at if live is not None else None
            young = started is not None and (now - started).total_seconds() < GRACE_SECONDS
            alarm = expected and bool(problems) and not young
            previous = self._reports.get(chamber, {}).get("alarm", False)
            if alarm and not previous:
                log.error(
                    "OFF AIR: chamber %s: the public live stream is %s (%s)",
                    chamber,
                    ", ".join(sorted(problems)),
                    monitor.url,
                )
            elif previous and not alarm:
                log.warning("chamber %s: the public live stream is back to normal", chamber)
            self._reports[chamber] = {
                "chamber": chamber,
                "expected": expected,
                "slate": slate,
                "alarm": alarm,
                "alarm_problems": sorted(problems) if alarm else [],
                **status,
            }
