"""The viewers' gateway as a process of its own: it serves the live and recorded HLS (and the
pages) from the archive and the media on disk, so that viewer load, or the gateway dying, can
never stall or stop capture. `obrady serve` starts it and restarts it when it exits."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from archive.index import ArchiveIndex, AsyncArchive
from archive.search import load_in_background
from config.settings import Settings
from recorder.lifecycle import Background
from recorder.redact import register_settings
from streaming.api import now, transcripts
from streaming.api import search as search_api
from streaming.app.sites import (
    GATEWAY_CONNECTIONS,
    GATEWAY_FILES_FREE,
    connection_limit,
    raise_open_files_limit,
    service_runner,
)
from streaming.edge.llhls import ByteCache, EdgeReader, RenderedPlaylists
from streaming.edge.viewers import ViewerCounter, write_counts
from streaming.hls import routes as hls_routes
from streaming.hls.fast import LiveFast, LiveHandler
from streaming.http import MAX_BODY_BYTES, Connections, error_middleware
from streaming.keys import (
    ARCHIVE,
    LIVE_EDGE,
    MEDIA_BYTES,
    NOW_CACHE,
    PASSWORD_CHECKS,
    PLAYLISTS,
    SETTINGS,
    TEMPLATES,
    THROTTLE,
    VIEWERS,
)
from streaming.services.gateway_process import _worker
from streaming.services.login_throttle import LoginThrottle, PasswordChecks
from streaming.web import pages, publication
from streaming.web import search as search_page
from streaming.web.templating import STATIC, create_environment

log = logging.getLogger(__name__)


def create_gateway_app(settings: Settings) -> web.Application:
    """The read-only public side: live and recorded HLS, chapters, media, pages."""
    # The hot live routes are answered by the fast path (GatewaySite), which runs neither the
    # middlewares nor on_response_prepare: it writes X-Obrady-Worker itself, and renders
    # refusals as error_middleware lets them through. A new middleware or hook must be matched
    # there (tests/streaming/hls/test_fast.py compares both paths byte for byte).
    register_settings(settings.chambers)  # never printed, logged or answered
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_BODY_BYTES)

    async def name_worker(_request: web.Request, response: web.StreamResponse) -> None:
        response.headers["X-Obrady-Worker"] = str(_worker())

    app.on_response_prepare.append(name_worker)
    app[SETTINGS] = settings
    app[TEMPLATES] = create_environment()
    app[MEDIA_BYTES] = ByteCache(settings.data_path)
    app[PLAYLISTS] = RenderedPlaylists()
    app[VIEWERS] = ViewerCounter()
    # Withdrawn recordings take HTTP Basic credentials here too: their checks are throttled
    # and bounded as on the control port (each process counts its own).
    app[THROTTLE] = LoginThrottle(
        settings.console.max_failed_logins, settings.console.max_failed_logins_per_address
    )
    at_once = settings.console.password_checks_at_once
    app[PASSWORD_CHECKS] = PasswordChecks(at_once, 4 * at_once)

    async def archive_ctx(app: web.Application) -> AsyncIterator[None]:
        # Entered in dependency order on one stack, so closed in the reverse order.
        index = await asyncio.to_thread(ArchiveIndex, settings.paths.database)
        async with contextlib.AsyncExitStack() as parts:
            app[ARCHIVE] = await parts.enter_async_context(AsyncArchive(index))
            # The search's dictionaries, in a thread of their own (archive/search.py).
            await parts.enter_async_context(Background("search-dictionaries", load_in_background))
            reader = EdgeReader(settings.data_path, [chamber.id for chamber in settings.chambers])
            app[LIVE_EDGE] = await parts.enter_async_context(reader)
            counts = Background("viewer-counts", functools.partial(_report_viewers, app))
            await parts.enter_async_context(counts)
            yield

    app.cleanup_ctx.append(archive_ctx)
    app[NOW_CACHE] = {}
    for table in (
        hls_routes.routes,
        pages.routes,
        publication.routes,
        search_api.routes,
        search_page.routes,
        transcripts.public_routes,
        now.routes,
    ):
        app.add_routes(table)
    app.router.add_static("/static", STATIC)
    return app


async def _report_viewers(app: web.Application) -> None:
    """Leave the viewer counts where the capture process (status, /metrics) reads them."""
    settings = app[SETTINGS]
    chambers = [chamber.id for chamber in settings.chambers]
    while True:
        try:
            write_counts(settings.data_path, _worker(), app[VIEWERS], chambers)
        except OSError as exc:
            log.warning("could not write viewer counts: %s", exc)
        await asyncio.sleep(2)


class GatewaySite(web.TCPSite):
    """The gateway's TCP site: aiohttp's, with the fast path for the hot live routes in each
    connection's protocol (streaming/hls/fast.py). With `connections`, a connection beyond its
    most is answered 503 and closed at once."""

    __slots__ = ("fast", "connections")

    def __init__(self, *args: Any, connections: Connections | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connections = connections

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner
        runner = self._runner
        assert isinstance(runner, web.AppRunner) and runner.server is not None
        app, server = runner.app, runner.server
        edge = app[LIVE_EDGE]
        assert isinstance(edge, EdgeReader)
        self.fast = fast = LiveFast(
            app[SETTINGS], edge, app[PLAYLISTS], app[MEDIA_BYTES], app[VIEWERS], _worker()
        )
        loop = asyncio.get_running_loop()
        # What aiohttp's Server gives each RequestHandler it makes (the runner's settings).
        kwargs = {"loop": loop, **getattr(server, "_kwargs", {})}
        self._server = await loop.create_server(
            lambda: LiveHandler(fast, server, connections=self.connections, **kwargs),
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )
        self._bound_port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        await super().stop()
        if hasattr(self, "fast"):
            await self.fast.close()


async def serve_gateway(
    settings: Settings,
    host: str,
    port: int,
    *,
    reuse_port: bool = False,
    started: Callable[[GatewaySite], None] | None = None,
) -> None:
    """Serve the gateway until SIGINT or SIGTERM (or until cancelled)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    raise_open_files_limit()
    runner = service_runner(create_gateway_app(settings), access_log=None)
    await runner.setup()
    try:
        # A backlog as large as the kernel allows: a thousand players may (re)connect at once.
        site = GatewaySite(
            runner,
            host,
            port,
            backlog=4096,
            reuse_port=reuse_port,
            connections=connection_limit(GATEWAY_CONNECTIONS, GATEWAY_FILES_FREE),
        )
        await site.start()
        if started is not None:
            started(site)
        await stop.wait()
    finally:
        await runner.cleanup()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def run_gateway(settings: Settings, host: str, port: int, *, reuse_port: bool = False) -> None:
    """Run the viewers' gateway on uvloop (where installed) until SIGINT or SIGTERM."""

    def started(site: GatewaySite) -> None:
        print(f"obrady gateway on http://{host}:{site.port}/", flush=True)

    with asyncio.Runner(loop_factory=_fast_loop) as runner:
        runner.run(serve_gateway(settings, host, port, reuse_port=reuse_port, started=started))


def _fast_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop where installed (measured: the gateway used a quarter less CPU
    for the same viewers), else asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
