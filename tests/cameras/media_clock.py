"""Read back the test camera's marks from a recording: the wall clock each frame's picture
shows (its clock code) and the wall second each click in the sound marks, both at the media
time they sit at in the recording. So a test can say: at media time t the picture shows W_v(t)
and the sound W_a(t)."""

from __future__ import annotations

import array
import asyncio
import bisect
import contextlib
import re
import signal
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cameras.marks import CLICK_HZ, CLICK_SECONDS
from conftest import wait_for

from recorder.ffmpeg import SEGMENT_LIST, clock_code_layout, clock_stamps, parse_segment_line

WRAP = 2**32
AUDIO_RATE = 48000  # the recorder's AAC rate; the reader asks ffmpeg for it whatever the input
# A click is the first sample above THRESHOLD after QUIET_SECONDS below it (the camera's
# clicks are at half of full scale on digital silence).
THRESHOLD = 0.1 * 32767
QUIET_SECONDS = 0.3
SILENT_DB = -50.0
SILENT_SECONDS = 0.1
# Pitch is read over the burst, less a margin for the encoder's smearing of its edges.
PITCH_WINDOW = CLICK_SECONDS * 0.75
SHOWINFO = re.compile(r"\[Parsed_(a?)showinfo_\d+ @ [^]]*\] .*?pts_time:\s*(-?[\d.]+)")
SAMPLES = re.compile(r"nb_samples:\s*(\d+)")


class MediaClockError(AssertionError):
    """The recording could not be read back (a test failure, with ffmpeg's words)."""


@dataclass(frozen=True)
class Click:
    """A click in the sound: at media time `media`, marking the wall clock's second `wall`."""

    media: float
    wall: float


