"""Off-air monitor: plays the public live HLS URL through libvlc, as a viewer would, and says
within seconds when what the public receives is not playing, frozen, black or silent."""

from __future__ import annotations

import array
import asyncio
import ctypes
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar

import vlc  # type: ignore[import-untyped]

from recorder.supervisor import RecorderError

log = logging.getLogger(__name__)

T = TypeVar("T")

Problem = Literal["not_playing", "black", "frozen", "silent"]
State = Literal["starting", "playing", "not_playing", "black", "frozen", "silent"]
# Most severe first: the state names the first problem that is true.
PROBLEMS: Final[tuple[Problem, ...]] = ("not_playing", "black", "frozen", "silent")

# Player-side options: no interface, no window, no sound card (libvlc runs as root here). The
# player's own video/audio callbacks override --vout/--aout, so decoded media only reaches us.
VLC_OPTIONS: Final[tuple[str, ...]] = (
    "--intf=dummy",
    "--vout=dummy",
    "--aout=dummy",
    "--no-video-title-show",
    "--no-osd",
    "--no-spu",
    "--no-snapshot-preview",
    "--quiet",
    # Skipping H.264's loop filter saved about 1.5% of a core at 720p25 here (of about 15%);
    # invisible at the monitor's tiny size, and an unchanged picture still decodes unchanged.
    "--avcodec-skiploopfilter=4",
)
AUDIO_RATE: Final = 48_000
AUDIO_CHANNELS: Final = 2
FULL_SCALE: Final = 32_768
# Digital silence (every sample zero) reads as this level instead of minus infinity.
SILENCE_FLOOR_DB: Final = -120.0
# libvlc hands over decoded audio in bursts of about a second, so the reported peak spans more.
PEAK_WINDOW_SECONDS: Final = 2.0
# New pictures are counted from libvlc's media statistics, not from the display callback: the
# video output keeps re-displaying the last picture while a stream is stalled. The statistics
# are refreshed about once a second, so verdicts other than "not_playing" wait for a picture
# counted this recently.
FRESH_SECONDS: Final = 2.0
# After the player reached Ended, a new playback must outlast its starting length by this much.
ENDED_MARGIN_SECONDS: Final = 2.0
# The position counts as advancing if libvlc's playback time grew within this many seconds.
ADVANCING_WINDOW_SECONDS: Final = 2.0
# Back-off between player restarts starts here and resets after this long of healthy playback.
FIRST_BACKOFF_SECONDS: Final = 1.0
HEALTHY_RESET_SECONDS: Final = 10.0
# Right after play() libvlc may still report the previous run's Stopped for a moment.
OPEN_GRACE_SECONDS: Final = 1.0
DEAD_STATES: Final = frozenset({vlc.State.Stopped, vlc.State.Ended, vlc.State.Error})
# RV32 is B, G, R, X in memory on little-endian machines; Rec. 601 luma weights per channel.
LUMA_WEIGHTS: Final = ((0, 0.114), (1, 0.587), (2, 0.299))


class OffAirError(RecorderError):
    """libvlc could not be started for the off-air monitor."""


@dataclass(frozen=True)
class _Handover:
    """What libvlc's threads delivered since the last look."""

    frame: bytes | None
    frames: int
    audio_peak: int  # largest absolute sample since the last look; -1 when no audio came


class _PlayerTap:
    """The libvlc callbacks: keep the newest frame and the audio peak, nothing else.

    They run on libvlc's decoder and output threads, so they only copy under a lock; all
    analysis runs on the event loop. The ctypes wrappers live as long as this
    object, which outlives the player (libvlc calls them through raw pointers)."""

    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.height = height
        self._size = width * height * 4
        self._buffer = ctypes.create_string_buffer(self._size)
        self._address = ctypes.addressof(self._buffer)
        self._lock = threading.Lock()
        self._frame: bytes | None = None
        self._frames = 0
        self._peak = -1
        self.lock_cb = vlc.CallbackDecorators.VideoLockCb(self._on_lock)
        self.display_cb = vlc.CallbackDecorators.VideoDisplayCb(self._on_display)
        self.play_cb = vlc.CallbackDecorators.AudioPlayCb(self._on_play)

    def attach(self, player: Any) -> None:
        """Route the player's video and audio here (neither reaches a screen or a sound card)."""
        player.video_set_callbacks(self.lock_cb, None, self.display_cb, None)
        player.video_set_format("RV32", self.width, self.height, self.width * 4)
        player.audio_set_callbacks(self.play_cb, None, None, None, None, None)
        player.audio_set_format("S16N", AUDIO_RATE, AUDIO_CHANNELS)

    def take(self) -> _Handover:
        """The newest frame and the audio peak since the previous call."""
        with self._lock:
            handover = _Handover(self._frame, self._frames, self._peak)
            self._peak = -1
        return handover

    def _on_lock(self, _opaque: Any, planes: Any) -> None:
        # One buffer for every picture: a torn frame only blurs a statistic, never crashes.
        planes[0] = self._address

    def _on_display(self, _opaque: Any, _picture: Any) -> None:
        frame = ctypes.string_at(self._address, self._size)
        with self._lock:
            self._frame = frame
            self._frames += 1

    def _on_play(self, _opaque: Any, samples: Any, count: int, _pts: int) -> None:
        pcm = array.array("h")
        pcm.frombytes(ctypes.string_at(samples, count * AUDIO_CHANNELS * 2))
        peak = max(max(pcm), -min(pcm)) if pcm else 0
        with self._lock:
            self._peak = max(self._peak, peak)


