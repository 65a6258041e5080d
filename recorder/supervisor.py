"""Supervises capture: one long-lived CaptureSupervisor per recording session, one disposable
ffmpeg run at a time, restarted with back-off, each run in a fresh directory of its own."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import fcntl
import hashlib
import json
import logging
import math
import os
import re
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol, Self

from config.settings import AlsaAudio, RecordingSettings, RtspAudio, RtspSource
from recorder.audiohub import AudioHub, SoundHole
from recorder.continuity import FileGrowth
from recorder.ffmpeg import (
    FRAME_IN,
    FRAME_OUT,
    FRAME_TIMES,
    SEGMENT_LIST,
    SEGMENT_NAME,
    SEGMENT_PATTERN,
    WARMUP_SECONDS,
    CaptureSource,
    ChamberAudio,
    SegmentEntry,
    SharedAudio,
    capture_argv,
    frame_times_fifo,
    parse_segment_line,
)
from recorder.lifecycle import TaskSet
from recorder.probe import Codecs, probe_codecs

log = logging.getLogger(__name__)

RUN_DIR = re.compile(r"^run-(\d{4,})$")
# The segment list and the next file are looked for this often: a new file is seen (and its
# first part goes live) at most this late.
POLL_SECONDS = 0.025
FPS_WINDOW_SECONDS = 2.0
DOWN_AFTER_SECONDS = 30.0
STDERR_TAIL_LINES = 30
# A wait this long between two decoded frames means the source went quiet (or ffmpeg did not
# run at all): frames dropped after it are the source's hole, not the encoder's.
QUIET_SECONDS = 0.5
ENCODER_BEHIND = "the encoder fell behind real time: frames were dropped to keep time"
SOURCE_BURST = "the source sent no media, then a late burst that was dropped to keep time"
DROP_LOG_SECONDS = 10.0
# A capture that dropped frames this recently has the problem ENCODER_BEHIND (status, metrics).
DROP_PROBLEM_SECONDS = 30.0
# In a session's folder: the holes in the chamber's shared sound, one JSON object a line.
SOUND_HOLES = "sound-holes.jsonl"


class RecorderError(Exception):
    """Base of the recorder package's errors."""


class AlreadyRecording(RecorderError):
    """A capture for this session is already running."""


class CaptureBlocked(RecorderError):
    """Capture may not start now (the disk is at its floor); the message says why."""


@dataclass(frozen=True)
class CaptureJob:
    """What to record: one camera of a chamber (with the chamber audio, if any) for a session,
    into media_dir (the session's folder for that camera)."""

    session_id: int
    chamber_id: str
    camera_id: str
    source: CaptureSource
    media_dir: Path
    # The chamber's sound: its own source, or (set by the Recorder) as its audio hub shares it.
    audio: ChamberAudio | SharedAudio | None = None

    @property
    def key(self) -> tuple[int, str]:
        """Identifies the capture: session and camera."""
        return (self.session_id, self.camera_id)


@dataclass(frozen=True)
class FinishedSegment:
    """A segment ffmpeg has closed, with the moment obrady saw it finished."""

    run_token: int
    entry: SegmentEntry
    path: Path
    size_bytes: int
    observed_at: datetime
    # How the file grew, poll by poll: when its bytes arrived (recorder/continuity.py).
    growth: FileGrowth | None = None
    # A re-encoded run: the wall time (epoch s) of media time 0 as its frames left the decoder
    # (without the encoder's delay), and the frames dropped to keep time in this segment.
    zero_at: float | None = None
    dropped: tuple[DroppedFrames, ...] = ()


@dataclass(frozen=True)
class DroppedFrames:
    """Frames a re-encode dropped to keep real time: the video hole from media time `start`
    (the first dropped frame) to `end` (the next frame kept), in the run's timeline."""

    start: float
    end: float
    frames: int
    cause: str


