"""The chamber's sound opened and encoded once (recorder/audiohub.py) and shared by every camera:
real test cameras (a clock code in the picture, a click at every wall second in the sound),
a real hub and the capture argv each camera runs."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cameras.camera import RtspCamera
from cameras.media_clock import MediaClock, read_media_clock, record_clock
from conftest import free_port, hub_receiving, wait_for

from config.settings import RecordingSettings, RtspAudio, RtspSource
from recorder.audiohub import AudioHub, SoundHole
from recorder.ffmpeg import SEGMENT_LIST, capture_argv
from recorder.supervisor import SOUND_HOLES, CaptureJob, FinishedSegment, Recorder

WIDTH, FPS = 320, 25
LIPSYNC_SECONDS = 0.1  # the goal


def ffmpeg_argvs() -> list[list[str]]:
    """The argv of every ffmpeg running on the machine now."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().decode("utf-8", "replace").split("\0")
        except OSError:
            continue
        if argv and argv[0].endswith("ffmpeg"):
            found.append(argv)
    return found


class Holes:
    """What the hub reports, collected from its threads."""

    def __init__(self) -> None:
        self.found: list[SoundHole] = []
        self._lock = threading.Lock()

    def __call__(self, hole: SoundHole) -> None:
        with self._lock:
            self.found.append(hole)


def assert_in_sync(clock: MediaClock, name: str, holes: int = 0) -> None:
    """Every click heard once, at most `holes` runs of them missing, each within 100 ms of the
    picture."""
    assert len(clock.changes) >= 2 * FPS, f"{name}: the picture's clock did not read back"
    walls = [click.wall for click in clock.clicks]
    assert len(walls) >= 2, (name, clock.clicks)
    steps = [b - a for a, b in zip(walls, walls[1:], strict=False)]
    assert all(step >= 1.0 and step == int(step) for step in steps), (name, walls)
    assert sum(1 for step in steps if step > 1.0) <= holes, (name, walls)
    offsets = clock.lipsync()
    assert offsets, (name, clock.clicks)
    assert max(abs(x) for x in offsets) <= LIPSYNC_SECONDS, (name, offsets)


@dataclass
class Events:
    """What the recorder reported, per camera."""

    runs: dict[str, list[Path]] = field(default_factory=dict)
    segments: dict[str, list[FinishedSegment]] = field(default_factory=dict)
    sound_holes: list[SoundHole] = field(default_factory=list)

    async def run_started(
        self, job: CaptureJob, ordinal: int, run_dir: Path, started_at: datetime
    ) -> int:
        self.runs.setdefault(job.camera_id, []).append(run_dir)
        return ordinal

    async def segment_started(self, job: CaptureJob, path: Path, started_at: datetime) -> None:
        pass

    async def segment_finished(self, job: CaptureJob, segment: FinishedSegment) -> None:
        self.segments.setdefault(job.camera_id, []).append(segment)

    async def capture_exited(self, job: CaptureJob) -> None:
        pass

    async def run_ended(self, *args: object) -> None:
        pass

    async def sound_missing(self, session_id: int, hole: SoundHole) -> None:
        self.sound_holes.append(hole)


