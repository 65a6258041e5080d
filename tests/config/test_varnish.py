"""The shipped Varnish configuration (config/varnish.vcl) in front of obrady: playlists and parts
are cached as obrady's headers say, identical Low-Latency requests collapse into one and are all
answered as soon as the part exists, and the API and the viewer beacon pass through uncached."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
from conftest import SYNTHETIC_SOURCE, free_port, start_service, stop_service, wait_for
from servers import start_varnish, terminate

from config.settings import Settings

HINT = re.compile(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="p/(\d+)\.(\d+)\.ts"')


async def backend_requests(workdir: Path) -> int:
    """MAIN.backend_req: the requests Varnish has sent to obrady so far."""
    proc = await asyncio.create_subprocess_exec(
        "varnishstat", "-n", str(workdir), "-1", "-j", "-f", "MAIN.backend_req",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 10)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    doc = json.loads(out)
    counters = doc.get("counters", doc)  # varnishstat -j nests the counters since 6.5
    return int(counters["MAIN.backend_req"]["value"])


async def test_shipped_varnish_config_caches_and_coalesces(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(SYNTHETIC_SOURCE)
    viewers = free_port()
    live = settings.live.model_copy(update={"gateway_port": viewers})
    settings = settings.model_copy(update={"live": live})
    service = await start_service(settings)
    port = free_port()
    work = tmp_path / "varnish"
    varnish = await start_varnish(tmp_path, port, settings.server.port, viewers)
    base = f"http://127.0.0.1:{port}"
    gateway = f"http://127.0.0.1:{viewers}"
    http = aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=20), connector=aiohttp.TCPConnector(limit=0)
    )
    try:

        async def get(path: str, at: str = base) -> tuple[int, str, dict[str, str]]:
            async with http.get(at + path) as resp:
                return resp.status, await resp.text(errors="replace"), dict(resp.headers)

        async def up() -> bool:
            assert varnish.returncode is None, (tmp_path / "varnishd.log").read_text()
            with contextlib.suppress(aiohttp.ClientError):
                status, _, headers = await get("/live/index.m3u8")
                # Varnish and the gateway answer; nothing live yet.
                return status == 404 and "X-Varnish" in headers
            return False

        await wait_for(up, 30, "varnishd and the gateway")
        await service.begin()

        # The 404 from before the session is kept a second at most: once the gateway has the
        # playlist, so does Varnish shortly after.
        async def direct_playlist() -> bool:
            status, text, _ = await get("/live/index.m3u8", gateway)
            return status == 200 and text.count(".ts") >= 3

        await wait_for(direct_playlist, 30, "the live playlist at the gateway")
        t0 = time.monotonic()

        async def playlist() -> str | None:
            status, text, _ = await get("/live/index.m3u8")
            return text if status == 200 else None

        await wait_for(playlist, 5, "the live playlist through Varnish", 0.05)
        assert time.monotonic() - t0 < 1.5

        async def segments() -> str | None:
            text = await playlist()
            return text if text is not None and text.count(".ts\n") >= 3 else None

        text = await wait_for(segments, 30, "3 live segments through Varnish")

        # (a) The live playlist: obrady's Cache-Control, cached for its second.
        status, _, first = await get("/live/index.m3u8")
        assert status == 200 and first["Cache-Control"] == "public, max-age=1"
        assert first["X-Cache"] in ("HIT", "MISS")
        assert "X-Varnish" in first and "Age" in first

        # 50 viewers ask for the same segment at once: obrady is asked once.
        uri = [line for line in text.splitlines() if line.endswith(".ts")][-1]
        path = "/live/" + uri
        before = await backend_requests(work)
        results = await asyncio.gather(*(get(path) for _ in range(50)))
        assert all(status == 200 for status, _, _ in results)
        caches = [headers["X-Cache"] for _, _, headers in results]
        assert caches.count("MISS") == 1, caches
        assert await backend_requests(work) - before == 1
        assert results[0][2]["Cache-Control"] == "public, max-age=600"
        _, body, again = await get(path)
        assert again["X-Cache"] == "HIT" and len(again["X-Varnish"].split()) == 2
        assert body == results[0][1]

        # (b) Low-Latency: 50 viewers block on the playlist that will list the hinted part and
        # 50 ask for the part itself, all before it exists. Varnish asks obrady once for each
        # and answers every viewer as soon as the part is published.
        status, text, _ = await get("/live/sala/index.m3u8")
        hint = HINT.search(text)
        assert status == 200 and hint is not None, text
        msn, number = int(hint[1]), int(hint[2])
        reload = f"/live/sala/index.m3u8?_HLS_msn={msn}&_HLS_part={number}"
        part = f"/live/sala/p/{msn}.{number}.ts"
        edge = settings.data_path / "live" / "sala.json"
        before = await backend_requests(work)

        async def published() -> float:
            """When the capture process wrote the part into the live window file."""
            while True:
                with contextlib.suppress(OSError, ValueError):
                    for segment in json.loads(edge.read_text())["segments"]:
                        if segment["msn"] == msn and len(segment["parts"]) > number:
                            return time.monotonic()
                await asyncio.sleep(0.005)

        async def timed(path: str, at: str = base) -> tuple[int, str, float]:
            status, _, headers = await get(path, at)
            return status, headers.get("X-Cache", "direct"), time.monotonic()

        watch = asyncio.create_task(asyncio.wait_for(published(), 10))
        answers = await asyncio.gather(
            timed(reload, gateway),  # the gateway directly, for reference
            *(timed(reload) for _ in range(50)),
            *(timed(part) for _ in range(50)),
        )
        at = await watch
        direct, reloads, parts = answers[0], answers[1:51], answers[51:]
        assert all(status == 200 for status, _, _ in answers), answers
        assert [cache for _, cache, _ in reloads].count("MISS") == 1, reloads
        assert [cache for _, cache, _ in parts].count("MISS") == 1, parts
        assert await backend_requests(work) - before == 2  # one reload, one part
        delays = sorted(done - at for _, _, done in answers[1:])
        assert delays[-1] < 0.3, (f"direct {direct[2] - at:.3f} s", delays)

        # (c) The API and the viewer beacon pass through, uncached.
        before = await backend_requests(work)
        for _ in range(2):
            async with http.get(base + "/api/v1/sessions") as resp:
                assert resp.status == 200 and resp.headers["X-Cache"] == "PASS"
                assert (await resp.json())["sessions"][0]["state"] == "live"
        async with http.post(base + "/live/sala/viewers", json={"id": "varnish-test-1"}) as resp:
            assert resp.status == 204 and resp.headers["X-Cache"] == "PASS"
        assert await backend_requests(work) - before == 3
        async with http.get(base + "/metrics") as resp:
            assert resp.status == 200 and resp.headers["X-Cache"] == "PASS"  # from loopback
        # A resident's download link reaches the control port, which makes the MP4s (the
        # gateway has no such route): while the session runs it says when to come back.
        sid = (await (await http.get(base + "/api/v1/sessions")).json())["sessions"][0]["id"]
        async with http.get(base + f"/sessions/{sid}/recording.mp4") as resp:
            assert resp.status == 409 and resp.headers["X-Cache"] == "PASS"
            assert "download it after the session ends" in await resp.text()

        # (d) The live page's state comes from the gateway, through the cache; the console is
        # the control port's, never cached; a signed-in browser's requests bypass the cache.
        answers = await asyncio.gather(*(get("/api/v1/chambers/sala/now") for _ in range(20)))
        assert all(status == 200 and '"state": "live"' in body for status, body, _ in answers)
        assert [h["X-Cache"] for _, _, h in answers].count("MISS") <= 1
        async with http.get(base + "/console", allow_redirects=False) as resp:
            assert resp.status == 303 and resp.headers["X-Cache"] == "PASS"
            assert resp.headers["Location"].startswith("/login")
        async with http.get(base + "/login") as resp:
            assert resp.status == 200 and "csrf_token" in await resp.text()
        login = {"Cookie": "a=1; obrady_login=x"}
        async with http.get(base + "/live/index.m3u8", headers=login) as resp:
            assert resp.status == 200 and resp.headers["X-Cache"] == "PASS"
    finally:
        await http.close()
        await stop_service(service)
        await terminate(varnish)
