"""Low-Latency HLS on the live URL: parts cut from the recorder's own files, blocking reloads,
preload hints and delta updates, and prompt refusals of hostile requests."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

from conftest import Service, wait_for
from helpers import ts_file

from streaming.edge.llhls import EdgeSnapshot, LiveSegment, Part, PartCutter, render_playlist

PART = re.compile(r'#EXT-X-PART:DURATION=([\d.]+),URI="([^"]+)"(,INDEPENDENT=YES)?')
HINT = re.compile(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="p/(\d+)\.(\d+)\.ts"')


def test_parts_tile_the_file_at_frame_boundaries(tmp_path: Path) -> None:
    path = tmp_path / "seg.ts"
    ts_file(path)
    data = path.read_bytes()
    cutter = PartCutter(0.2)
    # Fed in uneven pieces, as a growing file is read.
    for start in range(0, len(data), 7001):
        chunk = data[cutter.offset : start + 7001]
        cutter.feed(chunk)
    last = cutter.finish(len(data), 2.0)
    assert last is not None
    parts = cutter.parts
    # The parts tile the whole file, in order, without gaps or overlaps.
    assert parts[0].start == 0 and parts[-1].end == len(data)
    assert all(a.end == b.start for a, b in zip(parts, parts[1:], strict=False))
    # 2 s at 25 fps in parts of 5 frames (0.2 s): ten parts, none longer than the target.
    assert len(parts) == 10, parts
    assert all(abs(p.duration - 0.2) < 1e-6 for p in parts[:-1]), parts
    assert abs(sum(p.duration for p in parts) - 2.0) < 1e-6
    # Only the first part begins with the keyframe.
    assert [p.independent for p in parts] == [True] + [False] * 9
    # Each later part begins exactly where a video frame's first packet is.
    for part in parts[1:]:
        packet = data[part.start : part.start + 188]
        assert packet[0] == 0x47 and packet[1] & 0x40  # payload unit start
    # Decoding the parts one after another gives the whole file's frames.
    joined = b"".join(data[p.start : p.end] for p in parts)
    assert joined == data


def _segment(msn: int, duration: float, *, disc: bool = False, parts: int = 0) -> LiveSegment:
    return LiveSegment(
        msn=msn,
        path=f"media/x/{msn}.ts",
        camera="main",
        run="main/run-0001",
        started_at="2026-11-26T10:00:00+00:00",
        discontinuity=disc,
        parts=[Part(i * 10, i * 10 + 10, 0.2, i == 0) for i in range(parts)],
        duration=duration,
        end=None if parts and duration == 0 else 100,
    )


def test_delta_update_skips_only_what_it_may() -> None:
    segments = tuple(_segment(40 + i, 2.0) for i in range(15))
    snap = EdgeSnapshot(7, segments, 3, 0.2, 2)
    full = render_playlist(snap, prefix="")
    delta = render_playlist(snap, prefix="", skip=True)
    assert "CAN-SKIP-UNTIL=12.0" in full and "#EXT-X-SKIP" not in full
    # 30 s listed, at least the last 12 s kept: 9 of 15 segments skipped.
    assert "#EXT-X-SKIP:SKIPPED-SEGMENTS=9\n" in delta
    assert delta.count("#EXTINF") == 6 and full.count("#EXTINF") == 15
    assert "#EXT-X-MEDIA-SEQUENCE:40\n" in delta
    # A discontinuity is never skipped over: its tag would be lost.
    with_break = list(segments)
    with_break[5] = _segment(45, 2.0, disc=True)
    delta = render_playlist(EdgeSnapshot(8, tuple(with_break), 3, 0.2, 2), prefix="", skip=True)
    assert "#EXT-X-SKIP:SKIPPED-SEGMENTS=5\n" in delta
    assert delta.count("#EXT-X-DISCONTINUITY\n") == 1


async def _playlist(service: Service, query: str = "") -> tuple[int, str, float]:
    began = time.monotonic()
    async with service.http.get(f"{service.base}/live/sala/index.m3u8{query}") as resp:
        return resp.status, await resp.text(), time.monotonic() - began


async def test_blocking_reload_preload_hint_and_parts(service: Service) -> None:
    await service.begin()

    async def with_parts() -> str | None:
        status, text, _ = await _playlist(service)
        return text if status == 200 and text.count("#EXTINF") >= 2 else None

    text = await wait_for(with_parts, 30, "a live playlist with complete segments")
    assert "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.600" in text
    assert "#EXT-X-PART-INF:PART-TARGET=0.200" in text
    parts = PART.findall(text)
    assert parts and all(float(d) <= 0.2 + 1e-6 or ind for d, _, ind in parts), parts
    hint = HINT.search(text)
    assert hint is not None
    msn, number = int(hint[1]), int(hint[2])

    # The hinted part is held until it exists, then served; so is the playlist that has it.
    began = time.monotonic()
    async with service.http.get(f"{service.base}/live/sala/p/{msn}.{number}.ts") as resp:
        body = await resp.read()
        assert resp.status == 200 and resp.headers["Content-Type"] == "video/mp2t"
        assert body[0] == 0x47 and len(body) % 188 == 0
    assert time.monotonic() - began < 1.5
    status, blocked, waited = await _playlist(service, f"?_HLS_msn={msn}&_HLS_part={number}")
    assert status == 200 and f"p/{msn}.{number}.ts" in blocked and waited < 1.5

    # A complete segment is exactly its parts, one after another.
    async def complete() -> str | None:
        status, text, _ = await _playlist(service, f"?_HLS_msn={msn}")
        return text if status == 200 else None

    text = await wait_for(complete, 10, f"segment {msn} to complete")
    uris = [u for _, u, _ in PART.findall(text) if u.startswith(f"p/{msn}.")]
    assert len(uris) >= 4
    joined = b""
    for uri in uris:
        async with service.http.get(f"{service.base}/live/sala/{uri}") as resp:
            assert resp.headers["Cache-Control"] == "public, max-age=600"
            joined += await resp.read()
    [whole] = [x for x in text.splitlines() if x.startswith(f"s/{msn}-")]
    async with service.http.get(f"{service.base}/live/sala/{whole}") as resp:
        assert await resp.read() == joined


async def test_hostile_requests_get_a_prompt_4xx(service: Service) -> None:
    # Before anything is live: a plain reload is a 404 that says why.
    status, text, _ = await _playlist(service)
    assert status == 404 and "nothing has been transmitted" in text
    await service.begin()

    async def live() -> str | None:
        status, text, _ = await _playlist(service)
        return text if status == 200 and "#EXTINF" in text else None

    text = await wait_for(live, 30, "the live playlist")
    hint = HINT.search(text)
    assert hint is not None
    last = int(hint[1])
    bad_queries = [
        f"?_HLS_msn={last + 1000}",  # far in the future
        "?_HLS_msn=-1",
        "?_HLS_msn=1e9",
        "?_HLS_msn=99999999999999999999999",
        "?_HLS_part=1",  # a part without a segment
        f"?_HLS_msn={last}&_HLS_part=-2",
        f"?_HLS_msn={last}&_HLS_part=5000",
        "?_HLS_skip=NO",
    ]
    for query in bad_queries:
        status, body, took = await _playlist(service, query)
        assert status == 400 and took < 0.5, (query, status, body, took)
        assert "error" in body
    bad_paths = [
        "/live/sala/p/..%2F..%2Fobrady.sqlite3",
        "/live/sala/p/../../obrady.sqlite3",
        "/live/sala/s/..%2Fobrady.sqlite3",
        f"/live/sala/p/{last + 50}.0.ts",  # not in the window, not next: no wait
        "/live/sala/p/0.99999.ts",
        "/live/sala/s/1-unknowncamera.ts",
        "/live/sala/high.m3u8",  # an unknown rendition
        "/live/kuchnia/index.m3u8",  # an unknown chamber
        "/live/kuchnia/p/1.0.ts",
    ]
    for path in bad_paths:
        began = time.monotonic()
        async with service.http.get(service.base + path) as resp:
            assert resp.status == 404, (path, resp.status)
        assert time.monotonic() - began < 0.5, path

    # Many blocking reloads at once never hold a worker: other requests are answered at once.
    waiting = [
        asyncio.create_task(_playlist(service, f"?_HLS_msn={last + 2}&_HLS_part=3"))
        for _ in range(50)
    ]
    began = time.monotonic()
    status, _, _ = await _playlist(service)
    assert status == 200 and time.monotonic() - began < 0.5
    results = await asyncio.gather(*waiting)
    assert all(status == 200 for status, _, _ in results)


async def test_a_blocking_reload_is_bounded(service: Service) -> None:
    created = await service.begin()

    async def live() -> str | None:
        status, text, _ = await _playlist(service)
        return text if status == 200 and "#EXTINF" in text else None

    await wait_for(live, 30, "the live playlist")
    await service.post_json(f"/api/v1/sessions/{created['id']}/stop")
    _, text, _ = await _playlist(service)
    hint = HINT.search(text)
    assert hint is not None
    # Nothing more will come: the server answers 503 after 3 target durations (1 s here).
    status, body, took = await _playlist(service, f"?_HLS_msn={int(hint[1]) + 1}")
    assert status == 503 and 2.5 < took < 4.5, (status, took)
    assert "retry" in body
    began = time.monotonic()
    async with service.http.get(f"{service.base}/live/sala/p/{hint[1]}.{hint[2]}.ts") as resp:
        assert resp.status == 503
    assert 2.5 < time.monotonic() - began < 4.5


async def test_viewers_are_players_not_requests(service: Service) -> None:
    await service.begin()

    async def live() -> str | None:
        status, text, _ = await _playlist(service)
        return text if status == 200 and "#EXTINF" in text else None

    await wait_for(live, 30, "the live playlist")

    async def fetch(agent: str) -> None:
        url = f"{service.base}/live/sala/index.m3u8"
        async with service.http.get(url, headers={"User-Agent": agent}) as resp:
            assert resp.status == 200

    async def beacon(viewer: str, agent: str, status: int = 204) -> None:
        url = f"{service.base}/live/sala/viewers"
        headers = {"User-Agent": agent}
        async with service.http.post(url, json={"id": viewer}, headers=headers) as resp:
            assert resp.status == status, await resp.text()

    # Three players making many requests each, two web players on one machine and browser,
    # and a web player that also fetched the playlist itself: six players.
    for _ in range(10):
        await asyncio.gather(fetch("vlc/A"), fetch("tv/B"), fetch("box/C"), fetch("web/E"))
    await beacon("viewer-0001", "web/D")
    await beacon("viewer-0002", "web/D")
    await beacon("viewer-0003", "web/E")
    await beacon("viewer-0003", "web/E")  # the same player again
    status = await service.status()
    # + the test's own client (aiohttp), which fetched the playlist above.
    assert status["viewers"] == {"sala": 7}, status["viewers"]
    metrics = await service.get_text("/metrics")
    assert 'obrady_live_viewers{chamber="sala"} 7' in metrics
    # A beacon that is not one is refused and counts nothing.
    await beacon("x", "web/F", status=400)
    await beacon("../../etc", "web/F", status=400)
    async with service.http.post(f"{service.base}/live/kuchnia/viewers", json={}) as resp:
        assert resp.status == 404
    assert (await service.status())["viewers"] == {"sala": 7}