async def test_a_microphone_outage_is_a_reported_hole_and_the_pictures_go_on(
    tmp_path: Path,
) -> None:
    """A copied H.264 camera and a re-encoded H.265 one record the chamber's sound at once: one
    ffmpeg opens the microphones and one encodes AAC; both cameras copy it, in sync. The
    microphone system goes away for 2 s: the hub sends silence meanwhile, so neither camera's
    picture waits or restarts; the hole is reported on the wall clock, covering exactly the
    seconds whose clicks are missing; then the sound comes back in the same runs, in sync."""
    cameras = {
        "a": RtspCamera(free_port(), audio="none", fps=FPS, clock_code=True, watched=True),
        "b": RtspCamera(
            free_port(), video="h265", audio="none", fps=FPS, clock_code=True, watched=True
        ),
    }
    mic_port = free_port()

    def microphones() -> RtspCamera:
        return RtspCamera(mic_port, video="none", audio="pcma", clicks=True, watched=True)

    mics = microphones()
    events = Events()
    audio = RtspAudio(kind="rtsp", url=mics.url, timeout_seconds=2)
    settings = RecordingSettings(segment_seconds=1)
    try:
        async with asyncio.TaskGroup() as starting:
            for camera in (*cameras.values(), mics):
                starting.create_task(camera.start())
        async with Recorder(settings, events) as recorder:
            for name, camera in cameras.items():
                video = "copy" if name == "a" else "h264"
                source = RtspSource(kind="rtsp", url=camera.url, video=video)
                recorder.start(CaptureJob(1, "sala", name, source, tmp_path / name, audio))
            hub = recorder.hub(1)
            assert hub is not None
            links = [recorder.supervisor(1, name).job.audio for name in cameras]  # type: ignore[union-attr]
            assert links == [hub.link, hub.link]

            async def segments(count: int) -> bool:
                return all(len(events.segments.get(name, [])) >= count for name in cameras)

            await wait_for(lambda: segments(2), 30, "2 segments of each camera")
            running = ffmpeg_argvs()
            opened = [argv for argv in running if mics.url in argv]
            encodes = [argv for argv in running if "aac" in argv and "-c:a" in argv]
            # The hub's source (and the test camera's own viewer); the hub's encoder alone: the
            # cameras copy its AAC.
            assert len(opened) == 1 + 1, opened
            assert len(encodes) == 1, encodes
            went = time.time()
            await mics.stop()
            await asyncio.sleep(2)
            mics = microphones()
            await mics.start()
            came = time.time()

            async def reported() -> bool:
                return bool(events.sound_holes)

            await wait_for(reported, 15, "the hole's report")
            done = len(events.segments["a"]) + 2
            await wait_for(lambda: segments(done), 30, f"{done} segments")
    finally:
        for camera in (*cameras.values(), mics):
            await camera.stop()
    [hole] = events.sound_holes
    start, end = hole.start.timestamp(), hole.start.timestamp() + hole.seconds
    assert went - 0.5 <= start <= went + 0.5, (went, hole)
    assert came - 0.5 <= end <= came + 5, (came, hole)
    assert "sound" in hole.cause, hole
    recorded = [json.loads(line) for line in (tmp_path / SOUND_HOLES).read_text().splitlines()]
    assert recorded == [
        {"start": hole.start.isoformat(), "seconds": hole.seconds, "cause": hole.cause}
    ]
    for name in cameras:
        assert len(events.runs[name]) == 1, (name, events.runs)  # never restarted
        files = [segment.path for segment in events.segments[name]]
        clock = await read_media_clock(files, WIDTH)
        assert clock.picture_jumps(0.5) == [], name
        heard = [click.wall for click in clock.clicks]
        # A click marks its second as the microphones made it; where the recording has it
        # may differ by the lip-sync error (up to 100 ms, the bound): within that of
        # the hole's edges, a click may be heard or not.
        assert not [w for w in heard if start + 0.1 < w < end - 0.1], (name, heard, hole)
        # Every whole second outside the hole was heard, from the first click on (a run's
        # sound starts about 0.26 s after its picture: docs/chamber-audio.md) to the end of
        # the picture.
        assert heard and heard[0] < start, (name, "no sound before the hole", heard)
        expected = [
            float(w)
            for w in range(int(heard[0]), int(clock.changes[-1][1]))
            if not start - 0.1 <= w <= end + 0.1
        ]
        assert set(expected) <= set(heard), (name, sorted(set(expected) - set(heard)), hole)
        assert [w for w in heard if w > end], (name, "no sound after the hole")
        assert_in_sync(clock, name, holes=1)


