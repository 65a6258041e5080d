"""Measures lip-sync between the chamber's own sound and a camera's picture, and how well the
gap a camera drop leaves is reported, both against clocks carried by the media themselves.

The test camera (tests/cameras/rtsp_camera.py, GStreamer, 320x180, --fps) stamps every frame
with the wall clock it was made at (`--clock-code`); a second one without video stands in for
the microphone system and clicks at every whole wall second (`--clicks`, G.711 or AAC). Both
are playing before the recording starts (a viewer keeps them running, as a real camera
encodes before anyone connects).

1. Lip-sync: the capture argv (recorder/ffmpeg.py, as the supervisor runs it) records the
   camera, copied (H.264) or re-encoded (H.265 to H.264), with the chamber sound, 1 s segments,
   --seconds long. At the media time of each click the picture's clock is read: sound minus
   picture, in ms (negative: the sound comes late). Each row gives the median over the clicks
   of a round, for --rounds rounds.
2. Drop: obrady (in-process, one H.264 camera copied, 1 s segments) records; the camera's RTSP
   server is stopped (connections closed) for --outage seconds and started again. The real hole
   is read off the picture clock (first frame after, minus last frame before, minus one frame
   interval), the reported one is the session's `recording.gaps[0].seconds`.

With --shared the chamber sound reaches the camera's ffmpeg through the chamber's audio hub
(recorder/audiohub.py: opened and encoded once, shared over loopback multicast), as the
recorder runs it for RTSP cameras by default; without, each camera's ffmpeg opens it itself.

Usage (from the repository root):
    .venv/bin/python bench/lipsync.py [--rounds 3] [--seconds 6] [--outage 5] [--fps 25]
        [--shared] [--load 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from config.settings import RtspAudio, RtspSource, parse_settings
from recorder.audiohub import AudioHub
from recorder.ffmpeg import SEGMENT_LIST, capture_argv

ROOT = Path(__file__).resolve().parent.parent
# Appended, not put first: tests/streaming would hide the streaming package.
sys.path.append(str(ROOT / "tests"))

from cameras.camera import RtspCamera  # noqa: E402
from cameras.media_clock import read_media_clock, record_clock  # noqa: E402
from conftest import (  # noqa: E402
    config_text,
    free_port,
    hub_receiving,
    rtsp_source,
    segments_of,
    start_service,
    stop_service,
    wait_for,
)

WIDTH = 320
CASES = [
    ("H.264, copied", "h264", "copy"),
    ("H.265, re-encoded to H.264", "h265", "h264"),
]
MICS = [("G.711 (PCMA)", "pcma"), ("AAC", "aac")]


async def lipsync_round(
    folder: Path,
    camera_video: str,
    record_video: str,
    mics_audio: str,
    seconds: float,
    fps: int,
    shared: bool = False,
) -> list[float]:
    """Sound minus picture (s) at each click of one recording; with `shared`, the sound comes
    through the chamber's audio hub (recorder/audiohub.py) as the recorder runs it."""
    camera = RtspCamera(
        free_port(), video=camera_video, audio="none", fps=fps, clock_code=True, watched=True
    )
    mics = RtspCamera(free_port(), video="none", audio=mics_audio, clicks=True, watched=True)
    run_dir = folder / "run-0001"
    run_dir.mkdir(parents=True)
    source = RtspSource(kind="rtsp", url=camera.url, video=record_video)  # type: ignore[arg-type]
    audio = RtspAudio(kind="rtsp", url=mics.url)
    hub = AudioHub(audio) if shared else None
    try:
        # A task group: if one fails to start, the other's start is cancelled (and cleans up).
        async with asyncio.TaskGroup() as starting:
            starting.create_task(camera.start())
            starting.create_task(mics.start())
        if hub is not None:
            hub.start()

            await hub_receiving(hub)
        argv = capture_argv(source, run_dir, 1, audio if hub is None else hub.link)
        clock = await record_clock(argv, run_dir, WIDTH, seconds=seconds)
    finally:
        if hub is not None:
            await asyncio.to_thread(hub.stop)
        await camera.stop()
        await mics.stop()
    return clock.lipsync()


