"""Pure builders of ffmpeg argv for chamber capture, compiled with ffmpeg-python; no I/O here."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ffmpeg  # type: ignore[import-untyped]

from config.settings import (
    AlsaAudio,
    RtspAudio,
    RtspSource,
    SyntheticSource,
    TranscodingSettings,
)

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


@dataclass(frozen=True)
class SharedAudio:
    """The chamber's sound as its audio hub sends it (recorder/audiohub.py): MPEG-TS with AAC
    on a loopback multicast group, stamped with the wall clock less `epoch` seconds."""

    group: str
    port: int
    epoch: float
    # A camera that hears nothing from the hub this long ends its run (and is started again).
    timeout_seconds: float = 2.0
    # The source the hub shares: a camera that cannot join (it sends B-frames) opens it itself.
    own: RtspAudio | AlsaAudio | None = None

    @property
    def url(self) -> str:
        """The group as a camera's ffmpeg joins it (one of many: reuse)."""
        return (
            f"udp://{self.group}:{self.port}?localaddr=127.0.0.1&reuse=1&overrun_nonfatal=1"
            f"&fifo_size=50000&timeout={round(self.timeout_seconds * 1_000_000)}"
        )


def shared_audio_input(link: SharedAudio, sync_with: int) -> Any:
    """A camera's input of its chamber's shared sound. Its stamps plus the epoch are the wall
    clock; -isync keeps its offset to input `sync_with` (the camera, stamped on arrival) when
    -start_at_zero moves the run to 0. One AAC frame read is enough to know the stream."""
    return ffmpeg.input(
        link.url, isync=sync_with, itsoffset=f"{link.epoch:.6f}", analyzeduration=1, probesize=32
    )


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
        # Its media time 0 is the first packet after PLAY, which is meant to be the camera's
        # too (see rtsp_argv): every moment spent probing here puts the sound that much behind
        # the picture. The stream's description (SDP) already names the codec, rate and
        # channels of AAC and G.711; one packet is enough.
        analyzeduration=1,
        probesize=32,
    )


# The clock code: one row of CLOCK_CODE_CELLS squares near the top-left of the picture, black
# (0) or white (1): two start cells (1, 0), the 32 bits of (epoch milliseconds mod 2**32), most
# significant first, an even-parity cell over those bits, two end cells (0, 1). A reader samples
# each square's centre and rejects a row whose start, end or parity cells do not match.
CLOCK_CODE_CELLS = 37
CLOCK_CODE_BITS = 32


@dataclass(frozen=True)
class ClockCodeLayout:
    """Where the clock code sits in a picture: the row starts at (x, y); squares of `square` px."""

    x: int
    y: int
    square: int

    @property
    def width(self) -> int:
        """Width of the whole row of squares."""
        return CLOCK_CODE_CELLS * self.square


