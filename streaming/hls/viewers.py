"""Viewer counting on the HTTP side: a request's client key and the counts of every gateway
process."""

from __future__ import annotations

import json
import time

from aiohttp import web

from streaming.edge.viewers import STALE_SECONDS, client_key, count_viewers
from streaming.keys import SETTINGS, VIEWERS


def client_of(request: web.Request) -> str:
    """A client's key: a hash of its address and user agent (behind a proxy on this machine,
    the address it forwarded). Only the hash is kept, in memory and in the counts file."""
    return client_key(
        request.remote, request.headers.get("X-Forwarded-For"), request.headers.get("User-Agent")
    )


def live_viewers(app: web.Application, chambers: list[str]) -> dict[str, int]:
    """Viewers per chamber: those of this process and of every gateway process, each player
    once (a player may reach several gateway processes)."""
    merged = {chamber: app[VIEWERS].active(chamber) for chamber in chambers}
    for path in app[SETTINGS].paths.live.glob("viewers-*.json"):
        try:
            data = json.loads(path.read_text("utf-8"))
            if time.time() - float(data["at"]) > STALE_SECONDS:
                continue  # a gateway process that stopped has no viewers
            for chamber, seen in data["chambers"].items():
                if chamber in merged:
                    merged[chamber][0].update(seen["beacons"])
                    merged[chamber][1].update(seen["clients"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
    return {chamber: count_viewers(*merged[chamber]) for chamber in chambers}