@dataclass
class FrameClock:
    """What a re-encode's frame times (recorder/ffmpeg.py FRAME_TIMES) say: the wall time of
    media time 0 before the encoder's delay, and the frames the keep-time filter dropped."""

    zero_at: float | None = None  # least (arrival - timestamp) of a decoded frame, epoch s
    lateness: float = 0.0  # the newest decoded frame's, beyond zero_at
    dropped_frames: int = 0
    dropped: list[DroppedFrames] = field(default_factory=list)
    _pending: list[float] = field(default_factory=list)  # decoded, not passed yet
    _last_in: float | None = None  # when the last frame was decoded
    _quiet: bool = False  # a quiet wait came before the frames pending
    _header: float | None = None

    def line(self, text: str, now: float) -> None:
        """Take one line of the FIFO, read at `now` (epoch s)."""
        if text.startswith("frame:"):
            _, _, value = text.rpartition("pts_time:")
            try:
                self._header = float(value)
            except ValueError:
                self._header = None
            return
        pts, self._header = self._header, None
        if pts is None:
            return
        if text == f"{FRAME_IN}=1":
            if pts >= WARMUP_SECONDS:  # as the keep-time filter counts them
                late = now - pts
                self.zero_at = late if self.zero_at is None else min(self.zero_at, late)
            if self.zero_at is not None:
                self.lateness = now - pts - self.zero_at
            if self._last_in is not None and now - self._last_in > QUIET_SECONDS:
                self._quiet = True
            self._last_in = now
            self._pending.append(pts)
        elif text == f"{FRAME_OUT}=1":
            dropped = [p for p in self._pending if p < pts]
            if dropped:
                cause = SOURCE_BURST if self._quiet else ENCODER_BEHIND
                self.dropped.append(DroppedFrames(dropped[0], pts, len(dropped), cause))
                self.dropped_frames += len(dropped)
            self._pending = [p for p in self._pending if p > pts]
            self._quiet = False

    def dropped_within(self, start: float, end: float) -> tuple[DroppedFrames, ...]:
        """The drops whose holes reach into media time [start, end]."""
        return tuple(d for d in self.dropped if d.end >= start and d.start <= end)


class CaptureEvents(Protocol):
    """Where a supervisor reports what it recorded (the archive, in the composition root)."""

    async def run_started(
        self, job: CaptureJob, ordinal: int, run_dir: Path, started_at: datetime
    ) -> int:
        """A run recorded its first segment; returns a token that names the run in later calls."""
        ...

    async def segment_started(self, job: CaptureJob, path: Path, started_at: datetime) -> None:
        """ffmpeg began writing a new segment file (it grows until segment_finished)."""
        ...

    async def segment_finished(self, job: CaptureJob, segment: FinishedSegment) -> None:
        """A segment was closed by ffmpeg."""
        ...

    async def capture_exited(self, job: CaptureJob) -> None:
        """An ffmpeg run ended, whether or not it recorded anything."""
        ...

    async def run_ended(
        self,
        job: CaptureJob,
        run_token: int,
        ended_at: datetime,
        exit_code: int | None,
        reason: str,
    ) -> None:
        """The ffmpeg run ended, for the reason given ("stopped" when asked to)."""
        ...

    async def sound_missing(self, session_id: int, hole: SoundHole) -> None:
        """The chamber's shared sound had nothing from its source (silence was recorded)."""
        ...


ArgvBuilder = Callable[[CaptureSource, Path, float, ChamberAudio | SharedAudio | None], list[str]]
Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class CaptureStatus:
    """A snapshot of one supervisor for health views."""

    session_id: int
    chamber_id: str
    camera_id: str
    state: Literal["starting", "recording", "restarting", "stopping", "stopped"] = "starting"
    pid: int | None = None
    run_ordinal: int = 0
    restarts: int = 0
    segments: int = 0
    last_exit_code: int | None = None
    last_error: str | None = None
    last_progress_at: datetime | None = None
    last_segment_at: datetime | None = None
    bytes_per_second: float = 0.0
    failing_since: datetime | None = None
    audio_mode: str | None = None
    video_mode: str | None = None
    fps: float | None = None
    # A re-encode: frames dropped to keep real time in this run, the last time it dropped, and
    # how far behind real time (beyond its most punctual frame) the newest frame was decoded.
    frames_dropped: int = 0
    last_drop_at: datetime | None = None
    behind_seconds: float | None = None

    def encoder_problems(self, now: datetime) -> list[str]:
        """The re-encode's problem now: frames dropped in the last DROP_PROBLEM_SECONDS."""
        last = self.last_drop_at
        if last is None or (now - last).total_seconds() > DROP_PROBLEM_SECONDS:
            return []
        return [f"{ENCODER_BEHIND} ({self.frames_dropped} frames dropped in this session)"]

    def source_state(self, now: datetime, segment_seconds: float) -> str:
        """live (segments arriving), reconnecting (failing under 30 s), down, or starting."""
        if self.failing_since is not None:
            failing = (now - self.failing_since).total_seconds()
            return "reconnecting" if failing < DOWN_AFTER_SECONDS else "down"
        if self.last_segment_at is None:
            return "starting"
        age = (now - self.last_segment_at).total_seconds()
        return "live" if age <= 3 * segment_seconds + 1 else "reconnecting"

    out_time_seconds: float = 0.0
    stderr_tail: deque[str] = field(default_factory=lambda: deque(maxlen=STDERR_TAIL_LINES))


@dataclass
class _RunState:
    ordinal: int
    run_dir: Path
    started_at: datetime
    token: int | None = None
    list_offset: int = 0
    next_file: int = 0  # the number of the next segment file ffmpeg will begin
    # file number -> (poll times, sizes) of the files being written
    growth: dict[int, tuple[list[float], list[int], list[float]]] = field(default_factory=dict)
    frames: FrameClock | None = None


