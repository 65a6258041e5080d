"""Pre-flight checks of a chamber's cameras before a session: a preview picture and an audio meter
per camera, and short test recordings that a browser can play.

Each camera gets ONE ffmpeg on demand (the console asking for the pre-flight view or a preview
starts it; `preflight.idle_seconds` without a request stops it). It opens the camera exactly as
capture does (recorder/ffmpeg.py's inputs: the same RTSP options, the same synthetic picture with
its label and clock) and has two outputs: a JPEG rewritten in place every
`preview_every_seconds` (`-update 1`, written atomically, so a reader never sees half a file)
and the audio's peak and RMS level every `meter_every_seconds`, printed by
`astats`/`ametadata` on stdout and read line by line.

While a session is being recorded in the chamber, a camera under capture gets no pre-flight
ffmpeg, so the camera sees no extra connection: its preview is the first picture of its newest
finished segment (one short ffmpeg per refresh, at most once per `preview_every_seconds`), and
its meter is the segment analyser's peak level (once a second, no RMS). Test recordings are
refused then: the session's own recording is the test.

A test recording opens its own connection for its few seconds: H.264 and AAC from the camera are
copied, anything else (the synthetic picture, H.265, G.711) is encoded, into an MP4 with
+faststart that Chromium's <video> plays. Test recordings live under
`<data_dir>/preflight/<chamber>/tests`, apart from session recordings; only the newest
`keep_test_recordings` are kept, and a chamber makes one at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import secrets
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal, Self

import ffmpeg  # type: ignore[import-untyped]

from config.settings import (
    CameraSettings,
    ChamberSettings,
    PreflightSettings,
    RtspSource,
    SyntheticSource,
)
from recorder.ffmpeg import (
    COPY_TIMESTAMP_FIX,
    SEGMENT_LIST,
    ChamberAudio,
    chamber_audio_input,
    parse_segment_line,
    rtsp_input,
    synthetic_inputs,
)
from recorder.lifecycle import TaskSet
from recorder.oneshot import FfmpegFailed, FfmpegTimedOut, run_ffmpeg
from recorder.priority import PREFLIGHT, Priority, spawn
from recorder.probe import probe_codecs
from recorder.supervisor import interrupt_when_parent_dies

log = logging.getLogger(__name__)

CameraSource = SyntheticSource | RtspSource
METER_RATE = 48000
PEAK_KEY = "lavfi.astats.Overall.Peak_level="
RMS_KEY = "lavfi.astats.Overall.RMS_level="
STDERR_TAIL_LINES = 30
STOP_TIMEOUT_SECONDS = 5.0
# A failed camera is tried again on the next request, but not more often than this.
RETRY_SECONDS = 3.0
MIN_TEST_SECONDS, MAX_TEST_SECONDS, DEFAULT_TEST_SECONDS = 3, 60, 10
# Beyond its length, a test recording may take this long (connecting, probing, the trailer).
TEST_GRACE_SECONDS = 30.0
# Making a picture of a recorded segment takes a fraction of a second.
PICTURE_TIMEOUT_SECONDS = 10.0
SILENCE_DB = -200.0
# A running monitor that has given neither a picture nor a level for this many preview periods
# (and at least STALE_MIN_SECONDS) is reported failed: a stalled camera can leave ffmpeg
# connected and silent for good (see FACTS.md).
STALE_PERIODS = 4
STALE_MIN_SECONDS = 10.0


class PreflightError(Exception):
    """A pre-flight request cannot be served; the message says why."""


class NotFound(PreflightError):
    """No such camera or test recording."""


class Busy(PreflightError):
    """The chamber cannot make a test recording now."""


# --- pure argv builders -------------------------------------------------------------------


def camera_streams(source: CameraSource, audio: ChamberAudio | None) -> tuple[Any, Any | None]:
    """The picture and sound of a camera as capture opens them; the chamber audio, if any,
    replaces the camera's own; None for a camera recorded without sound."""
    if isinstance(source, SyntheticSource):
        return synthetic_inputs(source, audio)
    stream = rtsp_input(source)
    if audio is not None:
        return stream["v:0"], chamber_audio_input(audio)["a:0"]
    if source.audio == "none":
        return stream["v:0"], None
    # Optional: a camera without an audio track still gives a preview.
    return stream["v:0"], stream["a:0?"]


