"""ProgramPusher against a real RTMP platform (nginx-rtmp, which tells the test of every stream
published to it): the exact argv, stream keys kept out of status and logs, the program arriving
as sent, a new stream for each capture run, and reconnection after the platform drops."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from conftest import free_port, wait_for
from helpers import decoded_duration, ffprobe
from servers import NginxRtmp

from config.settings import PushDestination
from recorder.push import ProgramPusher, PushStatus, push_argv, redact

KEY = "tajny-klucz-1234"


class Platform(NginxRtmp):
    """nginx-rtmp that calls back on every publish and unpublish (on_publish hooks), so the test
    counts the streams it received even when two land in the same second's record file."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(free_port(), workdir)
        self.refuse = False  # answer every publish with 403 (a wrong or revoked stream key)
        self.published: list[str] = []
        self.done: list[str] = []
        self._hook_port = free_port()
        self._hooks: web.AppRunner | None = None

    def _config(self) -> Path:
        conf = super()._config()
        hook = f"http://127.0.0.1:{self._hook_port}"
        text = conf.read_text().replace(
            "live on;", f"live on;\n on_publish {hook}/publish;\n on_publish_done {hook}/done;"
        )
        conf.write_text(text)
        return conf

    async def open(self) -> None:
        async def publish(request: web.Request) -> web.Response:
            if self.refuse:
                return web.Response(status=403, text="refused")
            self.published.append(str((await request.post()).get("name")))
            return web.Response(text="ok")

        async def done(request: web.Request) -> web.Response:
            self.done.append(str((await request.post()).get("name")))
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_post("/publish", publish)
        app.router.add_post("/done", done)
        self._hooks = web.AppRunner(app)
        await self._hooks.setup()
        await web.TCPSite(self._hooks, "127.0.0.1", self._hook_port).start()
        await self.start()

    async def close(self) -> None:
        await self.stop()
        if self._hooks is not None:
            await asyncio.wait_for(self._hooks.cleanup(), 30)


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    server = Platform(tmp_path / "platform")
    try:
        await server.open()
        yield server
    finally:
        await server.close()


def segment_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("seg-*.ts"))


async def make_segments(folder: Path, count: int, seconds: float = 1.0) -> list[Path]:
    """One capture run's program segments: H.264 320x180 and AAC in MPEG-TS, a keyframe each."""
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    gop = str(round(10 * seconds))
    proc = await asyncio.create_subprocess_exec(
        "ffmpeg", "-nostdin", "-hide_banner", "-v", "error",
        "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=10",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", f"{count * seconds:g}", "-map", "0:v", "-map", "1:a",
        "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
        "-g", gop, "-keyint_min", gop, "-sc_threshold", "0", "-c:a", "aac", "-b:a", "64k",
        "-f", "segment", "-segment_time", f"{seconds:g}", "-segment_format", "mpegts",
        str(folder / "seg-%03d.ts"),
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode(errors="replace")
    segments = await asyncio.to_thread(segment_files, folder)
    assert len(segments) >= count
    return segments[:count]


async def ended_within(worker: asyncio.Task[None], timeout: float = 30) -> None:
    """Cancel the pusher's worker and wait (bounded) until it has ended its stream."""
    worker.cancel()
    await asyncio.wait_for(asyncio.gather(worker, return_exceptions=True), timeout)


@pytest.fixture
async def pushing(platform: Platform) -> AsyncIterator[tuple[ProgramPusher, asyncio.Task[None]]]:
    """A pusher to the platform with its worker running; cancelling it ends the stream."""
    pusher = ProgramPusher("sala", PushDestination(name="youtube", url=platform.url(KEY)))
    worker = asyncio.create_task(pusher.run())
    try:
        yield pusher, worker
    finally:
        await ended_within(worker)


def secret_free(status: PushStatus) -> bool:
    return KEY not in repr(status)


def test_push_argv_is_exact() -> None:
    assert push_argv("rtmp://a.rtmp.youtube.com/live2/abcd-efgh") == [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "warning",
        "-progress", "pipe:1", "-stats_period", "0.5",
        "-f", "mpegts", "-i", "pipe:0",
        "-map", "0:v:0", "-map", "0:a:0?", "-c", "copy",
        "-bsf:a", "aac_adtstoasc",
        "-f", "flv", "rtmp://a.rtmp.youtube.com/live2/abcd-efgh",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("rtmp://a.rtmp.youtube.com/live2/abcd-efgh-ijkl", "rtmp://a.rtmp.youtube.com/live2/…"),
        (
            "rtmps://live-api-s.facebook.com:443/rtmp/FB-1?s_bl=1&a=Secret",
            "rtmps://live-api-s.facebook.com:443/rtmp/…",
        ),
    ],
)
def test_redact_hides_the_stream_key(url: str, shown: str) -> None:
    assert redact(url) == shown
    pusher = ProgramPusher("sala", PushDestination(name="youtube", url=url))
    assert pusher.status.url == shown
    assert pusher.status.state == "idle"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "rtmp://obrady:Haslo-123@rtmp.example.pl/live/sala",
            "rtmp://obrady:…@rtmp.example.pl/live/…",
        ),
        ("rtmp://Haslo-123@rtmp.example.pl/live/sala", "rtmp://…@rtmp.example.pl/live/…"),
        ("rtmp://rtmp.example.pl/live/Haslo-123/", "rtmp://rtmp.example.pl/live/…"),
        ("rtmp://rtmp.example.pl/live/Haslo-123//", "rtmp://rtmp.example.pl/live/…"),
    ],
)
def test_redact_hides_a_password_in_the_url(url: str, shown: str) -> None:
    # Self-hosted RTMP servers (and ffmpeg) take credentials in the URL's user info.
    assert redact(url) == shown
    assert "Haslo-123" not in ProgramPusher("sala", PushDestination(name="x", url=url)).status.url


