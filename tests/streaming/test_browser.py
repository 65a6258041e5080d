"""The live URL in real players: hls.js in headless Chromium (Low-Latency HLS) and VLC."""

from __future__ import annotations

import time
from typing import Any

from browser import chromium
from conftest import Service, wait_for
from helpers import VlcPlayer

PLAYBACK = """() => {
  const v = document.getElementById('player');
  const hls = window.obradyHls;
  const parts = performance.getEntriesByType('resource').map(e => e.name);
  return {
    time: v.currentTime,
    paused: v.paused,
    ready: v.readyState,
    lowLatency: hls ? hls.lowLatencyMode : null,
    latency: hls ? hls.latency : null,
    playingDate: hls && hls.playingDate ? hls.playingDate.getTime() : null,
    now: Date.now(),
    parts: parts.filter(n => n.includes('/p/')).length,
    blocking: parts.filter(n => n.includes('_HLS_msn=')).length,
    dropped: v.getVideoPlaybackQuality().droppedVideoFrames,
    frames: v.getVideoPlaybackQuality().totalVideoFrames,
  };
}"""


async def test_hls_js_plays_the_live_url_in_low_latency_mode(service: Service) -> None:
    await service.begin()
    await wait_for(
        lambda: _has_parts(service), 30, "a live playlist with parts before the page opens"
    )
    async with chromium() as browser:
        page = await browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(service.base + "/live/sala", wait_until="load", timeout=30_000)

        async def advancing() -> dict[str, Any] | None:
            state: dict[str, Any] = await page.evaluate(PLAYBACK)
            return state if state["time"] > 3 and not state["paused"] else None

        first = await wait_for(advancing, 40, "hls.js to play the live URL")
        began = time.monotonic()
        await page.wait_for_timeout(4000)
        later: dict[str, Any] = await page.evaluate(PLAYBACK)
        elapsed = time.monotonic() - began
        assert errors == []
        assert later["lowLatency"] is True
        # It plays on at about real time, from parts and blocking reloads.
        assert later["time"] - first["time"] > 0.8 * elapsed, (first, later)
        assert later["parts"] > first["parts"] > 0, later
        assert later["blocking"] > 0, later
        # Close to the room: the frame shown is at most a few seconds behind its wall clock
        # (the exact figure comes from bench/glass.py; this only catches a player that fell
        # back to segment-only playback, which sits 3 segments behind).
        assert later["playingDate"] is not None
        behind = (later["now"] - later["playingDate"]) / 1000
        assert 0 < behind < 2.5, later
        await page.close()


async def _has_parts(service: Service) -> bool:
    text = await service.get_text("/live/sala/index.m3u8", status=None)
    return text.count("#EXT-X-PART:") >= 3


async def test_vlc_plays_the_same_live_url(service: Service) -> None:
    await service.begin()
    await wait_for(lambda: _has_parts(service), 30, "a live playlist with parts")
    player = VlcPlayer()
    try:
        player.play(service.base + "/live/sala/index.m3u8")
        await player.wait_playing_and_advancing(30)
    finally:
        player.close()
