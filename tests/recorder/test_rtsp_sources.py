"""Real RTSP cameras recorded by the capture argv: H.264 copied, H.265 re-encoded, audio as AAC."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cameras.camera import RtspCamera
from conftest import free_port, wait_for
from helpers import decoded_duration, ffprobe

from config.settings import RtspSource, TranscodingSettings
from recorder.ffmpeg import SEGMENT_LIST, SegmentEntry, capture_argv, parse_segment_line

WIDTH, HEIGHT, FPS = 320, 180, 10
# x264enc in the camera sends Constrained Baseline; ffmpeg's libx264 would make High. Seeing
# the camera's profile in the segments proves the video was copied, not re-encoded.
CAMERA_H264_PROFILE = "Constrained Baseline"
# Warnings that mean broken timestamps in the segments (see recorder/ffmpeg.py).
TIMESTAMP_TROUBLE = ("Non-monotonous DTS", "Timestamps are unset", "Invalid DTS")


class FfmpegRun:
    """One ffmpeg process in its own session, its output drained; stopped with one SIGINT."""

    def __init__(self, argv: list[str], cwd: Path) -> None:
        self.argv = argv
        self.cwd = cwd
        self.stderr: list[str] = []
        self.returncode: int | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._drains: list[asyncio.Task[None]] = []

    async def _drain(self, stream: asyncio.StreamReader, keep: bool) -> None:
        async for raw in stream:
            if keep:
                self.stderr.append(raw.decode("utf-8", "replace").rstrip())

    async def start(self) -> None:
        """Start ffmpeg; its -progress output on stdout is read and dropped."""
        self._proc = await asyncio.create_subprocess_exec(
            *self.argv,
            cwd=self.cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        assert self._proc.stdout is not None and self._proc.stderr is not None
        self._drains = [
            asyncio.create_task(self._drain(self._proc.stdout, keep=False)),
            asyncio.create_task(self._drain(self._proc.stderr, keep=True)),
        ]

    @property
    def exited(self) -> bool:
        """Whether ffmpeg has ended by itself."""
        return self._proc is not None and self._proc.returncode is not None

    async def stop(self, timeout: float = 15) -> None:
        """Exactly one SIGINT (a second one can spoil the last segment), then SIGKILL if stuck."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGINT)
                try:
                    await asyncio.wait_for(proc.wait(), timeout)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await asyncio.wait_for(proc.wait(), timeout)
            self.returncode = proc.returncode
        drains, self._drains = self._drains, []
        if drains:
            _, pending = await asyncio.wait(drains, timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*drains, return_exceptions=True)


@contextlib.asynccontextmanager
async def recording(argv: list[str], cwd: Path) -> AsyncIterator[FfmpegRun]:
    """Run ffmpeg for the body of the with-block; it is stopped however the block ends."""
    run = FfmpegRun(argv, cwd)
    try:
        await run.start()
        yield run
    finally:
        await run.stop()


def listed_segments(run_dir: Path) -> list[SegmentEntry]:
    """The finished segments ffmpeg has written to the segment list so far."""
    listing = run_dir / SEGMENT_LIST
    if not listing.is_file():
        return []
    lines = listing.read_text("utf-8", "replace").splitlines()
    return [e for e in map(parse_segment_line, lines) if e is not None]


