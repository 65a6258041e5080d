"""The capture argv is exact: copy for H.264 cameras, segments that never overwrite."""

from __future__ import annotations

import re
from pathlib import Path

from config.settings import RtspAudio, RtspSource, SyntheticSource, TranscodingSettings
from recorder.ffmpeg import (
    FRAME_TIMES,
    KEEP_TIME_SECONDS,
    WARMUP_SECONDS,
    capture_argv,
    parse_segment_line,
    transcode_options,
)

RUN = Path("/data/media/sala/7/run-0002")


def test_rtsp_camera_video_is_copied_and_audio_made_aac() -> None:
    argv = capture_argv(RtspSource(kind="rtsp", url="rtsp://10.0.0.5/stream1"), RUN, 2)
    assert argv == [
        "ffmpeg",
        "-analyzeduration",
        "500000",
        "-probesize",
        "500000",
        "-rtsp_transport",
        "tcp",
        "-timeout",
        "5000000",
        "-i",
        "rtsp://10.0.0.5/stream1",
        "-map",
        "0:v:0",
        "-map",
        "0:a:0?",
        "-f",
        "segment",
        "-ar",
        "48000",
        "-b:a",
        "128k",
        "-bsf:v",
        "setts=pts=if(eq(PTS\\,NOPTS)\\,DTS\\,PTS)",
        "-c:a",
        "aac",
        "-c:v",
        "copy",
        "-fflags",
        "+flush_packets",
        "-segment_format",
        "mpegts",
        "-segment_format_options",
        "pes_payload_size=0",
        "-segment_list",
        f"{RUN}/segments.csv",
        "-segment_list_type",
        "csv",
        "-segment_time",
        "2",
        f"{RUN}/seg-%06d.ts",
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "warning",
        "-nostats",
        "-progress",
        "pipe:1",
        "-copyts",
        "-n",
    ]


def test_rtsp_reencode_and_no_audio() -> None:
    source = RtspSource(kind="rtsp", url="rtsp://cam/h265", video="h264", audio="none")
    argv = capture_argv(source, RUN, 1.5)
    assert argv[argv.index("-c:v") + 1] == "libx264"
    assert argv[argv.index("-force_key_frames") + 1] == "expr:gte(t,n_forced*1.5)"
    # The defaults of [transcoding]: capped constant quality, at most 1080 lines, 25 fps.
    assert _options(argv, "-preset", "-crf", "-maxrate", "-bufsize", "-r", "-fps_mode") == [
        "veryfast", "23", "3000k", "3000k", "25", "vfr"
    ]  # fmt: skip
    # Decoded frames' times go to a FIFO in the run's folder before and after the keep-time
    # select, which drops frames more than KEEP_TIME_SECONDS behind the run's most punctual.
    fifo = RUN / FRAME_TIMES
    probe = "metadata=mode=add:key={0}:value=1,metadata=mode=print:key={0}:direct=1:file={1}"
    keep = (
        f"select='if(isnan(t)+lt(t,{WARMUP_SECONDS:g}),1,st(1,time(0)-t);"
        "st(0,if(ld(2),min(ld(0),ld(1)),ld(1)));st(2,1);"
        f"lte(ld(1)-ld(0),{KEEP_TIME_SECONDS:g}))'"
    )
    assert argv[argv.index("-vf") + 1] == ",".join(
        [probe.format("in", fifo), keep, probe.format("out", fifo), "scale=-2:'min(ih,1080)'"]
    )
    # Slice threads only: frame threads hold decoded frames back (recorder/ffmpeg.py).
    assert argv[argv.index("-thread_type") + 1] == "slice"
    assert argv.index("-thread_type") < argv.index("-i")
    assert "-c:a" not in argv and "0:a:0?" not in argv
    # The copy-mode timestamp repair is not needed when ffmpeg decodes the camera's video.
    assert "-copyts" not in argv and "-bsf:v" not in argv


def test_synthetic_chamber_is_paced_and_keyframed_per_segment() -> None:
    argv = capture_argv(SyntheticSource(kind="synthetic", fps=25, label="Sala: test!"), RUN, 2)
    assert argv.count("-re") == 2
    assert argv[argv.index("-g") + 1] == "50"
    assert argv[argv.index("-keyint_min") + 1] == "50"
    graph = argv[argv.index("-filter_complex") + 1]
    assert "%{localtime}" in graph
    assert "Sala test" in graph  # characters that would break the filter graph are dropped
    assert "-y" not in argv and argv[-1] == "-n"


