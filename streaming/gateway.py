"""The viewers' gateway as a process of its own: it serves the live and recorded HLS (and the
pages) from the archive and the media on disk, so that viewer load, or the gateway dying, can
never stall or stop capture. `obrady serve` starts it and restarts it when it exits."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from aiohttp import web

from archive.index import ArchiveIndex, AsyncArchive
from config.settings import Settings
from recorder.supervisor import interrupt_when_parent_dies
from streaming import live, now, pages, publication, transcripts
from streaming import search as search_routes
from streaming.api import error_middleware
from streaming.gateway_fast import LiveFast, LiveHandler
from streaming.keys import ARCHIVE, LIVE_EDGE, MEDIA_BYTES, PLAYLISTS, SETTINGS, VIEWERS
from streaming.llhls import ByteCache, EdgeReader, RenderedPlaylists
from streaming.viewers import ViewerCounter, write_counts

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "web" / "static"


def create_gateway_app(settings: Settings) -> web.Application:
    """The read-only public side: live and recorded HLS, chapters, media, pages."""
    # The hot live routes are answered by the fast path (GatewaySite), which runs neither the
    # middlewares nor on_response_prepare: it writes X-Obrady-Worker itself, and renders
    # refusals as error_middleware lets them through. A new middleware or hook must be matched
    # there (tests/streaming/test_gateway_fast.py compares both paths byte for byte).
    app = web.Application(middlewares=[error_middleware])

    async def name_worker(_request: web.Request, response: web.StreamResponse) -> None:
        response.headers["X-Obrady-Worker"] = str(_worker())

    app.on_response_prepare.append(name_worker)
    app[SETTINGS] = settings
    app[MEDIA_BYTES] = ByteCache(settings.data_path)
    app[PLAYLISTS] = RenderedPlaylists()
    app[VIEWERS] = ViewerCounter()

    async def archive_ctx(app: web.Application) -> AsyncIterator[None]:
        index = await asyncio.to_thread(ArchiveIndex, settings.data_path / "obrady.sqlite3")
        app[ARCHIVE] = AsyncArchive(index)
        reader = EdgeReader(settings.data_path, [chamber.id for chamber in settings.chambers])
        app[LIVE_EDGE] = reader
        task = asyncio.create_task(reader.run(), name="live-edge-reader")
        counting = asyncio.create_task(_report_viewers(app), name="viewer-counts")
        yield
        for running in (task, counting):
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
        await app[ARCHIVE].close()

    app.cleanup_ctx.append(archive_ctx)
    app.add_routes(live.routes)
    app.add_routes(pages.routes)
    app.add_routes(publication.routes)
    app.add_routes(search_routes.routes)
    app.add_routes(transcripts.public_routes)
    now.setup(app)
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
    connection's protocol (streaming/gateway_fast.py)."""

    __slots__ = ("fast",)

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
            lambda: LiveHandler(fast, server, **kwargs),
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
    runner = web.AppRunner(create_gateway_app(settings), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        # A backlog as large as the kernel allows: a thousand players may (re)connect at once.
        site = GatewaySite(runner, host, port, backlog=4096, reuse_port=reuse_port)
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


SETTINGS_ENV = "OBRADY_GATEWAY_SETTINGS"
WORKER_ENV = "OBRADY_GATEWAY_WORKER"


def _worker() -> int:
    """Which of the gateway processes this is (they share the port)."""
    return int(os.environ.get(WORKER_ENV, "0"))


def gateway_command(settings: Settings, worker: int = 0) -> tuple[list[str], dict[str, str]]:
    """How `obrady serve` starts gateway process number `worker`: argv, and the exact settings
    in the environment."""
    env = dict(os.environ)
    env[SETTINGS_ENV] = settings.model_dump_json()
    env[WORKER_ENV] = str(worker)
    return [sys.executable, "-m", "streaming", "gateway"], env


class GatewayProcess:
    """Keeps the gateway process running: restarts it (with back-off) whenever it exits."""

    def __init__(
        self, argv: list[str], env: dict[str, str], *, max_backoff_seconds: float = 5.0
    ) -> None:
        self._argv = argv
        self._env = env
        self._max_backoff = max_backoff_seconds
        self._proc: asyncio.subprocess.Process | None = None
        self._stopping = asyncio.Event()
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        """The gateway's pid while it runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    async def run(self) -> None:
        """Run and restart the gateway until stop()."""
        backoff = 0.25
        while not self._stopping.is_set():
            began = time.monotonic()
            self._proc = await asyncio.create_subprocess_exec(
                *self._argv,
                stdin=asyncio.subprocess.DEVNULL,
                env=self._env,
                start_new_session=True,
                preexec_fn=interrupt_when_parent_dies,
            )
            code = await self._proc.wait()
            if self._stopping.is_set():
                break
            if time.monotonic() - began > 30:
                backoff = 0.25
            self.restarts += 1
            log.error("gateway process exited (code %s); restarting in %.2f s", code, backoff)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), backoff)
            backoff = min(backoff * 2, self._max_backoff)

    async def stop(self) -> None:
        """Stop the gateway (SIGTERM, then SIGKILL after 10 s)."""
        self._stopping.set()
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
