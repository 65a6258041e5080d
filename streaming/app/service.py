"""The composition root: builds every long-lived object in dependency order and closes them in
reverse, through aiohttp cleanup contexts. Each long-lived part is an async context manager
(`async with part:` starts it; leaving stops every task and timer it started); a context enters
its parts on one AsyncExitStack, so they close in the reverse order."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from archive.index import ArchiveIndex, AsyncArchive
from archive.search import load_in_background
from config.settings import Settings
from recorder.analysis import SegmentAnalyzer
from recorder.ffmpeg import capture_argv
from recorder.health import DiskGuard
from recorder.lifecycle import Background
from recorder.preflight import Preflight, RecordedCamera
from recorder.push import ProgramPusher
from recorder.redact import register_settings
from recorder.scheduler import RecordingScheduler, StopReason
from recorder.supervisor import ArgvBuilder, Guardian, Recorder
from streaming.api import accounts as accounts_api
from streaming.api import council, editing, metrics, now, preflight, sessions, transcripts
from streaming.api import exports as exports_api
from streaming.api import search as search_api
from streaming.app.demo import autopilot, prepare_demo
from streaming.edge.llhls import ByteCache, LiveEdge, RenderedPlaylists
from streaming.edge.viewers import ViewerCounter
from streaming.hls import routes as hls_routes
from streaming.http import MAX_BODY_BYTES, error_middleware
from streaming.keys import (
    ANALYZER,
    ARCHIVE,
    CLOCK,
    CONTINUITY,
    CONTROL,
    DISK,
    EXPORTS,
    GATEWAY,
    INDEXER,
    LIVE_EDGE,
    MEDIA_BYTES,
    NOW_CACHE,
    OFFAIR,
    PASSWORD_CHECKS,
    PLAYLISTS,
    PREFLIGHT,
    PRELOGIN,
    PUSHERS,
    RECORDER,
    SCHEDULER,
    SETTINGS,
    TEMPLATES,
    THROTTLE,
    TRANSCRIPTION,
    VIEWERS,
)
from streaming.services.continuity import ContinuityChecker
from streaming.services.control import ArchiveCaptureEvents, ProgramSelector, SessionControl
from streaming.services.exports import ExportManager
from streaming.services.gateway_process import GatewayProcess, gateway_command
from streaming.services.indexer import ArchiveIndexer
from streaming.services.login_throttle import LoginThrottle, PasswordChecks, PreloginTokens
from streaming.services.offair import OffAirWatch
from streaming.services.records import keep_records_written
from streaming.services.transcription import TranscriptionManager
from streaming.web import console, downloads, login, pages, publication
from streaming.web import search as search_page
from streaming.web.templating import STATIC, create_environment

log = logging.getLogger(__name__)
# How often the slate before each chamber's next session is brought up to date.
ANNOUNCE_EVERY_SECONDS = 2.0


def _utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: Settings,
    *,
    clock: Callable[[], datetime] = _utc_now,
    argv_builder: ArgvBuilder = capture_argv,
    reconcile_every_seconds: float = 30.0,
) -> web.Application:
    """The whole service as one aiohttp application (serve it with ServiceSite)."""
    register_settings(settings.chambers)  # never printed, logged or answered
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_BODY_BYTES)
    app[SETTINGS] = settings
    app[TEMPLATES] = create_environment()
    app[CLOCK] = clock
    app[MEDIA_BYTES] = ByteCache(settings.data_path)
    app[PLAYLISTS] = RenderedPlaylists()
    app[VIEWERS] = ViewerCounter()

    async def archive_ctx(app: web.Application) -> AsyncIterator[None]:
        path = settings.paths.database
        index = await asyncio.to_thread(ArchiveIndex, path)
        # The search's dictionaries load in a thread of their own while the service already
        # serves; a search that comes first waits for them (archive/search.py).
        dictionaries = Background("search-dictionaries", load_in_background)
        async with AsyncArchive(index) as archive, dictionaries:
            app[ARCHIVE] = archive
            log.info("archive: %s", path)
            yield

    async def recorder_ctx(app: web.Application) -> AsyncIterator[None]:
        archive = app[ARCHIVE]
        analyzer = SegmentAnalyzer(settings.monitoring)
        program = ProgramSelector(settings)
        edge = await asyncio.to_thread(
            LiveEdge,
            settings.data_path,
            [chamber.id for chamber in settings.chambers],
            window_segments=settings.live.playlist_segments,
            part_target=settings.live.part_target_seconds,
            segment_seconds=settings.recording.segment_seconds,
            allowed=program.live_allows,
            went_live=lambda chamber, camera: app[CONTROL].room_went_live(chamber, camera),
        )

        def program_changed(chamber: str, cut: bool) -> None:
            if cut:
                edge.cut(chamber)
            else:
                edge.reconsider(chamber)

        program.listen(program_changed)
        for chamber in settings.chambers:
            # A live session keeps the operator's choice across a restart; between sessions,
            # a choice made for the next one stands. Anything older is forgotten.
            live = await archive.call(archive.index.live_session, chamber.id)
            last = await archive.call(
                archive.index.program_camera, chamber.id, None if live is None else live.id
            )
            if last in {camera.id for camera in chamber.camera_list}:
                program.restore(chamber.id, last, for_next_session=live is None)
        pushers = {
            chamber.id: [ProgramPusher(chamber.id, destination) for destination in chamber.push]
            for chamber in settings.chambers
        }
        app[PUSHERS] = [p for chamber_pushers in pushers.values() for p in chamber_pushers]
        # What the recorder reports to (the analyser, the pushers, the live edge) runs before
        # it and stops after it: the last segments of a shutdown still reach them.
        async with contextlib.AsyncExitStack() as parts:
            # The index's queue closes last of these: what a shutdown's last segments queue
            # is still written.
            indexer = await parts.enter_async_context(ArchiveIndexer(archive))
            app[INDEXER] = indexer
            # Closes before the indexer: its last results are still written.
            checker = await parts.enter_async_context(
                ContinuityChecker(archive, indexer, settings.monitoring.hole_threshold_seconds)
            )
            app[CONTINUITY] = checker

            async def check_old_sessions() -> None:
                # Sessions recorded before the media check existed are checked once, behind
                # everything else: until then they do not say they are complete.
                await checker.check_ended(settings.paths.session_media)

            await parts.enter_async_context(Background("continuity-backfill", check_old_sessions))
            # Each session's record beside its media, for `obrady index rebuild` (a change not
            # yet written when obrady stops stays marked in the database, and is written next).
            records = functools.partial(keep_records_written, archive, settings.paths)
            await parts.enter_async_context(Background("session-records", records))
            guardian = await parts.enter_async_context(Guardian())
            app[ANALYZER] = await parts.enter_async_context(analyzer)
            for pusher in app[PUSHERS]:
                await parts.enter_async_context(pusher)
            app[LIVE_EDGE] = await parts.enter_async_context(edge)
            recorder = Recorder(
                settings.recording,
                ArchiveCaptureEvents(indexer, edge, analyzer, program, pushers, checker),
                argv_builder=argv_builder,
                clock=clock,
                guardian=guardian,
                hole_threshold=settings.monitoring.hole_threshold_seconds,
            )
            # Leaving stops every capture; sessions stay live in the archive: the next start
            # of obrady resumes them.
            app[RECORDER] = await parts.enter_async_context(recorder)
            control = SessionControl(settings, archive, recorder, program, clock, indexer, checker)
            app[CONTROL] = await parts.enter_async_context(control)
            # Entering checks once: a full disk is known before the first capture starts.
            guard = DiskGuard(settings.data_path, settings.storage, recorder)
            app[DISK] = await parts.enter_async_context(guard)
            yield

    async def scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
        control = app[CONTROL]

        # The scheduler's own starts and stops go into the audit log like anyone's, queued
        # with the recorder's writes: a busy database delays the entry, not the start.
        def audited(action: str, session_id: int, before: Any, after: Any) -> None:
            archive = app[ARCHIVE]
            app[INDEXER].write(
                f"audit of {action} on session {session_id}",
                session_id,
                archive.index.add_audit,
                "scheduler",
                action,
                f"session {session_id}",
                session_id=session_id,
                before=before,
                after=after,
                at=clock(),
            )

        async def start(session_id: int) -> None:
            before = await app[ARCHIVE].read(ArchiveIndex.get_session, session_id)
            after = await control.start(session_id, by="scheduler", manual=False)
            if before.state != after.state:
                audited(
                    "session.start", session_id, {"state": before.state}, {"state": after.state}
                )

        async def stop(session_id: int, reason: StopReason) -> None:
            await control.scheduled_stop(session_id, reason)
            audited(
                "session.stop", session_id, {"state": "live"}, {"state": "ended", "reason": reason}
            )

        scheduler = RecordingScheduler(
            load=control.schedule,
            start=start,
            stop=stop,
            preroll=timedelta(seconds=settings.recording.preroll_seconds),
            overrun_limit=timedelta(minutes=settings.recording.overrun_limit_minutes),
            misfire_grace_seconds=settings.recording.misfire_grace_seconds,
            reconcile_every_seconds=reconcile_every_seconds,
            clock=clock,
        )
        app[SCHEDULER] = scheduler

        async def announcing() -> None:
            while True:
                try:
                    await control.announce()
                except Exception:
                    log.exception("could not update the slate before sessions")
                await asyncio.sleep(ANNOUNCE_EVERY_SECONDS)

        async with contextlib.AsyncExitStack() as parts:
            if settings.demo is not None:
                demo_session = await prepare_demo(settings, app[ARCHIVE], clock)
                if demo_session is not None:
                    pilot = functools.partial(
                        autopilot, settings.demo, demo_session, app[ARCHIVE], control
                    )
                    await parts.enter_async_context(Background("demo-autopilot", pilot))
            await parts.enter_async_context(scheduler)  # reconciles at once
            await parts.enter_async_context(Background("announcer", announcing))
            yield

    async def gateway_ctx(app: web.Application) -> AsyncIterator[None]:
        if not settings.live.gateway_port or not settings.live.run_gateway:
            yield
            return
        # Several processes may share the port (SO_REUSEPORT): the kernel spreads viewers'
        # connections over them.
        gateways = [
            GatewayProcess(*gateway_command(settings, worker))
            for worker in range(settings.live.gateway_processes)
        ]
        app[GATEWAY] = gateways[0]
        async with contextlib.AsyncExitStack() as parts:
            for gateway in gateways:
                await parts.enter_async_context(gateway)
            yield
            # All at once (each waits for its process to end): then each has nothing to stop.
            await asyncio.gather(*(g.stop() for g in gateways))

    async def offair_ctx(app: web.Application) -> AsyncIterator[None]:
        if not settings.monitoring.offair:
            yield
            return
        async with OffAirWatch(settings, app[ARCHIVE], app[CONTROL].program, clock) as watch:
            app[OFFAIR] = watch
            yield

    app.cleanup_ctx.extend(
        [
            archive_ctx,
            recorder_ctx,
            scheduler_ctx,
            gateway_ctx,
            offair_ctx,
            preflight_ctx,
            exports_ctx,
            transcription_ctx,
        ]
    )
    console_settings = settings.console
    app[THROTTLE] = LoginThrottle(
        console_settings.max_failed_logins, console_settings.max_failed_logins_per_address
    )
    at_once = console_settings.password_checks_at_once
    app[PASSWORD_CHECKS] = PasswordChecks(at_once, 4 * at_once)
    app[PRELOGIN] = PreloginTokens()
    app[NOW_CACHE] = {}
    for table in (
        sessions.routes,
        hls_routes.routes,
        pages.routes,
        publication.routes,
        metrics.routes,
        preflight.routes,
        login.routes,
        accounts_api.routes,
        council.routes,
        now.routes,
        console.routes,
        editing.routes,
        downloads.routes,
        exports_api.routes,
        search_api.routes,
        search_page.routes,
        transcripts.routes,
        transcripts.public_routes,
    ):
        app.add_routes(table)
    app.router.add_static("/static", STATIC)
    return app


async def transcription_ctx(app: web.Application) -> AsyncIterator[None]:
    """The transcription manager, started after the archive and stopped before it."""
    async with TranscriptionManager(app[SETTINGS], app[ARCHIVE]) as manager:
        app[TRANSCRIPTION] = manager
        yield


async def exports_ctx(app: web.Application) -> AsyncIterator[None]:
    """The export manager, started after the archive and stopped before it."""
    async with ExportManager(app[SETTINGS], app[ARCHIVE]) as manager:
        app[EXPORTS] = manager
        yield


def recorded_cameras(app: web.Application, chamber_id: str) -> dict[str, RecordedCamera]:
    """The chamber's cameras under capture now (not its slates), with their media folders."""
    recorder, analyzer = app[RECORDER], app[ANALYZER]
    cameras = {c.id for c in app[SETTINGS].chamber(chamber_id).camera_list}
    found: dict[str, RecordedCamera] = {}
    for status in recorder.statuses():
        if status.chamber_id != chamber_id or status.camera_id not in cameras:
            continue
        if status.state == "stopped":
            continue
        supervisor = recorder.supervisor(status.session_id, status.camera_id)
        if supervisor is None:
            continue
        health = analyzer.health((status.session_id, status.camera_id))
        peak = None if health is None else health.audio_max_db
        found[status.camera_id] = RecordedCamera(supervisor.job.media_dir, peak)
    return found


async def preflight_ctx(app: web.Application) -> AsyncIterator[None]:
    """Start and stop what pre-flight needs."""
    settings = app[SETTINGS]
    preflight = Preflight(
        settings.chambers,
        settings.paths.preflight,
        settings.preflight,
        lambda chamber_id: recorded_cameras(app, chamber_id),
    )
    async with preflight:  # loads the test recordings kept from earlier runs
        app[PREFLIGHT] = preflight
        yield