def meter_filter(every_seconds: float) -> str:
    """The -af chain that prints the overall peak and RMS level (dBFS) every every_seconds."""
    samples = max(1, round(METER_RATE * every_seconds))
    # ametadata's own log output is an info line among ffmpeg's others; file= with direct=1
    # writes each frame's values to stdout at once instead of in 32 KB buffers.
    return (
        f"aresample={METER_RATE},asetnsamples=n={samples}:p=0,"
        "astats=metadata=1:reset=1:measure_perchannel=none:measure_overall=Peak_level+RMS_level,"
        "ametadata=mode=print:file=/dev/stdout:direct=1"
    )


def monitor_argv(
    source: CameraSource,
    audio: ChamberAudio | None,
    preview: Path,
    settings: PreflightSettings,
) -> list[str]:
    """ffmpeg argv: the camera's picture to `preview` (JPEG, rewritten in place) and its audio
    levels to stdout; the input and stream info are logged (info level) on stderr."""
    video, sound = camera_streams(source, audio)
    rate = Fraction(1 / settings.preview_every_seconds).limit_denominator(1000)
    picture = (
        video.filter("fps", fps=f"{rate.numerator}/{rate.denominator}")
        .filter("scale", settings.preview_width, -2)
        # Full-range YUV is what JPEG holds; without this swscale warns on every frame.
        .filter("format", "yuvj420p")
    )
    outputs = [
        ffmpeg.output(picture, str(preview), f="image2", update=1, atomic_writing=1, **{"q:v": 5})
    ]
    if sound is not None:
        streams, copy = [sound], {}
        if isinstance(source, RtspSource):
            # The camera's audio track is optional ("a:0?"); without one, an output holding
            # nothing else would stop ffmpeg ("does not contain any stream"): the video goes
            # along, copied into the null muxer for nothing.
            streams, copy = [video, sound], {"c:v": "copy"}
        af = meter_filter(settings.meter_every_seconds)
        meter = ffmpeg.output(*streams, "-", f="null", af=af, **copy)
        outputs.append(meter)
    argv = ffmpeg.compile(ffmpeg.merge_outputs(*outputs), cmd="ffmpeg")
    # ffmpeg-python puts global options last; -hide_banner only works before the inputs.
    return ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "info", "-nostats", "-n", *argv[1:]]


def segment_preview_argv(segment: Path, preview: Path, width: int) -> list[str]:
    """ffmpeg argv: the first picture of a recorded segment (a keyframe) as a JPEG."""
    return [
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(segment),
        "-map", "0:v:0", "-frames:v", "1", "-vf", f"scale={width}:-2,format=yuvj420p",
        "-q:v", "5", "-f", "image2", "-n", str(preview),
    ]  # fmt: skip


def test_recording_argv(
    source: CameraSource,
    audio: ChamberAudio | None,
    output: Path,
    seconds: int,
    *,
    copy_video: bool,
    copy_audio: bool,
) -> list[str]:
    """ffmpeg argv: `seconds` of the camera into an MP4 (H.264 + AAC, +faststart) that a
    browser plays; copy_video/copy_audio when the camera already sends H.264/AAC."""
    video, sound = camera_streams(source, audio)
    streams = [video] if sound is None else [video, sound]
    codec: dict[str, Any] = {}
    global_args: list[str] = []
    if copy_video:
        # As in capture (recorder/ffmpeg.py): the first RTSP access unit comes without a
        # timestamp; -copyts and setts keep the muxer from guessing a non-monotonous one.
        codec.update({"c:v": "copy", "bsf:v": COPY_TIMESTAMP_FIX})
        global_args.append("-copyts")
    else:
        codec.update(
            {"c:v": "libx264", "preset": "veryfast", "pix_fmt": "yuv420p", "profile:v": "high"}
        )
    if sound is not None:
        if copy_audio:
            codec["c:a"] = "copy"
        else:
            codec.update({"c:a": "aac", "b:a": "128k", "ar": 48000})
    out = ffmpeg.output(*streams, str(output), f="mp4", t=seconds, movflags="+faststart", **codec)
    argv = ffmpeg.compile(out, cmd="ffmpeg")
    return ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "warning", "-nostats",
            *global_args, "-n", *argv[1:]]  # fmt: skip


