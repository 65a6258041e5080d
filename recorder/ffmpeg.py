"""Pure builders of ffmpeg argv for chamber capture, compiled with ffmpeg-python; no I/O here."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ffmpeg  # type: ignore[import-untyped]

from config.settings import AlsaAudio, RtspAudio, RtspSource, SyntheticSource

SEGMENT_PATTERN = "seg-%06d.ts"
SEGMENT_LIST = "segments.csv"
SEGMENT_NAME = re.compile(r"^seg-(\d{6})\.ts$")

# Without a stats period ffmpeg writes -progress every 0.5 s; that is what the stall
# watchdog listens to.
GLOBAL_ARGS = (
    "-hide_banner",
    "-nostdin",
    "-loglevel",
    "warning",
    "-nostats",
    "-progress",
    "pipe:1",
)


@dataclass(frozen=True)
class SegmentEntry:
    """One finished segment as ffmpeg's segment list reports it."""

    file: str
    seq: int
    start: float
    end: float

    @property
    def duration(self) -> float:
        """Media duration of the segment."""
        return max(0.0, self.end - self.start)


def parse_segment_line(line: str) -> SegmentEntry | None:
    """Parse one line of the CSV segment list ('seg-000001.ts,2.000000,4.000000')."""
    parts = line.strip().split(",")
    if len(parts) != 3:
        return None
    name, start, end = parts
    match = SEGMENT_NAME.match(name)
    if match is None:
        return None
    try:
        return SegmentEntry(name, int(match.group(1)), float(start), float(end))
    except ValueError:
        return None


def _drawtext_escape(text: str) -> str:
    """Keep only characters that survive drawtext's own expansion and filter-graph quoting."""
    return re.sub(r"[^\w .,()/-]", "", text, flags=re.UNICODE)


def _segment_output(
    streams: list[Any], run_dir: Path, segment_seconds: float, codec: dict[str, Any]
) -> Any:
    return ffmpeg.output(
        *streams,
        str(run_dir / SEGMENT_PATTERN),
        f="segment",
        segment_time=f"{segment_seconds:g}",
        segment_format="mpegts",
        segment_list=str(run_dir / SEGMENT_LIST),
        segment_list_type="csv",
        # Every packet reaches the file at once, so the live edge can cut parts from it while
        # it grows; audio goes out frame by frame instead of in 180 ms PES bundles.
        fflags="+flush_packets",
        segment_format_options="pes_payload_size=0",
        **codec,
    )


ChamberAudio = RtspAudio | AlsaAudio


def chamber_audio_input(audio: ChamberAudio) -> Any:
    """The ffmpeg input of the chamber's own audio (the microphone system)."""
    if isinstance(audio, AlsaAudio):
        return ffmpeg.input(
            audio.device, f="alsa", channels=audio.channels, sample_rate=audio.sample_rate
        )
    return ffmpeg.input(
        audio.url,
        rtsp_transport=audio.transport,
        timeout=int(audio.timeout_seconds * 1_000_000),
        analyzeduration=500_000,
        probesize=500_000,
    )


