"""Measures where a re-encoded camera is placed on the wall clock, the program switch gaps that
follow from it, and what a re-encode starved of CPU records, against the camera's own clock.

A real RTSP camera (GStreamer, H.265 + AAC, 25 fps, one white frame a second whose making time
it prints: `rtsp_camera.py --flash-seconds 1`) is recorded twice at once by the capture
supervisor with 1 s segments: copied, and re-encoded to H.264 (tests/flashes.py). Finding the
white frames in the segments gives the true wall time of each run's media time 0. For each case
it prints how late each run is placed, by the seen-finished times alone (the index before frame
times) and now (recorder/ffmpeg.py FRAME_TIMES); then, for program switches between the two
runs at several segment boundaries each way, the real gap (negative: an overlap, which is no
gap), the gap the timeline reports with either placement and their errors; then what the
re-encode dropped and how far behind the wall clock its video ended.

Usage (from the repository root):
    .venv/bin/python bench/reencode.py [--cases quiet starved 720p] [--rounds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from flashes import (  # noqa: E402
    Recorded,
    anchor,
    observed_anchor,
    real_gap,
    record_copied_and_reencoded,
    switch_gap,
)

from recorder.continuity import Dropped, RunState, check_segment, read_packets  # noqa: E402

CASES = {
    # 640x360, x264 "slow": a re-encode that keeps real time on this machine when left alone.
    "quiet": {"width": 640, "height": 360, "preset": "slow", "before": 8.0},
    # The same, with the re-encode given about 13% of a CPU (SIGSTOP 0.2 s, SIGCONT 0.03 s)
    # for 4 s in the middle.
    "starved": {"width": 640, "height": 360, "preset": "slow", "before": 4.0, "starve": 4.0},
    # The same, starved from the re-encode's first moment to the end: a machine too busy for
    # it all along.
    "overloaded": {
        "width": 640,
        "height": 360,
        "preset": "slow",
        "starve": 10.0,
        "after": 0.0,
        "starve_from_start": True,
    },
    # 720p, x264 "veryfast" (the default preset): the camera itself costs half a core.
    "720p": {"width": 1280, "height": 720, "preset": "veryfast", "before": 8.0},
}
THRESHOLD = 0.5


async def video_holes(recorded: Recorded) -> list[str]:
    """The media check's video holes in the re-encoded run (as the service runs it)."""
    state = RunState()
    found = []
    for segment in recorded.segments["h264"]:
        dropped = [Dropped(d.start, d.end, d.cause) for d in segment.dropped]
        packets = await read_packets(segment.path)
        result = check_segment(
            packets, segment.growth, state, THRESHOLD, dropped, segment.entry.start
        )
        found += [f"{h.seconds:.2f} s ({h.cause})" for h in result.holes if h.kind == "video"]
    return found


async def one(case: str) -> tuple[list[str], list[str], list[str]]:
    folder = Path(tempfile.mkdtemp(prefix="obrady-reencode-"))
    try:
        recorded = await record_copied_and_reencoded(folder, **CASES[case])  # type: ignore[arg-type]
        placed = []
        if len(recorded.truth) < 2:
            return [f"| {case} | (a run showed no flash: not measured) | | | |"], [], []
        for mode in ("copy", "h264"):
            segments = recorded.segments[mode]
            truth = recorded.truth[mode]
            placed.append(
                f"| {case} | {'copied' if mode == 'copy' else 're-encoded'} | "
                f"{len(recorded.white[mode])} | "
                f"{1000 * (observed_anchor(segments) - truth):+.0f} | "
                f"{1000 * (anchor(segments) - truth):+.0f} |"
            )
        switches = []
        count = min(len(s) for s in recorded.segments.values())
        for first, second in (("copy", "h264"), ("h264", "copy")):
            # The second run from the same segment number (the runs were started together: no
            # gap, or the two runs' own offset), or one later (a gap of about a segment).
            for k, later in ((k, d) for k in range(2, count - 2, 3) for d in (0, 1)):
                before = [s for s in recorded.segments[first] if s.entry.seq < k]
                after = [s for s in recorded.segments[second] if s.entry.seq >= k + later]
                if not before or not after:
                    continue
                real = real_gap(recorded, first, before, after)
                shown = max(0.0, real)
                runs = (recorded.segments[first], recorded.segments[second])
                old = switch_gap(
                    before, after, (observed_anchor(runs[0]), observed_anchor(runs[1]))
                )
                new = switch_gap(before, after, (anchor(runs[0]), anchor(runs[1])))
                name = "copied → re-encoded" if first == "copy" else "re-encoded → copied"
                switches.append(
                    f"| {case} | {name} at {k}/{k + later} | {real:+.3f} | {old:.3f} | "
                    f"{1000 * (old - shown):+.0f} | {new:.3f} | {1000 * (new - shown):+.0f} |"
                )
        status = recorded.status["h264"]
        last = recorded.segments["h264"][-1]
        behind = last.observed_at.timestamp() - anchor(recorded.segments["h264"]) - last.entry.end
        holes = await video_holes(recorded)
        starve = CASES[case].get("starve", 0.0)
        dropping = [
            f"| {case} | {starve:g} | {status.frames_dropped} | {behind:.2f} | "
            f"{'; '.join(holes) or 'none'} |"
        ]
        return placed, switches, dropping
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    placed, switches, dropping = [], [], []
    for _ in range(args.rounds):
        for case in args.cases:
            rows = await one(case)
            placed += rows[0]
            switches += rows[1]
            dropping += rows[2]
    print("| case | run | flashes seen | placed late, seen-finished only (ms) |"
          " placed late now (ms) |")  # fmt: skip
    print("|---|---|---|---|---|")
    print("\n".join(placed))
    print()
    print(
        "| case | switch at segment (first/second run) | real gap (s) | reported before (s) |"
        " error (ms) | reported now (s) | error (ms) |"
    )
    print("|---|---|---|---|---|---|---|")
    print("\n".join(switches))
    print()
    print("| case | starved (s) | frames dropped | video behind the wall clock at the end (s) |"
          " video holes the media check reports |")  # fmt: skip
    print("|---|---|---|---|---|")
    print("\n".join(dropping))


if __name__ == "__main__":
    asyncio.run(main())
