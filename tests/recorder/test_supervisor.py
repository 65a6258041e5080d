"""The capture supervisor with real ffmpeg on a synthetic chamber (320x180, 10 fps, 1 s segments):
segments arrive and play, one SIGINT stops a run cleanly, a killed or stalled ffmpeg is
restarted in a new run folder that never overwrites an old one, and a failing source is
reported with the tail of ffmpeg's own output."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import signal
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import free_port, wait_for
from helpers import ffprobe

from config.settings import RecordingSettings, RtspSource, SyntheticSource
from recorder.audiohub import SoundHole
from recorder.ffmpeg import SEGMENT_LIST, SEGMENT_PATTERN, CaptureSource, ChamberAudio
from recorder.supervisor import (
    DROP_PROBLEM_SECONDS,
    ENCODER_BEHIND,
    SOURCE_BURST,
    AlreadyRecording,
    ArgvBuilder,
    CaptureJob,
    CaptureStatus,
    FinishedSegment,
    FrameClock,
    Recorder,
    _close_fifo,
    _open_fifo,
)

CHAMBER = SyntheticSource(kind="synthetic", width=320, height=180, fps=10, label="test")
SETTINGS = RecordingSettings(
    segment_seconds=1, restart_backoff_initial_seconds=0.25, restart_backoff_max_seconds=1
)


@dataclass
class RunEnd:
    token: int
    exit_code: int | None
    reason: str


@dataclass
class Events:
    """What the supervisor reported (the archive's part in the service), in order."""

    runs: list[tuple[int, Path]] = field(default_factory=list)
    started_files: list[Path] = field(default_factory=list)
    segments: list[FinishedSegment] = field(default_factory=list)
    ended: list[RunEnd] = field(default_factory=list)
    sound_holes: list[SoundHole] = field(default_factory=list)
    exits: int = 0

    async def run_started(
        self, job: CaptureJob, ordinal: int, run_dir: Path, started_at: datetime
    ) -> int:
        self.runs.append((ordinal, run_dir))
        return 1000 + ordinal

    async def segment_started(self, job: CaptureJob, path: Path, started_at: datetime) -> None:
        self.started_files.append(path)

    async def segment_finished(self, job: CaptureJob, segment: FinishedSegment) -> None:
        self.segments.append(segment)

    async def capture_exited(self, job: CaptureJob) -> None:
        self.exits += 1

    async def run_ended(
        self,
        job: CaptureJob,
        run_token: int,
        ended_at: datetime,
        exit_code: int | None,
        reason: str,
    ) -> None:
        self.ended.append(RunEnd(run_token, exit_code, reason))

    async def sound_missing(self, session_id: int, hole: SoundHole) -> None:
        self.sound_holes.append(hole)

    def of_run(self, token: int) -> list[FinishedSegment]:
        return [s for s in self.segments if s.run_token == token]


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[Recorder, Events]]:
    events = Events()
    rec = Recorder(SETTINGS, events)
    try:
        yield rec, events
    finally:
        await asyncio.wait_for(rec.close(), 30)


def job(tmp_path: Path, source: CaptureSource = CHAMBER, session_id: int = 1) -> CaptureJob:
    return CaptureJob(session_id, "sala", "main", source, tmp_path / "media" / str(session_id))


def listed(run_dir: Path) -> list[str]:
    """The files ffmpeg's segment list names, in order."""
    lines = (run_dir / SEGMENT_LIST).read_text().splitlines()
    return [line.split(",")[0] for line in lines if line]


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


