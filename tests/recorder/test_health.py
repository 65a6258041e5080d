"""DiskGuard on real file systems: its level follows the configured thresholds, and at the floor
it stops a real capture cleanly (every written segment intact), refuses new ones, and lets
capture start again only once free space is clearly back above the floor."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
from conftest import wait_for
from helpers import ffprobe, small_tmpfs

from config.settings import RecordingSettings, StorageSettings, SyntheticSource
from recorder.audiohub import SoundHole
from recorder.ffmpeg import SEGMENT_LIST
from recorder.health import GB, DiskGuard
from recorder.supervisor import CaptureBlocked, CaptureJob, FinishedSegment, Recorder

MB = 1_000_000
CHAMBER = SyntheticSource(kind="synthetic", width=320, height=180, fps=10, label="test")
RECORDING = RecordingSettings(segment_seconds=1)


@dataclass
class Events:
    """The segments and run endings the recorder reported."""

    segments: list[FinishedSegment] = field(default_factory=list)
    ended: list[tuple[int | None, str]] = field(default_factory=list)
    sound_holes: list[SoundHole] = field(default_factory=list)

    async def run_started(
        self, job: CaptureJob, ordinal: int, run_dir: Path, started_at: datetime
    ) -> int:
        return ordinal

    async def segment_started(self, job: CaptureJob, path: Path, started_at: datetime) -> None:
        pass

    async def segment_finished(self, job: CaptureJob, segment: FinishedSegment) -> None:
        self.segments.append(segment)

    async def capture_exited(self, job: CaptureJob) -> None:
        pass

    async def run_ended(
        self,
        job: CaptureJob,
        run_token: int,
        ended_at: datetime,
        exit_code: int | None,
        reason: str,
    ) -> None:
        self.ended.append((exit_code, reason))

    async def sound_missing(self, session_id: int, hole: SoundHole) -> None:
        self.sound_holes.append(hole)


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[Recorder, Events]]:
    events = Events()
    rec = Recorder(RECORDING, events)
    try:
        yield rec, events
    finally:
        await asyncio.wait_for(rec.close(), 30)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 32 MB tmpfs of our own."""
    with small_tmpfs(tmp_path / "disk", 32) as mount:
        yield mount


def free_gb(path: Path) -> float:
    return shutil.disk_usage(path).free / GB


@pytest.mark.parametrize(
    ("warn_above", "floor_above", "level"),
    [(-5.0, -5.0, "ok"), (5.0, -5.0, "warning"), (5.0, 5.0, "full")],
)
async def test_level_follows_the_thresholds(
    tmp_path: Path,
    recorder: tuple[Recorder, Events],
    warn_above: float,
    floor_above: float,
    level: str,
) -> None:
    # Thresholds 5 GB either side of the real free space: other writers on this disk cannot
    # move it across them during the test.
    rec, _ = recorder
    free = free_gb(tmp_path)
    storage = StorageSettings(
        warn_free_gb=max(0.0, free + warn_above), min_free_gb=max(0.0, free + floor_above)
    )
    guard = DiskGuard(tmp_path / "data", storage, rec)
    status = await guard.check()
    assert status.level == level
    assert (tmp_path / "data").is_dir()  # the data directory is made if missing
    assert abs(status.free_bytes / GB - free) < 1.0 and status.total_bytes >= status.free_bytes
    assert status.hours_left is None  # nothing is recording
    if level == "full":
        assert rec.blocked is not None and "storage.min_free_gb" in rec.blocked
        with pytest.raises(CaptureBlocked, match="disk full"):
            rec.start(CaptureJob(1, "sala", "main", CHAMBER, tmp_path / "media"))
    else:
        assert rec.blocked is None


async def test_the_floor_stops_capture_cleanly_and_only_clear_room_lets_it_resume(
    small_disk: Path, recorder: tuple[Recorder, Events]
) -> None:
    rec, events = recorder
    storage = StorageSettings(warn_free_gb=16 * MB / GB, min_free_gb=8 * MB / GB)
    guard = DiskGuard(small_disk, storage, rec)
    fillers: list[Path] = []

    def fill_to(free_bytes: int) -> None:
        """Write a filler file that leaves about free_bytes free."""
        size = shutil.disk_usage(small_disk).free - free_bytes
        path = small_disk / f"filler-{len(fillers)}.bin"
        path.write_bytes(b"\0" * size)
        fillers.append(path)

    assert (await guard.check()).level == "ok"
    media = small_disk / "media"
    rec.start(CaptureJob(1, "sala", "main", CHAMBER, media))

    async def segments(n: int) -> bool:
        return len(events.segments) >= n

    await wait_for(lambda: segments(2), 30, "two segments")
    fill_to(12 * MB)
    warned = await guard.check()
    assert warned.level == "warning" and rec.blocked is None and rec.is_recording(1)
    hours = guard.snapshot().hours_left
    assert hours is not None and hours > 0  # free space over the rate the capture writes at

    checking = asyncio.create_task(guard.run())
    try:
        fill_to(6 * MB)

        async def stopped() -> bool:
            return guard.status.level == "full" and not rec.is_recording(1)

        await wait_for(stopped, 30, "the periodic check to stop capture at the floor")
    finally:
        checking.cancel()
        await asyncio.wait_for(asyncio.gather(checking, return_exceptions=True), 10)

    [(exit_code, reason)] = events.ended
    assert exit_code == 255  # one SIGINT: ffmpeg finished its segment
    assert reason.startswith("disk full:") and "storage.min_free_gb = 0.008" in reason
    assert rec.blocked == reason
    with pytest.raises(CaptureBlocked):
        rec.start(CaptureJob(1, "sala", "main", CHAMBER, media))
    # Every segment written before the stop is listed, reported and playable; none deleted.
    run_dir = media / "run-0001"
    on_disk = sorted(p.name for p in run_dir.glob("*.ts"))
    lines = (run_dir / SEGMENT_LIST).read_text().splitlines()
    assert (
        on_disk == [line.split(",")[0] for line in lines] == [s.entry.file for s in events.segments]
    )
    for segment in events.segments:
        info = await ffprobe(str(segment.path))
        assert {s["codec_name"] for s in info["streams"]} == {"h264", "aac"}

    fillers.pop().unlink()
    fill_to(8 * MB + 400_000)  # above the floor, but by less than the resume margin
    held = await guard.check()
    assert held.level == "full" and rec.blocked is not None

    fillers.pop().unlink()  # about 12 MB free: clearly room again (still under warn_free_gb)
    resumed = await guard.check()
    assert resumed.level == "warning" and rec.blocked is None
    rec.start(CaptureJob(1, "sala", "main", CHAMBER, media))
    await wait_for(lambda: segments(len(on_disk) + 1), 30, "a segment after resuming")
    assert events.segments[-1].path.parent == media / "run-0002"
    await asyncio.wait_for(rec.stop(1), 30)
    assert all(path.exists() for path in fillers)  # the guard never deletes anything