def synthetic_argv(
    source: SyntheticSource,
    run_dir: Path,
    segment_seconds: float,
    audio_source: ChamberAudio | None = None,
) -> list[str]:
    """A simulated chamber: test picture with a burned-in wall clock and a beeping tone (or the
    chamber audio), paced in real time and encoded to H.264/AAC with a keyframe at every
    segment boundary."""
    gop = max(1, math.ceil(source.fps * segment_seconds))
    video = ffmpeg.input(
        f"testsrc2=size={source.width}x{source.height}:rate={source.fps}", f="lavfi", re=None
    )
    font = max(16, source.height // 14)
    video = video.drawtext(
        text=_drawtext_escape(source.label),
        x="(w-tw)/2",
        y=f"h-{3 * font}",
        fontsize=font,
        fontcolor="white",
        box=1,
        boxcolor="black@0.6",
    ).drawtext(
        # %{localtime} prints the wall clock at render time ("2026-11-26 10:00:00").
        text="%{localtime}",
        escape_text=False,
        x="(w-tw)/2",
        y=f"h-{int(1.6 * font)}",
        fontsize=font,
        fontcolor="yellow",
        box=1,
        boxcolor="black@0.6",
    )
    if audio_source is not None:
        audio = chamber_audio_input(audio_source)["a:0"]
    else:
        audio = ffmpeg.input(
            f"sine=frequency={source.tone_hz}:beep_factor=4:sample_rate=48000", f="lavfi", re=None
        )
    codec = {
        "c:v": "libx264",
        "preset": "veryfast",
        "tune": "zerolatency",
        "pix_fmt": "yuv420p",
        "g": gop,
        "keyint_min": gop,
        "sc_threshold": 0,
        "b:v": "2M",
        "c:a": "aac",
        "b:a": "96k",
        "ar": 48000,
    }
    out = _segment_output([video, audio], run_dir, segment_seconds, codec)
    return ffmpeg.compile(out.global_args(*GLOBAL_ARGS, "-n"), cmd="ffmpeg")  # type: ignore[no-any-return]


# Measured with ffmpeg 5.1: the first H.264/H.265 access unit of an RTSP session reaches the
# muxer with no timestamp ("Timestamps are unset in a packet"). In copy mode ffmpeg guesses
# dts 0 for it but shifts the stream so that the second frame lands on 0 too: "Non-monotonous
# DTS", and the first segment cut one keyframe late. -copyts keeps the RTSP session's own
# timeline (it starts near 0 for each connection), so the guessed 0 falls before the second
# frame; setts gives that frame pts = dts instead of leaving the muxer to guess.
COPY_TIMESTAMP_FIX = "setts=pts=if(eq(PTS\\,NOPTS)\\,DTS\\,PTS)"


def rtsp_argv(
    source: RtspSource,
    run_dir: Path,
    segment_seconds: float,
    audio_source: ChamberAudio | None = None,
) -> list[str]:
    """An RTSP camera: H.264 video copied as it comes (cut at the camera's keyframes) or
    re-encoded to H.264 (for H.265 cameras); any audio (AAC, G.711) converted to 48 kHz AAC
    because HLS cannot carry G.711, and a camera without audio recorded as video only. With a
    chamber audio source, that audio replaces the camera's."""
    stream = ffmpeg.input(
        source.url,
        rtsp_transport=source.transport,
        # Socket I/O timeout, microseconds (ffmpeg 5.x name for the old -stimeout).
        timeout=int(source.timeout_seconds * 1_000_000),
        # Short probing keeps the start of each run close to the moment it was asked for.
        analyzeduration=500_000,
        probesize=500_000,
    )
    streams = [stream["v:0"]]
    codec: dict[str, object] = {}
    global_args: list[str] = []
    if source.video in ("copy", "auto"):  # "auto" unresolved: the common H.264 camera
        codec["c:v"] = "copy"
        codec["bsf:v"] = COPY_TIMESTAMP_FIX
        global_args.append("-copyts")
    else:
        gop_seconds = max(1.0, segment_seconds)
        codec.update(
            {
                "c:v": "libx264",
                "preset": "veryfast",
                "tune": "zerolatency",
                "pix_fmt": "yuv420p",
                "force_key_frames": f"expr:gte(t,n_forced*{gop_seconds:g})",
            }
        )
    if audio_source is not None:
        # With -copyts every input keeps its own clock: the camera's starts near 0, an ALSA
        # device's at the wall clock (1.7e9 s), which kept all its audio out of the segments.
        # The chamber audio is re-encoded anyway, so start it at 0 like the camera.
        chamber = chamber_audio_input(audio_source)["a:0"].filter("asetpts", "PTS-STARTPTS")
        streams.append(chamber)
        codec.update({"c:a": "aac", "b:a": "128k", "ar": 48000})
    elif source.audio == "copy":
        # AAC from the camera goes into HLS as it is (the supervisor chose this after probing).
        streams.append(stream["a:0?"])
        codec["c:a"] = "copy"
    elif source.audio != "none":
        # "aac", or "auto" not yet resolved: convert whatever comes.
        # Optional map: a camera without an audio track is recorded as video only.
        streams.append(stream["a:0?"])
        # G.711 is 8 kHz: resample to a rate every AAC decoder and HLS player accepts.
        codec.update({"c:a": "aac", "b:a": "128k", "ar": 48000})
    out = _segment_output(streams, run_dir, segment_seconds, codec)
    return ffmpeg.compile(  # type: ignore[no-any-return]
        out.global_args(*GLOBAL_ARGS, *global_args, "-n"), cmd="ffmpeg"
    )


@dataclass(frozen=True)
class SlateSource:
    """The picture the public sees instead of the room (a break): a text, the clock, silence."""

    text: str
    subtitle: str = ""
    width: int = 1280
    height: int = 720
    fps: int = 10


def slate_argv(source: SlateSource, run_dir: Path, segment_seconds: float) -> list[str]:
    """A slate paced in real time, H.264 (cheap: a still picture at a low frame rate) with
    silent AAC: what the room's microphones pick up in a break is not for the public."""
    gop = max(1, math.ceil(source.fps * segment_seconds))
    font = max(16, source.height // 12)
    video = ffmpeg.input(
        f"color=c=0x0b3d91:s={source.width}x{source.height}:r={source.fps}", f="lavfi", re=None
    )
    video = video.drawtext(
        text=_drawtext_escape(source.text),
        x="(w-tw)/2",
        y=f"h/2-{font}",
        fontsize=font,
        fontcolor="white",
    )
    if source.subtitle:
        video = video.drawtext(
            text=_drawtext_escape(source.subtitle),
            x="(w-tw)/2",
            y=f"h/2+{font // 2}",
            fontsize=font // 2,
            fontcolor="white",
        )
    video = video.drawtext(
        text="%{localtime}", escape_text=False, x="(w-tw)/2", y=f"h-{2 * font}",
        fontsize=font // 2, fontcolor="white",
    )  # fmt: skip
    audio = ffmpeg.input("anullsrc=r=48000:cl=stereo", f="lavfi", re=None)
    codec = {
        "c:v": "libx264",
        "preset": "ultrafast",
        "tune": "stillimage",
        "pix_fmt": "yuv420p",
        "g": gop,
        "keyint_min": gop,
        "sc_threshold": 0,
        "c:a": "aac",
        "b:a": "64k",
    }
    out = _segment_output([video, audio], run_dir, segment_seconds, codec)
    return ffmpeg.compile(out.global_args(*GLOBAL_ARGS, "-n"), cmd="ffmpeg")  # type: ignore[no-any-return]


CaptureSource = SyntheticSource | RtspSource | SlateSource


def capture_argv(
    source: CaptureSource,
    run_dir: Path,
    segment_seconds: float,
    audio: ChamberAudio | None = None,
) -> list[str]:
    """The argv that records one run of one camera (with the chamber audio, if any)."""
    if isinstance(source, SlateSource):
        return slate_argv(source, run_dir, segment_seconds)
    if isinstance(source, SyntheticSource):
        return synthetic_argv(source, run_dir, segment_seconds, audio)
    return rtsp_argv(source, run_dir, segment_seconds, audio)