async def test_segments_arrive_and_one_sigint_stops_the_run_cleanly(
    tmp_path: Path, recorder: tuple[Recorder, Events]
) -> None:
    rec, events = recorder
    sup = rec.start(job(tmp_path))
    with pytest.raises(AlreadyRecording):
        rec.start(job(tmp_path))

    async def segments(n: int) -> bool:
        return len(events.segments) >= n

    await wait_for(lambda: segments(2), 30, "two finished segments")

    async def into_the_third() -> bool:
        return sup.status.out_time_seconds >= 2.4

    await wait_for(into_the_third, 30, "ffmpeg to be well into the third segment")
    assert sup.status.state == "recording" and sup.pid is not None
    assert sup.status.source_state(datetime.now(UTC), 1) == "live"
    assert rec.is_recording(1) and rec.bytes_per_second() > 0

    await asyncio.wait_for(rec.stop(1), 30)
    assert [(e.token, e.exit_code, e.reason) for e in events.ended] == [(1001, 255, "stopped")]
    assert sup.status.state == "stopped" and sup.pid is None
    assert sup.status.last_error is None and sup.status.restarts == 0
    assert not rec.is_recording(1) and rec.supervisor(1) is None

    run_dir = tmp_path / "media" / "1" / "run-0001"
    assert events.runs == [(1, run_dir)]
    # Every file on disk is listed, reported once, in order, and was announced as it began.
    on_disk = sorted(p.name for p in run_dir.glob("*.ts"))
    assert listed(run_dir) == on_disk == [s.entry.file for s in events.segments]
    assert len(on_disk) >= 3  # the segment cut short by the stop is finished and listed too
    assert [p.name for p in events.started_files] == on_disk
    for segment in events.segments:
        assert segment.path.stat().st_size == segment.size_bytes > 0
        info = await ffprobe(str(segment.path))
        streams = {s["codec_type"]: s for s in info["streams"]}
        assert streams["video"]["codec_name"] == "h264"
        assert (streams["video"]["width"], streams["video"]["height"]) == (320, 180)
        assert streams["audio"]["codec_name"] == "aac"
        assert streams["audio"]["sample_rate"] == "48000"
        duration = float(info["format"]["duration"])
        assert 0 < duration < 1.5
    full = events.segments[:-1]
    assert all(abs(s.entry.duration - 1.0) < 0.1 for s in full)


async def test_a_killed_ffmpeg_is_restarted_in_a_new_folder_and_nothing_is_overwritten(
    tmp_path: Path, recorder: tuple[Recorder, Events]
) -> None:
    rec, events = recorder
    capture = job(tmp_path)
    # A run left by an earlier obrady: its number is never used again.
    earlier = capture.media_dir / "run-0003"
    earlier.mkdir(parents=True)
    (earlier / (SEGMENT_PATTERN % 0)).write_bytes(b"recorded before the restart")
    (earlier / SEGMENT_LIST).write_text("seg-000000.ts,0.000000,1.000000\n")
    kept = digest(earlier)

    sup = rec.start(capture)

    async def segments_of(token: int, n: int) -> bool:
        return len(events.of_run(token)) >= n

    await wait_for(lambda: segments_of(1004, 1), 30, "the first segment of run 4")
    pid = sup.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)

    async def run_ended() -> bool:
        return bool(events.ended)

    await wait_for(run_ended, 30, "the killed run to be reported")
    assert (events.ended[0].token, events.ended[0].exit_code) == (1004, -signal.SIGKILL)
    assert events.ended[0].reason == "ffmpeg was killed (signal 9)"
    first = capture.media_dir / "run-0004"
    after_kill = digest(first)

    await wait_for(lambda: segments_of(1005, 2), 30, "two segments of the restarted run 5")
    assert sup.status.restarts == 1 and sup.status.run_ordinal == 5
    assert sup.status.failing_since is None  # new segments: the source is live again
    await asyncio.wait_for(rec.stop(1), 30)

    assert [ordinal for ordinal, _ in events.runs] == [4, 5]
    assert [(e.token, e.exit_code) for e in events.ended] == [(1004, -9), (1005, 255)]
    assert digest(earlier) == kept
    assert digest(first) == after_kill  # the new attempt wrote only into run-0005
    second = capture.media_dir / "run-0005"
    assert sorted(p.name for p in second.glob("*.ts")) == listed(second)
    assert [s.path.parent for s in events.of_run(1005)] == [second] * len(events.of_run(1005))
    for segment in events.of_run(1004):
        info = await ffprobe(str(segment.path))  # finished before the kill: still playable
        assert {s["codec_name"] for s in info["streams"]} == {"h264", "aac"}


