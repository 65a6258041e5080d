"""Through the shipped nginx (config/nginx.conf) and Varnish (config/varnish.vcl): anonymous
GET /api/v1/status is the public facts only; /metrics is refused to any address but the local
one; and a 503 with Retry-After from the control port (the archive's search busy) reaches the
client unchanged and is never cached: once the search is free, the next request is answered."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import free_port, hold_searches, start_service, stop_service, wait_for
from servers import client_tls, start_nginx, start_varnish, terminate

from archive import index as index_module
from archive import search as search_module
from archive.search import Dictionaries
from config.settings import Settings

# Digits only: a search that needs no dictionary (they are not loaded in this test).
SEARCH = "/api/v1/search?q=2027"


async def answer(
    http: aiohttp.ClientSession, url: str, local: str = "127.0.0.1"
) -> tuple[int, bytes, dict[str, str]]:
    """GET url from the local address `local`: status, body, headers."""
    connector = aiohttp.TCPConnector(local_addr=(local, 0), force_close=True, ssl=client_tls())
    async with (
        aiohttp.ClientSession(connector=connector) as client,
        client.get(url, timeout=aiohttp.ClientTimeout(total=10)) as resp,
    ):
        return resp.status, await resp.read(), dict(resp.headers)


async def test_status_metrics_and_a_busy_503_through_the_shipped_proxies(
    make_settings: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One search at a time, and a waiting one is refused after 0.3 s (Busy: 503, Retry-After).
    monkeypatch.setattr(index_module, "SEARCHES", 1)
    monkeypatch.setattr(index_module, "SEARCH_WAIT_SECONDS", 0.3)
    monkeypatch.setattr(search_module, "DICTIONARIES", Dictionaries(lambda: None))
    settings = make_settings()
    viewers = free_port()
    live = settings.live.model_copy(update={"gateway_port": viewers})
    settings = settings.model_copy(update={"live": live})
    nginx_port, varnish_port = free_port(), free_port()
    control = settings.server.port
    service, nginx, varnish = await asyncio.gather(
        start_service(settings),
        start_nginx(tmp_path / "nginx", nginx_port, control, viewers),
        start_varnish(tmp_path, varnish_port, control, viewers),
    )
    proxies = {
        "nginx": f"https://127.0.0.1:{nginx_port}",  # as shipped: https only
        "varnish": f"http://127.0.0.1:{varnish_port}",
    }
    release = threading.Event()
    held: asyncio.Future[Any] | None = None
    http = service.http
    try:

        async def up() -> bool:
            for base in proxies.values():
                with contextlib.suppress(aiohttp.ClientError):
                    if (await answer(http, base + "/api/v1/status"))[0] != 200:
                        return False
                    continue
                return False
            return True

        await wait_for(up, 20, "nginx and Varnish in front of obrady")
        public = {"service", "version", "chambers"}
        for name, base in proxies.items():
            status, body, _ = await answer(http, base + "/api/v1/status")
            assert status == 200 and set(json.loads(body)) == public, (name, body)
            # /metrics: for the machine's own monitoring only.
            assert (await answer(http, base + "/metrics"))[0] == 200, name
            status, body, _ = await answer(http, base + "/metrics", local="127.0.0.2")
            assert status == 403 and b"obrady_" not in body, (name, status, body[:200])

        # The only search slot is taken (a search held in the archive's reader) ...
        entered = hold_searches(monkeypatch, release)
        held = asyncio.ensure_future(answer(http, service.base + SEARCH))
        assert await asyncio.to_thread(entered.wait, 5)
        # ... so the control port answers 503 with Retry-After, and so does each proxy, twice
        # (the second is not a copy kept from the first), with the same words.
        status, direct, headers = await answer(http, service.base + SEARCH)
        assert status == 503 and headers["Retry-After"] == "1", (status, direct)
        error = json.loads(direct)["error"]
        # The search page says so too, and keeps the answer out of shared caches (its
        # proxies' path leads to the gateway, another process: asked here directly).
        status, page, headers = await answer(http, service.base + "/search?q=2027")
        assert status == 503 and headers["Retry-After"] == "1", (status, page[:300])
        assert headers["Cache-Control"] == "no-store", headers
        assert "search is busy" in error and "try again in 1 s" in error
        for name, base in proxies.items():
            for _ in range(2):
                status, body, headers = await answer(http, base + SEARCH)
                assert status == 503 and headers["Retry-After"] == "1", (name, status, body)
                assert headers["Content-Type"].startswith("application/json"), (name, headers)
                assert json.loads(body) == {"error": error}, (name, body)
                assert headers.get("X-Cache-Status") is None, (name, headers)  # nginx: no cache
                assert headers.get("X-Cache") in (None, "PASS"), (name, headers)  # Varnish
        release.set()
        assert (await held)[0] == 200
        # Free again: each proxy asks obrady afresh, and the search is answered.
        for name, base in proxies.items():
            status, body, _ = await answer(http, base + SEARCH)
            assert status == 200 and json.loads(body)["results"] == [], (name, status, body)
    finally:
        release.set()
        if held is not None:
            with contextlib.suppress(Exception):
                await held
        await stop_service(service)
        await terminate(nginx)
        await terminate(varnish)