@pytest.fixture
def short_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    """The session counts as ended after 1 s without a segment (IDLE_SECONDS, 20 s in service)."""
    monkeypatch.setattr("recorder.push.IDLE_SECONDS", 1.0)


async def test_the_program_arrives_as_sent_and_the_stream_ends_with_the_session(
    short_idle: None,
    tmp_path: Path,
    platform: Platform,
    pushing: tuple[ProgramPusher, asyncio.Task[None]],
) -> None:
    pusher, _ = pushing
    # More than the 5 s ffmpeg reads before it connects: the platform takes the stream while
    # segments still come, and only then is it "pushing".
    segments = await make_segments(tmp_path / "run", 8)
    for segment in segments:
        pusher.submit(1, segment)

    async def sent() -> bool:
        return pusher.status.segments_sent == 8 and pusher.status.state == "pushing"

    await wait_for(sent, 30, "eight segments pushed")
    assert pusher.status.bytes_sent > 0
    assert secret_free(pusher.status)

    async def ended() -> bool:
        return pusher.status.state == "idle" and platform.done == [KEY]

    await wait_for(ended, 30, "the stream to end at the platform after the session")
    assert platform.published == [KEY]
    assert (pusher.status.restarts, pusher.status.skipped, pusher.status.last_error) == (0, 0, None)
    [received] = platform.recordings()
    info = await ffprobe(str(received))
    streams = {s["codec_type"]: s for s in info["streams"]}
    assert streams["video"]["codec_name"] == "h264"  # copied, not re-encoded
    assert (streams["video"]["width"], streams["video"]["height"]) == (320, 180)
    assert streams["audio"]["codec_name"] == "aac"
    assert 7.5 <= await decoded_duration(str(received)) <= 8.5  # all eight seconds arrived


async def test_each_capture_run_is_a_new_stream_at_the_platform(
    tmp_path: Path, platform: Platform, pushing: tuple[ProgramPusher, asyncio.Task[None]]
) -> None:
    # Each run of the capture starts its timestamps again: the platform gets a new stream.
    pusher, worker = pushing
    first = await make_segments(tmp_path / "run-1", 3)
    second = await make_segments(tmp_path / "run-2", 3)
    for segment in first:
        pusher.submit(1, segment)
    for segment in second:
        pusher.submit(2, segment)

    async def sent() -> bool:
        return pusher.status.segments_sent == 6

    await wait_for(sent, 30, "both runs pushed")
    await ended_within(worker)  # shutting down: the stream is ended cleanly

    async def both_ended() -> bool:
        return len(platform.done) == 2

    await wait_for(both_ended, 30, "both streams to end at the platform")
    assert platform.published == [KEY, KEY]
    assert (pusher.status.restarts, pusher.status.last_error) == (0, None)