async def test_an_unreachable_camera_is_retried_and_reported_with_ffmpegs_output(
    tmp_path: Path, recorder: tuple[Recorder, Events], caplog: pytest.LogCaptureFixture
) -> None:
    rec, events = recorder
    port = free_port()  # nobody listens: the camera refuses the connection
    camera = RtspSource(kind="rtsp", url=f"rtsp://127.0.0.1:{port}/cam", video="copy", audio="aac")
    capture = job(tmp_path, camera, session_id=3)
    with caplog.at_level(logging.ERROR, logger="recorder.supervisor"):
        sup = rec.start(capture)

        async def retried() -> bool:
            return sup.status.restarts >= 2

        await wait_for(retried, 30, "two restarts")
        assert sup.status.source_state(datetime.now(UTC), 1) == "reconnecting"
        assert sup.status.last_exit_code == 1
        await asyncio.wait_for(rec.stop(3), 30)

    error = sup.status.last_error or ""
    assert error.startswith("ffmpeg failed (exit code 1): ")
    assert error.endswith(f"rtsp://127.0.0.1:{port}/cam: Connection refused")
    failures = [r.getMessage() for r in caplog.records if "last output:" in r.getMessage()]
    assert failures, "the abnormal exit was not logged"
    assert f"session 3: ffmpeg failed (exit code 1): rtsp://127.0.0.1:{port}/cam" in failures[0]
    assert f"Connection to tcp://127.0.0.1:{port}" in failures[0]  # the tail, not one line
    # Nothing was recorded: no run was reported and no empty run folder is left behind.
    assert events.runs == [] and events.ended == [] and events.exits >= 2
    assert not capture.media_dir.exists() or list(capture.media_dir.iterdir()) == []


def stalled_camera_argv(port: int) -> ArgvBuilder:
    """An argv builder for a camera whose connection stays open but sends no media."""

    def build(
        source: CaptureSource, run_dir: Path, segment_seconds: float, audio: ChamberAudio | None
    ) -> list[str]:
        return [
            "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "warning", "-nostats",
            "-progress", "pipe:1",
            "-f", "mpegts", "-i", f"tcp://127.0.0.1:{port}", "-c", "copy",
            "-f", "segment", "-segment_time", f"{segment_seconds:g}",
            "-segment_format", "mpegts", "-segment_list", str(run_dir / SEGMENT_LIST),
            "-segment_list_type", "csv", "-n", str(run_dir / SEGMENT_PATTERN),
        ]  # fmt: skip

    return build


