"""Lip-sync: the chamber's own sound (from the microphone system's RTSP stream) against the
camera's picture, in a real recording made by the capture argv. The camera's picture carries
the wall clock it was made at, the microphones click at every whole wall second; at the media
time of each click the picture must show that same second, within 100 ms."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from cameras.camera import RtspCamera
from cameras.media_clock import MediaClock, record_clock
from conftest import free_port

from config.settings import RtspAudio, RtspSource
from recorder.ffmpeg import capture_argv

WIDTH, FPS = 320, 25
CLICKS = 3  # whole seconds recorded, at least
# The goal. Measured here (bench/lipsync.py, 25 fps, G.711 sound): the sound 20-60 ms
# late copied, 0-40 ms re-encoded.
LIPSYNC_SECONDS = 0.1


async def record_clicks(
    tmp_path: Path, camera: RtspCamera, mics: RtspCamera, video: str
) -> MediaClock:
    """Record the camera with the microphones' sound for CLICKS whole segments of 1 s and read
    the marks back. Both sources are playing before the recording starts, as in a chamber."""
    run_dir = tmp_path / "run-0001"
    run_dir.mkdir()
    source = RtspSource(kind="rtsp", url=camera.url, video=video)
    argv = capture_argv(source, run_dir, 1, RtspAudio(kind="rtsp", url=mics.url))
    return await record_clock(argv, run_dir, WIDTH, segments=CLICKS + 1)


@pytest.mark.parametrize(
    ("camera_video", "record_video"),
    [
        pytest.param("h264", "copy", id="h264-copied"),
        pytest.param("h265", "h264", id="h265-reencoded"),
    ],
)
async def test_chamber_sound_is_in_sync_with_the_camera_picture(
    tmp_path: Path, camera_video: str, record_video: str
) -> None:
    camera = RtspCamera(
        free_port(), video=camera_video, audio="none", fps=FPS, clock_code=True, watched=True
    )
    mics = RtspCamera(free_port(), video="none", audio="pcma", clicks=True, watched=True)
    try:
        # A task group: if one fails to start, the other's start is cancelled (and cleans up).
        async with asyncio.TaskGroup() as starting:
            starting.create_task(camera.start())
            starting.create_task(mics.start())
        clock = await record_clicks(tmp_path, camera, mics, record_video)
    finally:
        await camera.stop()
        await mics.stop()
    assert len(clock.changes) >= 2 * FPS, "the picture's clock did not read back"
    assert len(clock.clicks) >= CLICKS - 1, clock.clicks
    # One click a second, each marking the next second: none missed, none found twice.
    walls = [click.wall for click in clock.clicks]
    assert [b - a for a, b in zip(walls, walls[1:], strict=False)] == [1.0] * (len(walls) - 1)
    offsets = clock.lipsync()
    assert len(offsets) >= CLICKS - 1, (offsets, clock.clicks)
    assert max(abs(x) for x in offsets) <= LIPSYNC_SECONDS, offsets
    assert clock.picture_jumps(0.05) == []


async def test_camera_marks_read_back_in_sync_from_one_connection(tmp_path: Path) -> None:
    """The instrument itself: a camera whose own sound carries the clicks (one RTSP session,
    one clock) is recorded with its picture at the same moments."""
    camera = RtspCamera(free_port(), audio="pcma", fps=FPS, clock_code=True, clicks=True)
    run_dir = tmp_path / "run-0001"
    run_dir.mkdir()
    source = RtspSource(kind="rtsp", url=camera.url)
    async with camera:
        clock = await record_clock(capture_argv(source, run_dir, 1), run_dir, WIDTH, segments=4)
    # Every frame stamped, one frame interval apart, no frame lost.
    assert len(clock.frames) >= 3 * FPS
    steps = {round(b[1] - a[1], 3) for a, b in zip(clock.frames, clock.frames[1:], strict=False)}
    assert steps == {1 / FPS}, steps
    assert len(clock.clicks) >= 3
    assert max(abs(x) for x in clock.lipsync()) <= 0.02, clock.lipsync()
