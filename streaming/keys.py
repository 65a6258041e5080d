"""Typed application keys for the long-lived objects the composition root creates."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from aiohttp import web

from archive.index import AsyncArchive
from config.settings import Settings
from recorder.analysis import SegmentAnalyzer
from recorder.health import DiskGuard
from recorder.push import ProgramPusher
from recorder.scheduler import RecordingScheduler
from recorder.supervisor import Recorder
from streaming.control import SessionControl
from streaming.llhls import ByteCache, EdgeSource, RenderedPlaylists
from streaming.viewers import ViewerCounter

if TYPE_CHECKING:
    from streaming.gateway import GatewayProcess
    from streaming.offair_watch import OffAirWatch


SETTINGS = web.AppKey("settings", Settings)
CLOCK: web.AppKey[Callable[[], datetime]] = web.AppKey("clock")
ARCHIVE = web.AppKey("archive", AsyncArchive)
RECORDER = web.AppKey("recorder", Recorder)
LIVE_EDGE: web.AppKey[EdgeSource] = web.AppKey("live_edge")
MEDIA_BYTES = web.AppKey("media_bytes", ByteCache)
VIEWERS = web.AppKey("viewers", ViewerCounter)
PLAYLISTS = web.AppKey("playlists", RenderedPlaylists)
OFFAIR: web.AppKey[OffAirWatch] = web.AppKey("offair")
LIVE_EDGE_TASK = web.AppKey("live_edge_task", asyncio.Task[None])
CONTROL = web.AppKey("control", SessionControl)
SCHEDULER = web.AppKey("scheduler", RecordingScheduler)
DEMO_TASK = web.AppKey("demo_task", asyncio.Task[None])
DISK = web.AppKey("disk", DiskGuard)
DISK_TASK = web.AppKey("disk_task", asyncio.Task[None])
ANALYZER = web.AppKey("analyzer", SegmentAnalyzer)
GATEWAY: web.AppKey[GatewayProcess] = web.AppKey("gateway")
PUSHERS = web.AppKey("pushers", list[ProgramPusher])
ANALYZER_TASK = web.AppKey("analyzer_task", asyncio.Task[None])
