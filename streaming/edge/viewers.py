"""Honest live viewer counts: players, not requests.

An LL-HLS player makes several requests a second; a viewer is counted once however many it
makes. Web players (our pages) announce themselves every few seconds with a random id (a beacon
that no cache answers); any other client (VLC, a TV app) is known by its address and user agent,
and is not counted again when the same address and agent already sent a beacon. A viewer counts
while it was heard from in the last ACTIVE_SECONDS.

Behind a shared cache only the beacons reach obrady: players without one (VLC) are then counted
only when their requests miss the cache. The viewers' gateway (another process) writes its
counts to `live/viewers-<n>.json` for the control room and /metrics.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import Any

ACTIVE_SECONDS = 15.0
# The user agent of obrady's own off-air monitor (streaming/services/offair.py).
OWN_MONITOR = "obrady-offair"
VIEWER_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
# Above this many distinct clients per chamber the oldest are forgotten (a flood of made-up ids
# cannot grow memory without bound).
MAX_TRACKED = 200_000
# A gateway's counts older than this are not counted (it stopped).
STALE_SECONDS = 10.0


def client_key(address: str | None, forwarded: str | None, agent: str | None) -> str:
    """client_of from the connection's address and the request's X-Forwarded-For and
    User-Agent headers (None when absent); empty for obrady's own off-air monitor."""
    address = address or "?"
    if forwarded and address in ("127.0.0.1", "::1"):
        address = forwarded.split(",")[0].strip()
    agent = (agent or "")[:200]
    if agent.startswith(OWN_MONITOR):
        return ""
    # A header that is not UTF-8 reaches here with surrogate escapes (as aiohttp decodes it).
    key = f"{address}\n{agent}".encode("utf-8", "surrogateescape")
    return hashlib.sha256(key).hexdigest()[:20]


class ViewerCounter:
    """Distinct live viewers per chamber over the last ACTIVE_SECONDS."""

    def __init__(self) -> None:
        self._beacons: dict[str, dict[str, tuple[float, str]]] = {}
        self._clients: dict[str, dict[str, float]] = {}

    def beacon(self, chamber: str, viewer_id: str, client: str) -> None:
        """A web player said it is playing."""
        seen = self._beacons.setdefault(chamber, {})
        seen.pop(viewer_id, None)
        seen[viewer_id] = (time.monotonic(), client)
        _bound(seen)

    def request(self, chamber: str, client: str) -> None:
        """A client fetched something of the live stream (obrady's own off-air monitor, whose
        key is empty, is not a viewer)."""
        if not client:
            return
        seen = self._clients.setdefault(chamber, {})
        seen.pop(client, None)
        seen[client] = time.monotonic()
        _bound(seen)

    def active(self, chamber: str) -> tuple[dict[str, str], set[str]]:
        """The web players (id -> client) and clients heard from lately."""
        horizon = time.monotonic() - ACTIVE_SECONDS
        beacons = self._beacons.get(chamber, {})
        for viewer in [k for k, (at, _) in beacons.items() if at < horizon]:
            del beacons[viewer]
        clients = self._clients.get(chamber, {})
        for client in [k for k, at in clients.items() if at < horizon]:
            del clients[client]
        return {k: c for k, (_, c) in beacons.items()}, set(clients)

    def count(self, chamber: str) -> int:
        """Players of the chamber's live stream now."""
        return count_viewers(*self.active(chamber))


def count_viewers(beacons: dict[str, str], clients: set[str]) -> int:
    """Web players, plus the other clients whose address and agent sent no beacon."""
    return len(beacons) + len(clients - set(beacons.values()))


def _bound(seen: dict[Any, Any]) -> None:
    while len(seen) > MAX_TRACKED:
        del seen[next(iter(seen))]


def counts_file(data_path: Path, worker: int) -> Path:
    """Where a gateway process leaves what it saw for the capture process."""
    return data_path / "live" / f"viewers-{worker}.json"


def write_counts(data_path: Path, worker: int, counter: ViewerCounter, chambers: list[str]) -> None:
    """Publish one gateway process's active viewers (atomically)."""
    seen = {}
    for chamber in chambers:
        beacons, clients = counter.active(chamber)
        seen[chamber] = {"beacons": beacons, "clients": sorted(clients)}
    path = counts_file(data_path, worker)
    # The gateway may start before the control service has made the live folder (they are
    # separate services in the Debian package).
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"at": time.time(), "chambers": seen}), "utf-8")
    os.replace(tmp, path)