def test_segment_list_lines() -> None:
    entry = parse_segment_line("seg-000012.ts,24.021333,26.021333\n")
    assert entry is not None
    assert (entry.file, entry.seq) == ("seg-000012.ts", 12)
    assert abs(entry.duration - 2.0) < 1e-9
    assert parse_segment_line("garbage") is None
    assert parse_segment_line("other.ts,1,2") is None
    assert parse_segment_line("seg-000001.ts,x,2") is None


def test_camera_aac_is_copied_when_the_supervisor_found_aac() -> None:
    argv = capture_argv(RtspSource(kind="rtsp", url="rtsp://cam/1", audio="copy"), RUN, 2)
    assert argv[argv.index("-c:a") + 1] == "copy"
    assert "-ar" not in argv and "-b:a" not in argv
    assert "0:a:0?" in argv
    unresolved = capture_argv(RtspSource(kind="rtsp", url="rtsp://cam/1"), RUN, 2)
    assert unresolved[unresolved.index("-c:a") + 1] == "aac"  # "auto" before probing: convert


def _options(argv: list[str], *names: str) -> list[str]:
    return [argv[argv.index(name) + 1] for name in names]


def test_reencode_follows_the_camera_s_transcoding_settings() -> None:
    settings = TranscodingSettings(
        preset="faster", crf=21.5, max_kbps=2500, buffer_seconds=2, max_height=720, fps=30,
        audio_kbps=96,
    )  # fmt: skip
    source = RtspSource(kind="rtsp", url="rtsp://cam/h265", video="h264", transcoding=settings)
    argv = capture_argv(source, RUN, 2)
    assert _options(argv, "-c:v", "-preset", "-tune", "-crf", "-maxrate", "-bufsize") == [
        "libx264", "faster", "zerolatency", "21.5", "2500k", "5000k"
    ]  # fmt: skip
    assert _options(argv, "-r", "-fps_mode", "-force_key_frames") == [
        "30", "vfr", "expr:gte(t,n_forced*2)"
    ]  # fmt: skip
    assert argv[argv.index("-vf") + 1].endswith(",scale=-2:'min(ih,720)'")
    assert _options(argv, "-c:a", "-b:a", "-ar") == ["aac", "96k", "48000"]
    chamber = RtspAudio(kind="rtsp", url="rtsp://mics/1")
    with_mics = capture_argv(source, RUN, 2, chamber)
    assert _options(with_mics, "-c:a", "-b:a") == ["aac", "96k"]


def test_copied_video_ignores_the_transcoding_settings() -> None:
    settings = TranscodingSettings(preset="faster", max_height=720, audio_kbps=64)
    source = RtspSource(kind="rtsp", url="rtsp://cam/h264", video="copy", transcoding=settings)
    argv = capture_argv(source, RUN, 2)
    assert argv[argv.index("-c:v") + 1] == "copy"
    assert not {"-preset", "-crf", "-maxrate", "-vf", "-r", "-fps_mode", "-thread_type"} & set(argv)
    # G.711 is still converted, at the configured audio bitrate.
    assert _options(argv, "-c:a", "-b:a") == ["aac", "64k"]


def test_a_path_in_the_filter_graph_survives_both_levels_of_escaping() -> None:
    odd = Path("/srv/a:b,c;d[e]'f=g\\h/frames.fifo")
    options = transcode_options(TranscodingSettings(), 2, odd)
    graph = options["vf"]
    # Unescape as ffmpeg does: the graph level, then the option level.
    value = graph.split("file=", 1)[1].split(",select=", 1)[0]
    assert re.sub(r"\\(.)", r"\1", re.sub(r"\\(.)", r"\1", value)) == str(odd)


def test_chamber_audio_is_opened_first_and_recorded_after_the_picture() -> None:
    chamber = RtspAudio(kind="rtsp", url="rtsp://mics/1")
    for video in ("copy", "h264"):
        source = RtspSource(kind="rtsp", url="rtsp://cam/1", video=video)
        argv = capture_argv(source, RUN, 2, chamber)
        inputs = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-i"]
        # Opened first, with next to no probing: its media time 0 is the camera's too.
        assert inputs == ["rtsp://mics/1", "rtsp://cam/1"], video
        mics = argv.index("rtsp://mics/1")
        assert argv[argv.index("-analyzeduration") + 1 : mics] == [
            "1", "-probesize", "32", "-rtsp_transport", "tcp", "-timeout", "5000000", "-i"
        ]  # fmt: skip
        # The camera's picture is still the recording's first stream, the sound its second.
        maps = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-map"]
        assert maps == ["1:v:0", "[s0]"], video
        assert "[0:a:0]asetpts=PTS-STARTPTS[s0]" in argv
        # Both inputs keep their connections' clocks, re-encoded or not.
        assert "-copyts" in argv, video