async def drop_round(folder: Path, outage: float, fps: int) -> tuple[float, float]:
    """(real hole from the picture clock, reported gap) for one drop of the camera."""
    camera = RtspCamera(free_port(), fps=fps, clock_code=True)
    await camera.start()
    settings = parse_settings(
        config_text(folder / "data", free_port(), rtsp_source(camera.url), segment_seconds=1)
    )
    service = await start_service(settings)
    try:
        sid = int((await service.begin())["id"])

        async def at_least(count: int) -> bool:
            return await segments_of(service, sid) >= count

        await wait_for(lambda: at_least(3), 30, "three segments")
        await camera.stop()
        await asyncio.sleep(outage)
        await camera.start()
        before = await segments_of(service, sid)
        await wait_for(lambda: at_least(before + 3), 30, "three segments after the drop")
        detail = await service.post_json(f"/api/v1/sessions/{sid}/stop")
    finally:
        await stop_service(service)
        await camera.stop()
    [gap] = detail["recording"]["gaps"]
    runs = sorted((settings.data_path / "media" / "sala" / str(sid) / "main").glob("run-*"))
    clocks = []
    for run in runs:
        names = [line.split(",")[0] for line in (run / SEGMENT_LIST).read_text().split()]
        clocks.append(await read_media_clock([run / name for name in names], WIDTH))
    real = clocks[1].frames[0][1] - clocks[0].frames[-1][1] - 1 / fps
    return real, float(gap["seconds"])


async def busy_encoder() -> asyncio.subprocess.Process:
    """An ffmpeg that keeps a core busy: 720p test picture to x264 "medium", thrown away."""
    return await asyncio.create_subprocess_exec(
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
        "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25",
        "-c:v", "libx264", "-preset", "medium", "-f", "null", "-",
        stdin=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--outage", type=float, default=5.0)
    parser.add_argument("--fps", type=int, default=25, help="the camera's frame rate")
    parser.add_argument("--skip-drop", action="store_true")
    parser.add_argument(
        "--shared", action="store_true", help="the sound through the chamber's audio hub"
    )
    parser.add_argument(
        "--load",
        type=int,
        default=0,
        help="this many busy x264 encoders (720p, at the same priority) run meanwhile",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    folder = Path(tempfile.mkdtemp(prefix="obrady-lipsync-"))
    hogs = [await busy_encoder() for _ in range(args.load)]
    try:
        print(
            "| camera | chamber sound | sound minus picture, each round (ms) | worst round (ms)"
            " | worst click (ms) |"
        )
        print("|---|---|---|---|---|")
        for label, camera_video, record_video in CASES:
            for mics_label, mics_audio in MICS:
                medians, clicks = [], []
                for n in range(args.rounds):
                    where = folder / f"{camera_video}-{mics_audio}-{n}"
                    offsets = await lipsync_round(
                        where,
                        camera_video,
                        record_video,
                        mics_audio,
                        args.seconds,
                        args.fps,
                        args.shared,
                    )
                    medians.append(1000 * statistics.median(offsets) if offsets else float("nan"))
                    clicks += [1000 * x for x in offsets]
                rounds = ", ".join(f"{m:+.0f}" for m in medians)
                worst = max(medians, key=abs)
                click = max(clicks, key=abs) if clicks else float("nan")
                print(f"| {label} | {mics_label} | {rounds} | {worst:+.0f} | {click:+.0f} |")
        if not args.skip_drop:
            print()
            print("| fault | real hole, picture clock (s) | reported gap (s) | error (ms) |")
            print("|---|---|---|---|")
            for n in range(args.rounds):
                real, reported = await drop_round(folder / f"drop-{n}", args.outage, args.fps)
                print(
                    f"| camera's RTSP server stopped for {args.outage:g} s | {real:.3f} | "
                    f"{reported:.3f} | {1000 * (reported - real):+.0f} |"
                )
    finally:
        for hog in hogs:
            with contextlib.suppress(ProcessLookupError):
                hog.kill()
            await hog.wait()
        with contextlib.suppress(OSError):
            shutil.rmtree(folder)


if __name__ == "__main__":
    asyncio.run(main())