def frame_luma(frame: bytes) -> float:
    """Mean luma of an RV32 frame as a fraction of full scale (0 black, 1 white)."""
    pixels = len(frame) // 4
    total = sum(weight * sum(frame[channel::4]) for channel, weight in LUMA_WEIGHTS)
    return total / (pixels * 255)


def moved_pixels(a: bytes, b: bytes, step: int, enough: int) -> int:
    """How many pixels of two same-sized RV32 frames differ by more than step levels in green
    (which carries most of the luma); counting stops at enough."""
    moved = 0
    for first, second in zip(a[1::4], b[1::4], strict=True):
        if first - second > step or second - first > step:
            moved += 1
            if moved >= enough:
                break
    return moved


def peak_db(peak: int) -> float:
    """A 16-bit sample peak in dBFS (digital silence as SILENCE_FLOOR_DB)."""
    if peak <= 0:
        return SILENCE_FLOOR_DB
    return max(SILENCE_FLOOR_DB, 20 * math.log10(peak / FULL_SCALE))


def _state_name(state: Any) -> str:
    return str(state).rsplit(".", 1)[-1]


class OffAirMonitor:
    """Watches the public live stream as a viewer receives it and names what is wrong with it.

    `run()` plays the URL through libvlc until `stop()` or cancellation, restarting the player
    with bounded back-off whenever the stream ends, errors or stops delivering pictures, so it
    recovers on its own when the stream comes back. `status()` is cheap and JSON-ready.

    Problems (stable words, fit for metric labels), most severe first:
    - "not_playing": the player is not Playing, or libvlc displayed no new picture for
      `stalled_after_seconds`; while it holds, nothing else is judged. After it, pictures
      must keep coming for `recover_after_seconds` before the stream counts as back.
    - "black": mean luma below `black_below` (of full scale) for `black_after_seconds`.
    - "frozen": fewer than `frozen_moved_pixels` pixels changed by more than
      `frozen_pixel_step` (of full scale) for `frozen_after_seconds`. Not reported while the
      picture is black, which cannot move anyway.
    - "silent": no audio peak at or above `silent_below_db` (dBFS) for
      `silent_after_seconds`, including no audio at all.

    The state is "starting" until the first pictures arrive (at most `stalled_after_seconds`
    after `run()` began), then the most severe problem, or "playing" when there is none. A
    player that ended, failed or showed no new picture for `restart_after_seconds` is
    restarted, waiting 1, 2, 4... up to `max_backoff_seconds` between restarts. Requests carry
    `user_agent` as their User-Agent header when given (libvlc appends " LibVLC/<version>";
    libvlc's own name otherwise)."""

    def __init__(
        self,
        url: str,
        *,
        frozen_after_seconds: float = 4,
        frozen_pixel_step: float = 0.06,
        frozen_moved_pixels: int = 3,
        black_below: float = 0.06,
        black_after_seconds: float = 2,
        silent_below_db: float = -50,
        silent_after_seconds: float = 4,
        stalled_after_seconds: float = 4,
        recover_after_seconds: float = 4,
        restart_after_seconds: float = 8,
        max_backoff_seconds: float = 8,
        check_every_seconds: float = 0.25,
        frame_width: int = 160,
        frame_height: int = 90,
        user_agent: str | None = None,
    ) -> None:
        if frame_width <= 0 or frame_height <= 0:
            raise ValueError("frame_width and frame_height must be greater than zero")
        if check_every_seconds <= 0:
            raise ValueError("check_every_seconds must be greater than zero")
        self.url = url
        self.frozen_after_seconds = frozen_after_seconds
        self.frozen_pixel_step = frozen_pixel_step
        self.frozen_moved_pixels = frozen_moved_pixels
        self._step_levels = round(frozen_pixel_step * 255)
        self.black_below = black_below
        self.black_after_seconds = black_after_seconds
        self.silent_below_db = silent_below_db
        self.silent_after_seconds = silent_after_seconds
        self.stalled_after_seconds = stalled_after_seconds
        self.recover_after_seconds = recover_after_seconds
        self.restart_after_seconds = restart_after_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.check_every_seconds = check_every_seconds
        self.user_agent = user_agent
        self._tap = _PlayerTap(frame_width, frame_height)
        self._silent_below_peak = FULL_SCALE * 10 ** (silent_below_db / 20)
        self._instance: Any = None
        self._player: Any = None
        self._media: Any = None
        self._stop = asyncio.Event()
        self._done = asyncio.Event()
        self._done.set()
        self._running = False
        self._restarts = 0
        self._backoff = FIRST_BACKOFF_SECONDS
        self._next_restart_at = 0.0
        self._run_started_at: float | None = None
        self._opened_at = 0.0
        self._frames_seen = 0
        self._stats: Any = vlc.MediaStats()
        self._outage = False
        self._ended = False
        self._fresh_start = False
        self._reset_observations()
        self._state: State = "starting"
        self._problems: list[Problem] = []
        self._state_since = time.monotonic()

    def _reset_observations(self) -> None:
        """Forget what the previous player instance showed (after a restart)."""
        self._player_state = "NothingSpecial"
        self._pictures_seen = 0
        self._last_frame_at: float | None = None
        self._flow_since: float | None = None
        self._fresh_since: float | None = None
        self._flow_length = 0.0
        self._reference: bytes | None = None
        self._changed_at: float | None = None
        self._luma: float | None = None
        self._dark_since: float | None = None
        self._peaks: deque[tuple[float, int]] = deque()
        self._loud_at: float | None = None
        self._max_time = -1
        self._time_moved_at: float | None = None

    # --- lifecycle -------------------------------------------------------------------------

    async def run(self) -> None:
        """Play and judge the stream until `stop()` or cancellation; always releases libvlc."""
        if self._running:
            raise RuntimeError("this OffAirMonitor is already running")
        self._running = True
        self._stop.clear()
        self._done.clear()
        self._run_started_at = time.monotonic()
        self._outage = self._ended = False
        self._backoff, self._next_restart_at = FIRST_BACKOFF_SECONDS, 0.0
        self._reset_observations()
        self._set_state("starting", [], self._run_started_at)
        try:
            await _finish_in_thread(self._open)
            log.info("off-air monitor watching %s", self.url)
            while not self._stop.is_set():
                try:
                    await self._check()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("off-air check of %s failed", self.url)
                try:
                    async with asyncio.timeout(self.check_every_seconds):
                        await self._stop.wait()
                except TimeoutError:
                    pass
        finally:
            try:
                await _finish_in_thread(self._close)
            finally:
                self._running = False
                self._state, self._problems = "not_playing", ["not_playing"]
                self._state_since = time.monotonic()
                self._done.set()

    async def _check(self) -> None:
        """One look at the player; restarts it when it is dead and the back-off allows."""
        now = time.monotonic()
        if self._observe(now) and now >= self._next_restart_at:
            self._reset_observations()
            await _finish_in_thread(self._restart)
            self._restarts += 1
            self._next_restart_at = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, self.max_backoff_seconds)

    def retry_soon(self) -> None:
        """Forget the back-off: a player that is dead or waiting to be restarted is restarted at
        the next check. For when the stream is known to have (re)appeared (the watch calls it
        when the public live playlist begins to move), so the monitor does not sleep through up
        to `max_backoff_seconds` of a healthy start. The stream is known to be live and moving,
        so the next pictures are a start, not a recovery to be proven: the first fresh ones
        count (no `recover_after_seconds`, and an earlier end no longer lengthens it)."""
        self._backoff = FIRST_BACKOFF_SECONDS
        self._next_restart_at = 0.0
        self._ended = False
        self._fresh_start = True

    async def stop(self) -> None:
        """Stop playing and wait until libvlc is released (at once if not running)."""
        self._stop.set()
        await self._done.wait()

    def _open(self) -> None:
        # Blocking (libvlc loads its plugins): runs in a worker thread.
        self._instance = vlc.Instance(*VLC_OPTIONS)
        if self._instance is None:
            raise OffAirError(
                f"libvlc did not start with {' '.join(VLC_OPTIONS)}; is VLC installed "
                "(libvlc5, vlc-plugin-base)?"
            )
        if self.user_agent:
            # Sent with every playlist and segment request, so the service can tell the
            # monitor from real viewers.
            self._instance.set_user_agent(self.user_agent, self.user_agent)
        self._player = self._instance.media_player_new()
        self._tap.attach(self._player)
        self._play()

    def _play(self) -> None:
        media = self._instance.media_new(self.url)
        self._player.set_media(media)
        if self._media is not None:
            self._media.release()
        self._media = media
        self._opened_at = time.monotonic()
        if self._player.play() != 0:
            log.warning("off-air monitor: libvlc refused to play %s", self.url)

    def _restart(self) -> None:
        # Blocking (stop joins libvlc's input thread): runs in a worker thread.
        self._player.stop()
        self._play()

    def _close(self) -> None:
        # Blocking: runs in a worker thread. Releases whatever _open got to create.
        if self._player is not None:
            self._player.stop()
            self._player.release()
            self._player = None
        if self._media is not None:
            self._media.release()
            self._media = None
        if self._instance is not None:
            self._instance.release()
            self._instance = None

    # --- judging ---------------------------------------------------------------------------

    def _observe(self, now: float) -> bool:
        """Take what libvlc delivered, update the state; True when the player needs a restart."""
        player = self._player
        vlc_state = player.get_state()
        self._player_state = _state_name(vlc_state)
        position = int(player.get_time())
        if position > self._max_time:
            self._max_time = position
            self._time_moved_at = now
        handover = self._tap.take()
        if handover.audio_peak >= 0:
            self._peaks.append((now, handover.audio_peak))
            if handover.audio_peak >= self._silent_below_peak:
                self._loud_at = now
        while self._peaks and now - self._peaks[0][0] > PEAK_WINDOW_SECONDS:
            self._peaks.popleft()
        if handover.frames != self._frames_seen and handover.frame is not None:
            self._frames_seen = handover.frames
            self._look_at(handover.frame, now)
        if self._media is not None and self._media.get_stats(self._stats):
            pictures = int(self._stats.displayed_pictures)
            if pictures > self._pictures_seen:
                self._pictures_seen = pictures
                self._last_frame_at = now

        age = None if self._last_frame_at is None else now - self._last_frame_at
        playing = vlc_state == vlc.State.Playing
        flowing = playing and age is not None and age < self.stalled_after_seconds
        fresh = playing and age is not None and age < FRESH_SECONDS
        if vlc_state == vlc.State.Ended:
            self._ended = True
        if not flowing:
            self._flow_since = None
            self._reference = None
            self._dark_since = None
        elif self._flow_since is None:
            self._flow_since = now
            self._changed_at = now
            self._flow_length = max(0, int(player.get_length())) / 1000
        if not fresh:
            self._fresh_since = None
        elif self._fresh_since is None:
            self._fresh_since = now
        self._judge(now, fresh)

        if flowing:
            if self._flow_since is not None and now - self._flow_since >= HEALTHY_RESET_SECONDS:
                self._backoff = FIRST_BACKOFF_SECONDS
            return False
        if now - self._opened_at < OPEN_GRACE_SECONDS:
            return False
        if vlc_state in DEAD_STATES:
            self._log_restart(f"player {self._player_state}")
            return True
        quiet_since = max(self._opened_at, self._last_frame_at or 0.0)
        if now - quiet_since >= self.restart_after_seconds:
            self._log_restart(f"no new picture for {now - quiet_since:.0f} s")
            return True
        return False

    def _look_at(self, frame: bytes, now: float) -> None:
        """Measure one new frame: its brightness, and whether it differs from the reference."""
        self._luma = frame_luma(frame)
        if self._luma < self.black_below:
            if self._dark_since is None:
                self._dark_since = now
        else:
            self._dark_since = None
        if self._reference is None or self._moved(frame, self._reference):
            # Compare with the last picture that counted as a change, not the previous sample,
            # so slow movement adds up instead of hiding under the threshold.
            self._reference = frame
            self._changed_at = now

    def _moved(self, frame: bytes, reference: bytes) -> bool:
        enough = self.frozen_moved_pixels
        return moved_pixels(frame, reference, self._step_levels, enough) >= enough

    def _judge(self, now: float, fresh: bool) -> None:
        starting = (
            self._state == "starting"
            and self._flow_since is None
            and self._run_started_at is not None
            and now - self._run_started_at < self.stalled_after_seconds
        )
        if starting:
            self._set_state("starting", [], now)
            return
        if self._flow_since is None or (self._outage and not self._recovered(now)):
            self._outage = True
            self._set_state("not_playing", ["not_playing"], now)
            return
        if not fresh:
            # Pictures are late but not yet stalled: keep the last verdict until they come.
            return
        self._outage = self._ended = self._fresh_start = False
        problems: list[Problem] = []
        if self._dark_since is not None and now - self._dark_since >= self.black_after_seconds:
            problems.append("black")
        dark_now = self._luma is not None and self._luma < self.black_below
        changed_at = self._changed_at if self._changed_at is not None else now
        if not dark_now and now - changed_at >= self.frozen_after_seconds:
            problems.append("frozen")
        heard = max(self._flow_since, self._loud_at or self._flow_since)
        if now - heard >= self.silent_after_seconds:
            problems.append("silent")
        self._set_state(problems[0] if problems else "playing", problems, now)

    def _recovered(self, now: float) -> bool:
        """After an outage, pictures must keep coming for a while before the stream counts as
        back: a restarted player replays the tail of a stalled live playlist for a few
        seconds, and the whole of one that was ended (#EXT-X-ENDLIST), so after an end the
        new playback must also outlast the length the player saw when it began."""
        if self._fresh_start:
            return self._fresh_since is not None
        needed = self.recover_after_seconds
        if self._ended:
            needed = max(needed, self._flow_length + ENDED_MARGIN_SECONDS)
        return self._fresh_since is not None and now - self._fresh_since >= needed

    def _set_state(self, state: State, problems: list[Problem], now: float) -> None:
        if state != self._state:
            if state == "playing" and self._state == "starting":
                log.info("off-air %s: playing", self.url)
            elif state == "playing":
                log.info("off-air %s: playing again after %s", self.url, self._state)
            elif state != "starting":
                # INFO: whether it matters (something should be on air) is the watch's call,
                # which logs an alarm as an error (streaming/services/offair.py).
                log.info("off-air %s: %s (problems: %s)", self.url, state, ", ".join(problems))
            self._state = state
            self._state_since = now
        self._problems = problems

    def _log_restart(self, reason: str) -> None:
        if time.monotonic() >= self._next_restart_at:
            log.info(
                "off-air %s: %s; restarting the player (restart %d, next back-off %.0f s)",
                self.url,
                reason,
                self._restarts + 1,
                self._backoff,
            )

    # --- reporting -------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What the public receives now, JSON-ready (see the class docstring for the words)."""
        now = time.monotonic()
        peak = max((p for _, p in self._peaks), default=None)
        advancing = (
            self._time_moved_at is not None and now - self._time_moved_at < ADVANCING_WINDOW_SECONDS
        )
        return {
            "url": self.url,
            "state": self._state,
            "problems": list(self._problems),
            "since": round(now - self._state_since, 2),
            "player_state": self._player_state,
            "position_advancing": advancing,
            "last_frame_age_seconds": (
                None if self._last_frame_at is None else round(now - self._last_frame_at, 2)
            ),
            "luma": None if self._luma is None else round(self._luma, 4),
            "audio_peak_db": None if peak is None else round(peak_db(peak), 1),
            "restarts": self._restarts,
            # How long the picture has not changed, and the sound has stayed below the silence
            # level, while pictures came (None while none come).
            "picture_unchanged_seconds": (
                None
                if self._flow_since is None or self._changed_at is None
                else round(now - self._changed_at, 1)
            ),
            "sound_quiet_seconds": (
                None
                if self._flow_since is None
                else round(now - max(self._flow_since, self._loud_at or self._flow_since), 1)
            ),
        }


async def _finish_in_thread(call: Callable[[], T]) -> T:
    """Run a blocking libvlc call in a worker thread and let it finish even when cancelled
    (half-done libvlc work cannot be abandoned safely), then re-raise the cancellation."""
    task = asyncio.ensure_future(asyncio.to_thread(call))
    cancellation: asyncio.CancelledError | None = None
    while True:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError as exc:
            if task.done():
                raise
            cancellation = exc
            continue
        if cancellation is not None:
            raise cancellation
        return result
