"""Measures how soon a session's transcript is whole after the operator stops it, with live
captions recognising the speech while the session runs.

Starts `obrady serve` with Whisper base and live captions (as configured by default), on a
simulated 1280x720 chamber whose sound is the held set of bench/wer.py (37 council-style
sentences spoken by espeak-ng, looped). Records one session for --minutes while following the
live captioner (its delay behind the recording, what it skipped, its real-time factor), stops
it, and times from the stop request until the transcript is whole (the recognition of what
live captions did not hear is done: `completed_at`) and until the whole recording has been
heard again (`refine_after_live`, the better transcript).

A four-hour session is whole as soon after its end as here if live captions keep up (nothing
skipped): what is left at the end is the last window, not the session.

Usage (from the repository root; needs `make model`):
    .venv/bin/python bench/transcript_delay.py [--minutes 5] [--window 15]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BenchError, http, until  # noqa: E402
from _speech import load_held_set  # noqa: E402
from glass import HEIGHT, USER, WIDTH, Obrady  # noqa: E402
from wer import make_session  # noqa: E402

from recorder.whisper_model import assemble_model  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

CONFIG = """
[server]
host = "127.0.0.1"
port = {port}
data_dir = "{data}"

[recording]
segment_seconds = 2
preroll_seconds = 0
overrun_limit_minutes = 60

[transcription]
model_dir = "{model}"
cpu_threads = {threads}
live_window_seconds = {window:g}

[[chambers]]
id = "sala-obrad"
name = "Sala obrad"
[chambers.source]
kind = "synthetic"
width = {width}
height = {height}
fps = 25
sound_file = "{sound}"
"""


def get_json(url: str) -> Any:
    """GET url as the bench's operator; its JSON."""
    status, body = http("GET", url, None, USER)
    if status != 200:
        raise BenchError(f"GET {url}: HTTP {status} {body[:200]!r}")
    return json.loads(body)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="length of the session")
    parser.add_argument("--window", type=float, default=15.0, help="live_window_seconds")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    model = assemble_model(ROOT / ".cache" / "whisper-base")
    cache = ROOT / ".cache" / "speech"
    held = load_held_set(ROOT / "bench" / "speech" / "council_pl.toml")
    sound, _, _ = make_session(held, cache, 1.5)
    work = Path(tempfile.mkdtemp(prefix="obrady-transcript-delay-"))
    obrady = Obrady(work, 2.0)
    obrady.config.write_text(
        CONFIG.format(
            port=obrady.port,
            data=work / "data",
            model=model,
            threads=args.threads,
            window=args.window,
            width=WIDTH,
            height=HEIGHT,
            sound=sound,
        )
    )
    base = obrady.base
    try:
        obrady.start()
        sid = obrady.begin_session()
        seen: list[dict[str, Any]] = []
        loads: list[float] = []
        deadline = time.monotonic() + args.minutes * 60
        while time.monotonic() < deadline:
            time.sleep(5)
            obrady.check_alive()
            live = get_json(f"{base}/api/v1/transcription")["live"]
            mine = [c for c in live if c["session_id"] == sid]
            if mine:
                seen.append(mine[0])
            loads.append(os.getloadavg()[0])
        stopped = time.monotonic()
        status, answer = http("POST", f"{base}/api/v1/sessions/{sid}/stop", None, USER)
        if status != 200:
            raise BenchError(f"stop: HTTP {status} {answer!r}")
        recorded = json.loads(answer)["recording"]["duration_seconds"]
        stop_at = datetime.now().astimezone()

        def progress() -> dict[str, Any] | None:
            found: dict[str, Any] | None = get_json(f"{base}/api/v1/sessions/{sid}/transcript")[
                "progress"
            ]
            if found and found["state"] == "failed":
                raise BenchError(f"recognition failed: {found['error']}")
            return found

        def whole() -> dict[str, Any] | None:
            found = progress()
            return found if found and found["completed_at"] else None

        def refined() -> dict[str, Any] | None:
            found = progress()
            done = found and found["state"] == "done" and found["pass"] == "full"
            return found if done else None

        complete = until(whole, 1800, "the whole transcript", interval=0.5)
        complete_after = time.monotonic() - stopped
        until(refined, 3 * 3600, "the whole recording heard again", interval=2)
        refined_after = time.monotonic() - stopped
        transcript = get_json(f"{base}/api/v1/sessions/{sid}/transcript")
        completed_at = datetime.fromisoformat(complete["completed_at"])
        if not seen:
            raise BenchError("the live captioner was never seen")
        last = seen[-1]
        lags = [c["lag_seconds"] for c in seen if c["windows"]]
        heard = last["captioned_seconds"]  # (at the last look before the stop)
        print(
            f"session of {recorded:.0f} s (Whisper base, int8, {args.threads} threads, live "
            f"windows of {args.window:g} s, simulated chamber {WIDTH}x{HEIGHT} 25 fps encoded "
            f"on this machine; load average during the session {statistics.mean(loads):.2f})"
        )
        print(
            f"live captions: {last['windows']} windows, real-time factor "
            f"{last['realtime_factor']}, behind the recording median "
            f"{statistics.median(lags):.1f} s, max {max(lags):.1f} s; skipped "
            f"{last['skipped_seconds']:.0f} s; {heard:.0f} of {recorded:.0f} s captioned at the "
            "last look before the stop"
        )
        print(
            f"transcript whole {complete_after:.1f} s after the stop request "
            f"(completed_at {(completed_at - stop_at).total_seconds():+.1f} s from the stop's "
            f"answer); the whole recording heard again after {refined_after:.0f} s "
            f"(real-time factor {refined_after / recorded:.3f}: a 4-hour session in about "
            f"{4 * 60 * refined_after / recorded:.0f} min)"
        )
        print(f"lines: {len(transcript['lines'])}")
        return 0
    except BenchError as exc:
        print(f"transcript_delay: {exc}\n{obrady.log_tail()}", file=sys.stderr)
        return 1
    finally:
        obrady.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