def _grew(
    polls: tuple[list[float], list[int], list[float]], stat: os.stat_result, now: float
) -> None:
    """Add a poll of a growing file to its (write times, sizes, last looks)."""
    times, sizes, looked = polls
    if sizes and stat.st_size <= sizes[-1]:
        looked[-1] = now  # nothing new: only the latest poll that saw nothing matters
        return
    times.append(stat.st_mtime_ns / 1e9)
    sizes.append(stat.st_size)
    looked.append(now)


def interrupt_when_parent_dies() -> None:
    """preexec_fn: the child gets SIGINT when obrady dies (PR_SET_PDEATHSIG, Linux).

    The signal may come more than once (see recorder/guardian.py): fine for the gateway, not
    for ffmpeg, which the Guardian covers instead."""
    # Runs in the child between fork and exec.
    _LIBC.prctl(1, signal.SIGINT, 0, 0, 0)


_LIBC = ctypes.CDLL(None, use_errno=True)


def _remove_if_empty(run_dir: Path) -> None:
    """Remove the folder of a run that recorded nothing (a failed attempt to reach the source)."""
    if any(run_dir.glob("*.ts")):
        return
    listing = run_dir / SEGMENT_LIST
    with contextlib.suppress(FileNotFoundError):
        if listing.stat().st_size == 0:
            listing.unlink()
    with contextlib.suppress(OSError):
        run_dir.rmdir()


