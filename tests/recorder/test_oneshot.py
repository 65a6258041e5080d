"""One-shot ffmpeg runs: stdout back, the stderr tail in the error, killed and reaped on time."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import pytest

from recorder.oneshot import FfmpegFailed, FfmpegTimedOut, run_ffmpeg, run_ffmpeg_blocking

# An hour of test pattern at real-time speed: it never finishes on its own within a test.
ENDLESS = [
    "ffmpeg", "-hide_banner", "-nostdin", "-re", "-f", "lavfi", "-i",
    "testsrc=size=64x64:rate=5:duration=3600", "-f", "null", "-",
]  # fmt: skip


@pytest.fixture
def spawned(monkeypatch: pytest.MonkeyPatch) -> list[asyncio.subprocess.Process]:
    """The processes run_ffmpeg starts, to check that none is left behind."""
    procs: list[asyncio.subprocess.Process] = []
    original = asyncio.create_subprocess_exec

    async def spy(*args: Any, **kwargs: Any) -> asyncio.subprocess.Process:
        proc = await original(*args, **kwargs)
        procs.append(proc)
        return proc

    monkeypatch.setattr(asyncio, "create_subprocess_exec", spy)
    return procs


def gone(proc: asyncio.subprocess.Process) -> bool:
    """Reaped: its exit is known and its pid no longer exists (not even as a zombie)."""
    if proc.returncode is None:
        return False
    try:
        os.kill(proc.pid, 0)
    except ProcessLookupError:
        return True
    return False


async def test_success_returns_stdout_and_feeds_stdin() -> None:
    raw = bytes(range(256)) * 64  # 16 KiB of 8-bit samples
    argv = [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "u8", "-ar", "8000", "-ac", "1",
        "-i", "pipe:0", "-f", "u8", "pipe:1",
    ]  # fmt: skip
    assert await run_ffmpeg(argv, timeout=30, what="copy samples", stdin=raw) == raw
    out = await run_ffmpeg(["ffprobe", "-version"], timeout=30, what="ask ffprobe")
    assert out.startswith(b"ffprobe version")


def test_the_blocking_form_is_the_same_run() -> None:
    out = run_ffmpeg_blocking(["ffmpeg", "-hide_banner", "-version"], timeout=30, what="ask")
    assert out.startswith(b"ffmpeg version")


async def test_a_failing_ffmpeg_raises_with_its_stderr_tail(
    spawned: list[asyncio.subprocess.Process],
) -> None:
    argv = ["ffmpeg", "-hide_banner", "-nostdin", "-i", "/nonexistent/seg.ts", "-f", "null", "-"]
    with pytest.raises(FfmpegFailed) as caught:
        await run_ffmpeg(argv, timeout=30, what="read the segment")
    failed = caught.value
    assert not isinstance(failed, FfmpegTimedOut)
    assert failed.what == "read the segment" and failed.returncode not in (0, None)
    assert "/nonexistent/seg.ts: No such file or directory" in failed.stderr_tail
    assert failed.last_words().endswith("No such file or directory")
    assert str(failed).startswith(f"read the segment failed (exit {failed.returncode}): ")
    [proc] = spawned
    assert gone(proc)


async def test_a_hung_ffmpeg_is_killed_at_the_timeout_and_reaped(
    spawned: list[asyncio.subprocess.Process],
) -> None:
    started = time.monotonic()
    with pytest.raises(FfmpegTimedOut) as caught:
        await run_ffmpeg(ENDLESS, timeout=1.5, what="play the pattern")
    took = time.monotonic() - started
    assert 1.5 <= took < 10
    assert isinstance(caught.value, TimeoutError)  # callers that bound a probe still catch it
    assert caught.value.returncode == -9  # SIGKILL
    assert "took over 1.5 s; killed" in str(caught.value)
    [proc] = spawned
    assert gone(proc)


async def test_a_cancelled_run_kills_and_reaps_its_ffmpeg(
    spawned: list[asyncio.subprocess.Process],
) -> None:
    task = asyncio.create_task(run_ffmpeg(ENDLESS, timeout=60, what="play the pattern"))
    await asyncio.sleep(1.0)  # started, and running
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [proc] = spawned
    assert gone(proc)
