"""Every aiohttp AppKey: the typed handles through which request handlers reach the long-lived
objects the composition roots (streaming/app/) built. Handlers import this module; it imports
only the types it names."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web
from jinja2 import Environment

from archive.index import AsyncArchive
from config.settings import Settings
from recorder.analysis import SegmentAnalyzer
from recorder.health import DiskGuard
from recorder.preflight import Preflight
from recorder.push import ProgramPusher
from recorder.scheduler import RecordingScheduler
from recorder.supervisor import Recorder
from streaming.edge.llhls import ByteCache, EdgeSource, RenderedPlaylists
from streaming.edge.viewers import ViewerCounter
from streaming.services.continuity import ContinuityChecker
from streaming.services.control import SessionControl
from streaming.services.exports import ExportManager
from streaming.services.gateway_process import GatewayProcess
from streaming.services.indexer import ArchiveIndexer
from streaming.services.login_throttle import LoginThrottle, PasswordChecks, PreloginTokens
from streaming.services.transcription import TranscriptionManager

if TYPE_CHECKING:
    # For the type only: importing the off-air watch loads libvlc, which the viewers' gateway
    # processes (they import this module) do not need.
    from streaming.services.offair import OffAirWatch


SETTINGS = web.AppKey("settings", Settings)
CLOCK: web.AppKey[Callable[[], datetime]] = web.AppKey("clock")
ARCHIVE = web.AppKey("archive", AsyncArchive)
RECORDER = web.AppKey("recorder", Recorder)
LIVE_EDGE: web.AppKey[EdgeSource] = web.AppKey("live_edge")
INDEXER: web.AppKey[ArchiveIndexer] = web.AppKey("indexer")
CONTINUITY = web.AppKey("continuity", ContinuityChecker)
MEDIA_BYTES = web.AppKey("media_bytes", ByteCache)
VIEWERS = web.AppKey("viewers", ViewerCounter)
PLAYLISTS = web.AppKey("playlists", RenderedPlaylists)
OFFAIR: web.AppKey[OffAirWatch] = web.AppKey("offair")
CONTROL = web.AppKey("control", SessionControl)
SCHEDULER = web.AppKey("scheduler", RecordingScheduler)
DISK = web.AppKey("disk", DiskGuard)
ANALYZER = web.AppKey("analyzer", SegmentAnalyzer)
GATEWAY: web.AppKey[GatewayProcess] = web.AppKey("gateway")
PUSHERS = web.AppKey("pushers", list[ProgramPusher])
TRANSCRIPTION = web.AppKey("transcription", TranscriptionManager)
EXPORTS = web.AppKey("exports", ExportManager)
PREFLIGHT = web.AppKey("preflight", Preflight)
NOW_CACHE = web.AppKey("now_cache", dict[str, tuple[float, dict[str, Any]]])
THROTTLE = web.AppKey("login_throttle", LoginThrottle)
PASSWORD_CHECKS = web.AppKey("password_checks", PasswordChecks)
PRELOGIN = web.AppKey("prelogin_tokens", PreloginTokens)
# The pages' Jinja2 environment with the message catalogues (streaming.web.templating).
TEMPLATES = web.AppKey("templates", Environment)