class Guardian:
    """Runs recorder/guardian.py and tells it which processes to signal if obrady dies."""

    def __init__(self) -> None:
        self._proc: asyncio.subprocess.Process | None = None
        self._watched: dict[int, int] = {}

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Start the guardian process."""
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "recorder.guardian",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        for pid, signum in self._watched.items():
            self._send(f"+{pid} {signum}")

    def _send(self, line: str) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.returncode is not None:
            log.error("the guardian process is not running; %r not sent", line)
            return
        proc.stdin.write(f"{line}\n".encode())

    async def watch(self, pid: int, signum: int = signal.SIGINT) -> None:
        """Have pid signalled once with signum if obrady dies."""
        if self._proc is not None and self._proc.returncode is not None:
            log.error("the guardian process died (code %s); restarting it", self._proc.returncode)
            await self.start()
        self._watched[pid] = signum
        self._send(f"+{pid} {signum}")

    def forget(self, pid: int) -> None:
        """The process ended: stop watching it."""
        if self._watched.pop(pid, None) is not None:
            self._send(f"-{pid}")

    async def close(self) -> None:
        """Let the guardian go (it signals whatever is still watched, normally nothing)."""
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            async with asyncio.timeout(10):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()


def _open_fifo(path: Path) -> tuple[int, int] | None:
    """Make the FIFO a run writes its frame times to, and open it: a reader (so ffmpeg's open
    does not block) and a writer of our own (so the reader sees no end while ffmpeg rebuilds
    its filter graph, which closes and reopens the FIFO). Where no FIFO can be made (a file
    system without them), the path leads to /dev/null: the run records without frame times."""
    try:
        os.mkfifo(path)
    except OSError as exc:
        log.warning("no FIFO at %s (%s): the re-encode's frame times are not read", path, exc)
        os.symlink(os.devnull, path)
        return None
    read_fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    # A full FIFO would block ffmpeg: 1 MiB holds minutes of frame times (about 6 kB/s at
    # 25 fps), should the event loop stall.
    with contextlib.suppress(OSError):
        fcntl.fcntl(read_fd, fcntl.F_SETPIPE_SZ, 1 << 20)
    return read_fd, os.open(path, os.O_WRONLY | os.O_NONBLOCK)


def _close_fifo(path: Path | None, fds: tuple[int, int] | None) -> None:
    """Close a run's FIFO and remove it (the run's folder keeps only media)."""
    for fd in fds or ():
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


SOURCE_CACHE = "source.json"


def _read_codec_cache(path: Path, url: str) -> Codecs | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("source") != _url_id(url):
        return None
    video, audio = data.get("video_codec"), data.get("audio_codec")
    b_frames = data.get("b_frames")  # absent in a cache written before it was asked
    if isinstance(video, str) and isinstance(audio, str) and isinstance(b_frames, bool):
        return Codecs(video, audio, b_frames)
    return None


def _url_id(url: str) -> str:
    # The URL may carry the camera's password: keep only a hash of it on disk.
    return hashlib.sha256(url.encode()).hexdigest()


def _write_codec_cache(path: Path, url: str, codecs: Codecs) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "source": _url_id(url),
        "video_codec": codecs.video,
        "audio_codec": codecs.audio,
        "b_frames": codecs.b_frames,
    }
    path.write_text(json.dumps(record), encoding="utf-8")


def next_run_ordinal(session_dir: Path) -> int:
    """One more than the highest run-NNNN directory present: a new run never reuses a folder."""
    highest = 0
    if session_dir.is_dir():
        for child in session_dir.iterdir():
            match = RUN_DIR.match(child.name)
            if match:
                highest = max(highest, int(match.group(1)))
    return highest + 1


class CaptureSupervisor:
    """Keeps one session's capture running until stop(): restarts ffmpeg when it exits,
    stalls or is killed, and reports every finished segment."""

    def __init__(
        self,
        job: CaptureJob,
        settings: RecordingSettings,
        events: CaptureEvents,
        *,
        argv_builder: ArgvBuilder = capture_argv,
        clock: Clock = _utc_now,
        guardian: Guardian | None = None,
    ) -> None:
        self.job = job
        self._guardian = guardian
        self._settings = settings
        self._events = events
        self._argv_builder = argv_builder
        self._clock = clock
        self._stopping = asyncio.Event()
        self._proc: asyncio.subprocess.Process | None = None
        self._signalled = False
        self._stalled = False
        self._codecs: Codecs | None = None
        # The chamber sound this camera's runs take (its own source instead of the shared
        # one when the camera sends B-frames: see _resolved_source).
        self._audio: ChamberAudio | SharedAudio | None = job.audio
        self._failures = 0
        self._stop_reason = "stopped"
        self._run = _RunState(0, job.media_dir, clock())
        self.status = CaptureStatus(job.session_id, job.chamber_id, job.camera_id)

    @property
    def pid(self) -> int | None:
        """The pid of the running ffmpeg, if one runs."""
        return self._proc.pid if self._proc is not None and self._proc.returncode is None else None

    async def run(self) -> None:
        """Record until stop() is called; never raises for an ffmpeg failure."""
        backoff = self._settings.restart_backoff_initial_seconds
        first = True
        while not self._stopping.is_set():
            began = time.monotonic()
            try:
                await self._one_run(log_argv=first)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a broken run must never end the supervision
                log.exception("session %s: capture run failed", self.job.session_id)
                self.status.last_error = f"{type(exc).__name__}: {exc}"
            first = False
            if self._stopping.is_set():
                break
            if time.monotonic() - began >= self._settings.healthy_reset_seconds:
                backoff = self._settings.restart_backoff_initial_seconds
            self.status.state = "restarting"
            self.status.restarts += 1
            log.warning(
                "session %s: ffmpeg exited (code %s); restarting in %.2f s",
                self.job.session_id,
                self.status.last_exit_code,
                backoff,
            )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(backoff):
                    await self._stopping.wait()
            backoff = min(backoff * 2, self._settings.restart_backoff_max_seconds)
        self.status.state = "stopped"

    async def stop(self, reason: str = "stopped") -> None:
        """Ask the current run to finish its segment (one SIGINT) and stop supervising."""
        self._stop_reason = reason
        self._stopping.set()
        self.status.state = "stopping"
        self._interrupt()

    def _interrupt(self) -> None:
        # Exactly one SIGINT per run: a second one during the trailer write corrupts output.
        proc = self._proc
        if proc is not None and proc.returncode is None and not self._signalled:
            self._signalled = True
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)

    async def _one_run(self, *, log_argv: bool) -> None:
        ordinal = next_run_ordinal(self.job.media_dir)
        run_dir = self.job.media_dir / f"run-{ordinal:04d}"
        run_dir.mkdir(parents=True, exist_ok=False)
        source = await self._resolved_source()
        argv = self._argv_builder(source, run_dir, self._settings.segment_seconds, self._audio)
        if log_argv:
            log.info("session %s: ffmpeg argv: %s", self.job.session_id, argv)
        self._run = _RunState(ordinal, run_dir, self._clock())
        fifo = frame_times_fifo(source, run_dir)
        if fifo is not None and not any(FRAME_TIMES in arg for arg in argv):
            fifo = None  # an argv of another builder (tests) that writes no frame times
        frame_fds = _open_fifo(fifo) if fifo is not None else None
        if frame_fds is not None:
            self._run.frames = FrameClock()
        self._signalled = False
        self._stalled = False
        self.status.stderr_tail.clear()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                # Own session: a Ctrl-C to obrady must not reach ffmpeg a second time.
                start_new_session=True,
            )
        except BaseException:
            _close_fifo(fifo, frame_fds)
            raise
        self._proc = proc
        if self._guardian is not None:
            # If obrady dies, ffmpeg gets the one SIGINT that lets it finish its segment.
            await self._guardian.watch(proc.pid)
        self.status.pid = proc.pid
        self.status.run_ordinal = ordinal
        self.status.state = "recording"
        self.status.last_progress_at = self._clock()
        self.status.out_time_seconds = 0.0
        if self._stopping.is_set():
            self._interrupt()
        try:
            ended = asyncio.Event()
            async with asyncio.TaskGroup() as group:
                group.create_task(self._drain_stderr(proc))
                group.create_task(self._read_progress(proc))
                watchdog = group.create_task(self._watchdog(proc))
                # Told to end, not cancelled: a cancellation could land while it reports a
                # segment, which would then never be reported.
                group.create_task(self._tail(run_dir, ended))
                if frame_fds is not None:
                    group.create_task(self._read_frame_times(frame_fds[0]))
                await proc.wait()
                watchdog.cancel()
                ended.set()
                if frame_fds is not None:
                    # ffmpeg's ends are closed: closing ours lets the reader see the end.
                    os.close(frame_fds[1])
                    frame_fds = (frame_fds[0], -1)
        finally:
            _close_fifo(fifo, frame_fds)
            if proc.returncode is None:
                await self._terminate(proc)
            self._proc = None
            self.status.pid = None
            if self._guardian is not None:
                self._guardian.forget(proc.pid)
            self.status.last_exit_code = proc.returncode
            # Whatever the way out, report the segments ffmpeg finished before it ended.
            await self._collect(run_dir)
            with contextlib.suppress(Exception):
                await self._events.capture_exited(self.job)
            reason = self._end_reason(proc.returncode)
            if self._run.token is not None:
                await self._events.run_ended(
                    self.job, self._run.token, self._clock(), proc.returncode, reason
                )
            else:
                _remove_if_empty(run_dir)
        if not self._stopping.is_set():
            self.status.last_error = reason
            self.status.failing_since = self.status.failing_since or self._clock()
            self._failures += 1
            tail = "\n".join(self.status.stderr_tail)
            # A camera that stays away fails every second: log the first failures in full.
            level = logging.ERROR if self._failures <= 3 else logging.DEBUG
            log.log(level, "session %s: %s; last output:\n%s", self.job.session_id, reason, tail)
        else:
            self._failures = 0

    async def _resolved_source(self) -> CaptureSource:
        """The source with video/audio = "auto" settled by asking the camera once."""
        source = self.job.source
        if not isinstance(source, RtspSource):
            return source
        wants_audio = source.audio == "auto" and self.job.audio is None
        # A copied camera that joins the shared chamber sound has its packets stamped as they
        # arrive, which a camera sending B-frames cannot take: ask whether it does.
        shares = isinstance(self.job.audio, SharedAudio) and source.video in ("copy", "auto")
        if source.video != "auto" and not wants_audio and not shares:
            return source
        if self._codecs is None:
            # A resumed session (obrady restarted) reuses what the camera said last time.
            cache = self.job.media_dir / SOURCE_CACHE
            self._codecs = await asyncio.to_thread(_read_codec_cache, cache, source.url)
            if self._codecs is None:
                with contextlib.suppress(TimeoutError):
                    self._codecs = await probe_codecs(source, source.timeout_seconds + 2)
                if self._codecs is not None:
                    await asyncio.to_thread(_write_codec_cache, cache, source.url, self._codecs)
            if self._codecs is not None:
                log.info(
                    "session %s, camera %s sends video %s, audio %s",
                    self.job.session_id,
                    self.job.camera_id,
                    (self._codecs.video or "(none)")
                    + (" (with B-frames)" if self._codecs.b_frames else ""),
                    self._codecs.audio or "(none)",
                )
        video, audio = (self._codecs.video, self._codecs.audio) if self._codecs else (None, None)
        update: dict[str, str] = {}
        if source.video == "auto":
            # H.264 is copied; anything else (H.265: browsers cannot play it) is re-encoded.
            # Until the camera has answered, assume the common case.
            update["video"] = "copy" if video in (None, "h264") else "h264"
        if wants_audio:
            # AAC is copied; anything else (G.711 cannot go into HLS) is converted, and so is
            # everything until the camera has answered.
            update["audio"] = "copy" if audio == "aac" else "aac"
        resolved = source.model_copy(update=update)
        self.status.video_mode = resolved.video
        self.status.audio_mode = resolved.audio if self.job.audio is None else "chamber"
        shared = self.job.audio
        if isinstance(shared, SharedAudio) and shared.own is not None:
            if resolved.video == "copy" and self._codecs is not None and self._codecs.b_frames:
                # Stamped on arrival, B-frames got the order they were sent in, not the order
                # they are shown: frames were lost and the sound sat 157 ms ahead (measured).
                # This camera opens the chamber sound itself (and encodes it) instead.
                if self._audio is not shared.own:
                    log.warning(
                        "session %s, camera %s sends B-frames: it opens the chamber sound"
                        " itself instead of sharing it",
                        self.job.session_id,
                        self.job.camera_id,
                    )
                self._audio = shared.own
                self.status.audio_mode = "chamber (own: the camera sends B-frames)"
            else:
                self._audio = shared
        return resolved

    def _end_reason(self, code: int | None) -> str:
        if self._stopping.is_set() and code in (0, 255):
            return self._stop_reason
        if self._stopping.is_set():
            return f"{self._stop_reason} (ffmpeg exit code {code})"
        if self._stalled:
            return f"no media from the source for {self._settings.stall_timeout_seconds:g} s"
        if code == 0:
            return "the source ended the stream (camera disconnected)"
        if code is not None and code < 0:
            return f"ffmpeg was killed (signal {-code})"
        last = self.status.stderr_tail[-1] if self.status.stderr_tail else "no output"
        return f"ffmpeg failed (exit code {code}): {last}"

    async def _terminate(self, proc: asyncio.subprocess.Process) -> None:
        self._interrupt()
        try:
            async with asyncio.timeout(self._settings.stop_timeout_seconds):
                await proc.wait()
        except TimeoutError:
            log.error("session %s: ffmpeg ignored SIGINT; killing it", self.job.session_id)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    async def _drain_stderr(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        async for raw in proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self.status.stderr_tail.append(line)

    async def _read_progress(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        sample: tuple[int, float] | None = None
        async for raw in proc.stdout:
            key, _, value = raw.decode("ascii", "replace").strip().partition("=")
            if key == "frame" and value.isdigit():
                # The frame rate actually received, over the last ~2 s (ffmpeg's own fps= is
                # the average since the run started).
                frames, now = int(value), time.monotonic()
                if sample is None or frames < sample[0]:
                    sample = (frames, now)
                elif now - sample[1] >= FPS_WINDOW_SECONDS:
                    self.status.fps = (frames - sample[0]) / (now - sample[1])
                    sample = (frames, now)
            elif key == "out_time_us":
                try:
                    seconds = int(value) / 1_000_000
                except ValueError:
                    continue
                if seconds > self.status.out_time_seconds or self.status.last_progress_at is None:
                    self.status.out_time_seconds = seconds
                    self.status.last_progress_at = self._clock()

    async def _read_frame_times(self, fd: int) -> None:
        """Read a re-encode's frame times (FIFO) as they come, into the run's FrameClock."""
        frames = self._run.frames
        assert frames is not None
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        # The transport owns a duplicate: the run closes its own fd.
        pipe = os.fdopen(os.dup(fd), "rb", buffering=0)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), pipe
        )
        logged_at, unlogged = -math.inf, 0
        try:
            async for raw in reader:
                dropped = frames.dropped_frames
                frames.line(raw.decode("ascii", "replace").strip(), time.time())
                if frames.dropped_frames > dropped:
                    self.status.frames_dropped += frames.dropped_frames - dropped
                    self.status.last_drop_at = self._clock()
                    unlogged += frames.dropped_frames - dropped
                    # An encoder that stays behind drops a few frames at a time, many times
                    # a second: one line per DROP_LOG_SECONDS.
                    if time.monotonic() - logged_at >= DROP_LOG_SECONDS:
                        last = frames.dropped[-1]
                        log.warning(
                            "session %s, camera %s: %d frames dropped (the last up to media"
                            " %.3f s): %s",
                            self.job.session_id, self.job.camera_id, unlogged, last.end,
                            last.cause,
                        )  # fmt: skip
                        logged_at, unlogged = time.monotonic(), 0
                self.status.behind_seconds = frames.lateness
        finally:
            transport.close()

    async def _watchdog(self, proc: asyncio.subprocess.Process) -> None:
        self.status.out_time_seconds = 0.0
        limit = self._settings.stall_timeout_seconds
        while proc.returncode is None:
            await asyncio.sleep(min(1.0, limit / 4))
            last = self.status.last_progress_at
            if last is not None and (self._clock() - last).total_seconds() > limit:
                log.error(
                    "session %s: no progress from ffmpeg for %.0f s; restarting it",
                    self.job.session_id,
                    limit,
                )
                self._stalled = True
                await self._terminate(proc)
                return

    async def _tail(self, run_dir: Path, ended: asyncio.Event) -> None:
        while not ended.is_set():
            await self._collect(run_dir)
            await self._notice_new_file(run_dir)
            self._note_growth(run_dir)
            await asyncio.sleep(POLL_SECONDS)

    def _note_growth(self, run_dir: Path) -> None:
        """Note the newest file's size at this poll: when its bytes arrived tells a source that
        stalled and then sent what it missed in a burst (the timestamps alone do not)."""
        number = self._run.next_file - 1
        if number < 0:
            return
        try:
            stat = (run_dir / (SEGMENT_PATTERN % number)).stat()
        except FileNotFoundError:
            return
        # The real clock, as the file's mtime: the injected one is for what obrady reports.
        _grew(self._run.growth.setdefault(number, ([], [], [])), stat, time.time())

    async def _notice_new_file(self, run_dir: Path) -> None:
        """Report a segment file as soon as ffmpeg creates it (for the live edge)."""
        path = run_dir / (SEGMENT_PATTERN % self._run.next_file)
        if not path.exists():
            return
        self._run.next_file += 1
        try:
            await self._events.segment_started(self.job, path, self._clock())
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("session %s: could not report %s", self.job.session_id, path)

    async def _started_before_finished(self, path: Path) -> None:
        """Report a file's start before its end: when ffmpeg began and finished a segment
        between two looks (a busy machine), the start is reported first, so listeners always
        hear of a file in the order it was made."""
        match = SEGMENT_NAME.match(path.name)
        if match is None or int(match.group(1)) < self._run.next_file:
            return
        self._run.next_file = int(match.group(1))
        await self._notice_new_file(path.parent)

    async def _collect(self, run_dir: Path) -> None:
        """Report segments listed in the run's segment list that were not reported yet."""
        offset = self._run.list_offset
        try:
            with (run_dir / SEGMENT_LIST).open("rb") as fh:
                fh.seek(offset)
                data = fh.read()
        except FileNotFoundError:
            return
        observed_at = self._clock()
        for raw in data.splitlines(keepends=True):
            if not raw.endswith(b"\n"):
                break  # ffmpeg is still writing this line
            # Advance first: a cancellation below must not report the same segment twice.
            offset += len(raw)
            self._run.list_offset = offset
            line = raw.decode("utf-8", "replace").strip()
            entry = parse_segment_line(line)
            if entry is None:
                if line:
                    log.warning(
                        "session %s: unreadable segment list line %r", self.job.session_id, line
                    )
                continue
            path = run_dir / entry.file
            await self._started_before_finished(path)
            polls = self._run.growth.pop(entry.seq, ([], [], []))
            try:
                stat = path.stat()
                size = stat.st_size
                _grew(polls, stat, time.time())  # its last bytes
            except FileNotFoundError:
                size = 0
            times, sizes, looked = polls
            growth = FileGrowth(tuple(times), tuple(sizes), tuple(looked)) if times else None
            self.status.segments += 1
            self.status.last_segment_at = observed_at
            self.status.failing_since = None
            if entry.duration > 0:
                self.status.bytes_per_second = size / entry.duration
            try:
                if self._run.token is None:
                    # A run is indexed once it has recorded something: failed attempts to
                    # reach a camera leave no empty runs behind.
                    self._run.token = await self._events.run_started(
                        self.job, self._run.ordinal, run_dir, self._run.started_at
                    )
                frames = self._run.frames
                finished = FinishedSegment(
                    self._run.token,
                    entry,
                    path,
                    size,
                    observed_at,
                    growth,
                    None if frames is None else frames.zero_at,
                    () if frames is None else frames.dropped_within(entry.start, entry.end),
                )
                await self._events.segment_finished(self.job, finished)
            except asyncio.CancelledError:
                raise
            except Exception:
                # The file is on disk and listed in segments.csv; the index can be rebuilt.
                log.exception("session %s: could not index %s", self.job.session_id, path)


