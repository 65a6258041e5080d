"""The shipped nginx configuration (config/nginx.conf) in front of obrady: playlists and
segments are cached as obrady's headers say, identical requests collapse into one, and the API
passes through uncached."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from conftest import SYNTHETIC_SOURCE, free_port, start_service, stop_service, wait_for
from servers import client_tls, start_nginx, terminate

from config.settings import Settings

HINT = re.compile(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="p/(\d+)\.(\d+)\.ts"')


async def test_shipped_nginx_config_caches_and_collapses(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(SYNTHETIC_SOURCE)
    viewers = free_port()
    live = settings.live.model_copy(update={"gateway_port": viewers})
    settings = settings.model_copy(update={"live": live})
    service = await start_service(settings)
    port = free_port()
    nginx = await start_nginx(tmp_path, port, settings.server.port, viewers)
    base = f"https://127.0.0.1:{port}"  # as shipped: https only (tests/config/test_tls.py)
    http = aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=20), connector=aiohttp.TCPConnector(ssl=client_tls())
    )
    try:

        async def get(path: str) -> tuple[int, str, dict[str, str]]:
            async with http.get(base + path) as resp:
                return resp.status, await resp.text(errors="replace"), dict(resp.headers)

        async def up() -> bool:
            with contextlib.suppress(aiohttp.ClientError):
                status, _, _ = await get("/live/index.m3u8")
                return status == 404  # nginx and the gateway answer; nothing live yet
            return False

        await wait_for(up, 30, "nginx and the gateway")
        await service.begin()

        async def playlist() -> str | None:
            status, text, _ = await get("/live/index.m3u8")
            return text if status == 200 and text.count(".ts") >= 3 else None

        text = await wait_for(playlist, 30, "the live playlist through nginx")
        status, _, first = await get("/live/index.m3u8")
        assert status == 200 and first["Cache-Control"] == "public, max-age=1"
        assert first["X-Cache-Status"] in ("HIT", "UPDATING", "STALE", "MISS", "EXPIRED")

        # 50 viewers ask for the same segment at once: obrady is asked once.
        uri = [line for line in text.splitlines() if line.endswith(".ts")][-1]
        path = "/live/" + uri
        results = await asyncio.gather(*(get(path) for _ in range(50)))
        assert all(status == 200 for status, _, _ in results)
        caches = [headers["X-Cache-Status"] for _, _, headers in results]
        assert caches.count("MISS") == 1, caches
        assert results[0][2]["Cache-Control"] == "public, max-age=600"
        _, _, again = await get(path)
        assert again["X-Cache-Status"] == "HIT"

        # Low-Latency viewers behind nginx: blocking reloads and hinted parts collapse too, so
        # the requests reaching obrady stay flat as the viewers grow tenfold.
        few = await _ll_viewers(get, 4, 4.0, tmp_path / "access.log")
        many = await _ll_viewers(get, 40, 4.0, tmp_path / "access.log")
        assert few["served"] > 0 and many["served"] > 8 * few["served"], (few, many)
        assert many["upstream"] <= 1.5 * few["upstream"] + 4, (few, many)

        # The API passes through, uncached.
        async with http.get(base + "/api/v1/sessions") as resp:
            assert resp.status == 200 and "X-Cache-Status" not in resp.headers
            assert (await resp.json())["sessions"][0]["state"] == "live"
        async with http.get(base + "/metrics") as resp:
            assert resp.status == 200  # from loopback only
        # A resident's download link reaches the control port, which makes the MP4s (the
        # gateway has no such route): while the session runs it says when to come back.
        sid = (await (await http.get(base + "/api/v1/sessions")).json())["sessions"][0]["id"]
        async with http.get(base + f"/sessions/{sid}/recording.mp4") as resp:
            assert resp.status == 409 and "download it after the session ends" in (
                await resp.text()
            )
            assert "X-Cache-Status" not in resp.headers
        # The live page's state comes from the gateway, through the cache.
        answers = await asyncio.gather(*(get("/api/v1/chambers/sala/now") for _ in range(20)))
        assert all(status == 200 and '"state": "live"' in body for status, body, _ in answers)
        assert [h["X-Cache-Status"] for _, _, h in answers].count("MISS") <= 1
        # The console is the control port's (the gateway has none), never cached; a signed-in
        # browser's requests bypass the cache.
        async with http.get(base + "/console", allow_redirects=False) as resp:
            assert resp.status == 303 and resp.headers["Location"].startswith("/login")
            assert "X-Cache-Status" not in resp.headers
        async with http.get(base + "/login") as resp:
            assert resp.status == 200 and "csrf_token" in await resp.text()
        async with http.get(
            base + "/live/index.m3u8", headers={"Cookie": "obrady_login=x"}
        ) as resp:
            assert resp.status == 200 and resp.headers["X-Cache-Status"] == "BYPASS"
    finally:
        await http.close()
        await stop_service(service)
        await terminate(nginx)


async def _ll_viewers(
    get: Callable[[str], Awaitable[tuple[int, str, dict[str, str]]]],
    viewers: int,
    seconds: float,
    log: Path,
) -> dict[str, int]:
    """Run LL-HLS viewers (blocking reload for the hinted part, then the part) through nginx;
    count what they were served and how many requests nginx passed to obrady meanwhile."""
    before = _upstream_requests(log)
    deadline = asyncio.get_running_loop().time() + seconds
    served = 0

    async def viewer() -> None:
        nonlocal served
        status, text, _ = await get("/live/sala/index.m3u8")
        while asyncio.get_running_loop().time() < deadline:
            hint = HINT.search(text)
            assert status == 200 and hint is not None, (status, text)
            msn, part = hint[1], hint[2]
            status, text, _ = await get(f"/live/sala/index.m3u8?_HLS_msn={msn}&_HLS_part={part}")
            part_status, _, _ = await get(f"/live/sala/p/{msn}.{part}.ts")
            assert part_status == 200
            served += 1

    await asyncio.gather(*(viewer() for _ in range(viewers)))
    await asyncio.sleep(0.5)  # nginx writes its log line when the response ends
    return {"served": served, "upstream": _upstream_requests(log) - before}


def _upstream_requests(log: Path) -> int:
    """Requests nginx passed to obrady (a cache hit or a collapsed wait has no upstream)."""
    lines = log.read_text().splitlines() if log.exists() else []
    return sum(1 for line in lines if not line.startswith("-"))
