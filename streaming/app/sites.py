"""How either port is served: aiohttp's runner and TCP site, with the request limits the
refusals name and every refusal of aiohttp's own parser as JSON (streaming.http)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from typing import Any

from aiohttp import web

from streaming.http import HANDLER_LIMITS, JsonErrorHandler


class ServiceSite(web.TCPSite):
    """aiohttp's TCP site, whose connections answer what aiohttp's parser refuses (a line too
    long, too many headers, not HTTP) as JSON too (streaming.http.JsonErrorHandler). Its
    runner: web.AppRunner(create_app(...), **HANDLER_LIMITS)."""

    __slots__ = ()

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        # What aiohttp's Server gives each RequestHandler it makes (the runner's settings).
        kwargs = {"loop": loop, **getattr(server, "_kwargs", {})}
        self._server = await loop.create_server(
            lambda: JsonErrorHandler(server, **kwargs),
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
    limits: dict[str, Any] = dict(HANDLER_LIMITS)
    return web.AppRunner(app, handle_signals=False, **limits, **kwargs)


async def serve_service(
    app: web.Application, host: str, port: int, started: Callable[[], None]
) -> None:
    """Serve app on a ServiceSite until SIGINT or SIGTERM (or until cancelled)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    runner = service_runner(app, access_log=None)
    await runner.setup()
    try:
        await ServiceSite(runner, host, port).start()
        started()
        await stop.wait()
    finally:
        await runner.cleanup()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