@pytest.mark.parametrize(
    ("camera_video", "camera_audio", "record_video"),
    [
        pytest.param("h264", "aac", "copy", id="h264-aac-copy"),
        pytest.param("h264", "pcma", "copy", id="h264-pcma-copy"),
        pytest.param("h264", "pcmu", "copy", id="h264-pcmu-copy"),
        pytest.param("h264", "none", "copy", id="h264-noaudio-copy"),
        pytest.param("h265", "aac", "h264", id="h265-aac-reencode"),
    ],
)
async def test_rtsp_camera_recorded_as_h264_aac_segments(
    tmp_path: Path, camera_video: str, camera_audio: str, record_video: str
) -> None:
    run_dir = tmp_path / "run-0001"
    run_dir.mkdir()
    camera = RtspCamera(
        free_port(), video=camera_video, audio=camera_audio, width=WIDTH, height=HEIGHT, fps=FPS
    )
    source = RtspSource.model_validate({"kind": "rtsp", "url": camera.url, "video": record_video})
    argv = capture_argv(source, run_dir, 1)
    if record_video == "copy":
        assert argv[argv.index("-c:v") + 1] == "copy"

    async with camera, recording(argv, tmp_path) as ffmpeg:

        async def three_segments() -> list[SegmentEntry] | None:
            if ffmpeg.exited:
                raise AssertionError("ffmpeg ended by itself:\n" + "\n".join(ffmpeg.stderr))
            entries = listed_segments(run_dir)
            return entries if len(entries) >= 3 else None

        await wait_for(three_segments, 30, "three segments in segments.csv", interval=0.2)
    assert camera.returncode == 0, camera.stderr_tail
    stderr = "\n".join(ffmpeg.stderr)
    # ffmpeg finishes its segment and exits 255 after one SIGINT.
    assert ffmpeg.returncode in (0, 255), stderr
    assert not [w for w in TIMESTAMP_TROUBLE if w in stderr], stderr

    entries = listed_segments(run_dir)
    on_disk = sorted(p.name for p in run_dir.glob("seg-*.ts"))
    assert [e.file for e in entries] == on_disk
    assert [e.seq for e in entries] == list(range(len(entries)))
    assert len(entries) >= 3

    for entry in entries:
        info = await ffprobe(str(run_dir / entry.file))
        video = [s for s in info["streams"] if s["codec_type"] == "video"]
        audio = [s for s in info["streams"] if s["codec_type"] == "audio"]
        assert len(video) == 1, (entry.file, info["streams"])
        assert video[0]["codec_name"] == "h264"
        assert (video[0]["width"], video[0]["height"]) == (WIDTH, HEIGHT)
        if record_video == "copy":
            assert video[0]["profile"] == CAMERA_H264_PROFILE, entry.file
        else:
            assert video[0]["profile"] != CAMERA_H264_PROFILE, entry.file
        if camera_audio == "none":
            assert audio == [], entry.file
        else:
            assert len(audio) == 1, (entry.file, info["streams"])
            assert audio[0]["codec_name"] == "aac"
            assert audio[0]["sample_rate"] == "48000"

    # The segment list's times add up to the media actually in the files.
    listed = sum(e.duration for e in entries)
    concat = "concat:" + "|".join(str(run_dir / e.file) for e in entries)
    decoded = await decoded_duration(concat, timeout=30)
    assert listed >= 3
    assert abs(listed - decoded) < 1.0, (listed, decoded, [e.duration for e in entries])


async def video_packets(path: Path) -> list[tuple[float, int]]:
    """(pts seconds, bytes) of every video packet in a file, in presentation order."""
    proc = await asyncio.create_subprocess_exec(
        "ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
        "packet=pts_time,size", "-of", "json", str(path),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, path
    return sorted((float(p["pts_time"]), int(p["size"])) for p in json.loads(out)["packets"])


async def test_h265_camera_reencoded_within_the_configured_bitrate_cap(tmp_path: Path) -> None:
    # crf 1 alone would spend megabits a second on the test picture's snow (that is what the cap
    # must stop); the cap lets at most max_kbps * seconds + the buffer through.
    settings = TranscodingSettings(crf=1, max_kbps=300, buffer_seconds=1, max_height=240, fps=20)
    run_dir = tmp_path / "run-0001"
    run_dir.mkdir()
    camera = RtspCamera(free_port(), video="h265", audio="none", width=640, height=360, fps=25)
    source = RtspSource(kind="rtsp", url=camera.url, video="h264", transcoding=settings)
    argv = capture_argv(source, run_dir, 1)

    async with camera, recording(argv, tmp_path) as ffmpeg:

        async def five_segments() -> list[SegmentEntry] | None:
            if ffmpeg.exited:
                raise AssertionError("ffmpeg ended by itself:\n" + "\n".join(ffmpeg.stderr))
            entries = listed_segments(run_dir)
            return entries if len(entries) >= 5 else None

        await wait_for(five_segments, 40, "five segments in segments.csv", interval=0.2)
    assert ffmpeg.returncode in (0, 255), ffmpeg.stderr

    entries = listed_segments(run_dir)
    joined = tmp_path / "joined.ts"
    joined.write_bytes(b"".join((run_dir / e.file).read_bytes() for e in entries))
    info = await ffprobe(str(joined))
    (video,) = [s for s in info["streams"] if s["codec_type"] == "video"]
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", 426, 240)
    assert video["r_frame_rate"] == "20/1"

    packets = await video_packets(joined)
    seconds = packets[-1][0] - packets[0][0] + 1 / settings.fps
    assert seconds >= 4, seconds
    kbits = sum(size for _, size in packets) * 8 / 1000
    # The VBV bound, with 10% for x264's estimate of the buffer (it is not exact).
    bound = settings.max_kbps * (seconds + settings.buffer_seconds)
    assert kbits <= 1.1 * bound, (kbits, bound, seconds)
    # Well above the camera's quality setting alone would have gone: the cap did the work.
    assert kbits >= 0.5 * settings.max_kbps * seconds, (kbits, seconds)
