"""Measures how soon a session's recording and chapters are public after the operator stops it.

Starts `obrady serve` (the simulated 1280x720 chamber of bench/glass.py), then for each round
records a session of --seconds with its two agenda items taken up, stops it through the API,
and times from just before the stop request until the public side shows the finished
recording: the session's playlist ends with #EXT-X-ENDLIST (a VOD the whole length), its
WebVTT chapters list both items, and the session page answers. Also times the whole-recording
MP4 (remuxed in the background) until it downloads. Nothing is re-encoded on the way.

Usage (from the repository root):
    .venv/bin/python bench/publish_delay.py [--rounds 3] [--seconds 20]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BenchError, http, until  # noqa: E402
from glass import USER, Obrady  # noqa: E402


def public_now(base: str, sid: int) -> bool:
    """Whether the public side shows the finished recording with both chapters."""
    status, playlist = http("GET", f"{base}/sessions/{sid}/index.m3u8")
    if status != 200 or not playlist.rstrip().endswith(b"#EXT-X-ENDLIST"):
        return False
    status, vtt = http("GET", f"{base}/sessions/{sid}/chapters.vtt")
    if status != 200 or vtt.count(b"-->") < 2:
        return False
    return http("GET", f"{base}/sessions/{sid}")[0] == 200


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each session")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="obrady-publish-delay-"))
    obrady = Obrady(work, 1.0)
    public: list[float] = []
    mp4: list[float] = []
    try:
        obrady.start()
        for _ in range(args.rounds):
            sid = obrady.begin_session()
            _, body = http("GET", f"{obrady.base}/api/v1/sessions/{sid}")
            items = [item["id"] for item in json.loads(body)["agenda"]]
            for item in items:
                status, answer = http(
                    "POST", f"{obrady.base}/api/v1/sessions/{sid}/items/{item}/start", None, USER
                )
                if status != 200:
                    raise BenchError(f"item {item}: HTTP {status} {answer!r}")
                time.sleep(args.seconds / len(items))
            started = time.monotonic()
            status, answer = http("POST", f"{obrady.base}/api/v1/sessions/{sid}/stop", None, USER)
            if status != 200:
                raise BenchError(f"stop: HTTP {status} {answer!r}")
            mp4_url = f"{obrady.base}/sessions/{sid}/recording.mp4"

            def shown(session_id: int = sid) -> bool:
                return public_now(obrady.base, session_id)

            def downloadable(url: str = mp4_url) -> bool:
                return http("GET", url)[0] == 200

            until(shown, 60, "public recording", interval=0.02)
            public.append(time.monotonic() - started)
            until(downloadable, 120, "MP4 of the recording", interval=0.1)
            mp4.append(time.monotonic() - started)
        print(
            f"{args.rounds} sessions of {args.seconds:g} s: recording and chapters public "
            f"{statistics.median(public):.3f} s after the stop request (median; max "
            f"{max(public):.3f} s); whole MP4 downloadable after {statistics.median(mp4):.2f} s "
            f"(median; max {max(mp4):.2f} s)"
        )
        return 0
    except BenchError as exc:
        print(f"publish_delay: {exc}\n{obrady.log_tail()}", file=sys.stderr)
        return 1
    finally:
        obrady.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
