"""Typed application keys for the long-lived objects the composition root creates."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from aiohttp import web

from archive.index import AsyncArchive, Segment
from config.settings import Settings
from recorder.analysis import SegmentAnalyzer
from recorder.health import DiskGuard
from recorder.push import ProgramPusher
from recorder.scheduler import RecordingScheduler
from recorder.supervisor import Recorder
from streaming.control import LiveFeed, SessionControl

if TYPE_CHECKING:
    from streaming.gateway import GatewayProcess


class LiveWindowLike(Protocol):
    """Anything that lists a chamber's newest program segments (see streaming.live)."""

    async def window(self, chamber: str) -> list[Segment]:
        """The chamber's newest program segments, oldest first."""
        ...


SETTINGS = web.AppKey("settings", Settings)
CLOCK: web.AppKey[Callable[[], datetime]] = web.AppKey("clock")
ARCHIVE = web.AppKey("archive", AsyncArchive)
RECORDER = web.AppKey("recorder", Recorder)
FEED = web.AppKey("feed", LiveFeed)
LIVE_WINDOW: web.AppKey[LiveWindowLike] = web.AppKey("live_window")
CONTROL = web.AppKey("control", SessionControl)
SCHEDULER = web.AppKey("scheduler", RecordingScheduler)
DEMO_TASK = web.AppKey("demo_task", asyncio.Task[None])
DISK = web.AppKey("disk", DiskGuard)
DISK_TASK = web.AppKey("disk_task", asyncio.Task[None])
ANALYZER = web.AppKey("analyzer", SegmentAnalyzer)
GATEWAY: web.AppKey[GatewayProcess] = web.AppKey("gateway")
PUSHERS = web.AppKey("pushers", list[ProgramPusher])
ANALYZER_TASK = web.AppKey("analyzer_task", asyncio.Task[None])
