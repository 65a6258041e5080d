"""bench/backup.py runs end to end at a tiny scale: it builds an archive, backs it up twice,
restores it, verifies the restore and rebuilds its index from the media (its figures are
measured, not tested)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_backup_bench_backs_up_restores_and_verifies(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "bench/backup.py", "--hours", "0.2", "--session-hours", "0.1",
         "--segment-kb", "1", "--bitrate-kbps", "64", "--work", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    out = done.stdout
    # 2 sessions of 180 segments (with a segment list, a manifest and a record each, and the
    # database);
    # then a third, whose 180 are the night's increment; then nothing new.
    assert "first backup:" in out and "  367 files" in out, out
    assert "  180 segments," in out and "  0 segments copied" in out, out
    assert "3 sessions, 540 segments" in out, out
    assert "exit 0: all 3 session(s) verified" in out, out
    assert "  3 sessions (3 from their record), 540 segments" in out, out
