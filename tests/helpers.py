"""Helpers for tests that check media the way a viewer or a clerk would: ffprobe and VLC."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import vlc  # type: ignore[import-untyped]

from recorder.ffmpeg import clock_stamps as frame_stamps


def _auth_args(auth: tuple[str, str] | None) -> list[str]:
    if auth is None:
        return []
    token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    return ["-headers", f"Authorization: Basic {token}\r\n"]


async def ffprobe(
    url: str, timeout: float = 30.0, auth: tuple[str, str] | None = None
) -> dict[str, Any]:
    """ffprobe's JSON view of a file or URL (format and streams)."""
    proc = await asyncio.create_subprocess_exec(
        "ffprobe",
        *_auth_args(auth),
        "-v",
        "error",
        "-print_format",
        "json",
        "-show_format",
        "-show_streams",
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, err.decode()
    return json.loads(out)  # type: ignore[no-any-return]


async def _decode_video(
    url: str, timeout: float, auth: tuple[str, str] | None
) -> dict[str, list[str]]:
    """Decode all of url's video to nowhere; ffmpeg's -progress keys, each with its values in
    the order reported."""
    proc = await asyncio.create_subprocess_exec(
        "ffmpeg", "-nostdin", *_auth_args(auth), "-v", "error", "-i", url,
        "-map", "0:v:0", "-f", "null", "-progress", "pipe:1", "-",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, err.decode()
    progress: dict[str, list[str]] = {}
    for line in out.decode().splitlines():
        key, sep, value = line.partition("=")
        if sep:
            progress.setdefault(key, []).append(value.strip())
    return progress


async def decoded_frames(
    url: str, timeout: float = 60.0, auth: tuple[str, str] | None = None
) -> int:
    """How many video frames of url decode (ffmpeg reads it all): unlike the timestamps' span,
    it does not count the jumps between the runs a playlist joins."""
    counts = (await _decode_video(url, timeout, auth)).get("frame", [])
    assert counts, "ffmpeg decoded nothing"
    return int(counts[-1])


async def decoded_duration(
    url: str, timeout: float = 60.0, auth: tuple[str, str] | None = None
) -> float:
    """Seconds of video actually decodable from url: ffmpeg reads it all and reports the end."""
    progress = await _decode_video(url, timeout, auth)
    times = [int(value) for value in progress.get("out_time_us", []) if value.isdigit()]
    assert times, "ffmpeg decoded nothing"
    return max(times) / 1_000_000


async def peak_db(path: Path | str) -> float:
    """The audio peak of a file in dB (volumedetect), -inf as -200."""
    proc = await asyncio.create_subprocess_exec(
        "ffmpeg",
        "-nostdin",
        "-hide_banner",
        "-i",
        str(path),
        "-map",
        "0:a:0",
        "-af",
        "volumedetect",
        "-f",
        "null",
        "-",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    line = next(x for x in err.decode().splitlines() if "max_volume" in x)
    value = line.split("max_volume:")[1].split("dB")[0].strip()
    return -200.0 if value == "-inf" else float(value)


class VlcPlayer:
    """libvlc through python-vlc, with no window and no sound card (runs as root)."""

    def __init__(self) -> None:
        self.instance = vlc.Instance(
            "--intf=dummy", "--vout=dummy", "--aout=dummy", "--no-video-title-show", "--quiet"
        )
        self.player = self.instance.media_player_new()

    def play(self, url: str) -> None:
        media = self.instance.media_new(url)
        self.player.set_media(media)
        assert self.player.play() == 0, "libvlc refused to start playback"

    def state(self) -> Any:
        return self.player.get_state()

    def time_ms(self) -> int:
        return int(self.player.get_time())

    async def wait_playing_and_advancing(self, timeout: float = 30.0) -> tuple[int, int]:
        """Wait until the player is Playing and its time moves; returns two time readings."""
        deadline = time.monotonic() + timeout
        while self.state() != vlc.State.Playing:
            if self.state() in (vlc.State.Error, vlc.State.Ended) or time.monotonic() > deadline:
                raise AssertionError(f"VLC did not reach Playing: {self.state()}")
            await asyncio.sleep(0.1)
        first = -1
        while time.monotonic() < deadline:
            now = self.time_ms()
            if first < 0 and now > 0:
                first = now
            elif first >= 0 and now >= first + 1000:
                return first, now
            await asyncio.sleep(0.1)
        raise AssertionError(f"VLC time did not advance (first {first}, now {self.time_ms()})")

    def close(self) -> None:
        self.player.stop()
        self.player.release()
        self.instance.release()


async def clock_stamps(source: Path | str, width: int, height: int) -> list[int | None]:
    """The wall-clock stamp (epoch ms mod 2**32) of every frame of a recording made by a
    synthetic source with `clock_code = true`; None for a frame without one (a slate)."""
    proc = await asyncio.create_subprocess_exec(
        "ffmpeg", "-nostdin", "-v", "error", "-i", str(source),
        "-vf", f"scale={width}:{height}", "-f", "rawvideo", "-pix_fmt", "gray", "pipe:1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    raw, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode(errors="replace")
    return frame_stamps(raw, width, height)


def stamp_within(stamp: int, start_ms: int, end_ms: int) -> bool:
    """Whether a 32-bit millisecond stamp falls between two epoch times (start <= end)."""
    return (stamp - start_ms) % 2**32 <= end_ms - start_ms


@contextlib.contextmanager
def small_tmpfs(mount: Path, size_mb: int) -> Iterator[Path]:
    """A tmpfs of size_mb mounted at mount (made here) for one test: filling it harms nothing
    else and nothing else changes it; unmounted afterwards. Skips the test without root."""
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {result.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False, timeout=30)


def ts_file(path: Path, seconds: float = 2.0, fps: int = 25) -> None:
    """A real MPEG-TS file as the recorder writes it: H.264 (keyframe first) and AAC."""
    subprocess.run(
        [
            "ffmpeg", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size=320x180:rate={fps}",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-g", str(fps * 4),
            "-c:a", "aac", "-pes_payload_size", "0", "-f", "mpegts", str(path),
        ],
        check=True,
        timeout=60,
    )  # fmt: skip


@contextlib.asynccontextmanager
async def loop_stalls() -> AsyncIterator[list[float]]:
    """The running event loop's longest stall while inside (a 10 ms ticker): [max gap in
    seconds]. A service started in the test runs on this loop, so this is the service's."""
    worst = [0.0]

    async def tick() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            worst[0] = max(worst[0], now - last - 0.01)
            last = now

    task = asyncio.get_running_loop().create_task(tick())
    try:
        yield worst
    finally:
        task.cancel()
        await asyncio.wait([task])


def newest_part(playlist: str) -> str | None:
    """The URI of the last part a live playlist lists."""
    found = None
    for line in playlist.splitlines():
        if line.startswith("#EXT-X-PART:"):
            found = line.split('URI="', 1)[1].split('"', 1)[0]
    return found


def thread_ticks() -> dict[int, tuple[int, int]]:
    """CPU ticks (user + system) and nice value of each thread of this process, by thread id."""
    found = {}
    for entry in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError):
            with open(f"/proc/self/task/{entry}/stat", encoding="ascii") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            found[int(entry)] = (int(fields[11]) + int(fields[12]), int(fields[16]))
    return found


async def make_ts(path: Path, video_filter: str, audio_filter: str, offset: float = 0.0) -> None:
    """A 4 s MPEG-TS of test picture (10 fps) and tone, through the given filters, its
    timestamps `offset` seconds on."""
    proc = await asyncio.create_subprocess_exec(
        "ffmpeg", "-nostdin", "-v", "error", "-output_ts_offset", f"{offset:g}",
        "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=10:duration=4",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=4",
        "-vf", video_filter, "-af", audio_filter,
        "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
        # As capture writes them: one audio frame per PES packet (recorder/ffmpeg.py).
        "-pes_payload_size", "0", "-f", "mpegts", str(path),
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()


ROOT = Path(__file__).resolve().parents[1]


async def obrady(*args: str, timeout: float = 120) -> tuple[int, str, str]:
    """Run the `obrady` command as a user would; (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streaming.app.cli", *args, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()
