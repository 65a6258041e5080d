"""bench/hostile_load.py runs end to end, at a tiny scale: it starts obrady, its viewers and
every kind of attack, and reports each figure it promises (not their values: those are
measured, not tested)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_hostile_load_bench_measures_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "hostile.json"
    done = subprocess.run(
        [sys.executable, "bench/hostile_load.py", "--phases", "hostile", "--seconds", "2",
         "--viewers", "4", "--workers", "1", "--ramp", "0.5", "--warmup", "0.5",
         "--basic", "2", "--slow", "10", "--far", "4", "--width", "320", "--height", "180",
         "--fps", "10", "--segment-seconds", "1", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (phase,) = json.loads(out.read_text())
    assert phase["viewers"]["p99_ms"] is not None and phase["viewers"]["parts_delivered_percent"]
    assert {"capture", "gateway", "ffmpeg"} <= set(phase["memory"]["peak_rss_mib"])
    assert phase["recording"]["media_checked"] is True
    assert phase["recording"]["picture"]["segments_listed"] > 0
    statuses = phase["attack"]["statuses"]
    assert statuses["basic"] and statuses["far"] and statuses["operator"]
    assert any(key.endswith(": opened") for key in statuses["slow"])
    assert "peak RSS" in done.stdout and "recording lost" in done.stdout
