"""The live edge hears of files from the recorder in whatever order a busy machine delivers:
every order ends with each file published whole (or not at all) and nothing left live that is
already finished, so the live playlist never stands still on a finished file."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import wait_for
from helpers import ts_file

from streaming.edge.llhls import LiveEdge, LiveSegment

CHAMBER = "rada"
T0 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """Three finished 1 s segments of one run and one of another camera, made once."""
    data = tmp_path_factory.mktemp("data")
    run = data / "media" / CHAMBER / "1" / "main" / "run-0001"
    run.mkdir(parents=True)
    files = [run / f"seg-{n:06d}.ts" for n in range(3)]
    for path in files:
        ts_file(path, seconds=1.0)
    other = data / "media" / CHAMBER / "1" / "side" / "run-0001"
    other.mkdir(parents=True)
    ts_file(other / "seg-000000.ts", seconds=1.0)
    return data, [*files, other / "seg-000000.ts"]


def edge(data: Path, allowed: set[str] | None = None) -> LiveEdge:
    for stale in (data / "live").glob("*"):
        stale.unlink()
    return LiveEdge(
        data,
        [CHAMBER],
        window_segments=10,
        part_target=0.2,
        segment_seconds=1.0,
        allowed=lambda _chamber, camera, _at: allowed is None or camera in allowed,
    )


def segments(live: LiveEdge) -> tuple[LiveSegment, ...]:
    snap = live.snapshot(CHAMBER)
    return () if snap is None else snap.segments


def assert_whole(live: LiveEdge, data: Path, expected: list[Path]) -> None:
    """The window holds exactly these files, each complete and tiled by its parts."""
    got = segments(live)
    assert [data / s.path for s in got] == expected, got
    for segment in got:
        assert segment.complete, f"{segment.path} is still live although its file is finished"
        size = (data / segment.path).stat().st_size
        assert segment.end == size
        assert segment.parts[0].start == 0 and segment.parts[-1].end == size
        assert abs(segment.duration - 1.0) < 0.05, segment.duration
    assert [s.msn for s in got] == list(range(len(got)))


def test_in_order_start_end_start_end(media: tuple[Path, list[Path]]) -> None:
    data, (a, b, _c, _side) = media
    live = edge(data)
    live.file_started(CHAMBER, "main", a, T0)
    live.file_finished(CHAMBER, "main", a, 1.0)
    live.file_started(CHAMBER, "main", b, T0 + timedelta(seconds=1))
    live.file_finished(CHAMBER, "main", b, 1.0)
    assert_whole(live, data, [a, b])


def test_next_start_before_previous_end(media: tuple[Path, list[Path]]) -> None:
    data, (a, b, _c, _side) = media
    live = edge(data)
    live.file_started(CHAMBER, "main", a, T0)
    live.file_started(CHAMBER, "main", b, T0 + timedelta(seconds=1))
    live.file_finished(CHAMBER, "main", a, 1.0)
    live.file_finished(CHAMBER, "main", b, 1.0)
    assert_whole(live, data, [a, b])


def test_end_heard_before_start(media: tuple[Path, list[Path]]) -> None:
    """The order that froze the live edge for minutes: the file became live after its end was
    heard, and the edge waited for an end that had come already."""
    data, (a, b, c, _side) = media
    live = edge(data)
    live.file_finished(CHAMBER, "main", a, 1.0)
    live.file_started(CHAMBER, "main", a, T0)
    # Shown whole at once (nothing else was live), and the next file goes live after it.
    assert_whole(live, data, [a])
    live.file_started(CHAMBER, "main", b, T0 + timedelta(seconds=1))
    live.file_finished(CHAMBER, "main", b, 1.0)
    live.file_started(CHAMBER, "main", c, T0 + timedelta(seconds=2))
    live.file_finished(CHAMBER, "main", c, 1.0)
    assert_whole(live, data, [a, b, c])


def test_end_before_start_while_another_file_is_live(media: tuple[Path, list[Path]]) -> None:
    """A finished file reported late while another is live never goes live afterwards."""
    data, (a, b, c, _side) = media
    live = edge(data)
    live.file_started(CHAMBER, "main", a, T0)
    live.file_finished(CHAMBER, "main", b, 1.0)
    live.file_started(CHAMBER, "main", b, T0 + timedelta(seconds=1))
    live.file_finished(CHAMBER, "main", a, 1.0)
    # a closed; b was finished before it was heard of, so it was no candidate any more.
    assert_whole(live, data, [a])
    live.file_started(CHAMBER, "main", c, T0 + timedelta(seconds=2))
    live.file_finished(CHAMBER, "main", c, 1.0)
    assert_whole(live, data, [a, c])


def test_late_start_of_an_older_file_is_ignored(media: tuple[Path, list[Path]]) -> None:
    data, (a, b, _c, _side) = media
    live = edge(data)
    live.file_started(CHAMBER, "main", b, T0 + timedelta(seconds=1))
    live.file_started(CHAMBER, "main", a, T0)  # late: b began after it
    live.file_finished(CHAMBER, "main", a, 1.0)
    live.file_finished(CHAMBER, "main", b, 1.0)
    assert_whole(live, data, [b])


def test_another_cameras_end_does_not_touch_the_live_file(
    media: tuple[Path, list[Path]],
) -> None:
    data, (a, b, _c, side) = media
    live = edge(data, allowed={"main"})
    live.file_started(CHAMBER, "side", side, T0)
    live.file_started(CHAMBER, "main", a, T0)
    live.file_finished(CHAMBER, "side", side, 1.0)
    assert not segments(live)[-1].complete  # a is live and still being written
    live.file_finished(CHAMBER, "main", a, 1.0)
    live.file_started(CHAMBER, "main", b, T0 + timedelta(seconds=1))
    live.file_finished(CHAMBER, "main", b, 1.0)
    assert_whole(live, data, [a, b])


async def test_an_end_never_heard_does_not_hold_the_edge(media: tuple[Path, list[Path]]) -> None:
    """When the recorder's word on a file's end is lost, the camera's newer file tells: the
    edge moves on once the old file stops growing."""
    data, (a, b, _c, _side) = media
    live = edge(data)
    async with live:
        live.file_started(CHAMBER, "main", a, T0)
        live.file_started(CHAMBER, "main", b, T0 + timedelta(seconds=1))
        began = time.monotonic()

        async def moved_on() -> bool:
            return len(segments(live)) == 2

        await wait_for(moved_on, 10, "the edge to move on to the newer file")
        moved = time.monotonic() - began
        live.file_finished(CHAMBER, "main", b, 1.0)
        await asyncio.sleep(0)
    assert_whole(live, data, [a, b])
    assert moved < 5, moved
