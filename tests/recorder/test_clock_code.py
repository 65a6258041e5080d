"""The simulated camera's clock code reads back as the wall clock at the moment each frame is
made, through real ffmpeg and the recorder's own H.264 encoding."""

from __future__ import annotations

import asyncio
import signal
import statistics
import time
from pathlib import Path

import ffmpeg  # type: ignore[import-untyped]
import pytest
from conftest import config_text, wait_for

from config.settings import ConfigError, SyntheticSource, parse_settings
from recorder.ffmpeg import (
    CLOCK_CODE_CELLS,
    SEGMENT_LIST,
    clock_code,
    clock_code_cells,
    clock_code_layout,
    read_clock_code,
    synthetic_argv,
)

WIDTH, HEIGHT, FPS = 640, 360, 25
FRAME_MS = 1000 / FPS
WRAP = 2**32


def decode_rows(raw: bytes, width: int, rows: int, row: int, x0: int, square: int) -> list[int]:
    """Read the cells of gray frames `width` x `rows` px, the code's centre line at `row`."""
    frame = width * rows
    stamps = []
    for start in range(0, len(raw) - frame + 1, frame):
        line = raw[start + row * width : start + (row + 1) * width]
        cells = [
            1 if line[x0 + c * square + square // 2] >= 128 else 0 for c in range(CLOCK_CODE_CELLS)
        ]
        value = read_clock_code(cells)
        assert value is not None, f"frame {start // frame}: cells {cells} do not validate"
        stamps.append(value)
    return stamps


def since(stamp: int, epoch_ms: int) -> int:
    """Milliseconds from epoch_ms to the 32-bit stamp (negative if the stamp is earlier)."""
    delta = (stamp - epoch_ms) % WRAP
    return delta - WRAP if delta >= WRAP // 2 else delta


def test_cells_round_trip_and_reject_damage() -> None:
    millis = 1_795_689_352_291
    cells = clock_code_cells(millis)
    assert len(cells) == CLOCK_CODE_CELLS
    assert read_clock_code(cells) == millis % WRAP
    for damaged in range(CLOCK_CODE_CELLS):
        flipped = list(cells)
        flipped[damaged] ^= 1
        assert read_clock_code(flipped) is None, damaged


def test_clock_code_is_off_by_default_and_needs_room() -> None:
    plain = synthetic_argv(SyntheticSource(kind="synthetic"), Path("/r"), 2)
    coded = synthetic_argv(SyntheticSource(kind="synthetic", clock_code=True), Path("/r"), 2)
    assert "RTCTIME" not in plain[plain.index("-filter_complex") + 1]
    assert "RTCTIME" in coded[coded.index("-filter_complex") + 1]
    text = config_text(Path("/tmp/x"), 8080, 'kind = "synthetic"\nwidth = 160\nclock_code = true\n')
    with pytest.raises(ConfigError, match="chambers.0.source.*clock_code needs a width"):
        parse_settings(text, "bench.toml")


async def test_stamp_is_the_wall_clock_when_the_frame_is_made() -> None:
    """Frames come out of a paced ffmpeg as they are made; each one's stamp is that moment."""
    layout = clock_code_layout(WIDTH)
    video = ffmpeg.input(f"testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS}", f="lavfi", re=None)
    strip = clock_code(video, WIDTH, FPS).crop(x=0, y=layout.y, width=WIDTH, height=layout.square)
    out = ffmpeg.output(strip, "pipe:1", f="rawvideo", pix_fmt="gray", t=3, flush_packets=1)
    argv = ffmpeg.compile(out.global_args("-nostdin", "-v", "error"), cmd="ffmpeg")
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    size = WIDTH * layout.square
    lags: list[int] = []
    stamps: list[int] = []
    try:
        while True:
            try:
                raw = await asyncio.wait_for(proc.stdout.readexactly(size), 10)
            except asyncio.IncompleteReadError:
                break
            arrived = time.time_ns() // 1_000_000
            (stamp,) = decode_rows(
                raw, WIDTH, layout.square, layout.square // 2, layout.x, layout.square
            )
            stamps.append(stamp)
            lags.append(-since(stamp, arrived))
        err = await asyncio.wait_for(proc.stderr.read(), 10)
        assert await asyncio.wait_for(proc.wait(), 10) == 0, err.decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert len(stamps) == 3 * FPS
    # A frame reaches us after its stamp, and soon after.
    assert min(lags) >= -1 and max(lags) <= 300, lags
    steps = [since(b, a) for a, b in zip(stamps, stamps[1:], strict=False)]
    # Paced in real time: one frame interval apart on average (single steps alternate around
    # it, e.g. 36/44 ms, as ffmpeg's pacing wakes up; their median may sit on either side).
    assert abs(statistics.mean(steps) - FRAME_MS) <= 3, steps


async def test_recorded_chamber_carries_the_wall_clock(tmp_path: Path) -> None:
    """The recorder's own argv: H.264 at its bitrate keeps the code readable in every frame;
    the stamps follow the wall clock frame by frame; the recorded timestamps are unchanged."""
    source = SyntheticSource(kind="synthetic", width=WIDTH, height=HEIGHT, fps=FPS, clock_code=True)
    argv = synthetic_argv(source, tmp_path, 1)
    launched = time.time_ns() // 1_000_000
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )
    listing = tmp_path / SEGMENT_LIST
    try:

        async def three_segments() -> list[str] | None:
            lines = listing.read_text().split() if listing.exists() else []
            return lines if len(lines) >= 3 else None

        await wait_for(three_segments, 30, "three finished segments")
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
    stopped = time.time_ns() // 1_000_000
    names = [line.split(",")[0] for line in listing.read_text().split()]
    files = "|".join(str(tmp_path / name) for name in names)
    decode = await asyncio.create_subprocess_exec(
        "ffmpeg", "-nostdin", "-v", "error", "-i", f"concat:{files}",
        "-f", "rawvideo", "-pix_fmt", "gray", "pipe:1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    raw, err = await asyncio.wait_for(decode.communicate(), 60)
    assert decode.returncode == 0, err.decode()
    layout = clock_code_layout(WIDTH)
    stamps = decode_rows(raw, WIDTH, HEIGHT, layout.y + layout.square // 2, layout.x, layout.square)
    assert len(stamps) >= 2 * FPS
    # Made after ffmpeg was launched and before it was stopped.
    assert 0 <= since(stamps[0], launched) <= 3000, since(stamps[0], launched)
    assert since(stamps[-1], stopped) <= 0
    # One frame interval apart, paced by -re: no drift from the wall clock.
    steps = [since(b, a) for a, b in zip(stamps, stamps[1:], strict=False)]
    assert all(0 < step < 3 * FRAME_MS for step in steps), steps
    # Paced in real time: one frame interval apart on average (single steps alternate around
    # it, e.g. 36/44 ms, as ffmpeg's pacing wakes up; their median may sit on either side).
    assert abs(statistics.mean(steps) - FRAME_MS) <= 3, steps
    drift = [since(s, stamps[0]) - n * FRAME_MS for n, s in enumerate(stamps)]
    assert max(abs(d) for d in drift) <= 150, drift
    # The recorded video timestamps still count frames (the code's own clock does not leak).
    probe = await asyncio.create_subprocess_exec(
        "ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "packet=pts",
        "-of", "csv=p=0", str(tmp_path / names[1]),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(probe.communicate(), 30)
    assert probe.returncode == 0, err.decode()
    pts = sorted(int(line.strip(",")) for line in out.decode().split())
    assert {b - a for a, b in zip(pts, pts[1:], strict=False)} == {90_000 // FPS}