# --- parsing ffmpeg's output --------------------------------------------------------------


def parse_level(line: str) -> tuple[str, float] | None:
    """("peak" | "rms", dBFS) from one ametadata line; digital silence reads -200."""
    for key, name in ((PEAK_KEY, "peak"), (RMS_KEY, "rms")):
        if line.startswith(key):
            try:
                value = float(line[len(key) :].strip())
            except ValueError:
                return None
            if value != value or value == float("-inf"):  # nan or -inf: digital silence
                value = SILENCE_DB
            return name, value
    return None


@dataclass(frozen=True)
class VideoInfo:
    """What the camera's picture is: codec, size and frame rate."""

    codec: str
    width: int
    height: int
    fps: float | None


_VIDEO_STREAM = re.compile(
    r"Stream #0:\d+\S*: Video: (?P<codec>\w+).*?, (?P<w>\d{2,5})x(?P<h>\d{2,5})"
    r"(?:.*?, (?P<fps>[\d.]+) fps)?(?:.*?, (?P<tbr>[\d.]+) tbr)?"
)


def parse_video_info(line: str) -> VideoInfo | None:
    """The input's video stream from ffmpeg's info line ("Stream #0:0: Video: h264 ...")."""
    match = _VIDEO_STREAM.search(line)
    if match is None:
        return None
    rate = match.group("fps") or match.group("tbr")
    return VideoInfo(
        match.group("codec"),
        int(match.group("w")),
        int(match.group("h")),
        float(rate) if rate else None,
    )


def newest_segment(media_dir: Path) -> Path | None:
    """The newest finished segment of a camera's recording (its newest run's segment list)."""
    runs = sorted(p for p in media_dir.glob("run-*") if p.is_dir())
    for run_dir in reversed(runs):
        try:
            lines = (run_dir / SEGMENT_LIST).read_text(encoding="utf-8").splitlines()
        except OSError:
            continue
        for line in reversed(lines):
            entry = parse_segment_line(line)
            if entry is not None and (run_dir / entry.file).is_file():
                return run_dir / entry.file
    return None


# --- processes ----------------------------------------------------------------------------


