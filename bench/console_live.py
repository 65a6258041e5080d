"""Measures how soon an operator's action shows on the residents' live page in Chromium.

Starts `obrady serve` (the same simulated 1280x720 chamber as bench/glass.py) and a session,
opens the live page (/live/<chamber>) in headless Chromium, then takes turns: the next agenda
item, a break on, a break off, each through the API exactly as the console sends it. For each,
it times from just before the request to the moment the page shows the change (the current
item highlighted, or the session's state), and reports the median, 95th percentile and maximum.
Each action comes at a random moment of the page's once-a-second polling, as a real one does.

Usage (from the repository root):
    .venv/bin/python bench/console_live.py [--rounds 30] [--json out.json] [--keep]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BenchError, http  # noqa: E402
from glass import CHROMIUM, CHROMIUM_ARGS, USER, Obrady  # noqa: E402

CHAMBER = "sala-obrad"


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="actions to time (default 30)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the working folder")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="obrady-console-live-"))
    obrady = Obrady(work, 1.0)
    delays: dict[str, list[float]] = {"item": [], "break on": [], "break off": []}
    try:
        obrady.start()
        sid = obrady.begin_session()
        status, body = http("GET", f"{obrady.base}/api/v1/sessions/{sid}")
        items = [item["id"] for item in json.loads(body)["agenda"]]
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.goto(f"{obrady.base}/live/{CHAMBER}")
            page.wait_for_function(
                "document.getElementById('status').dataset.state === 'live'", timeout=60_000
            )

            def act(path: str, body: object, shown: str) -> float:
                # An operator acts at any moment of the page's polling cycle, not right after
                # the page last asked: wait a random part of a second first.
                time.sleep(random.uniform(0.0, 1.0))
                started = time.monotonic()
                status, answer = http("POST", obrady.base + path, body, USER)
                if status != 200:
                    raise BenchError(f"POST {path}: HTTP {status} {answer!r}")
                page.wait_for_function(shown, timeout=30_000, polling=20)
                return time.monotonic() - started

            for n in range(args.rounds):
                step = n % 3
                if step == 0:
                    item = items[(n // 3) % len(items)]
                    delays["item"].append(
                        act(
                            f"/api/v1/sessions/{sid}/items/{item}/start",
                            None,
                            f"!!document.querySelector('#agenda li.current[data-item=\"{item}\"]')",
                        )
                    )
                else:
                    on = step == 1
                    want = "break" if on else "live"
                    delays["break on" if on else "break off"].append(
                        act(
                            f"/api/v1/sessions/{sid}/break",
                            {"on": on},
                            f"document.getElementById('status').dataset.state === '{want}'",
                        )
                    )
            browser.close()
        every = [d for values in delays.values() for d in values]
        figures = {
            "rounds": len(every),
            "median_s": round(statistics.median(every), 3),
            "p95_s": round(percentile(every, 95), 3),
            "max_s": round(max(every), 3),
            "by_action": {
                k: {"median_s": round(statistics.median(v), 3), "max_s": round(max(v), 3)}
                for k, v in delays.items()
                if v
            },
        }
        print(
            f"operator action -> live page, {figures['rounds']} actions: median "
            f"{figures['median_s']:.2f} s, p95 {figures['p95_s']:.2f} s, max "
            f"{figures['max_s']:.2f} s"
        )
        for name, f in figures["by_action"].items():
            print(f"  {name:9s} median {f['median_s']:.2f} s, max {f['max_s']:.2f} s")
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2))
        return 0
    except BenchError as exc:
        print(f"console_live: {exc}\n{obrady.log_tail()}", file=sys.stderr)
        return 1
    finally:
        obrady.stop()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
