"""The chamber's sound captured and encoded once, shared by every camera of the chamber (issue
15; the design and its measurements are in docs/chamber-audio.md).

One hub per recorded session of a chamber, in three parts:

- the source: an ffmpeg that alone opens the chamber audio (the microphone system's RTSP
  stream, or an ALSA device, which only one process may open) and writes it decoded, 48 kHz
  stereo s16le, to a pipe; started again whenever it ends;
- the pacer: a thread that passes that sound on at exactly the pace of the clock, through a
  short jitter buffer. Where the source has no sound it sends silence, so the cameras' ffmpeg
  never wait on sound (ffmpeg 5.1 stops reading a camera while its other input has nothing,
  which stalls the picture); where the source runs ahead of the clock it drops samples. Every
  stretch of silence it had to make up is a hole in the chamber's sound and is reported, with
  its cause, on the wall clock;
- the encoder: an ffmpeg that encodes the sound to AAC once, stamped with the wall clock less
  the hub's epoch (so MPEG-TS's 33-bit clock does not wrap within a session), and sends MPEG-TS
  to a multicast group on the loopback interface that each camera's ffmpeg joins
  (recorder/ffmpeg.py SharedAudio). A camera that stops or restarts touches nothing else.

The pacer and the source reader are threads, not asyncio tasks: the sound keeps its pace while
the service's event loop is busy.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

import ffmpeg  # type: ignore[import-untyped]

from recorder.ffmpeg import ChamberAudio, SharedAudio, chamber_audio_input

log = logging.getLogger(__name__)

RATE = 48000
CHANNELS = 2
FRAME_BYTES = 2 * CHANNELS  # one s16le sample of every channel
# The pacer's step: each tick sends the samples the clock has advanced by since the last.
TICK_SECONDS = 0.02
# Sound is sent this long after it came from the source (and stamped that much earlier): room
# for the source's packets (20-40 ms each) and for the source ffmpeg's scheduling on a busy
# machine, without silence in between.
LATENCY_SECONDS = 0.2
# The source runs ahead of the clock (its sample clock is fast, or it delivers a backlog) when
# the buffer never fell below LATENCY + this over a whole window: the excess is dropped.
AHEAD_SECONDS = 0.05
AHEAD_WINDOW_SECONDS = 2.0
# The buffer never holds more than this: beyond it the oldest sound goes at once.
MAX_BUFFER_SECONDS = 1.0
# Stamps start this far after the hub's epoch: a session may last 26.5 h less this before
# MPEG-TS's clock wraps.
EPOCH_LEAD_SECONDS = 600
# A loopback multicast group per hub (239.255.0.0/16 is the organisation-local scope).
GROUP_PREFIX = "239.255.77."
# A camera's ffmpeg that hears nothing from the hub this long ends its run (then started
# again); the hub sends continuously, so this only happens when the hub is gone.
CAMERA_TIMEOUT_SECONDS = 2.0
# Like a camera's: a microphone system that comes back is heard again within a second.
RESTART_BACKOFF = (0.25, 0.5, 1.0)
HEALTHY_SECONDS = 10.0  # a source that ran this long starts again without waiting
ENCODER_STALL_SECONDS = 2.0  # an encoder that takes no sound this long is restarted
STDERR_LINES = 20

_groups = itertools.count()


@dataclass(frozen=True)
class SoundHole:
    """A stretch on the wall clock where the chamber's sound was missing and silence was sent
    in its place."""

    start: datetime
    seconds: float
    cause: str


HoleReport = Callable[[SoundHole], None]


def source_argv(audio: ChamberAudio) -> list[str]:
    """The ffmpeg that opens the chamber audio and writes it decoded to stdout: 48 kHz stereo
    s16le, each packet at once."""
    out = ffmpeg.output(
        chamber_audio_input(audio)["a:0"],
        "pipe:1",
        f="s16le",
        acodec="pcm_s16le",
        ar=RATE,
        ac=CHANNELS,
        flush_packets=1,
    )
    argv: list[str] = ffmpeg.compile(
        out.global_args("-hide_banner", "-nostdin", "-loglevel", "warning", "-nostats"),
        cmd="ffmpeg",
    )
    return argv


def encoder_argv(link: SharedAudio, first_stamp: float, kbps: int) -> list[str]:
    """The ffmpeg that encodes the paced sound from stdin to AAC once and sends it to the
    hub's group: its first sample stamped `first_stamp` (seconds after the epoch), each next
    one by counting samples. One AAC frame per datagram, sent at once."""
    return [
        "ffmpeg", "-hide_banner", "-loglevel", "warning", "-nostats",
        "-f", "s16le", "-ar", str(RATE), "-ac", str(CHANNELS), "-i", "pipe:0",
        "-af", f"asetpts=N/SR/TB+{first_stamp:.6f}/TB",
        "-c:a", "aac", "-b:a", f"{kbps}k",
        "-f", "mpegts", "-pes_payload_size", "0", "-muxdelay", "0", "-muxpreload", "0",
        "-flush_packets", "1", "-pat_period", "0.1",
        f"udp://{link.group}:{link.port}?localaddr=127.0.0.1&ttl=0&pkt_size=1316",
    ]  # fmt: skip


def free_udp_port() -> int:
    """A UDP port nobody uses on this machine now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class HubStatus:
    """What the hub knows, JSON-ready through as_dict()."""

    source_state: str = "starting"  # starting, receiving, silent, failed
    source_error: str | None = None
    source_restarts: int = 0
    encoder_restarts: int = 0
    samples_sent: int = 0
    samples_silent: int = 0
    samples_dropped: int = 0
    holes: int = 0
    stderr_tail: collections.deque[str] = field(
        default_factory=lambda: collections.deque(maxlen=STDERR_LINES)
    )

    def as_dict(self) -> dict[str, Any]:
        return {
            "source_state": self.source_state,
            "source_error": self.source_error,
            "source_restarts": self.source_restarts,
            "encoder_restarts": self.encoder_restarts,
            "seconds_sent": round(self.samples_sent / RATE, 3),
            "seconds_silent": round(self.samples_silent / RATE, 3),
            "seconds_dropped": round(self.samples_dropped / RATE, 3),
            "holes": self.holes,
        }


