"""Typed application keys for the long-lived objects the composition root creates."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from aiohttp import web

from archive.index import AsyncArchive
from config.settings import Settings
from recorder.analysis import SegmentAnalyzer
from recorder.health import DiskGuard
from recorder.scheduler import RecordingScheduler
from recorder.supervisor import Recorder
from streaming.control import LiveFeed, SessionControl

SETTINGS = web.AppKey("settings", Settings)
CLOCK: web.AppKey[Callable[[], datetime]] = web.AppKey("clock")
ARCHIVE = web.AppKey("archive", AsyncArchive)
RECORDER = web.AppKey("recorder", Recorder)
FEED = web.AppKey("feed", LiveFeed)
CONTROL = web.AppKey("control", SessionControl)
SCHEDULER = web.AppKey("scheduler", RecordingScheduler)
DEMO_TASK = web.AppKey("demo_task", asyncio.Task[None])
DISK = web.AppKey("disk", DiskGuard)
DISK_TASK = web.AppKey("disk_task", asyncio.Task[None])
ANALYZER = web.AppKey("analyzer", SegmentAnalyzer)
ANALYZER_TASK = web.AppKey("analyzer_task", asyncio.Task[None])
