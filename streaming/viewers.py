"""Honest live viewer counts: players, not requests.

An LL-HLS player makes several requests a second; a viewer is counted once however many it
makes. Web players (our pages) announce themselves every few seconds with a random id (a beacon
that no cache answers); any other client (VLC, a TV app) is known by its address and user agent,
and is not counted again when the same address and agent already sent a beacon. A viewer counts
while it was heard from in the last ACTIVE_SECONDS.

Behind a shared cache only the beacons reach obrady: players without one (VLC) are then counted
only when their requests miss the cache. The viewers' gateway (another process) writes its
counts to `live/<chamber>.viewers.json` for the control room and /metrics.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

from aiohttp import web

ACTIVE_SECONDS = 15.0
VIEWER_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
# Above this many distinct clients per chamber the oldest are forgotten (a flood of made-up ids
# cannot grow memory without bound).
MAX_TRACKED = 200_000


def client_of(request: web.Request) -> tuple[str, str]:
    """(address, user agent) of the client; behind a proxy on this machine, the address it
    forwarded."""
    address = request.remote or "?"
    forwarded = request.headers.get("X-Forwarded-For")
    if forwarded and address in ("127.0.0.1", "::1"):
        address = forwarded.split(",")[0].strip()
    return address, request.headers.get("User-Agent", "")[:200]


class ViewerCounter:
    """Distinct live viewers per chamber over the last ACTIVE_SECONDS."""

    def __init__(self) -> None:
        self._beacons: dict[str, dict[str, tuple[float, tuple[str, str]]]] = {}
        self._clients: dict[str, dict[tuple[str, str], float]] = {}

    def beacon(self, chamber: str, viewer_id: str, client: tuple[str, str]) -> None:
        """A web player said it is playing."""
        seen = self._beacons.setdefault(chamber, {})
        seen.pop(viewer_id, None)
        seen[viewer_id] = (time.monotonic(), client)
        _bound(seen)

    def request(self, chamber: str, client: tuple[str, str]) -> None:
        """A client fetched something of the live stream."""
        seen = self._clients.setdefault(chamber, {})
        seen.pop(client, None)
        seen[client] = time.monotonic()
        _bound(seen)

    def count(self, chamber: str) -> int:
        """Players of the chamber's live stream now."""
        horizon = time.monotonic() - ACTIVE_SECONDS
        beacons = self._beacons.get(chamber, {})
        for viewer in [k for k, (at, _) in beacons.items() if at < horizon]:
            del beacons[viewer]
        clients = self._clients.get(chamber, {})
        for client in [k for k, at in clients.items() if at < horizon]:
            del clients[client]
        web_players = {client for _, client in beacons.values()}
        others = [c for c in clients if c not in web_players]
        return len(beacons) + len(others)

    def counts(self, chambers: list[str]) -> dict[str, int]:
        """Every chamber's count."""
        return {chamber: self.count(chamber) for chamber in chambers}


def _bound(seen: dict[Any, Any]) -> None:
    while len(seen) > MAX_TRACKED:
        del seen[next(iter(seen))]


def counts_file(data_path: Path) -> Path:
    """Where the gateway leaves its counts for the capture process."""
    return data_path / "live" / "viewers.json"


def write_counts(data_path: Path, counts: dict[str, int]) -> None:
    """Publish the gateway's counts (atomically)."""
    path = counts_file(data_path)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"at": time.time(), "viewers": counts}), "utf-8")
    os.replace(tmp, path)


def read_counts(data_path: Path, max_age_seconds: float = 10.0) -> dict[str, int]:
    """The gateway's counts, if it wrote them recently (a dead gateway has no viewers)."""
    try:
        data = json.loads(counts_file(data_path).read_text("utf-8"))
        if time.time() - float(data["at"]) > max_age_seconds:
            return {}
        return {str(k): int(v) for k, v in data["viewers"].items()}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def live_viewers(app: web.Application, chambers: list[str]) -> dict[str, int]:
    """Viewers per chamber: those of this process plus those of the gateway process."""
    from streaming.keys import SETTINGS, VIEWERS  # keys imports this module

    own = app[VIEWERS].counts(chambers)
    gateway = read_counts(app[SETTINGS].data_path)
    return {chamber: own[chamber] + gateway.get(chamber, 0) for chamber in chambers}
