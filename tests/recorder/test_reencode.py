"""A re-encoded camera in the right place in time, and an encoder that falls behind drops frames
(and says so) rather than drifting: checked against the camera's own clock (white flashes).

One recording serves every test here: an H.265 camera recorded copied and re-encoded at once,
the re-encode starved of CPU for 3 s in the middle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from flashes import Recorded, anchor, real_gap, record_copied_and_reencoded, switch_gap

from archive.timeline import Piece, build_timeline
from recorder.continuity import Dropped, RunState, check_segment, read_packets
from recorder.ffmpeg import KEEP_TIME_SECONDS
from recorder.supervisor import ENCODER_BEHIND

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]

THRESHOLD = 0.5


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def recorded(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Recorded]:
    folder = tmp_path_factory.mktemp("reencode")
    yield await record_copied_and_reencoded(folder, before=3.0, starve=3.0, after=2.0)


def _wall(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)


async def test_a_reencoded_run_is_placed_by_the_camera_s_clock(recorded: Recorded) -> None:
    # Both runs saw most of the flashes (one a second).
    assert len(recorded.white["copy"]) >= 8 and len(recorded.white["h264"]) >= 6
    for mode in ("copy", "h264"):
        assert abs(recorded.error(mode)) < 0.1, (mode, recorded.error(mode))
    # A chapter or vote taken at the moment of a flash is at that flash's white frame.
    segments = recorded.segments["h264"]
    start = segments[0].entry.start
    timeline = build_timeline(
        [Piece(1, "h264", _wall(anchor(segments) + start), segments[-1].entry.end - start)],
        ongoing=False,
    )
    errors = []
    for t in recorded.white["h264"]:
        made = min(recorded.flashes, key=lambda at: abs(at - (recorded.truth["h264"] + t)))
        offset = timeline.offset_of(_wall(made))
        assert offset is not None
        errors.append(offset - (t - start))
    assert max(abs(e) for e in errors) < 0.2, errors


@pytest.mark.parametrize("first", ["copy", "h264"])
async def test_a_switch_between_copied_and_reencoded_reports_the_real_gap(
    recorded: Recorded, first: str
) -> None:
    second = "h264" if first == "copy" else "copy"
    # The program switches at a segment boundary of each camera, as SessionControl does. Both
    # runs here began together, so the second run from the same segment number joins on (or
    # overlaps a little), and from the next one leaves a gap of about a segment.
    for k, later in ((2, 0), (2, 1), (7, 0), (6, 1)):
        before = [s for s in recorded.segments[first] if s.entry.seq < k]
        after = [s for s in recorded.segments[second] if s.entry.seq >= k + later]
        real = real_gap(recorded, first, before, after)
        zeros = (anchor(recorded.segments[first]), anchor(recorded.segments[second]))
        reported = switch_gap(before, after, zeros)
        # An overlap is no gap; a real gap is reported to within 100 ms.
        assert abs(reported - max(0.0, real)) < 0.1, (first, k, later, real, reported)


async def test_a_starved_reencode_keeps_real_time_and_reports_its_dropped_frames(
    recorded: Recorded,
) -> None:
    status = recorded.status["h264"]
    assert status.frames_dropped > 0 and status.last_drop_at is not None
    assert recorded.status["copy"].frames_dropped == 0
    segments = recorded.segments["h264"]
    drops = [d for s in segments for d in s.dropped]
    assert drops and all(d.cause == ENCODER_BEHIND for d in drops)
    assert recorded.starved is not None
    # Every drop was in or just after the starved window (camera clock placement).
    zero = anchor(segments)
    for drop in drops:
        assert recorded.starved[0] - 0.5 < zero + drop.start < recorded.starved[1] + 2, drop
    # The recording keeps real time: its video at the end is not behind the wall clock by
    # more than the keep-time bound (and a frame or two).
    last = segments[-1]
    behind = (last.observed_at.timestamp() - zero) - last.entry.end
    assert behind < KEEP_TIME_SECONDS + 0.5, behind
    # The media check reports a video hole with the encoder as its cause.
    state = RunState()
    holes = []
    for segment in segments:
        dropped = [Dropped(d.start, d.end, d.cause) for d in segment.dropped]
        packets = await read_packets(segment.path)
        result = check_segment(
            packets, segment.growth, state, THRESHOLD, dropped, segment.entry.start
        )
        holes += result.holes
    video = [h for h in holes if h.kind == "video" and h.cause == ENCODER_BEHIND]
    assert video, holes
    # The hole lies over the dropped frames (both in the segment list's timeline).
    first, last_drop = drops[0].start, drops[-1].end
    assert any(first - 0.5 <= h.media_at <= last_drop for h in video), (video, drops)
    assert timedelta(0) < (status.last_drop_at - _wall(zero)) < timedelta(seconds=60)