class Recorder:
    """Owns every running CaptureSupervisor and its task; `async with recorder:` stops them
    all on the way out (each finishing its segment)."""

    def __init__(
        self,
        settings: RecordingSettings,
        events: CaptureEvents,
        *,
        argv_builder: ArgvBuilder = capture_argv,
        clock: Clock = _utc_now,
        guardian: Guardian | None = None,
        hole_threshold: float = 0.5,
    ) -> None:
        self._settings = settings
        self._events = events
        self._guardian = guardian
        self._argv_builder = argv_builder
        self._clock = clock
        self._hole_threshold = hole_threshold
        self._captures: dict[tuple[int, str], tuple[CaptureSupervisor, asyncio.Task[None]]] = {}
        # The chamber sound's hub of each session whose RTSP cameras share it.
        self._hubs: dict[int, AudioHub] = {}
        self._tasks = TaskSet("recorder")
        self.blocked: str | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def is_recording(self, session_id: int) -> bool:
        """Whether any camera of this session is being captured."""
        return any(
            key[0] == session_id and not task.done() for key, (_, task) in self._captures.items()
        )

    def supervisor(self, session_id: int, camera_id: str = "main") -> CaptureSupervisor | None:
        """The running supervisor of a session's camera, if any (None once its task ended)."""
        entry = self._captures.get((session_id, camera_id))
        return None if entry is None or entry[1].done() else entry[0]

    def statuses(self) -> list[CaptureStatus]:
        """Status of every capture that is running."""
        return [sup.status for sup, task in self._captures.values() if not task.done()]

    def start(self, job: CaptureJob) -> CaptureSupervisor:
        """Start capturing a camera; AlreadyRecording or CaptureBlocked if it cannot."""
        if self.blocked is not None:
            raise CaptureBlocked(self.blocked)
        entry = self._captures.get(job.key)
        if entry is not None and not entry[1].done():
            raise AlreadyRecording(
                f"camera {job.camera_id} of session {job.session_id} is already being recorded"
            )
        job = self._join_hub(job)
        supervisor = CaptureSupervisor(
            job,
            self._settings,
            self._events,
            argv_builder=self._argv_builder,
            clock=self._clock,
            guardian=self._guardian,
        )
        task = self._tasks.spawn(supervisor.run(), name=f"capture-{job.session_id}-{job.camera_id}")
        self._captures[job.key] = (supervisor, task)
        return supervisor

    def _join_hub(self, job: CaptureJob) -> CaptureJob:
        """An RTSP camera with the chamber's sound, to be shared: the job joins its session's
        audio hub (started now for its first camera)."""
        audio = job.audio
        if not isinstance(audio, RtspAudio | AlsaAudio) or not audio.shared:
            return job
        if not isinstance(job.source, RtspSource):
            return job  # a synthetic picture (the demo) makes its own timing: not shared
        hub = self._hubs.get(job.session_id)
        if hub is None:
            loop = asyncio.get_running_loop()
            session_id = job.session_id
            record = job.media_dir.parent / SOUND_HOLES

            def report(hole: SoundHole) -> None:  # called on the hub's thread
                # Beside the media first (the truth the index can be rebuilt from), then the
                # archive.
                line = {
                    "start": hole.start.isoformat(),
                    "seconds": hole.seconds,
                    "cause": hole.cause,
                }
                try:
                    with record.open("a", encoding="utf-8") as fh:
                        fh.write(json.dumps(line) + "\n")
                except OSError:
                    log.exception("session %s: could not write %s", session_id, record)
                loop.call_soon_threadsafe(self._report_hole, session_id, hole)

            hub = AudioHub(
                audio,
                kbps=job.source.transcoding.audio_kbps,
                hole_threshold=self._hole_threshold,
                on_hole=report,
                chamber=job.chamber_id,
                name=f"{job.chamber_id} (session {job.session_id})",
            )
            hub.start()
            self._hubs[job.session_id] = hub
        return dataclasses.replace(job, audio=hub.link)

    def _report_hole(self, session_id: int, hole: SoundHole) -> None:
        if not self._tasks.closed:
            self._tasks.spawn(
                self._events.sound_missing(session_id, hole), name=f"sound-hole-{session_id}"
            )

    def hub(self, session_id: int) -> AudioHub | None:
        """The session's chamber-sound hub, while one runs."""
        return self._hubs.get(session_id)

    def hubs(self) -> list[tuple[int, AudioHub]]:
        """(session id, hub) of every chamber-sound hub running."""
        return list(self._hubs.items())

    async def _stop_hub_if_unused(self, session_id: int) -> None:
        """Stop the session's hub once none of its cameras is captured (its last hole is
        reported as it stops)."""
        hub = self._hubs.get(session_id)
        if hub is None or any(key[0] == session_id for key in self._captures):
            return
        del self._hubs[session_id]
        await asyncio.to_thread(hub.stop)

    async def stop(self, session_id: int, reason: str = "stopped") -> None:
        """Stop every camera of a session and wait until their last segments are reported."""
        keys = [key for key in self._captures if key[0] == session_id]
        await asyncio.gather(*(self._stop_one(key, reason) for key in keys))

    async def stop_camera(self, session_id: int, camera_id: str, reason: str = "stopped") -> None:
        """Stop one camera's capture of a session."""
        await self._stop_one((session_id, camera_id), reason)

    async def _stop_one(self, key: tuple[int, str], reason: str) -> None:
        entry = self._captures.get(key)
        if entry is None:
            return
        supervisor, task = entry
        await supervisor.stop(reason)
        try:
            # _terminate inside the run escalates to SIGKILL after stop_timeout_seconds.
            await asyncio.shield(task)
        finally:
            if self._captures.get(key) is entry and task.done():
                del self._captures[key]
                await self._stop_hub_if_unused(key[0])

    async def stop_all(self, reason: str = "stopped") -> None:
        """Stop every capture, each finishing its segment."""
        await asyncio.gather(*(self._stop_one(key, reason) for key in list(self._captures)))

    def bytes_per_second(self) -> float:
        """The rate all running captures are writing at."""
        return sum(s.bytes_per_second for s in self.statuses())

    async def close(self) -> None:
        """Stop every capture, each finishing its segment, then wait for every task (used at
        shutdown)."""
        await self.stop_all("obrady was shut down")
        while self._hubs:
            _, hub = self._hubs.popitem()
            await asyncio.to_thread(hub.stop)
        await asyncio.sleep(0)  # the hubs' last holes are handed over before the tasks close
        await self._tasks.close()
