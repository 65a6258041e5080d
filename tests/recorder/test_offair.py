"""The off-air monitor, watching real live HLS (ffmpeg on synthetic sources, served by aiohttp)
through real libvlc, names what a viewer would get: playing, frozen, black, silent, nothing."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.typedefs import Handler
from conftest import free_port, wait_for

from recorder.offair import OffAirMonitor

LIVELY = "testsrc2=size=320x180:rate=25"
# Colour bars: a genuinely still picture that is far from black.
STILL = "smptebars=size=320x180:rate=25"
BLACK = "color=c=black:size=320x180:rate=25"
TONE = "sine=frequency=440:sample_rate=48000"  # peaks near -18 dBFS
SILENCE = "anullsrc=channel_layout=stereo:sample_rate=48000"
PLAYLIST = "live.m3u8"
# Generous bounds for a busy 2-core machine; the defaults under test are 4 s.
DETECT_TIMEOUT = 25.0


def hls_argv(folder: Path, video: str, audio: str) -> list[str]:
    """ffmpeg making live HLS (1 s segments, a sliding window of 6) from two lavfi sources."""
    return [
        "ffmpeg",
        "-nostdin",
        "-hide_banner",
        "-v",
        "error",
        "-re",
        "-f",
        "lavfi",
        "-i",
        video,
        "-re",
        "-f",
        "lavfi",
        "-i",
        audio,
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-tune",
        "zerolatency",
        "-pix_fmt",
        "yuv420p",
        "-g",
        "25",
        "-c:a",
        "aac",
        "-b:a",
        "64k",
        "-f",
        "hls",
        "-hls_time",
        "1",
        "-hls_list_size",
        "6",
        # temp_file: a segment appears under its name only once complete.
        "-hls_flags",
        "delete_segments+temp_file",
        str(folder / PLAYLIST),
    ]


class LiveStream:
    """One test's public live stream: ffmpeg writing HLS into a folder that aiohttp serves."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.port = port
        self.url = f"http://127.0.0.1:{port}/{PLAYLIST}"
        self._ffmpeg: asyncio.subprocess.Process | None = None
        self._runner: web.AppRunner | None = None
        self._runs = 0
        self.user_agents: set[str] = set()

    async def serve(self) -> None:
        """Serve the folder over HTTP (a missing playlist is a 404, as on a real server),
        noting each request's User-Agent."""

        @web.middleware
        async def note_agent(request: web.Request, handler: Handler) -> web.StreamResponse:
            self.user_agents.add(request.headers.get("User-Agent", ""))
            return await handler(request)

        app = web.Application(middlewares=[note_agent])
        app.router.add_static("/", self.folder)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def unserve(self) -> None:
        """Take the HTTP server down (connections are refused until serve() again)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def start(self, video: str = LIVELY, audio: str = TONE) -> None:
        """Start ffmpeg on an empty folder and wait for its first playlist."""
        self._runs += 1
        log = self.folder.with_name(f"{self.folder.name}-ffmpeg-{self._runs}.log").open("wb")
        try:
            self._ffmpeg = await asyncio.create_subprocess_exec(
                *hls_argv(self.folder, video, audio),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )
        finally:
            log.close()

        async def playlist_ready() -> bool:
            return (self.folder / PLAYLIST).exists()

        await wait_for(playlist_ready, 20, "ffmpeg's first live playlist")

    async def kill(self) -> None:
        """ffmpeg dies at once: its last playlist (no end tag) and segments stay served, as
        when an encoder or origin hangs."""
        if self._ffmpeg is not None and self._ffmpeg.returncode is None:
            self._ffmpeg.kill()
            await self._ffmpeg.wait()

    async def stop(self, *, remove: bool = True) -> None:
        """Stop ffmpeg (one SIGINT, then SIGKILL) and, by default, remove what it wrote."""
        proc, self._ffmpeg = self._ffmpeg, None
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if remove:
            for path in self.folder.iterdir():
                path.unlink()


@pytest.fixture
async def new_stream(tmp_path: Path) -> AsyncIterator[Callable[[], Awaitable[LiveStream]]]:
    """Makes served, still empty live folders, each on its own port; stops them all after."""
    made: list[LiveStream] = []

    async def make() -> LiveStream:
        folder = tmp_path / f"live{len(made)}"
        folder.mkdir()
        live = LiveStream(folder, free_port())
        made.append(live)
        await live.serve()
        return live

    try:
        yield make
    finally:
        for live in made:
            await live.stop(remove=False)
            await live.unserve()


@pytest.fixture
async def stream(new_stream: Callable[[], Awaitable[LiveStream]]) -> LiveStream:
    """One served, still empty live folder on this test's own port."""
    return await new_stream()


@contextlib.asynccontextmanager
async def monitoring(url: str, **options: Any) -> AsyncIterator[OffAirMonitor]:
    """An OffAirMonitor running on url for the duration of the block."""
    monitor = OffAirMonitor(url, **options)
    task = asyncio.create_task(monitor.run())
    try:
        yield monitor
    finally:
        try:
            await asyncio.wait_for(monitor.stop(), 30)
        finally:
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def state_is(
    monitor: OffAirMonitor, state: str, problems: list[str] | None = None
) -> dict[str, Any]:
    """Wait until the monitor reports state (and exactly these problems, if given); returns
    that status."""

    async def probe() -> dict[str, Any] | None:
        status = monitor.status()
        if status["state"] != state:
            return None
        return status if problems is None or status["problems"] == problems else None

    return await wait_for(probe, DETECT_TIMEOUT, f"off-air state {state!r} ({monitor.status()})")