@dataclass(frozen=True)
class MediaClock:
    """The camera's marks as a recording holds them: `frames` are (media seconds, wall seconds
    the picture shows), in order; `clicks` the clicks found in the sound."""

    frames: tuple[tuple[float, float], ...]
    clicks: tuple[Click, ...]
    # (media start, media end) of each stretch of the sound below SILENT_DB for at least
    # SILENT_SECONDS: with a source that sends a steady tone, its holes.
    silences: tuple[tuple[float, float], ...] = ()

    @property
    def changes(self) -> tuple[tuple[float, float], ...]:
        """The frames where the picture changes: a re-encode at a higher frame rate than the
        camera's repeats frames, and a repeated frame shows its moment late."""
        shown: list[tuple[float, float]] = []
        for media, wall in self.frames:
            if not shown or wall != shown[-1][1]:
                shown.append((media, wall))
        return tuple(shown)

    def picture_at(self, media: float) -> float:
        """W_v(media): the wall clock the picture shows at a media time (between two changes
        of the picture, by linear interpolation; beyond the ends, at one second a second)."""
        changes = self.changes
        times = [t for t, _ in changes]
        if not times:
            raise MediaClockError("the recording has no stamped frames")
        i = bisect.bisect_right(times, media)
        if i == 0:
            return changes[0][1] - (times[0] - media)
        if i == len(times):
            return changes[-1][1] + (media - times[-1])
        (t0, w0), (t1, w1) = changes[i - 1], changes[i]
        return w0 + (w1 - w0) * (media - t0) / (t1 - t0)

    def lipsync(self) -> list[float]:
        """W_a − W_v at each click the picture spans (seconds): positive when the sound is
        ahead of the picture (at the same media time it plays a later moment of the room).
        The picture spans from its second change to its last: a copied run's first frame has
        a timestamp ffmpeg guessed (see COPY_TIMESTAMP_FIX in recorder/ffmpeg.py), and before
        the first frame or after the last there is no picture to compare with."""
        changes = self.changes
        if len(changes) < 3:
            raise MediaClockError("the recording has too few stamped frames")
        first, last = changes[1][0], changes[-1][0]
        return [
            click.wall - self.picture_at(click.media)
            for click in self.clicks
            if first <= click.media <= last
        ]

    def picture_jumps(self, more_than: float) -> list[tuple[float, float]]:
        """(media time, seconds of the wall clock missing) wherever the picture clock moves on
        by more than `more_than` seconds beyond its usual step (the camera's frame interval)."""
        changes = self.changes
        steps = [b[1] - a[1] for a, b in zip(changes, changes[1:], strict=False)]
        if not steps:
            return []
        usual = sorted(steps)[len(steps) // 2]
        return [
            (after[0], round(step - usual, 3))
            for after, step in zip(changes[1:], steps, strict=True)
            if step - usual > more_than
        ]


def unwrap_ms(stamp: int, near_ms: int) -> int:
    """The epoch milliseconds, nearest to near_ms, whose value mod 2**32 is stamp."""
    delta = (stamp - near_ms) % WRAP
    return near_ms + (delta - WRAP if delta >= WRAP // 2 else delta)


def find_clicks(pcm: array.array[int], times: list[float], rate: int) -> list[tuple[float, int]]:
    """(media time, index into CLICK_HZ) of each click in mono 16-bit samples whose media times
    are `times` (one per sample)."""
    quiet = round(QUIET_SECONDS * rate)
    window = round(PITCH_WINDOW * rate)
    found: list[tuple[float, int]] = []
    last_loud = -quiet - 1
    for i, value in enumerate(pcm):
        if abs(value) <= THRESHOLD:
            continue
        if i - last_loud > quiet and i + window <= len(pcm):
            burst = pcm[i : i + window]
            crossings = sum(1 for a, b in zip(burst, burst[1:], strict=False) if (a < 0) != (b < 0))
            hz = crossings / (2 * PITCH_WINDOW)
            pitch = min(range(len(CLICK_HZ)), key=lambda k: abs(CLICK_HZ[k] - hz))
            found.append((times[i], pitch))
        last_loud = i
    return found


async def read_media_clock(
    files: Sequence[Path], width: int, *, near: float | None = None, timeout: float = 60
) -> MediaClock:
    """Decode segments of one run (consecutive MPEG-TS files of a camera `width` px wide that
    carries the clock code, and clicks if it has sound) and return their marks at the media
    times the files give them. `near` (epoch seconds, default now) picks the 2**32 ms window."""
    near_ms = round((time.time() if near is None else near) * 1000)
    layout = clock_code_layout(width)
    rows = layout.y + layout.square
    with tempfile.TemporaryDirectory(prefix="media-clock-") as scratch:
        strip, sound = Path(scratch) / "strip.gray", Path(scratch) / "sound.s16"
        proc = await asyncio.create_subprocess_exec(
            "ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-loglevel", "info",
            "-copyts", "-i", "concat:" + "|".join(str(f) for f in files),
            "-map", "0:v:0", "-vf", f"crop={width}:{rows}:0:0,showinfo",
            "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "gray", str(strip),
            "-map", "0:a:0?", "-af", f"aresample={AUDIO_RATE},ashowinfo", "-ac", "1",
            "-f", "s16le", str(sound),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            _, err = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise MediaClockError(f"decoding {len(files)} segments took over {timeout} s") from None
        log = err.decode("utf-8", "replace")
        if proc.returncode != 0:
            raise MediaClockError(f"ffmpeg could not decode the recording:\n{log[-2000:]}")
        video_pts: list[float] = []
        audio_frames: list[tuple[float, int]] = []
        for line in log.splitlines():
            match = SHOWINFO.search(line)
            if match is None:
                continue
            if match.group(1):
                samples = SAMPLES.search(line)
                audio_frames.append(
                    (float(match.group(2)), int(samples.group(1)) if samples else 0)
                )
            else:
                video_pts.append(float(match.group(2)))
        stamps = clock_stamps(strip.read_bytes(), width, rows)
        if len(stamps) != len(video_pts):
            raise MediaClockError(f"{len(stamps)} frames decoded, {len(video_pts)} timestamps")
        frames = tuple(
            (t, unwrap_ms(stamp, near_ms) / 1000)
            for t, stamp in zip(video_pts, stamps, strict=True)
            if stamp is not None
        )
        pcm = array.array("h")
        pcm.frombytes(sound.read_bytes() if sound.exists() else b"")
    # ashowinfo sees each frame after resampling: its sample counts are the output's.
    times: list[float] = []
    for pts, count in audio_frames:
        times.extend(pts + n / AUDIO_RATE for n in range(count))
    del times[len(pcm) :]
    clock = MediaClock(frames, ())
    clicks = []
    for media, pitch in find_clicks(pcm[: len(times)], times, AUDIO_RATE):
        around = clock.picture_at(media) if frames else near_ms / 1000
        # The whole second with this pitch nearest to what the picture shows.
        second = round(around)
        candidates = [s for s in range(second - 3, second + 4) if s % len(CLICK_HZ) == pitch]
        wall = min(candidates, key=lambda s: abs(s - around))
        clicks.append(Click(media, float(wall)))
    return MediaClock(frames, tuple(clicks), find_silences(pcm[: len(times)], times))


def find_silences(pcm: array.array[int], times: list[float]) -> tuple[tuple[float, float], ...]:
    """(media start, media end) of each stretch of samples below SILENT_DB lasting at least
    SILENT_SECONDS (a tone's zero crossings last a sample or two: far shorter)."""
    floor = 32767 * 10 ** (SILENT_DB / 20)
    found: list[tuple[float, float]] = []
    start: int | None = None
    for i, value in enumerate([*pcm, 32767]):  # a loud sample closes a stretch at the end
        if abs(value) <= floor:
            start = i if start is None else start
            continue
        if start is not None:
            end = min(i, len(times) - 1)
            if times and times[end] - times[start] >= SILENT_SECONDS:
                found.append((times[start], times[end]))
            start = None
    return tuple(found)


async def record_clock(
    argv: Sequence[str],
    run_dir: Path,
    width: int,
    *,
    segments: int | None = None,
    seconds: float | None = None,
) -> MediaClock:
    """Run the capture `argv` (segments listed in run_dir) until `segments` are listed (at most
    30 s) or for `seconds`, stop it as the supervisor does (one SIGINT: a second can spoil the
    last segment), and read the marks of the listed segments back."""
    listing = run_dir / SEGMENT_LIST
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        if segments is not None:

            async def enough() -> bool:
                return listing.exists() and len(listing.read_text().split()) >= segments

            await wait_for(enough, 30, f"{segments} segments")
        else:
            await asyncio.sleep(seconds or 0)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
    entries = [e for e in map(parse_segment_line, listing.read_text().split()) if e is not None]
    return await read_media_clock([run_dir / e.file for e in entries], width)
