"""Measures what re-encoding an H.265 camera to H.264 costs: CPU and the bitrate that comes out.

For each picture size (720p, 1080p) a council-like H.265 "camera" recording is made first:
a still picture (testsrc2's first frame, held), a small moving part (a live testsrc2 of a
sixth of the width, where a speaker would be), light sensor grain over everything (noise,
strength 6, changing every frame), encoded by libx265 (ultrafast, 1.5 Mbit/s, a keyframe a
second) as the camera of issue 15 sends. Then each row re-encodes it with the output options
obrady builds (recorder.ffmpeg.transcode_options, the settings named in the row, 2 s segments):

- paced: `ffmpeg -re`, as a camera delivers it; counted: the ffmpeg's utime+stime over the
  wall time (% of one core; H.265 decoding included, as in a real capture), the bitrate of the
  video stream over the whole run and its highest over any 1 s window (packet sizes, ffprobe);
- quality: SSIM of the re-encode against the decoded camera recording (ffmpeg's ssim filter,
  the "All" mean; 1 is identical; the camera scaled to the output's size first);
- flat out: the same without -re; speed = media seconds per wall second (both cores), the
  headroom before the encoder cannot keep real time on this machine.

Usage (from the repository root):
    .venv/bin/python bench/transcode.py [--seconds 20] [--sizes 720,1080]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from config.settings import TranscodingSettings  # noqa: E402
from recorder.ffmpeg import transcode_options  # noqa: E402

FPS = 25
SEGMENT_SECONDS = 2.0
CAMERA_KBPS = 1500


@dataclass(frozen=True)
class Row:
    """One configuration measured: a label and the settings that differ from the defaults."""

    label: str
    changes: dict[str, Any]


ROWS = [
    Row("defaults (veryfast, crf 23, cap 3000k)", {}),
    Row("superfast", {"preset": "superfast"}),
    Row("faster", {"preset": "faster"}),
    Row("veryfast, cap 2000k", {"max_kbps": 2000}),
    Row("veryfast, no cap (before: crf 23 only)", {"max_kbps": 50_000}),
    Row("veryfast, max_height 720", {"max_height": 720}),
]


def make_camera(path: Path, height: int, seconds: float) -> None:
    """The H.265 council-like recording described in the module docstring."""
    width = height * 16 // 9
    speaker_w, speaker_h = width // 6 // 2 * 2, height // 4 // 2 * 2
    graph = (
        f"testsrc2=size={width}x{height}:rate={FPS},trim=end_frame=1,"
        f"loop=loop=-1:size=1,setpts=N/{FPS}/TB[room];"
        f"testsrc2=size={speaker_w}x{speaker_h}:rate={FPS}[speaker];"
        f"[room][speaker]overlay=x={width // 2 - speaker_w // 2}:y={height // 3}:shortest=1,"
        "noise=alls=6:allf=t,format=yuv420p"
    )
    argv = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-n"]
    argv += ["-filter_complex", graph, "-t", f"{seconds:g}"]
    argv += ["-c:v", "libx265", "-preset", "ultrafast", "-b:v", f"{CAMERA_KBPS}k"]
    argv += ["-x265-params", f"keyint={FPS}:log-level=error", "-tag:v", "hvc1", str(path)]
    subprocess.run(argv, check=True)


def _options_argv(options: dict[str, Any]) -> list[str]:
    argv: list[str] = []
    for key, value in options.items():
        argv += [f"-{key}", str(value)]
    return argv


def transcode(source: Path, output: Path, settings: TranscodingSettings, *, paced: bool) -> float:
    """Re-encode `source` into `output` (MPEG-TS, video only); returns CPU seconds used and
    leaves the wall time in the module's last_wall."""
    argv = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    argv += (["-re"] if paced else []) + ["-i", str(source), "-an"]
    argv += _options_argv(transcode_options(settings, SEGMENT_SECONDS))
    argv += ["-f", "mpegts", str(output)]
    began = time.monotonic()
    proc = subprocess.Popen(argv)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    global last_wall
    last_wall = time.monotonic() - began
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg exited {proc.returncode}: {argv}")
    return usage.ru_utime + usage.ru_stime


last_wall = 0.0


def video_bitrates(path: Path) -> tuple[float, float, float]:
    """(media seconds, mean kbit/s, highest kbit/s over any 1 s window) of the video stream."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "packet=pts_time,size", "-of", "json", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    packets = sorted((float(p["pts_time"]), int(p["size"])) for p in json.loads(out)["packets"])
    start, end = packets[0][0], packets[-1][0] + 1 / FPS
    seconds = end - start
    mean = sum(size for _, size in packets) * 8 / seconds / 1000
    peak = 0.0
    j = 0
    window = 0
    for t, size in packets:
        window += size
        while packets[j][0] <= t - 1.0:
            window -= packets[j][1]
            j += 1
        if t - start >= 1.0 - 1e-9:
            peak = max(peak, window * 8 / 1000)
    return seconds, mean, peak


def ssim(output: Path, camera: Path) -> float:
    """Mean SSIM (all planes) of `output` against `camera`, both from their first frame."""
    graph = (
        "[0:v]setpts=PTS-STARTPTS[out];[1:v]setpts=PTS-STARTPTS[cam];"
        "[cam][out]scale2ref=flags=bicubic[cam][out];[out][cam]ssim"
    )
    argv = ["ffmpeg", "-hide_banner", "-nostdin", "-i", str(output), "-i", str(camera)]
    argv += ["-lavfi", graph, "-f", "null", "-"]
    err = subprocess.run(argv, check=True, capture_output=True, text=True).stderr
    line = next(line for line in err.splitlines() if "SSIM" in line and "All:" in line)
    return float(line.split("All:")[1].split()[0])


def main() -> None:
    """Print one table row per size and configuration."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--sizes", default="720,1080")
    args = parser.parse_args()
    cpu_model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), "?",
    )  # fmt: skip
    ffmpeg_version = subprocess.run(
        ["ffmpeg", "-version"], check=True, capture_output=True, text=True
    ).stdout.split()[2]
    print(f"{os.cpu_count()} cores, {cpu_model}; ffmpeg {ffmpeg_version}; load before: "
          f"{os.getloadavg()[0]:.2f}")  # fmt: skip
    print(f"source: council-like H.265, {CAMERA_KBPS} kbit/s, {FPS} fps, {args.seconds:g} s\n")
    print("| source | re-encode | CPU paced, % of one core | video kbit/s mean | highest 1 s "
          "| SSIM | flat out, x real time |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="obrady-transcode-") as tmp:
        work = Path(tmp)
        for height in (int(h) for h in args.sizes.split(",")):
            camera = work / f"camera-{height}.mp4"
            make_camera(camera, height, args.seconds)
            for row in ROWS:
                if row.changes.get("max_height", height) >= height and "max_height" in row.changes:
                    continue  # scaling down only means something for a taller source
                settings = TranscodingSettings(**row.changes)
                out = work / "out.ts"
                cpu = transcode(camera, out, settings, paced=True)
                paced_wall = last_wall
                seconds, mean, peak = video_bitrates(out)
                quality = ssim(out, camera)
                transcode(camera, out, settings, paced=False)
                speed = seconds / last_wall
                print(
                    f"| {height}p | {row.label} | {100 * cpu / paced_wall:.0f} | {mean:.0f} "
                    f"| {peak:.0f} | {quality:.4f} | {speed:.1f} |",
                    flush=True,
                )
    print(f"\nload after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
