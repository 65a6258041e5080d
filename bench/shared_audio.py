"""Experiment for issue 15: the chamber's sound captured and encoded to AAC once (one "audio
hub" ffmpeg per chamber) and shared by its cameras over loopback UDP multicast, each camera's
ffmpeg copying it (`-c:a copy`). Measures lip-sync, what a hub restart and a camera restart do,
and the CPU of one AAC encode against one per camera. See docs/chamber-audio.md.

One run, --seconds long, at 320x180 (tests/cameras/rtsp_camera.py):
- a sound-only test camera clicks at every whole wall second (the microphone system, G.711);
- the hub pulls it, stamps the sound with the wall clock (first frame's arrival plus samples
  counted), encodes AAC once and sends MPEG-TS to 239.255.0.1 on loopback;
- camera A (H.264, copied) and camera B (H.265, re-encoded to H.264) record 1 s segments with
  the argv recorder/ffmpeg.py builds today, its chamber input swapped for the multicast group
  and its AAC encode for a copy. Aligned (--align) on the wall clock: the camera's packets
  stamped as they arrive, -isync keeping the two inputs' offset (the default); or as today,
  each input's first packet taken as 0 ("first-packet");
- with --hub-restart, the hub is stopped at 1/3 of the run and started again --hub-gap s
  later; with --camera-restart, camera A is killed at 2/3 and started again 1 s later.
With --baseline the same cameras record with today's argv (each pulls and encodes the sound).

Lip-sync is read with tests/cameras/media_clock.py: sound minus picture at each click (ms,
negative: the sound comes late). CPU is each ffmpeg's user+system time over its run.

Usage (from the repository root):
    PYTHONPATH=. nice -n 19 .venv/bin/python bench/shared_audio.py [--seconds 24]
        [--hub-restart] [--hub-gap 2] [--camera-restart] [--baseline] [--align first-packet]
        [--hub-clock arrival] [--udp-timeout 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from config.settings import RtspAudio, RtspSource
from recorder.ffmpeg import SEGMENT_LIST, capture_argv, parse_segment_line

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT / "tests"))

from cameras.camera import RtspCamera  # noqa: E402
from cameras.media_clock import MediaClock, read_media_clock  # noqa: E402
from conftest import free_port  # noqa: E402

WIDTH = 320
GROUP = "239.255.0.1"
PLACEHOLDER = "rtsp://127.0.0.1:9/chamber"
TICKS = os.sysconf("SC_CLK_TCK")
TS_WRAP = 2**33 / 90000  # seconds
# Wall-clock timestamps for the shared sound: the first frame's arrival, then one sample at a
# time (so no jitter; a restarted hub continues on the same clock, later by the outage).
WALL_CLOCK_PTS = "asetpts=(if(eq(N\\,0)\\,st(0\\,RTCTIME/1000000)\\,ld(0))+N/SR)/TB"


def hub_argv(mics_url: str, port: int, clock: str = "samples", kbps: int = 128) -> list[str]:
    """One ffmpeg per chamber: pull the microphone system's stream, encode AAC once, send
    MPEG-TS to a loopback multicast group (any number of receivers, none needed). Its
    timestamps are the wall clock: the first frame's arrival plus samples counted ("samples"),
    or each packet's arrival with aresample keeping the sound on it ("arrival": no drift of
    the source's sample clock against the machine's over a long session)."""
    if clock == "arrival":
        stamping = ["-use_wallclock_as_timestamps", "1"]
        graph = "aresample=48000:async=1000"
        keep = ["-copyts"]
    else:
        stamping, graph, keep = [], f"aresample=48000,{WALL_CLOCK_PTS}", []
    return [
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "warning", "-nostats", *keep,
        "-analyzeduration", "1", "-probesize", "32", "-rtsp_transport", "tcp",
        "-timeout", "5000000", *stamping, "-i", mics_url,
        "-map", "0:a:0", "-af", graph,
        "-c:a", "aac", "-b:a", f"{kbps}k", "-ar", "48000",
        # A datagram per AAC frame: no PES bundling, no mux delay, flush after every packet.
        "-f", "mpegts", "-pes_payload_size", "0", "-muxdelay", "0", "-muxpreload", "0",
        "-flush_packets", "1", "-pat_period", "0.1",
        f"udp://{GROUP}:{port}?localaddr=127.0.0.1&ttl=0&pkt_size=1316",
    ]  # fmt: skip


def shared_input(port: int, timeout: float = 5.0) -> list[str]:
    """The camera ffmpeg's input of the hub's multicast group. After `timeout` s without a
    datagram the input ends (and the run goes on without sound)."""
    return [
        "-analyzeduration", "1", "-probesize", "32",
        "-i", f"udp://{GROUP}:{port}?localaddr=127.0.0.1&reuse=1&overrun_nonfatal=1"
        f"&fifo_size=50000&timeout={round(timeout * 1_000_000)}",
    ]  # fmt: skip


def camera_argv(
    source: RtspSource,
    run_dir: Path,
    port: int,
    wallclock: bool,
    interleave: float = 1.0,
    timeout: float = 5.0,
) -> list[str]:
    """Today's capture argv with the chamber input swapped for the hub's group and the AAC
    encode for a copy. Aligned either as today (each input's first packet is its time 0: the
    copy-mode asetpts=PTS-STARTPTS), or, with `wallclock`, both inputs on the wall clock (the
    camera's packets stamped as they arrive) and -isync keeping that alignment at zero."""
    argv = capture_argv(source, run_dir, 1, RtspAudio(kind="rtsp", url=PLACEHOLDER))
    first_i = argv.index(PLACEHOLDER)
    start = argv.index("-analyzeduration")
    # MPEG-TS carries 33-bit timestamps at 90 kHz: the hub's wall clock arrives less a whole
    # number of wraps (26.5 h each), which -itsoffset gives back.
    unwrap = ["-isync", "1", "-itsoffset", f"{TS_WRAP * (time.time() // TS_WRAP):.6f}"]
    argv[start : first_i + 1] = (unwrap if wallclock else []) + shared_input(port, timeout)
    if wallclock:
        camera = argv.index(source.url)
        # A packet is stamped when the input thread reads it: a full queue (8 packets by
        # default) holds the thread back and bunches the stamps ("Non-monotonous DTS").
        argv[camera - 1 : camera - 1] = [
            "-use_wallclock_as_timestamps", "1", "-thread_queue_size", "1024",
        ]  # fmt: skip
        argv[argv.index("-copyts") + 1 : argv.index("-copyts") + 1] = ["-start_at_zero"]
    fc = argv.index("-filter_complex")
    del argv[fc : fc + 2]
    argv[argv.index("[s0]")] = "0:a:0"
    for option in ("-b:a", "-ar"):
        at = argv.index(option)
        del argv[at : at + 2]
    argv[argv.index("-c:a") + 1] = "copy"
    if not wallclock:
        argv[argv.index("-c:a") : argv.index("-c:a")] = ["-bsf:a", "setts=ts=TS-STARTPTS"]
    # Do not hold the picture back more than 1 s while the hub is away (default 10 s).
    out = argv.index(str(run_dir / "seg-%06d.ts"))
    argv[out:out] = ["-max_interleave_delta", str(round(interleave * 1_000_000))]
    return argv


@dataclass
class Run:
    """One ffmpeg run with its CPU time read just before it was stopped."""

    name: str
    argv: list[str]
    run_dir: Path | None = None
    proc: asyncio.subprocess.Process | None = None
    started: float = 0.0
    cpu: float = 0.0
    wall: float = 0.0
    stderr: list[str] = field(default_factory=list)
    drain: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        self.started = time.monotonic()
        assert self.proc.stderr is not None
        self.drain = asyncio.create_task(self._drain(self.proc.stderr))

    async def _drain(self, stream: asyncio.StreamReader) -> None:
        async for raw in stream:
            self.stderr.append(raw.decode("utf-8", "replace").rstrip())

    async def stop(self, sig: int = signal.SIGINT) -> None:
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(OSError):
            stat = await asyncio.to_thread(Path(f"/proc/{proc.pid}/stat").read_text)
            fields = stat.rsplit(")", 1)[1].split()
            self.cpu = (int(fields[11]) + int(fields[12])) / TICKS
        self.wall = time.monotonic() - self.started
        proc.send_signal(sig)
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        if self.drain is not None:
            await self.drain


async def read_run(run_dir: Path) -> MediaClock:
    listing = (run_dir / SEGMENT_LIST).read_text().split()
    entries = [e for e in map(parse_segment_line, listing) if e is not None]
    return await read_media_clock([run_dir / e.file for e in entries], WIDTH)


def summary(name: str, clock: MediaClock, marks: list[tuple[str, float]]) -> str:
    """A table row: lip-sync median and range per stretch, clicks heard, holes."""
    offsets = list(zip((c.wall for c in clock.clicks), clock.lipsync(), strict=False))
    walls = [c.wall for c in clock.clicks]
    missing = (
        [w for w in range(int(min(walls)), int(max(walls)) + 1) if float(w) not in walls]
        if walls
        else []
    )
    parts = []
    bounds = [("", float("-inf"))] + marks + [("", float("inf"))]
    for (label, lo), (_, hi) in zip(bounds, bounds[1:], strict=False):
        stretch = [1000 * o for w, o in offsets if lo <= w < hi]
        if stretch:
            parts.append(
                f"{label or 'start'}: {statistics.median(stretch):+.0f} "
                f"[{min(stretch):+.0f}..{max(stretch):+.0f}] n={len(stretch)}"
            )
    jumps = clock.picture_jumps(0.3)
    return (
        f"| {name} | {'; '.join(parts)} | {len(walls)} clicks, missing seconds "
        f"{[w % 100 for w in missing]} | picture holes {jumps} |"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=24.0)
    parser.add_argument("--hub-restart", action="store_true")
    parser.add_argument("--hub-gap", type=float, default=2.0)
    parser.add_argument("--camera-restart", action="store_true")
    parser.add_argument("--baseline", action="store_true", help="today's argv: AAC per camera")
    parser.add_argument(
        "--align",
        choices=["wallclock", "first-packet"],
        default="wallclock",
        help="the camera's alignment of sound and picture (see camera_argv)",
    )
    parser.add_argument(
        "--interleave", type=float, default=1.0, help="-max_interleave_delta, seconds"
    )
    parser.add_argument("--hub-clock", choices=["samples", "arrival"], default="samples")
    parser.add_argument("--udp-timeout", type=float, default=5.0, help="seconds")
    parser.add_argument("--keep", action="store_true", help="keep the recordings")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="obrady-shared-audio-"))
    mics = RtspCamera(free_port(), video="none", audio="pcma", clicks=True, watched=True)
    cam_a = RtspCamera(free_port(), video="h264", audio="none", fps=25, clock_code=True,
                       watched=True)  # fmt: skip
    cam_b = RtspCamera(free_port(), video="h265", audio="none", fps=25, clock_code=True,
                       watched=True)  # fmt: skip
    port = free_port()
    sources = {
        "A": RtspSource(kind="rtsp", url=cam_a.url, video="copy"),  # type: ignore[arg-type]
        "B": RtspSource(kind="rtsp", url=cam_b.url, video="h264"),  # type: ignore[arg-type]
    }
    labels = {"A": "A: H.264 copied", "B": "B: H.265 re-encoded"}
    runs: list[Run] = []
    hubs: list[Run] = []
    marks: list[tuple[str, float]] = []

    def new_camera_run(key: str) -> Run:
        n = sum(1 for r in runs if r.name.startswith(key)) + 1
        run_dir = folder / key / f"run-{n:04d}"
        run_dir.mkdir(parents=True)
        if args.baseline:
            argv = capture_argv(sources[key], run_dir, 1, RtspAudio(kind="rtsp", url=mics.url))
        else:
            argv = camera_argv(
                sources[key],
                run_dir,
                port,
                args.align == "wallclock",
                args.interleave,
                args.udp_timeout,
            )
        run = Run(f"{key}{n}", argv, run_dir)
        runs.append(run)
        return run

    try:
        async with asyncio.TaskGroup() as starting:
            for camera in (mics, cam_a, cam_b):
                starting.create_task(camera.start())
        if not args.baseline:
            hub = Run("hub1", hub_argv(mics.url, port, args.hub_clock))
            hubs.append(hub)
            await hub.start()
            await asyncio.sleep(1.0)
        await asyncio.gather(new_camera_run("A").start(), new_camera_run("B").start())
        begin = time.monotonic()

        async def until(fraction: float) -> None:
            await asyncio.sleep(max(0.0, begin + fraction * args.seconds - time.monotonic()))

        if args.hub_restart and not args.baseline:
            await until(1 / 3)
            await hubs[-1].stop()
            await asyncio.sleep(args.hub_gap)
            hub = Run("hub2", hub_argv(mics.url, port, args.hub_clock))
            hubs.append(hub)
            await hub.start()
            marks.append(("after hub restart", time.time()))
        if args.camera_restart:
            await until(2 / 3)
            [a1] = [r for r in runs if r.name == "A1"]
            await a1.stop(signal.SIGKILL)
            await asyncio.sleep(1.0)
            await new_camera_run("A").start()
            marks.append(("after A restart", time.time()))
        await until(1.0)
        for run in runs:
            await run.stop()
        for hub in hubs:
            await hub.stop()
    finally:
        for run in [*runs, *hubs]:
            await run.stop(signal.SIGKILL)
        for camera in (mics, cam_a, cam_b):
            await camera.stop()
    mode = "baseline (AAC per camera)" if args.baseline else "shared (one AAC encode)"
    if not args.baseline:
        mode += f", alignment: {args.align}, hub clock: {args.hub_clock}"
    print(f"mode: {mode}, {args.seconds:g} s, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print("| run | sound minus picture, median [min..max] ms | sound | picture |")
    print("|---|---|---|---|")
    for run in runs:
        assert run.run_dir is not None
        try:
            clock = await read_run(run.run_dir)
            print(summary(f"{labels[run.name[0]]} ({run.name})", clock, marks))
        except Exception as error:  # noqa: BLE001 - a table row says what failed
            print(f"| {run.name} | unreadable: {error!s:.200} | | |")
    print()
    print("| ffmpeg | CPU s | wall s | share of a core |")
    print("|---|---|---|---|")
    for run in [*hubs, *runs]:
        share = run.cpu / run.wall if run.wall else float("nan")
        print(f"| {run.name} | {run.cpu:.2f} | {run.wall:.1f} | {100 * share:.1f}% |")
    for run in [*hubs, *runs]:
        tail = [line for line in run.stderr if line][-4:]
        if tail:
            print(f"{run.name} stderr tail:", *tail, sep="\n  ")
    if args.keep:
        print("kept:", folder)
    else:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
