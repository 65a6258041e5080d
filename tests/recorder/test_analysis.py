"""SegmentAnalyzer on real segments made by ffmpeg: a moving picture with a tone looks healthy; a
still colour picture, digital silence and a missing audio track are each named as a problem."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from conftest import wait_for

from config.settings import MonitoringSettings
from recorder.analysis import (
    QUEUE_LIMIT,
    THUMB_BYTES,
    SegmentAnalyzer,
    SourceHealth,
    analysis_argv,
    picture_difference,
)

LIVELY = "testsrc2=size=320x180:rate=10"
STILL = "color=c=0x3366aa:size=320x180:rate=10"
TONE = "sine=frequency=440:sample_rate=48000"  # peaks near -18 dBFS
SILENCE = "anullsrc=channel_layout=stereo:sample_rate=48000"
# Problems count from the first sign: the test does not wait for seconds to pass.
SETTINGS = MonitoringSettings(frozen_after_seconds=0.001, silent_after_seconds=0.001)
KEY = (1, "main")


def segment_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("seg-*.ts"))


async def make_segments(
    folder: Path, video: str, audio: str | None, seconds: int = 10
) -> list[Path]:
    """MPEG-TS segments of 1 s (a keyframe each, as capture makes them) from lavfi sources."""
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    inputs = ["-f", "lavfi", "-i", video]
    maps = ["-map", "0:v"]
    codecs = ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"]
    codecs += ["-g", "10", "-keyint_min", "10", "-sc_threshold", "0"]
    if audio is not None:
        inputs += ["-f", "lavfi", "-i", audio]
        maps += ["-map", "1:a"]
        codecs += ["-c:a", "aac", "-b:a", "64k"]
    proc = await asyncio.create_subprocess_exec(
        "ffmpeg", "-nostdin", "-hide_banner", "-v", "error", *inputs, "-t", str(seconds),
        *maps, *codecs, "-f", "segment", "-segment_time", "1", "-segment_format", "mpegts",
        str(folder / "seg-%03d.ts"),
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode(errors="replace")
    return await asyncio.to_thread(segment_files, folder)


@pytest.fixture
async def analyzer() -> AsyncIterator[SegmentAnalyzer]:
    """A running analyzer; cancelling its worker ends every analysing ffmpeg."""
    analyzer = SegmentAnalyzer(SETTINGS)
    worker = asyncio.create_task(analyzer.run())
    try:
        yield analyzer
    finally:
        worker.cancel()
        await asyncio.wait_for(asyncio.gather(worker, return_exceptions=True), 30)


async def analysed(
    analyzer: SegmentAnalyzer, keyframes: int, audio_seconds: int = 0
) -> SourceHealth:
    async def enough() -> SourceHealth | None:
        health = analyzer.health(KEY)
        ready = (
            health is not None
            and health.keyframes >= keyframes
            and health.audio_seconds >= audio_seconds
        )
        return health if ready else None

    return await wait_for(enough, 30, f"{keyframes} keyframes and {audio_seconds} s of sound")


def test_analysis_argv_is_exact() -> None:
    assert analysis_argv() == [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "info",
        "-skip_frame", "nokey", "-analyzeduration", "1000000", "-probesize", "1000000",
        "-f", "mpegts", "-i", "pipe:0",
        "-map", "0:v:0?", "-vf", "scale=64:36,format=gray",
        "-fps_mode", "passthrough", "-flush_packets", "1", "-f", "rawvideo", "pipe:1",
        "-map", "0:a:0?",
        "-af", "asetnsamples=n=48000:p=0,astats=metadata=1:reset=1,"
        "ametadata=mode=print:key=lavfi.astats.Overall.Peak_level",
        "-f", "null", "-",
    ]  # fmt: skip


def test_picture_difference() -> None:
    black, white = bytes(THUMB_BYTES), bytes([255]) * THUMB_BYTES
    assert picture_difference(black, black) == 0.0
    assert picture_difference(black, white) == 255.0
    assert picture_difference(bytes([10, 20, 30, 40]), bytes([20, 20, 30, 30])) == 5.0
    # No previous picture, or one of another size, never counts as "the same".
    assert picture_difference(black, b"") == 255.0
    assert picture_difference(b"", b"") == 255.0
    assert picture_difference(black, black[:-1]) == 255.0


async def test_a_moving_picture_with_sound_looks_healthy(
    tmp_path: Path, analyzer: SegmentAnalyzer
) -> None:
    for segment in await make_segments(tmp_path, LIVELY, TONE):
        analyzer.submit(KEY, "sala", segment, 1.0)
    health = await analysed(analyzer, keyframes=4, audio_seconds=4)
    assert health.problems(SETTINGS) == []
    assert health.has_audio is True and health.frozen_since is None
    assert health.audio_max_db is not None and -25 < health.audio_max_db < -10
    assert len(health.thumbnail) == THUMB_BYTES
    assert (health.session_id, health.chamber_id, health.camera_id) == (1, "sala", "main")


async def test_a_still_picture_and_silence_are_reported(
    tmp_path: Path, analyzer: SegmentAnalyzer
) -> None:
    for segment in await make_segments(tmp_path, STILL, SILENCE):
        analyzer.submit(KEY, "sala", segment, 1.0)
    health = await analysed(analyzer, keyframes=4, audio_seconds=4)
    assert health.has_audio is True  # a silent track is still a track
    assert health.audio_max_db == -200.0  # digital silence
    kinds = [problem.split(" for ")[0] for problem in health.problems(SETTINGS)]
    assert kinds == ["picture frozen", "audio silent"]
    # With the default thresholds a short freeze is not yet a problem.
    assert health.problems(MonitoringSettings()) == []


async def test_a_source_without_audio_is_reported(
    tmp_path: Path, analyzer: SegmentAnalyzer
) -> None:
    for segment in await make_segments(tmp_path, LIVELY, None):
        analyzer.submit(KEY, "sala", segment, 1.0)
    health = await analysed(analyzer, keyframes=4)
    assert health.audio_seconds == 0 and health.has_audio is False
    assert health.problems(SETTINGS) == ["no audio track"]


async def test_a_picture_that_moves_again_is_no_longer_frozen(
    tmp_path: Path, analyzer: SegmentAnalyzer
) -> None:
    still = await make_segments(tmp_path / "still", STILL, TONE)
    lively = await make_segments(tmp_path / "lively", LIVELY, TONE)
    for segment in still:
        analyzer.submit(KEY, "sala", segment, 1.0)
    frozen = await analysed(analyzer, keyframes=3)
    assert frozen.frozen_since is not None
    for segment in lively:
        analyzer.submit(KEY, "sala", segment, 1.0)

    async def moving() -> bool:
        health = analyzer.health(KEY)
        return health is not None and health.keyframes >= 8 and health.frozen_since is None

    await wait_for(moving, 30, "the moving picture to be seen")
    assert analyzer.health(KEY) is not None
    assert analyzer.health(KEY).problems(SETTINGS) == []  # type: ignore[union-attr]


def test_segments_are_skipped_when_analysis_falls_behind(tmp_path: Path) -> None:
    analyzer = SegmentAnalyzer(SETTINGS)  # its worker is not running: nothing is taken
    for n in range(QUEUE_LIMIT + 5):
        analyzer.submit(KEY, "sala", tmp_path / f"seg-{n:03d}.ts", 1.0)
    assert analyzer.dropped == 5
    assert analyzer.health(KEY) is None
