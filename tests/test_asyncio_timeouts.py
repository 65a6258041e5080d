"""No `asyncio.wait_for` in obrady's code: on Python 3.11 it can swallow a cancellation that
arrives just as the awaited thing completes (fixed in 3.12). In a loop that meant a part that
never stopped: the segment analyser, given a segment at the moment it was cancelled, went on
waiting for the next one, and the service's shutdown hung. `async with asyncio.timeout(t):`
does not have the flaw."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_timeouts_use_asyncio_timeout_not_wait_for() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for package in ("streaming", "recorder", "archive", "config")
        for path in sorted((ROOT / package).rglob("*.py"))
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1)
        if "asyncio.wait_for(" in line
    ]
    assert found == [], f"use `async with asyncio.timeout(...)` instead of wait_for at {found}"