class FfmpegProcess:
    """One ffmpeg: own session, at its level of the order of sacrifice (recorder/priority.py),
    stdout lines to a callback, stderr kept as a tail (both always drained), stopped with
    exactly one SIGINT and SIGKILL after a timeout."""

    def __init__(
        self,
        argv: list[str],
        on_stdout: Callable[[str], None] | None = None,
        on_stderr: Callable[[str], None] | None = None,
        *,
        priority: Priority = PREFLIGHT,
    ) -> None:
        self.argv = argv
        self.priority = priority
        self._on_stdout = on_stdout
        self._on_stderr = on_stderr
        self._proc: asyncio.subprocess.Process | None = None
        self._readers: list[asyncio.Task[None]] = []
        self._signalled = False
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)

    @property
    def pid(self) -> int | None:
        """The process id while it runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    @property
    def returncode(self) -> int | None:
        """The exit code once it ended."""
        return None if self._proc is None else self._proc.returncode

    async def start(self) -> None:
        """Spawn ffmpeg (OSError if it cannot be)."""
        self._proc = await spawn(
            self.priority,
            self.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            # Own session: a Ctrl-C to obrady does not reach ffmpeg a second time; if obrady
            # dies, the kernel interrupts ffmpeg (nothing here is hurt by a second signal).
            start_new_session=True,
            preexec_fn=interrupt_when_parent_dies,
        )
        assert self._proc.stdout is not None and self._proc.stderr is not None
        self._readers = [
            asyncio.create_task(self._read(self._proc.stdout, self._on_stdout, False)),
            asyncio.create_task(self._read(self._proc.stderr, self._on_stderr, True)),
        ]

    async def _read(
        self, stream: asyncio.StreamReader, callback: Callable[[str], None] | None, tail: bool
    ) -> None:
        while True:
            try:
                raw = await stream.readline()
            except ValueError:  # a line over the reader's limit: skip it, keep draining
                continue
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip()
            if tail and line:
                self.stderr_tail.append(line)
            if callback is not None:
                try:
                    callback(line)
                except Exception:
                    log.exception("could not handle ffmpeg output %r", line)

    async def wait(self) -> int:
        """Wait for ffmpeg to end and its output to be read; its exit code."""
        assert self._proc is not None
        code = await self._proc.wait()
        await self._join_readers()
        return code

    async def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> int | None:
        """One SIGINT, then SIGKILL if ffmpeg is still there after timeout; its exit code."""
        proc = self._proc
        if proc is None:
            return None
        if proc.returncode is None and not self._signalled:
            # Exactly one SIGINT: a second one while ffmpeg writes its trailer corrupts it.
            self._signalled = True
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(proc.wait())
        except TimeoutError:
            log.warning("ffmpeg %s ignored SIGINT for %.0f s; killing it", proc.pid, timeout)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await asyncio.shield(proc.wait())
        await self._join_readers()
        return proc.returncode

    async def _join_readers(self) -> None:
        readers, self._readers = self._readers, []
        if not readers:
            return
        # The pipes close with the process; a stray child holding them must not hang us.
        _, pending = await asyncio.wait(readers, timeout=2)
        for task in pending:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)

    def last_words(self, lines: int = 3) -> str:
        """The last lines ffmpeg wrote to stderr (its reason for failing, usually)."""
        return " | ".join(list(self.stderr_tail)[-lines:]) or "(ffmpeg said nothing)"


# --- a camera's monitor ---------------------------------------------------------------------


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class AudioLevel:
    """The newest audio meter reading (dBFS)."""

    peak_db: float | None = None
    rms_db: float | None = None
    at: datetime | None = None


@dataclass(frozen=True)
class RecordedCamera:
    """A camera under capture: where its segments go and its analysed peak level."""

    media_dir: Path
    peak_db: float | None = None


MonitorState = Literal["stopped", "starting", "ok", "failed"]


class CameraMonitor:
    """The pre-flight ffmpeg of one camera: preview JPEG and audio meter, started on demand."""

    def __init__(
        self,
        camera: CameraSettings,
        audio: ChamberAudio | None,
        folder: Path,
        settings: PreflightSettings,
    ) -> None:
        self.camera = camera
        self._audio = audio
        self._settings = settings
        self.preview_path = folder / f"{camera.id}.jpg"
        self.state: MonitorState = "stopped"
        self.error: str | None = None
        self.level = AudioLevel()
        self.video: VideoInfo | None = None
        self.recorded: RecordedCamera | None = None
        self._process: FfmpegProcess | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._failed_at = 0.0
        self._lock = asyncio.Lock()
        self._segment_preview_at = 0.0
        self._in_input = False
        self._started_at = 0.0

    @property
    def pid(self) -> int | None:
        """The monitor's ffmpeg pid while it runs."""
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        """Whether the monitor's ffmpeg runs."""
        return self.pid is not None

    def argv(self) -> list[str]:
        """The monitor's ffmpeg argv."""
        return monitor_argv(self.camera.source, self._audio, self.preview_path, self._settings)

    async def ensure(self, recorded: RecordedCamera | None) -> None:
        """Have a current picture and meter: the monitor's ffmpeg, or the recording's media."""
        async with self._lock:
            self.recorded = recorded
            if recorded is not None:
                await self._stop_locked()
                await self._from_recording(recorded)
                return
            if self.running:
                state, error = self.current_state()
                if state != "failed":
                    return
                # Stalled: no picture or sound any more, though ffmpeg still runs.
                log.warning("pre-flight of camera %s: %s; stopping it", self.camera.id, error)
                await self._stop_locked()
                self._failed(error or "stalled")
                return
            if self.state == "failed" and time.monotonic() - self._failed_at < RETRY_SECONDS:
                return
            await self._start_locked()

    async def _start_locked(self) -> None:
        self.preview_path.parent.mkdir(parents=True, exist_ok=True)
        # An old picture must not pass for the camera's current one; -n also needs it gone.
        for stale in (
            self.preview_path,
            self.preview_path.with_name(self.preview_path.name + ".tmp"),
        ):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        self.level = AudioLevel()
        self.video = None
        self._in_input = False
        argv = self.argv()
        log.info("pre-flight of camera %s: ffmpeg argv: %s", self.camera.id, argv)
        process = FfmpegProcess(argv, self._on_stdout, self._on_stderr)
        self.state, self.error = "starting", None
        self._started_at = time.monotonic()
        try:
            await process.start()
        except OSError as exc:
            self._failed(f"cannot start ffmpeg: {exc}")
            return
        self._process = process
        self._watcher = asyncio.create_task(
            self._watch(process), name=f"preflight-{self.camera.id}"
        )

    async def _watch(self, process: FfmpegProcess) -> None:
        code = await process.wait()
        if self._process is process:  # not asked to stop: the camera went away or ffmpeg failed
            self._process = None
            self._failed(f"ffmpeg exited with code {code}: {process.last_words()}")
            log.warning("pre-flight of camera %s: %s", self.camera.id, self.error)

    def _failed(self, error: str) -> None:
        self.state, self.error = "failed", error
        self._failed_at = time.monotonic()

    def _on_stdout(self, line: str) -> None:
        parsed = parse_level(line)
        if parsed is None:
            return
        name, value = parsed
        if name == "peak":
            self.level.peak_db = value
        else:
            # RMS comes after the peak of the same block: the reading is complete.
            self.level.rms_db = value
            self.level.at = _utc_now()
            if self.state == "starting":
                self.state = "ok"

    def _on_stderr(self, line: str) -> None:
        if line.startswith("Input #0"):
            self._in_input = True
        elif line.startswith(("Input #", "Output #", "Stream mapping")):
            self._in_input = False
        elif self._in_input and self.video is None:
            self.video = parse_video_info(line)

    def preview_at(self) -> datetime | None:
        """When the preview picture was last written (None: no picture yet)."""
        try:
            mtime = self.preview_path.stat().st_mtime
        except FileNotFoundError:
            return None
        return datetime.fromtimestamp(mtime, UTC)

    def current_state(self) -> tuple[MonitorState, str | None]:
        """The state and error to show now: "ok" once a picture or a level came, "failed" when
        they stopped coming; a monitor asked for just now counts as "starting"."""
        if self.recorded is not None or not self.running:
            if self.state == "stopped":
                return "starting", None
            return self.state, self.error
        newest = max((t for t in (self.preview_at(), self.level.at) if t is not None), default=None)
        limit = max(STALE_MIN_SECONDS, STALE_PERIODS * self._settings.preview_every_seconds)
        if newest is None:
            waited = time.monotonic() - self._started_at
            if waited > limit:
                return "failed", f"no picture or sound from the camera after {waited:.0f} s"
            return "starting", None
        age = (_utc_now() - newest).total_seconds()
        if age > limit:
            return "failed", f"no new picture or sound from the camera for {age:.0f} s"
        return "ok", None

    def read_preview(self) -> tuple[bytes, datetime] | None:
        """The preview JPEG and when it was written; None before the first one."""
        try:
            data = self.preview_path.read_bytes()
            mtime = self.preview_path.stat().st_mtime
        except FileNotFoundError:
            return None
        if not data:
            return None
        if self.state == "starting" and self.running:
            self.state = "ok"
        return data, datetime.fromtimestamp(mtime, UTC)

    async def _from_recording(self, recorded: RecordedCamera) -> None:
        if recorded.peak_db is not None:
            self.level = AudioLevel(recorded.peak_db, None, _utc_now())
        now = time.monotonic()
        if now - self._segment_preview_at < self._settings.preview_every_seconds:
            return
        self._segment_preview_at = now
        segment = await asyncio.to_thread(newest_segment, recorded.media_dir)
        if segment is None:
            self.state, self.error = "starting", None
            return
        self.preview_path.parent.mkdir(parents=True, exist_ok=True)
        fresh = self.preview_path.with_name(f"{self.camera.id}.new.jpg")
        with contextlib.suppress(FileNotFoundError):
            fresh.unlink()
        argv = segment_preview_argv(segment, fresh, self._settings.preview_width)
        try:
            await run_ffmpeg(
                argv, timeout=PICTURE_TIMEOUT_SECONDS, what="make a picture", priority=PREFLIGHT
            )
        except OSError as exc:
            self._failed(f"cannot make a picture of {segment.name}: {exc!r}")
            return
        except FfmpegTimedOut as exc:
            self._failed(f"cannot make a picture of {segment.name}: {exc.why}")
            return
        except FfmpegFailed as exc:
            self._failed(f"cannot make a picture of {segment.name}: {exc.last_words()}")
            return
        if not fresh.exists():
            self._failed(f"cannot make a picture of {segment.name}: (ffmpeg said nothing)")
            return
        os.replace(fresh, self.preview_path)
        self.state, self.error = "ok", None

    async def stop(self) -> None:
        """Stop the monitor's ffmpeg (if it runs)."""
        async with self._lock:
            await self._stop_locked()

    async def _stop_locked(self) -> None:
        process, self._process = self._process, None
        watcher, self._watcher = self._watcher, None
        if process is not None:
            await process.stop()
        if watcher is not None:
            await watcher
        if self.state != "failed":
            self.state = "stopped"


