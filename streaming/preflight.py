"""Pre-flight checks before a session: source previews, audio meters and a test recording."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

routes = web.RouteTableDef()


async def preflight_ctx(app: web.Application) -> AsyncIterator[None]:
    """Start and stop what pre-flight needs."""
    yield
