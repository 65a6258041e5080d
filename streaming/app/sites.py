"""How either port is served: aiohttp's runner and TCP site, with the request limits the
refusals name and every refusal of aiohttp's own parser as JSON (streaming.http)."""

from __future__ import annotations

import asyncio
import logging
import resource
import signal
from collections.abc import Callable
from typing import Any

from aiohttp import web

from streaming.http import HANDLER_LIMITS, Connections, JsonErrorHandler

log = logging.getLogger(__name__)

# The most connections the control port holds at once (the control room, scripts, downloads
# through the proxy: a few dozen), and what of the open-files limit stays free for capture
# (ffmpeg's pipes, segment files, the archive) whatever the connections take.
CONTROL_CONNECTIONS = 512
# The most connections one gateway process holds at once (measured: 1,250 LL-HLS viewers with
# two each held by one process), and the files kept free beside them.
GATEWAY_CONNECTIONS = 8192
GATEWAY_FILES_FREE = 256


def raise_open_files_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit (Debian's default soft
    limit, 1024, is what a few hundred slow connections take); the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        wanted = 1 << 20 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-files limit from %d: %s", soft, exc)
    return int(soft)


def connection_limit(most: int, keep_free: int) -> Connections:
    """At most `most` connections, and never so many that fewer than keep_free files stay
    open to the rest of the process (under the soft open-files limit)."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        return Connections(most)
    return Connections(max(16, min(most, int(soft) - keep_free)))


def control_connections() -> Connections:
    """The control port's bound: CONTROL_CONNECTIONS, at most half the open-files limit."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    half = CONTROL_CONNECTIONS if soft == resource.RLIM_INFINITY else int(soft) // 2
    return connection_limit(CONTROL_CONNECTIONS, max(half, 128))


class ServiceSite(web.TCPSite):
    """aiohttp's TCP site, whose connections answer what aiohttp's parser refuses (a line too
    long, too many headers, not HTTP) as JSON too (streaming.http.JsonErrorHandler). Its
    runner: web.AppRunner(create_app(...), **HANDLER_LIMITS). With `connections`, a
    connection beyond its most is answered 503 and closed at once."""

    __slots__ = ("connections",)

    def __init__(self, *args: Any, connections: Connections | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connections = connections

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        # What aiohttp's Server gives each RequestHandler it makes (the runner's settings).
        kwargs = {"loop": loop, **getattr(server, "_kwargs", {})}
        self._server = await loop.create_server(
            lambda: JsonErrorHandler(server, connections=self.connections, **kwargs),
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )
        self._bound_port = self._server.sockets[0].getsockname()[1]


def service_runner(app: web.Application, **kwargs: Any) -> web.AppRunner:
    """The runner of either port's app: aiohttp's, with the request limits that the refusals
    name (streaming.http.HANDLER_LIMITS)."""
    limits: dict[str, Any] = {**HANDLER_LIMITS, **kwargs}
    return web.AppRunner(app, handle_signals=False, **limits)


async def serve_service(
    app: web.Application, host: str, port: int, started: Callable[[], None]
) -> None:
    """Serve app on a ServiceSite until SIGINT or SIGTERM (or until cancelled)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    raise_open_files_limit()
    runner = service_runner(app, access_log=None)
    await runner.setup()
    try:
        await ServiceSite(runner, host, port, connections=control_connections()).start()
        started()
        await stop.wait()
    finally:
        await runner.cleanup()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