async def test_lively_picture_with_tone_is_playing_without_problems(stream: LiveStream) -> None:
    await stream.start(LIVELY, TONE)
    async with monitoring(stream.url, user_agent="obrady-offair-test") as monitor:
        assert monitor.status()["state"] == "starting"
        await state_is(monitor, "playing")
        seen: list[dict[str, Any]] = []

        async def playing_long_enough() -> bool:
            status = monitor.status()
            seen.append(status)
            # Longer than any of the detectors' 4 s windows.
            return status["state"] == "playing" and status["since"] >= 5

        await wait_for(playing_long_enough, DETECT_TIMEOUT, "5 s of uninterrupted playing")
        troubled = [s for s in seen if s["state"] != "playing" or s["problems"]]
        assert not troubled, troubled
        status = seen[-1]
        assert status["url"] == stream.url
        assert status["player_state"] == "Playing"
        assert status["position_advancing"] is True
        assert status["last_frame_age_seconds"] is not None
        assert status["last_frame_age_seconds"] < 2
        assert 0.2 < status["luma"] < 0.8
        assert -24 < status["audio_peak_db"] < -12
        assert status["restarts"] == 0
    # Every playlist and segment request named the monitor, so it is not counted as a viewer.
    # (libvlc appends its own version: "obrady-offair-test LibVLC/3.0.24").
    assert stream.user_agents
    assert all(agent.startswith("obrady-offair-test") for agent in stream.user_agents), (
        stream.user_agents
    )


FAULTS = {"frozen": (STILL, TONE), "black": (BLACK, TONE), "silent": (LIVELY, SILENCE)}


async def test_each_fault_in_what_the_public_receives_is_named(
    new_stream: Callable[[], Awaitable[LiveStream]],
) -> None:
    async def expect(problem: str, video: str, audio: str) -> None:
        stream = await new_stream()
        await stream.start(video, audio)
        async with monitoring(stream.url) as monitor:
            # Exactly the one fault: a black picture is not also called frozen, colour bars
            # are not black, a tone is not silence.
            status = await state_is(monitor, problem, [problem])
            assert status["player_state"] == "Playing"
            assert status["last_frame_age_seconds"] < 2
            if problem == "black":
                assert status["luma"] < 0.06
            else:
                assert status["luma"] > 0.2
            if problem == "silent":
                assert status["audio_peak_db"] is not None
                assert status["audio_peak_db"] < -50
            else:
                assert status["audio_peak_db"] > -30

    # Three streams and three monitors side by side keep the test short.
    async with asyncio.TaskGroup() as group:
        for problem, (video, audio) in FAULTS.items():
            group.create_task(expect(problem, video, audio))


async def test_an_outage_is_not_playing_and_the_monitor_recovers_on_its_own(
    stream: LiveStream,
) -> None:
    # Short back-off and restart delays keep the test quick; detection uses the defaults.
    options = {"max_backoff_seconds": 2, "restart_after_seconds": 4}
    async with monitoring(stream.url, **options) as monitor:
        # Nothing published yet: the playlist is a 404.
        down = await state_is(monitor, "not_playing", ["not_playing"])
        assert down["last_frame_age_seconds"] is None

        await stream.start()
        up = await state_is(monitor, "playing", [])
        assert up["restarts"] >= 1

        # The encoder hangs: its last playlist stays up. Each restarted player replays that
        # playlist's tail for a moment; that must not count as playing again.
        await stream.kill()
        down = await state_is(monitor, "not_playing", ["not_playing"])
        seen: list[dict[str, Any]] = []

        async def restarted_twice() -> bool:
            seen.append(monitor.status())
            return bool(seen[-1]["restarts"] >= down["restarts"] + 2)

        await wait_for(restarted_twice, DETECT_TIMEOUT, "two restarts onto the stale playlist")
        assert {s["state"] for s in seen} == {"not_playing"}, seen
        replayed = [s for s in seen if s["restarts"] > down["restarts"]]
        assert any(s["last_frame_age_seconds"] is not None for s in replayed), seen

        # The encoder and the web server both restart (connections refused meanwhile).
        await stream.stop()
        await stream.unserve()
        await stream.serve()
        await stream.start()
        up = await state_is(monitor, "playing", [])
        assert up["restarts"] > down["restarts"] + 2


async def test_retry_soon_plays_a_stream_known_to_be_back_at_its_first_pictures(
    stream: LiveStream,
) -> None:
    """The watch calls retry_soon() when the public playlist begins to move: the player is
    restarted at once instead of after its back-off, and its first fresh pictures count as
    playing, without the recovery's wait (recover_after_seconds, long here to show it)."""
    options = {"recover_after_seconds": 15}
    async with monitoring(stream.url, **options) as monitor:
        await state_is(monitor, "not_playing", ["not_playing"])  # a 404 for now
        await stream.start()
        monitor.retry_soon()
        seen: list[tuple[float, dict[str, Any]]] = []
        began = asyncio.get_running_loop().time()

        async def playing() -> bool:
            seen.append((asyncio.get_running_loop().time() - began, monitor.status()))
            return seen[-1][1]["state"] == "playing"

        await wait_for(playing, DETECT_TIMEOUT, "playing at the first pictures")
        first_picture = next(t for t, s in seen if s["last_frame_age_seconds"] is not None)
        assert seen[-1][0] - first_picture < 3, seen