async def test_reconnects_after_the_platform_drops_and_returns(
    tmp_path: Path, platform: Platform, pushing: tuple[ProgramPusher, asyncio.Task[None]]
) -> None:
    pusher, worker = pushing
    segments = iter(await make_segments(tmp_path / "run", 60, seconds=0.5))

    def feed(condition: bool) -> bool:
        """Send the next segment as capture would, unless the condition already holds."""
        if not condition:
            pusher.submit(1, next(segments))
        return condition

    async def streaming() -> bool:
        return feed(pusher.status.state == "pushing" and len(platform.published) == 1)

    await wait_for(streaming, 30, "the push to start", interval=0.2)
    await platform.stop()  # the platform drops

    async def noticed() -> bool:
        return feed(pusher.status.state == "reconnecting")

    await wait_for(noticed, 30, "the drop to be noticed", interval=0.2)
    assert pusher.status.restarts >= 1
    assert pusher.status.last_error
    assert secret_free(pusher.status)
    before_drop = tmp_path / "before-drop"
    before_drop.mkdir()
    for flv in platform.recordings():
        flv.rename(before_drop / flv.name)

    await platform.start()  # and returns

    async def resumed() -> bool:
        return feed(pusher.status.state == "pushing" and len(platform.published) == 2)

    await wait_for(resumed, 30, "the push to reconnect", interval=0.2)
    assert pusher.status.last_error is None  # the error was of the drop, which is over
    target = pusher.status.segments_sent + 4
    for _ in range(4):
        feed(False)  # two more seconds of program after the return

    async def sent() -> bool:
        return pusher.status.segments_sent >= target

    await wait_for(sent, 30, "the program after the return to be sent")
    ended_before = len(platform.done)
    await ended_within(worker)  # the stream is ended cleanly

    async def ended() -> bool:
        return len(platform.done) > ended_before

    await wait_for(ended, 30, "the stream after the return to end at the platform")
    received = platform.recordings()
    assert received, "nothing was recorded by the platform after it returned"
    info = await ffprobe(str(received[-1]))
    assert {s["codec_name"] for s in info["streams"]} == {"h264", "aac"}
    assert await decoded_duration(str(received[-1])) >= 1.5


async def test_an_unreachable_platform_is_never_reported_as_pushing(tmp_path: Path) -> None:
    nobody = f"rtmp://127.0.0.1:{free_port()}/live/{KEY}"  # nothing listens there
    pusher = ProgramPusher("sala", PushDestination(name="youtube", url=nobody))
    worker = asyncio.create_task(pusher.run())
    try:
        segments = iter(await make_segments(tmp_path / "run", 12))
        seen: set[str] = set()

        async def refused() -> bool:
            seen.add(pusher.status.state)
            if pusher.status.state == "reconnecting":
                return True
            pusher.submit(1, next(segments))
            return False

        await wait_for(refused, 30, "the refusal to be noticed", interval=0.2)
        assert "pushing" not in seen
    finally:
        await ended_within(worker)


async def test_a_platform_that_refuses_the_stream_is_never_reported_as_pushing(
    tmp_path: Path, platform: Platform
) -> None:
    """The platform accepts the connection but refuses to publish (a revoked stream key)."""
    platform.refuse = True
    pusher = ProgramPusher("sala", PushDestination(name="youtube", url=platform.url(KEY)))
    worker = asyncio.create_task(pusher.run())
    try:
        segments = iter(await make_segments(tmp_path / "run", 40, seconds=0.5))
        seen: list[str] = []

        async def refused_twice() -> bool:
            seen.append(pusher.status.state)
            if pusher.status.restarts >= 2:
                return True
            with contextlib.suppress(StopIteration):
                pusher.submit(1, next(segments))
            return False

        await wait_for(refused_twice, 60, "two refusals to be noticed", interval=0.1)
        assert "pushing" not in seen, seen
        assert pusher.status.last_error and secret_free(pusher.status)
        assert platform.published == []
    finally:
        await ended_within(worker)
