"""After the session: staff correct markers, publish or withdraw, and redact the public copy."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