# --- test recordings ------------------------------------------------------------------------

TestState = Literal["recording", "done", "failed"]


@dataclass
class TestRecording:
    """A short recording of one camera, made to check it before a session."""

    id: str
    camera_id: str
    seconds: int
    path: Path
    started_at: datetime
    state: TestState = "recording"
    error: str | None = None
    finished_at: datetime | None = None
    size_bytes: int = 0
    video: str = ""  # "copy" or "encode"
    audio: str = ""  # "copy", "encode" or "none"
    requested_by: str = ""

    def record(self) -> dict[str, Any]:
        """What the sidecar JSON file keeps."""
        return {
            "id": self.id,
            "camera": self.camera_id,
            "seconds": self.seconds,
            "state": self.state,
            "error": self.error,
            "started_at": self.started_at.isoformat(),
            "finished_at": None if self.finished_at is None else self.finished_at.isoformat(),
            "size_bytes": self.size_bytes,
            "video": self.video,
            "audio": self.audio,
            "requested_by": self.requested_by,
        }

    @classmethod
    def load(cls, sidecar: Path) -> TestRecording | None:
        """A finished test recording from its sidecar file; None if unreadable."""
        try:
            data = json.loads(sidecar.read_text(encoding="utf-8"))
            finished = data.get("finished_at")
            return cls(
                id=str(data["id"]),
                camera_id=str(data["camera"]),
                seconds=int(data["seconds"]),
                path=sidecar.with_suffix(".mp4"),
                started_at=datetime.fromisoformat(data["started_at"]),
                state="done" if data["state"] == "done" else "failed",
                error=data.get("error"),
                finished_at=None if finished is None else datetime.fromisoformat(finished),
                size_bytes=int(data.get("size_bytes", 0)),
                video=str(data.get("video", "")),
                audio=str(data.get("audio", "")),
                requested_by=str(data.get("requested_by", "")),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None


async def _codecs_to_copy(source: CameraSource, audio: ChamberAudio | None) -> tuple[bool, bool]:
    """Whether the camera's video and audio can go into the MP4 as they come (H.264, AAC)."""
    if not isinstance(source, RtspSource) or source.video == "h264":
        return False, False
    codecs = None
    with contextlib.suppress(TimeoutError):
        codecs = await probe_codecs(source, source.timeout_seconds + 2)
    if codecs is None:
        return False, False
    video, sound, _ = codecs
    copy_audio = audio is None and source.audio in ("auto", "copy") and sound == "aac"
    return video == "h264", copy_audio


# --- a chamber --------------------------------------------------------------------------------


@dataclass
class ChamberPreflight:
    """One chamber's monitors and test recordings."""

    chamber: ChamberSettings
    folder: Path
    settings: PreflightSettings
    monitors: dict[str, CameraMonitor] = field(default_factory=dict)
    tests: list[TestRecording] = field(default_factory=list)
    last_request: float = 0.0
    _test_task: asyncio.Task[None] | None = None
    _tasks: TaskSet = field(default_factory=lambda: TaskSet("pre-flight test recordings"))

    def __post_init__(self) -> None:
        for camera in self.chamber.camera_list:
            self.monitors[camera.id] = CameraMonitor(
                camera, self.chamber.audio, self.folder / "preview", self.settings
            )

    @property
    def tests_dir(self) -> Path:
        """Where this chamber's test recordings are."""
        return self.folder / "tests"

    def load_tests(self) -> None:
        """Read the test recordings kept from earlier runs of obrady."""
        found = [TestRecording.load(p) for p in sorted(self.tests_dir.glob("*.json"))]
        self.tests = sorted((t for t in found if t is not None), key=lambda t: t.started_at)

    def monitor(self, camera_id: str) -> CameraMonitor:
        """The camera's monitor; NotFound if the chamber has no such camera."""
        monitor = self.monitors.get(camera_id)
        if monitor is None:
            raise NotFound(
                f"chamber {self.chamber.id} has no camera {camera_id!r}; its cameras: "
                f"{', '.join(self.monitors)}"
            )
        return monitor

    async def touch(
        self, recorded: dict[str, RecordedCamera], cameras: list[str] | None = None
    ) -> None:
        """The console is looking: keep (or get) the cameras' pictures and meters current."""
        self.last_request = time.monotonic()
        chosen = list(self.monitors) if cameras is None else cameras
        await asyncio.gather(*(self.monitors[c].ensure(recorded.get(c)) for c in chosen))

    async def stop_idle(self, idle_seconds: float, recorded: dict[str, RecordedCamera]) -> None:
        """Stop monitors nobody asked for lately, and any whose camera is now being recorded."""
        idle = time.monotonic() - self.last_request >= idle_seconds
        for camera_id, monitor in self.monitors.items():
            if monitor.running and (idle or camera_id in recorded):
                log.info("pre-flight of %s/%s: stopping its ffmpeg", self.chamber.id, camera_id)
                await monitor.stop()

    def test(self, test_id: str) -> TestRecording:
        """A test recording of this chamber; NotFound otherwise."""
        for test in self.tests:
            if test.id == test_id:
                return test
        raise NotFound(f"chamber {self.chamber.id} has no test recording {test_id!r}")

    def start_test(
        self, camera_id: str, seconds: int, recording: bool, requested_by: str
    ) -> TestRecording:
        """Begin a test recording; Busy if one runs or a session is being recorded."""
        self.monitor(camera_id)
        if self._test_task is not None and not self._test_task.done():
            running = next((t for t in self.tests if t.state == "recording"), None)
            raise Busy(
                f"test recording {running.id if running else ''} of chamber {self.chamber.id} is "
                "still running; wait for it to finish (one at a time per chamber)"
            )
        if recording:
            raise Busy(
                f"a session is being recorded in chamber {self.chamber.id}: its recording is "
                "the test (a test recording would open another connection to the camera)"
            )
        now = _utc_now()
        test_id = f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
        test = TestRecording(
            test_id,
            camera_id,
            seconds,
            self.tests_dir / f"{test_id}.mp4",
            now,
            requested_by=requested_by,
        )
        self.tests.append(test)
        self._test_task = self._tasks.spawn(self._record(test), name=f"test-{test_id}")
        return test

    async def _record(self, test: TestRecording) -> None:
        camera = self.chamber.camera(test.camera_id)
        try:
            await asyncio.to_thread(self.tests_dir.mkdir, parents=True, exist_ok=True)
            copy_video, copy_audio = await _codecs_to_copy(camera.source, self.chamber.audio)
            argv = test_recording_argv(
                camera.source,
                self.chamber.audio,
                test.path,
                test.seconds,
                copy_video=copy_video,
                copy_audio=copy_audio,
            )
            test.video = "copy" if copy_video else "encode"
            no_sound = isinstance(camera.source, RtspSource) and (
                camera.source.audio == "none" and self.chamber.audio is None
            )
            test.audio = "none" if no_sound else "copy" if copy_audio else "encode"
            log.info("test recording %s: ffmpeg argv: %s", test.id, argv)
            try:
                await run_ffmpeg(
                    argv,
                    timeout=test.seconds + TEST_GRACE_SECONDS,
                    what="record the test",
                    priority=PREFLIGHT,
                )
            except FfmpegTimedOut:
                test.error = f"took over {test.seconds + TEST_GRACE_SECONDS:.0f} s; stopped"
            except FfmpegFailed as exc:
                test.error = f"ffmpeg exited with code {exc.returncode}: {exc.last_words()}"
            size = await asyncio.to_thread(_size, test.path)
            if size > 0 and test.error is None:
                test.state, test.size_bytes = "done", size
            else:
                test.state = "failed"
                test.error = test.error or "ffmpeg exited with code 0: (ffmpeg said nothing)"
                await asyncio.to_thread(_unlink, test.path)
        except asyncio.CancelledError:
            # run_ffmpeg has killed and reaped the test's ffmpeg.
            test.state, test.error = "failed", "obrady was shut down during the test recording"
            await asyncio.to_thread(_unlink, test.path)
            raise
        except Exception as exc:
            log.exception("test recording %s failed", test.id)
            test.state, test.error = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            test.finished_at = _utc_now()
            with contextlib.suppress(OSError):
                await asyncio.to_thread(_write_sidecar, test)
            await asyncio.to_thread(_unlink_all, self._prune())
            if test.state == "failed":
                log.warning("test recording %s failed: %s", test.id, test.error)

    def _prune(self) -> list[Path]:
        """Forget all but the newest keep_test_recordings; the files to delete."""
        finished = [t for t in self.tests if t.state != "recording"]
        extra = len(self.tests) - self.settings.keep_test_recordings
        files = []
        for old in finished[: max(0, extra)]:
            files += [old.path, old.path.with_suffix(".json")]
            self.tests.remove(old)
        return files

    async def close(self) -> None:
        """Stop the monitors and any running test recording."""
        self._test_task = None
        await self._tasks.close()
        await asyncio.gather(*(m.stop() for m in self.monitors.values()))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _unlink_all(paths: list[Path]) -> None:
    for path in paths:
        _unlink(path)


def _write_sidecar(test: TestRecording) -> None:
    sidecar = test.path.with_suffix(".json")
    temporary = sidecar.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(test.record()), encoding="utf-8")
    os.replace(temporary, sidecar)