def clock_code_layout(width: int) -> ClockCodeLayout:
    """The clock code's place in a picture `width` px wide: 16 px squares where they fit, which
    on a 16 px grid are whole H.264 macroblocks (sharp at 2 Mbit/s), else smaller (at least 8 px
    from 312 px up, see SyntheticSource), one square's margin from the edges."""
    square = max(2, min(16, width // (CLOCK_CODE_CELLS + 2)) // 2 * 2)
    return ClockCodeLayout(square, square, square)


def clock_code_cells(millis: int) -> list[int]:
    """The cells (0 black, 1 white) that stamp `millis` (epoch milliseconds)."""
    value = millis % 2**CLOCK_CODE_BITS
    bits = [(value >> (CLOCK_CODE_BITS - 1 - i)) & 1 for i in range(CLOCK_CODE_BITS)]
    return [1, 0, *bits, sum(bits) % 2, 0, 1]


def read_clock_code(cells: list[int]) -> int | None:
    """The milliseconds (mod 2**32) a row of cells stamps, or None if it does not validate."""
    if len(cells) != CLOCK_CODE_CELLS or cells[:2] != [1, 0] or cells[-2:] != [0, 1]:
        return None
    bits = cells[2 : 2 + CLOCK_CODE_BITS]
    if sum(bits) % 2 != cells[2 + CLOCK_CODE_BITS]:
        return None
    value = 0
    for bit in bits:
        value = value * 2 + bit
    return value


def clock_stamps(raw: bytes, width: int, height: int) -> list[int | None]:
    """The stamp (epoch ms mod 2**32) of each frame of raw 8-bit grey pictures of a source with
    `clock_code = true`, in order; None for a frame without one (a slate). For tests and
    benchmarks that check a recording against the wall clock."""
    layout = clock_code_layout(width)
    row = layout.y + layout.square // 2
    frame = width * height
    stamps: list[int | None] = []
    for start in range(0, len(raw) - frame + 1, frame):
        line = raw[start + row * width : start + (row + 1) * width]
        cells = [
            1 if line[layout.x + c * layout.square + layout.square // 2] >= 128 else 0
            for c in range(CLOCK_CODE_CELLS)
        ]
        stamps.append(read_clock_code(cells))
    return stamps


def _clock_code_luma(square: int) -> str:
    """geq luma expression drawing clock_code_cells(T in ms) across a strip of squares."""
    # ld(0): the frame's time (T, seconds) in ms mod 2**32; ld(1): the cell under X.
    bit = "mod(floor(ld(0)/pow(2,{})),2)"
    parity = "mod(" + "+".join(bit.format(k) for k in range(CLOCK_CODE_BITS)) + ",2)"
    last_data = 1 + CLOCK_CODE_BITS
    return (
        f"st(0,mod(floor(T*1000+0.5),{2**CLOCK_CODE_BITS}));st(1,floor(X/{square}));"
        # Video-range black and white (16, 235): what an H.264 decoder expects.
        "16+219*if(lt(ld(1),2),eq(ld(1),0),"
        f"if(lte(ld(1),{last_data}),{bit.format(f'{last_data}-ld(1)')},"
        f"if(eq(ld(1),{last_data + 1}),{parity},eq(ld(1),{CLOCK_CODE_CELLS - 1}))))"
    )


def clock_code(video: Any, width: int, fps: int) -> Any:
    """Stamp each frame of `video` (pts counting frames from 0, time base 1/fps, as testsrc2
    makes them) with the wall clock at the moment it passes this filter: after -re pacing."""
    layout = clock_code_layout(width)
    parts = video.split()
    strip = (
        # Only a cropped strip goes through geq: geq over a 720p frame costs more than a core.
        parts[1]
        .crop(x=layout.x, y=layout.y, width=layout.width, height=layout.square)
        .filter("format", "yuv420p")
        # RTCTIME is the wall clock in microseconds when the frame is filtered; in a 1/1000
        # time base, geq's T is then epoch seconds with millisecond resolution.
        .filter("settb", "1/1000")
        .setpts("RTCTIME/1000")
        .filter("geq", lum=_clock_code_luma(layout.square), cb=128, cr=128)
        # Back to the frame count, so overlay pairs the strip with its own frame and the
        # recorded timestamps are those of the picture without the code.
        .filter("settb", f"1/{fps}")
        .setpts("N")
    )
    return ffmpeg.overlay(parts[0], strip, x=layout.x, y=layout.y)


def synthetic_inputs(
    source: SyntheticSource, audio_source: ChamberAudio | None = None
) -> tuple[Any, Any]:
    """The picture (test pattern, label, wall clock, clock code) and sound (a beeping tone, a
    sound file in a loop, or the chamber audio) of a simulated chamber, paced in real time."""
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
    if source.clock_code:
        video = clock_code(video, source.width, source.fps)
    if audio_source is not None:
        audio = chamber_audio_input(audio_source)["a:0"]
    elif source.sound_file is not None:
        path = str(Path(source.sound_file).expanduser())
        audio = ffmpeg.input(path, stream_loop=-1, re=None)["a:0"]
    else:
        audio = ffmpeg.input(
            f"sine=frequency={source.tone_hz}:beep_factor=4:sample_rate=48000", f="lavfi", re=None
        )
    return video, audio


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
    video, audio = synthetic_inputs(source, audio_source)
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


# A re-encoded frame that reaches the encoder this much later than the run's most punctual
# frame (wall clock at the filter less its timestamp) is dropped before it costs scaling and
# encoding: an encoder that cannot keep real time loses frames, not time (seconds).
KEEP_TIME_SECONDS = 1.0
# Frames of a run's first second neither set the run's most punctual frame nor are dropped:
# measured here, a re-encode starved of CPU from its start decoded its first frames up to 0.4 s
# "earlier" than the camera's clock allows (later frames agreed with it to a few ms), which
# would have placed the run early and made every later frame look late.
WARMUP_SECONDS = 1.0
# The re-encode's probe: the moment each frame leaves the decoder (before scaling and encoding),
# and each frame the keep-time filter passed, are written to this FIFO in the run's folder.
FRAME_TIMES = "frames.fifo"
FRAME_IN = "in"
FRAME_OUT = "out"


def _keep_time_expr(bound: float, warmup: float) -> str:
    """select expression passing a frame unless it is `bound` s later than the run's most
    punctual frame (frames before `warmup` s pass and do not count). time(0) is the wall
    clock; ld/st variables persist from frame to frame: 0 the least lateness seen, 1 this
    frame's lateness, 2 whether any frame was seen."""
    return (
        f"if(isnan(t)+lt(t,{warmup:g}),1,st(1,time(0)-t);"
        "st(0,if(ld(2),min(ld(0),ld(1)),ld(1)));st(2,1);"
        f"lte(ld(1)-ld(0),{bound:g}))"
    )


def _graph_path(path: Path) -> str:
    """A path as a filter option value inside -vf: escaped for the option parser, then that
    for the graph parser (each removes one level of backslashes)."""

    def escape(text: str, specials: str) -> str:
        return "".join("\\" + c if c in specials else c for c in text)

    return escape(escape(str(path), "\\':="), "\\',;[]")


def _frame_probe(key: str, fifo: Path) -> str:
    """Filters that write one frame's timestamp (a header line, then `key`=1) to the FIFO.
    metadata=print writes only frames that carry metadata, so a key is added first; `direct`
    writes each line at once (buffered, the lines came only when ffmpeg ended)."""
    add = f"metadata=mode=add:key={key}:value=1"
    return f"{add},metadata=mode=print:key={key}:direct=1:file={_graph_path(fifo)}"


def transcode_options(
    settings: TranscodingSettings, segment_seconds: float, frame_times: Path | None = None
) -> dict[str, Any]:
    """ffmpeg output options that re-encode video to browser-playable H.264 as `settings` say,
    with a keyframe at every segment boundary (a live part may start anywhere: parts only
    need keyframes to be marked independent). Frames later than KEEP_TIME_SECONDS behind real
    time are dropped (a hole in the timestamps, not a drift); with `frame_times`, a FIFO, the
    frames' timestamps are written there as they leave the decoder and the keep-time filter."""
    gop_seconds = max(1.0, segment_seconds)
    buffer_kbits = max(1, round(settings.max_kbps * settings.buffer_seconds))
    keep = f"select='{_keep_time_expr(KEEP_TIME_SECONDS, WARMUP_SECONDS)}'"
    # Quoted so the comma stays inside min(); -2 keeps the width even (4:2:0 needs it).
    scale = f"scale=-2:'min(ih,{settings.max_height})'"
    chain = [keep, scale]
    if frame_times is not None:
        chain = [
            _frame_probe(FRAME_IN, frame_times),
            keep,
            _frame_probe(FRAME_OUT, frame_times),
            scale,
        ]
    return {
        "c:v": "libx264",
        "preset": settings.preset,
        # No lookahead and no B-frames: a frame leaves the encoder as soon as it is made.
        "tune": "zerolatency",
        "pix_fmt": "yuv420p",
        "crf": f"{settings.crf:g}",
        # Capped CRF: constant quality, but never above max_kbps over the buffer's length.
        "maxrate": f"{settings.max_kbps}k",
        "bufsize": f"{buffer_kbits}k",
        "vf": ",".join(chain),
        # At most settings.fps, but no frame made up: a frame dropped to keep time, or one the
        # camera never sent, stays a hole in the timestamps that the media check reports (cfr
        # filled it with copies of the frame before).
        "r": settings.fps,
        "fps_mode": "vfr",
        "force_key_frames": f"expr:gte(t,n_forced*{gop_seconds:g})",
    }


def frame_times_fifo(source: object, run_dir: Path) -> Path | None:
    """The FIFO a run of `source` writes its frame times to (a re-encoded RTSP camera), or None."""
    if isinstance(source, RtspSource) and source.video not in ("copy", "auto"):
        return run_dir / FRAME_TIMES
    return None


def rtsp_input(source: RtspSource, **options: Any) -> Any:
    """The ffmpeg input of an RTSP camera (all its streams), with any further input options."""
    decoding: dict[str, str] = {}
    if source.video not in ("copy", "auto"):
        # Measured (H.265 at 25 fps, 2 cores): frame threads held each decoded frame back by
        # two frames (80 ms) before the encoder even saw it; slice threads add no delay.
        decoding["thread_type"] = "slice"
    return ffmpeg.input(
        source.url,
        **decoding,
        rtsp_transport=source.transport,
        # Socket I/O timeout, microseconds (ffmpeg 5.x name for the old -stimeout).
        timeout=int(source.timeout_seconds * 1_000_000),
        # Short probing keeps the start of each run close to the moment it was asked for.
        analyzeduration=500_000,
        probesize=500_000,
        **options,
    )


def rtsp_argv(
    source: RtspSource,
    run_dir: Path,
    segment_seconds: float,
    audio_source: ChamberAudio | SharedAudio | None = None,
) -> list[str]:
    """An RTSP camera: H.264 video copied as it comes (cut at the camera's keyframes) or
    re-encoded to H.264 (for H.265 cameras); any audio (AAC, G.711) converted to 48 kHz AAC
    because HLS cannot carry G.711, and a camera without audio recorded as video only. With a
    chamber audio source, that audio replaces the camera's."""
    stream = rtsp_input(source)
    streams = [stream["v:0"]]
    codec: dict[str, object] = {}
    global_args: list[str] = []
    audio_kbps = source.transcoding.audio_kbps
    if source.video in ("copy", "auto"):  # "auto" unresolved: the common H.264 camera
        codec["c:v"] = "copy"
        codec["bsf:v"] = COPY_TIMESTAMP_FIX
        global_args.append("-copyts")
    else:
        codec.update(
            transcode_options(
                source.transcoding, segment_seconds, frame_times_fifo(source, run_dir)
            )
        )
    if isinstance(audio_source, SharedAudio):
        # The chamber's sound from its hub, copied (encoded once there). Both inputs on the
        # wall clock: the hub's sound stamped when it was heard, the camera's packets as they
        # arrive (a full input queue would hold the reading thread back and bunch them), and
        # -start_at_zero with -isync moves both to near 0 keeping their offset. Measured
        # (docs/chamber-audio.md): the sound 7-64 ms late, copied or re-encoded.
        stream = rtsp_input(source, use_wallclock_as_timestamps=1, thread_queue_size=1024)
        streams = [stream["v:0"], shared_audio_input(audio_source, sync_with=0)["a:0"]]
        global_args += [] if "-copyts" in global_args else ["-copyts"]
        global_args.append("-start_at_zero")
        # When the hub is gone (its sound ends after timeout_seconds), the run ends too and is
        # started again, joining the hub anew, rather than going on without sound. And the
        # picture is not held back more than 1 s waiting for sound (the default is 10 s).
        codec.update({"c:a": "copy", "shortest": None, "max_interleave_delta": 1_000_000})
    elif audio_source is not None:
        # With -copyts every input keeps its own clock: the camera's starts near 0, an ALSA
        # device's at the wall clock (1.7e9 s), which kept all its audio out of the segments.
        # The chamber audio is re-encoded anyway, so start it at 0 like the camera.
        chamber = chamber_audio_input(audio_source)["a:0"].filter("asetpts", "PTS-STARTPTS")
        # Each input's media time 0 is the moment its connection started to play, and ffmpeg
        # opens (and probes) its inputs one after the other. Opened after the camera, the
        # chamber started as late as the camera's probing took, and its sound sat that much
        # ahead of the picture: 0.6-0.9 s measured (bench/lipsync.py). So the chamber is opened
        # first, and probes next to nothing; the camera's connection follows at once.
        streams.insert(0, chamber)
        # And the camera keeps its connection's clock when re-encoded too: without -copyts
        # ffmpeg moves each input to start at 0 from its first timestamp, which for a camera
        # is not its first packet (0.2-0.3 s off, measured with a re-encoded H.265 camera).
        if "-copyts" not in global_args:
            global_args.append("-copyts")
        codec.update({"c:a": "aac", "b:a": f"{audio_kbps}k", "ar": 48000})
    elif source.audio == "copy":
        # AAC from the camera goes into HLS as it is (the supervisor chose this after probing).
        streams.append(stream["a:0?"])
        codec["c:a"] = "copy"
    elif source.audio != "none":
        # "aac", or "auto" not yet resolved: convert whatever comes.
        # Optional map: a camera without an audio track is recorded as video only.
        streams.append(stream["a:0?"])
        # G.711 is 8 kHz: resample to a rate every AAC decoder and HLS player accepts.
        codec.update({"c:a": "aac", "b:a": f"{audio_kbps}k", "ar": 48000})
    out = _segment_output(streams, run_dir, segment_seconds, codec)
    argv: list[str] = ffmpeg.compile(
        out.global_args(*GLOBAL_ARGS, *global_args, "-n"), cmd="ffmpeg"
    )
    if audio_source is None or isinstance(audio_source, SharedAudio):
        return argv
    return _chamber_map_last(argv)


def _chamber_map_last(argv: list[str]) -> list[str]:
    """ffmpeg-python numbers inputs in the order of the output's streams; the chamber audio
    went first to be opened first. Move its -map behind the camera's, so the recording's
    streams stay in the usual order, video first (as every other source writes them)."""
    at = [i + 1 for i, arg in enumerate(argv) if arg == "-map"]
    maps = [argv[i] for i in at]
    moved = list(argv)
    for i, value in zip(at, maps[1:] + maps[:1], strict=True):
        moved[i] = value
    return moved


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
    audio: ChamberAudio | SharedAudio | None = None,
) -> list[str]:
    """The argv that records one run of one camera (with the chamber audio, if any: its own
    source, or as the chamber's audio hub shares it, which only RTSP cameras join)."""
    if isinstance(source, SlateSource):
        return slate_argv(source, run_dir, segment_seconds)
    if isinstance(source, SyntheticSource):
        if isinstance(audio, SharedAudio):
            raise ValueError("a synthetic source cannot join a chamber's audio hub")
        return synthetic_argv(source, run_dir, segment_seconds, audio)
    return rtsp_argv(source, run_dir, segment_seconds, audio)


@dataclass(frozen=True)
class RedactionSlate:
    """What replaces a redacted segment in the public copy: black with "Fragment usunięty" and
    silence, as long as the segment and in its format (so players switch without a stall)."""

    duration: float
    width: int
    height: int
    frame_rate: str = "25"  # as ffprobe reports it, e.g. "25/1"
    pix_fmt: str = "yuv420p"
    profile: str | None = None  # x264's name: baseline, main, high
    audio_rate: int | None = 48000  # None: the recording has no audio track
    audio_channels: int = 2
    text: str = "Fragment usunięty"


def redaction_slate_argv(slate: RedactionSlate, output: Path) -> list[str]:
    """One MPEG-TS file of `slate.duration` seconds, made once and served in place of every
    redacted segment of that length and format (no real-time pacing: it is a file, not a feed)."""
    font = max(12, slate.height // 12)
    video = ffmpeg.input(
        f"color=c=black:s={slate.width}x{slate.height}:r={slate.frame_rate}", f="lavfi"
    ).drawtext(
        text=_drawtext_escape(slate.text),
        x="(w-tw)/2",
        y="(h-th)/2",
        fontsize=font,
        fontcolor="white",
    )
    streams = [video]
    codec: dict[str, Any] = {
        "c:v": "libx264",
        # Not ultrafast: it drops CABAC and so the High profile a camera's H.264 usually has.
        "preset": "veryfast",
        "tune": "stillimage",
        "pix_fmt": slate.pix_fmt,
    }
    if slate.profile is not None:
        codec["profile:v"] = slate.profile
    if slate.audio_rate is not None:
        layout = "mono" if slate.audio_channels == 1 else "stereo"
        streams.append(ffmpeg.input(f"anullsrc=r={slate.audio_rate}:cl={layout}", f="lavfi"))
        codec.update({"c:a": "aac", "b:a": "64k", "ar": slate.audio_rate})
    out = ffmpeg.output(*streams, str(output), f="mpegts", t=f"{slate.duration:.3f}", **codec)
    return ffmpeg.compile(  # type: ignore[no-any-return]
        out.global_args("-hide_banner", "-nostdin", "-loglevel", "error", "-n"), cmd="ffmpeg"
    )


def concat_list(files: Sequence[tuple[Path, float]], *, durations: bool) -> str:
    """An ffconcat list of the files. With durations, each lasts its indexed duration (the
    decoded sound keeps the recording's timeline); without, what its own timestamps say."""
    lines = ["ffconcat version 1.0"]
    for path, seconds in files:
        # Inside single quotes only the quote itself needs care: close, escape, reopen.
        quoted = str(path).replace("'", "'\\''")
        lines.append(f"file '{quoted}'")
        if durations:
            lines.append(f"duration {seconds:.6f}")
    return "\n".join(lines) + "\n"


def segment_probe_argv(path: Path) -> list[str]:
    """ffprobe argv describing a recorded segment's streams as JSON (what a slate must match)."""
    entries = (
        "stream=codec_type,codec_name,profile,width,height,r_frame_rate,pix_fmt,"
        "sample_rate,channels"
    )
    return ["ffprobe", "-v", "error", "-show_entries", entries, "-of", "json", str(path)]


def export_argv(concat_list: Path, output: Path, *, metadata: Path | None = None) -> list[str]:
    """ffmpeg argv that joins recorded MPEG-TS files (an ffconcat list) into one MP4 without
    re-encoding, with its index first so a player can start before the download ends."""
    argv = [
        "ffmpeg",
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-nostats",
        "-progress",
        "pipe:1",
        # The concat demuxer lays each file after the previous one's end, so runs that restart
        # their timestamps (and slates, which start at 0) still come out monotonic.
        "-f",
        "concat",
        # The list names absolute paths of our own files; without this they are refused.
        "-safe",
        "0",
        "-i",
        str(concat_list),
    ]
    if metadata is not None:
        argv += ["-f", "ffmetadata", "-i", str(metadata), "-map_metadata", "1"]
        argv += ["-map_chapters", "1"]
    # "?": a recording without sound (audio = "none") is exported without an audio track.
    argv += ["-map", "0:v:0", "-map", "0:a:0?", "-c", "copy"]
    # MPEG-TS carries AAC in ADTS frames; MP4 wants bare frames and an AudioSpecificConfig.
    argv += ["-bsf:a", "aac_adtstoasc", "-movflags", "+faststart", "-f", "mp4", "-n", str(output)]
    return argv