async def test_an_encoder_that_dies_is_started_again_and_its_loss_reported(
    tmp_path: Path,
) -> None:
    """The hub's AAC encoder is killed: the hub starts another at once, on the same clock, and
    reports the sound that reached no camera meanwhile; a camera recording through it keeps
    its run and hears the clicks again, in sync."""
    camera = RtspCamera(free_port(), audio="none", fps=FPS, clock_code=True, watched=True)
    mics = RtspCamera(free_port(), video="none", audio="pcma", clicks=True, watched=True)
    holes = Holes()
    # A threshold below what a restart loses: the loss must be reported, however short.
    hub = AudioHub(RtspAudio(kind="rtsp", url=mics.url), hole_threshold=0.01, on_hole=holes)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    try:
        async with asyncio.TaskGroup() as starting:
            starting.create_task(camera.start())
            starting.create_task(mics.start())
        hub.start()

        await hub_receiving(hub)
        source = RtspSource(kind="rtsp", url=camera.url)
        recording = asyncio.ensure_future(
            record_clock(capture_argv(source, run_dir, 1, hub.link), run_dir, WIDTH, seconds=5)
        )
        await asyncio.sleep(2)
        encoder = hub._encoder
        assert encoder is not None and encoder.poll() is None
        killed = time.time()
        encoder.kill()

        async def restarted() -> bool:
            return hub.status.encoder_restarts == 1 and hub._encoder is not encoder

        await wait_for(restarted, 5, "a new encoder")
        clock = await recording
    finally:
        await asyncio.to_thread(hub.stop)
        await camera.stop()
        await mics.stop()
    # Besides the hub's start (silence until the microphones' first 0.2 s arrived), one hole.
    [hole] = [h for h in holes.found if h.start.timestamp() > killed - 1]
    assert "encoder" in hole.cause, hole
    assert killed - 0.5 <= hole.start.timestamp() <= killed + 0.5, (killed, hole)
    assert hole.seconds < 1.0, hole
    assert len((run_dir / SEGMENT_LIST).read_text().split()) >= 4  # one run, never ended
    heard = [click.wall for click in clock.clicks]
    assert [w for w in heard if w > killed + 1], ("no sound after the restart", heard)
    assert_in_sync(clock, "restarted encoder")


async def test_a_camera_that_sends_b_frames_opens_the_chamber_sound_itself(
    tmp_path: Path,
) -> None:
    """Packets stamped as they arrive would put a B-frame camera's frames in the order they
    were sent (measured: a fifth of them lost, the sound 157 ms ahead): such a copied camera
    opens the chamber sound itself, and its picture and sound stay whole and in sync."""
    camera = RtspCamera(
        free_port(), video="h264-bframes", audio="none", fps=FPS, clock_code=True, watched=True
    )
    mics = RtspCamera(free_port(), video="none", audio="pcma", clicks=True, watched=True)
    events = Events()
    audio = RtspAudio(kind="rtsp", url=mics.url)
    try:
        async with asyncio.TaskGroup() as starting:
            starting.create_task(camera.start())
            starting.create_task(mics.start())
        async with Recorder(RecordingSettings(segment_seconds=1), events) as recorder:
            source = RtspSource(kind="rtsp", url=camera.url, video="copy")
            supervisor = recorder.start(CaptureJob(1, "sala", "b", source, tmp_path / "b", audio))

            async def segments() -> bool:
                return len(events.segments.get("b", [])) >= 4

            await wait_for(segments, 30, "4 segments")
            assert supervisor.status.audio_mode == "chamber (own: the camera sends B-frames)"
            argv = next(
                a for a in ffmpeg_argvs() if camera.url in a and SEGMENT_LIST in " ".join(a)
            )
            assert mics.url in argv, argv  # its own pull of the microphones
    finally:
        await camera.stop()
        await mics.stop()
    files = [segment.path for segment in events.segments["b"]]
    clock = await read_media_clock(files, WIDTH)
    shown = clock.changes[-1][1] - clock.changes[0][1]
    assert len(clock.frames) >= 0.95 * shown * FPS, (len(clock.frames), shown)
    assert_in_sync(clock, "b-frames")