async def test_a_stalled_source_is_restarted_by_the_progress_watchdog(tmp_path: Path) -> None:
    connections: list[asyncio.StreamWriter] = []

    async def accept_and_say_nothing(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)

    server = await asyncio.start_server(accept_and_say_nothing, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    events = Events()
    settings = SETTINGS.model_copy(update={"stall_timeout_seconds": 1.0})
    rec = Recorder(settings, events, argv_builder=stalled_camera_argv(port))
    try:
        sup = rec.start(job(tmp_path))

        async def restarted() -> bool:
            return sup.status.restarts >= 1 and len(connections) >= 2

        await wait_for(restarted, 30, "the watchdog to restart the stalled capture")
        assert sup.status.last_error == "no media from the source for 1 s"
        # The stalled ffmpeg heeded its one SIGINT (it gives up probing with exit code 1); it
        # did not have to be killed.
        assert sup.status.last_exit_code is not None and sup.status.last_exit_code >= 0
    finally:
        await asyncio.wait_for(rec.close(), 30)
        for writer in connections:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await asyncio.wait_for(writer.wait_closed(), 10)
        server.close()
        await asyncio.wait_for(server.wait_closed(), 10)
    assert events.runs == [] and events.segments == []


async def test_a_files_start_is_reported_before_its_end_when_the_listener_is_slow(
    tmp_path: Path,
) -> None:
    """A listener that holds the supervisor up across a segment boundary (a busy machine)
    still hears of every file's start before its end, in the order ffmpeg made them."""

    order: list[tuple[str, str]] = []

    class Slow(Events):
        async def segment_started(self, job: CaptureJob, path: Path, started_at: datetime) -> None:
            order.append(("started", path.name))

        async def segment_finished(self, job: CaptureJob, segment: FinishedSegment) -> None:
            order.append(("finished", segment.path.name))
            if len(self.segments) == 0:
                await asyncio.sleep(2.5)  # longer than two segments
            self.segments.append(segment)

    events = Slow()
    async with Recorder(SETTINGS, events) as recorder:
        recorder.start(job(tmp_path))

        async def four() -> bool:
            return len(events.segments) >= 4

        await wait_for(four, 30, "four segments reported")
    finished = [name for kind, name in order if kind == "finished"]
    started = [name for kind, name in order if kind == "started"]
    for name in finished:
        assert ("started", name) in order, f"{name} ended without a start: {order}"
        assert order.index(("started", name)) < order.index(("finished", name)), order
    assert started == sorted(started) and len(set(started)) == len(started), order
    assert finished == sorted(finished), order


async def test_a_stop_while_a_segment_is_being_reported_loses_no_segment(
    tmp_path: Path,
) -> None:
    """ffmpeg ends while the listener is still taking a segment (a slow archive): every
    segment ffmpeg listed is still reported, in every one of several stops."""

    class Slow(Events):
        async def segment_finished(self, job: CaptureJob, segment: FinishedSegment) -> None:
            await asyncio.sleep(0.8)  # most of a segment's second
            self.segments.append(segment)

    for attempt in range(3):
        events = Slow()
        folder = tmp_path / str(attempt)
        async with Recorder(SETTINGS, events) as recorder:
            recorder.start(job(folder))

            async def two(events: Slow = events) -> bool:
                return len(events.segments) >= 2

            await wait_for(two, 30, "two segments reported")
            # Stop at a different point of the reporting each time.
            await asyncio.sleep(0.1 * attempt)
            await asyncio.wait_for(recorder.stop(1), 30)
        run_dir = folder / "media" / "1" / "run-0001"
        assert [s.entry.file for s in events.segments] == listed(run_dir), attempt


def test_frame_times_tell_drops_by_cause() -> None:
    clock = FrameClock()

    def frame(pts: float, arrived: float, kept: bool) -> None:
        clock.line(f"frame:0    pts:0       pts_time:{pts}", arrived)
        clock.line("in=1", arrived)
        if kept:
            clock.line(f"frame:0    pts:0       pts_time:{pts}", arrived)
            clock.line("out=1", arrived)

    frame(0.96, 99.0, True)  # the first second does not count (the warm-up)
    assert clock.zero_at is None
    frame(1.0, 101.05, True)
    frame(1.04, 101.07, True)  # the most punctual: media 0 at 100.03
    frame(1.08, 101.5, False)  # decoded late, steadily: the encoder's fault
    frame(1.12, 101.6, False)
    frame(1.16, 101.2, True)
    assert clock.zero_at == pytest.approx(100.03)
    assert clock.dropped_frames == 2
    assert clock.dropped[-1].start == 1.08 and clock.dropped[-1].end == 1.16
    assert clock.dropped[-1].cause == ENCODER_BEHIND
    frame(1.20, 102.5, False)  # after 1.3 s with nothing decoded: the source was quiet
    frame(1.24, 102.5, True)
    assert clock.dropped[-1].cause == SOURCE_BURST
    assert clock.dropped_within(1.0, 1.1) == (clock.dropped[0],)


def test_a_capture_that_dropped_frames_lately_has_the_encoder_problem() -> None:
    status = CaptureStatus(1, "sala", "main")
    now = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    assert status.encoder_problems(now) == []
    status.frames_dropped, status.last_drop_at = 12, now - timedelta(seconds=5)
    assert status.encoder_problems(now) == [f"{ENCODER_BEHIND} (12 frames dropped in this session)"]
    assert status.encoder_problems(now + timedelta(seconds=DROP_PROBLEM_SECONDS)) == []


def test_a_run_s_fifo_or_dev_null_where_none_can_be_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fifo = tmp_path / "frames.fifo"
    fds = _open_fifo(fifo)
    assert fds is not None and stat.S_ISFIFO(fifo.stat().st_mode)
    os.write(fds[1], b"frame:0 pts:0 pts_time:0\n")
    assert os.read(fds[0], 100) == b"frame:0 pts:0 pts_time:0\n"
    _close_fifo(fifo, fds)
    assert not fifo.exists()

    def refused(path: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "mkfifo", refused)
    assert _open_fifo(fifo) is None
    assert os.readlink(fifo) == os.devnull  # ffmpeg writes its frame times to nowhere
    _close_fifo(fifo, None)
    assert not fifo.is_symlink()