class AudioHub:
    """One chamber's sound, opened and encoded once, sent to its cameras (see the module)."""

    def __init__(
        self,
        audio: ChamberAudio,
        *,
        kbps: int = 128,
        hole_threshold: float = 0.5,
        on_hole: HoleReport | None = None,
        chamber: str = "chamber",
        name: str | None = None,
    ) -> None:
        self.audio = audio
        self.chamber = chamber
        self.name = name or chamber
        self._kbps = kbps
        self._threshold = hole_threshold
        self._on_hole = on_hole
        self.link = SharedAudio(
            group=f"{GROUP_PREFIX}{next(_groups) % 250 + 1}",
            port=free_udp_port(),
            epoch=float(int(time.time()) - EPOCH_LEAD_SECONDS),
            timeout_seconds=CAMERA_TIMEOUT_SECONDS,
            own=audio,
        )
        self.status = HubStatus()
        self._buffer = bytearray()
        self._most = round(MAX_BUFFER_SECONDS * RATE) * FRAME_BYTES
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._source: subprocess.Popen[bytes] | None = None
        self._encoder: subprocess.Popen[bytes] | None = None
        self._threads: list[threading.Thread] = []
        # The pacer's clock: sample n is sent at _mono0 + n / RATE and was heard at
        # _wall0 + n / RATE - LATENCY_SECONDS.
        self._mono0 = 0.0
        self._wall0 = 0.0
        self._sent = 0
        # The latest failure of the source during the hole now open (None: it sent nothing).
        self._hole_error: str | None = None

    # Life -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the source, the pacer and the encoder; returns at once. Sound (or silence)
        goes to the group from now on."""
        self._mono0 = time.monotonic()
        self._wall0 = time.time()
        for target, label in ((self._read_source, "source"), (self._pace, "pacer")):
            thread = threading.Thread(target=target, name=f"audiohub-{self.name}-{label}")
            thread.daemon = True
            thread.start()
            self._threads.append(thread)
        log.info(
            "chamber %s: sound hub sends to udp://%s:%d", self.name, self.link.group, self.link.port
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Stop sending (the hole still open is reported) and end both ffmpeg; blocks (call it
        in a thread from async code)."""
        self._stopping.set()
        proc = self._source
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.1, deadline - time.monotonic()))
        for proc in (self._source, self._encoder):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()

    # The source -------------------------------------------------------------------------------

    def _read_source(self) -> None:
        attempt = 0
        argv = source_argv(self.audio)
        while not self._stopping.is_set():
            began = time.monotonic()
            try:
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    start_new_session=True,
                )
            except OSError as exc:
                self._source_failed(f"ffmpeg could not start: {exc}")
                proc = None
            if proc is not None:
                self._source = proc
                assert proc.stdout is not None and proc.stderr is not None
                drain = self._drain_stderr(proc.stderr)
                fd = proc.stdout.fileno()
                while True:
                    try:
                        chunk = os.read(fd, 65536)
                    except OSError:
                        chunk = b""
                    if not chunk:
                        break
                    with self._lock:
                        self._buffer += chunk
                        excess = len(self._buffer) - self._most
                        if excess > 0:
                            # A source far ahead of the clock (a backlog, a device not paced
                            # in real time): keep the newest sound, and the memory bounded.
                            excess += self._most // 2
                            excess -= excess % FRAME_BYTES
                            del self._buffer[:excess]
                            self.status.samples_dropped += excess // FRAME_BYTES
                    if self.status.source_state != "receiving":
                        self.status.source_state = "receiving"
                        self.status.source_error = None
                code = proc.wait()
                drain.join(1.0)
                proc.stdout.close()
                if self._stopping.is_set():
                    break
                tail = list(self.status.stderr_tail)
                said = f": {tail[-1]}" if tail else ""
                self._source_failed(
                    f"its stream ended{said}" if code == 0 else f"ffmpeg exited with {code}{said}"
                )
            if time.monotonic() - began >= HEALTHY_SECONDS:
                attempt = 0
            wait = RESTART_BACKOFF[min(attempt, len(RESTART_BACKOFF) - 1)]
            attempt += 1
            if self._stopping.wait(wait):
                break
            self.status.source_restarts += 1

    def _source_failed(self, error: str) -> None:
        self.status.source_state = "failed"
        self.status.source_error = error
        self._hole_error = error
        log.warning("chamber %s: the sound's source failed: %s", self.name, error)

    def _drain_stderr(self, stream: IO[bytes]) -> threading.Thread:
        def drain() -> None:
            for raw in stream:
                line = raw.decode("utf-8", "replace").rstrip()
                if line:
                    self.status.stderr_tail.append(line)
            stream.close()

        thread = threading.Thread(target=drain, name=f"audiohub-{self.name}-stderr", daemon=True)
        thread.start()
        return thread

    # The pacer --------------------------------------------------------------------------------

    def heard_at(self, sample: int) -> float:
        """The wall time (epoch s) at which sample `sample` of the hub's stream was heard."""
        return self._wall0 + sample / RATE - LATENCY_SECONDS

    def _pace(self) -> None:
        latency = round(LATENCY_SECONDS * RATE) * FRAME_BYTES
        ahead = round((LATENCY_SECONDS + AHEAD_SECONDS) * RATE) * FRAME_BYTES
        playing = False
        hole_from: int | None = 0  # the first silent sample of the hole now open
        low_water = None  # the least buffer level since the window began (playing only)
        window_from = time.monotonic()
        try:
            while not self._stopping.is_set():
                due = int((time.monotonic() - self._mono0) * RATE) - self._sent
                if due > 0:
                    out = bytearray()
                    with self._lock:
                        level = len(self._buffer)
                        if not playing and level >= latency:
                            playing = True
                            low_water, window_from = None, time.monotonic()
                            if hole_from is not None:
                                self._hole_ended(hole_from, self._sent)
                                hole_from = None
                        if playing:
                            low_water = level if low_water is None else min(low_water, level)
                            take = min(level, due * FRAME_BYTES)
                            out += self._buffer[:take]
                            del self._buffer[:take]
                            if take < due * FRAME_BYTES:
                                # The source fell silent: what is missing is the hole's start.
                                playing = False
                                hole_from = self._sent + take // FRAME_BYTES
                                failed = self.status.source_state == "failed"
                                self._hole_error = self.status.source_error if failed else None
                    missing = due * FRAME_BYTES - len(out)
                    if missing:
                        out += bytes(missing)
                        self.status.samples_silent += missing // FRAME_BYTES
                        if self.status.source_state == "receiving":
                            self.status.source_state = "silent"
                    if not self._send(bytes(out)):
                        continue  # the encoder was restarted; the clock moved on meanwhile
                    self._sent += due
                    self.status.samples_sent = self._sent
                    now = time.monotonic()
                    if playing and now - window_from >= AHEAD_WINDOW_SECONDS:
                        if low_water is not None and low_water > ahead:
                            self._drop(low_water - latency)
                        low_water, window_from = None, now
                self._stopping.wait(TICK_SECONDS)
        finally:
            if hole_from is not None:
                self._hole_ended(hole_from, self._sent)
            encoder = self._encoder
            if encoder is not None and encoder.stdin is not None:
                with contextlib.suppress(OSError):
                    encoder.stdin.close()
                try:
                    encoder.wait(5)
                except subprocess.TimeoutExpired:
                    encoder.kill()
                    encoder.wait()

    def _drop(self, excess: int) -> None:
        excess -= excess % FRAME_BYTES
        with self._lock:
            del self._buffer[:excess]
        self.status.samples_dropped += excess // FRAME_BYTES
        log.info(
            "chamber %s: the sound's source ran %.3f s ahead of the clock; dropped",
            self.name,
            excess / FRAME_BYTES / RATE,
        )

    def _hole_ended(self, first: int, end: int) -> None:
        """The pacer's hole from sample `first` to `end` is over: report it with its cause."""
        if self._hole_error is not None:
            cause = f"the chamber's sound could not be received ({self._hole_error})"
        else:
            cause = "the chamber's sound source sent no sound"
        self._hole_error = None
        self._report(first, end, cause)

    def _report(self, first: int, end: int, cause: str) -> None:
        seconds = (end - first) / RATE
        if seconds <= 0:
            return
        start = datetime.fromtimestamp(self.heard_at(first), UTC)
        level = logging.WARNING if seconds >= self._threshold else logging.DEBUG
        log.log(
            level, "chamber %s: no sound for %.3f s from %s: %s", self.name, seconds, start, cause
        )
        if seconds < self._threshold:
            return
        self.status.holes += 1
        if self._on_hole is not None:
            try:
                self._on_hole(SoundHole(start, seconds, cause))
            except Exception:
                log.exception("chamber %s: a sound hole could not be reported", self.name)

    # The encoder ------------------------------------------------------------------------------

    def _send(self, data: bytes) -> bool:
        """Write to the encoder; False when it had to be started again (this tick's sound and
        everything since it stopped reached no camera: reported as a hole)."""
        encoder = self._encoder
        if encoder is None:
            encoder = self._start_encoder()
        elif encoder.poll() is not None:
            self._restart_encoder(f"ended (exit code {encoder.returncode})")
            return False
        assert encoder.stdin is not None
        fd = encoder.stdin.fileno()
        view = memoryview(data)
        blocked_since: float | None = None
        while view:
            try:
                view = view[os.write(fd, view) :]
            except BlockingIOError:
                pass
            except OSError as exc:
                self._restart_encoder(f"could not be written to ({exc})")
                return False
            if view:
                blocked_since = blocked_since or time.monotonic()
                if time.monotonic() - blocked_since > ENCODER_STALL_SECONDS:
                    self._restart_encoder(f"took no sound for {ENCODER_STALL_SECONDS:g} s")
                    return False
                time.sleep(0.005)
        return True

    def _restart_encoder(self, why: str) -> None:
        encoder = self._encoder
        if encoder is not None:
            if encoder.poll() is None:
                encoder.kill()
                encoder.wait()
            if encoder.stdin is not None:
                with contextlib.suppress(OSError):
                    encoder.stdin.close()
        self.status.encoder_restarts += 1
        log.warning("chamber %s: the sound's encoder %s; starting it again", self.name, why)
        lost_from = self._sent
        self._sent = int((time.monotonic() - self._mono0) * RATE)
        self._report(lost_from, self._sent, f"the chamber's sound encoder {why}")
        self._start_encoder()

    def _start_encoder(self) -> subprocess.Popen[bytes]:
        first_stamp = self.heard_at(self._sent) - self.link.epoch
        encoder = subprocess.Popen(
            encoder_argv(self.link, first_stamp, self._kbps),
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        assert encoder.stdin is not None
        os.set_blocking(encoder.stdin.fileno(), False)
        self._encoder = encoder
        return encoder