# --- all chambers -----------------------------------------------------------------------------

RecordedLookup = Callable[[str], dict[str, RecordedCamera]]


class Preflight:
    """Pre-flight for every chamber: monitors on demand, idle ones stopped, test recordings;
    `async with preflight:` loads the kept tests and stops idle monitors until it is left."""

    def __init__(
        self,
        chambers: list[ChamberSettings],
        folder: Path,
        settings: PreflightSettings,
        recorded: RecordedLookup,
    ) -> None:
        self.settings = settings
        self.recorded = recorded
        self.chambers = {c.id: ChamberPreflight(c, folder / c.id, settings) for c in chambers}
        self._tasks = TaskSet("pre-flight")

    async def __aenter__(self) -> Self:
        await self.load()
        self._tasks.spawn(self.run(), name="preflight-idle")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._tasks.close()
        await self.close()

    def chamber(self, chamber_id: str) -> ChamberPreflight:
        """The chamber's pre-flight; NotFound if there is no such chamber."""
        chamber = self.chambers.get(chamber_id)
        if chamber is None:
            raise NotFound(
                f"chamber {chamber_id!r} does not exist; chambers: {', '.join(self.chambers)}"
            )
        return chamber

    async def load(self) -> None:
        """Read the test recordings kept from earlier runs."""
        for chamber in self.chambers.values():
            await asyncio.to_thread(chamber.load_tests)

    async def run(self) -> None:
        """Stop idle monitors until cancelled."""
        every = min(1.0, self.settings.idle_seconds / 4)
        while True:
            await asyncio.sleep(every)
            for chamber in self.chambers.values():
                try:
                    await chamber.stop_idle(
                        self.settings.idle_seconds, self.recorded(chamber.chamber.id)
                    )
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("could not stop idle pre-flight of %s", chamber.chamber.id)

    async def close(self) -> None:
        """Stop every monitor and test recording."""
        await asyncio.gather(*(c.close() for c in self.chambers.values()))
