"""A filling disk: a warning with hours left, then a clean stop at the floor with every segment
intact, nothing deleted, and recording resumes in the same session once space is freed."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import config_text, free_port, start_service, stop_service, wait_for
from helpers import decoded_duration, small_tmpfs

from archive.integrity import verify_files
from config.settings import parse_settings
from streaming.keys import ARCHIVE

MB = 1_000_000


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB tmpfs of our own, so filling it harms nothing else."""
    with small_tmpfs(tmp_path / "data", 16) as mount:
        yield mount


async def test_disk_floor_stops_capture_cleanly_and_resumes_after_space_is_freed(
    small_disk: Path,
) -> None:
    filler = small_disk / "filler.bin"
    filler.write_bytes(b"\0" * (4 * MB))
    free0 = shutil.disk_usage(small_disk).free
    # The test camera writes about 100 kB/s: a warning after a few seconds, the floor later.
    text = config_text(small_disk, free_port()) + (
        f"\n[storage]\nwarn_free_gb = {(free0 - 500_000) / 1e9}\n"
        f"min_free_gb = {(free0 - 1_500_000) / 1e9}\ncheck_every_seconds = 0.25\n"
    )
    service = await start_service(parse_settings(text), reconcile_every_seconds=1.0)
    try:
        start = datetime.now(UTC) + timedelta(hours=1)
        created = await service.post_json(
            "/api/v1/sessions",
            {
                "title": "Sesja",
                "scheduled_start": start.isoformat(),
                "scheduled_end": (start + timedelta(hours=2)).isoformat(),
                "agenda_text": "1. Otwarcie.\n2. Zamknięcie.\n",
            },
            status=201,
        )
        sid = created["id"]
        await service.post_json(f"/api/v1/sessions/{sid}/start")

        async def level(name: str) -> dict[str, Any] | None:
            status = await service.status()
            return status if status["disk"]["level"] == name else None

        warned = await wait_for(lambda: level("warning"), 60, "the low-space warning")
        assert warned["disk"]["hours_left"] is not None and warned["disk"]["hours_left"] > 0
        full = await wait_for(lambda: level("full"), 90, "the disk floor")
        assert "storage.min_free_gb" in full["capture_blocked"]

        async def stopped() -> bool:
            return not (await service.status())["captures"]

        await wait_for(stopped, 30, "capture to stop at the floor")
        detail = await service.get_json(f"/api/v1/sessions/{sid}")
        assert detail["state"] == "live"  # the session goes on; only capture is held
        runs = detail["recording"]["runs"]
        assert runs[-1]["end_reason"].startswith("disk full")
        assert runs[-1]["exit_code"] == 255  # a clean stop, trailer written
        refused = await service.post_json(f"/api/v1/sessions/{sid}/start", status=409)
        assert "disk full" in refused["error"]

        # Every written segment is intact and indexed; nothing was deleted.
        archive = service.app[ARCHIVE]
        segments = await archive.call(archive.index.segments, sid)
        session_dir = small_disk / "media" / "sala" / str(sid)
        report = verify_files(session_dir, {s.rel_path: s.sha256 for s in segments})
        assert report.ok, report.problems
        assert report.checked == len(segments) > 0
        on_disk = sorted(p.relative_to(session_dir).as_posix() for p in session_dir.rglob("*.ts"))
        assert on_disk == sorted(s.rel_path for s in segments)
        assert filler.exists()

        filler.unlink()  # the operator frees space

        async def resumed() -> bool:
            d = await service.get_json(f"/api/v1/sessions/{sid}")
            return len(d["recording"]["runs"]) >= 2 and d["recording"]["runs"][-1]["segments"] >= 2

        await wait_for(resumed, 30, "recording to resume in the same session")
        detail = await service.post_json(f"/api/v1/sessions/{sid}/stop")
        assert detail["recording"]["gaps"][0]["cause"].startswith("disk full")
        duration = await decoded_duration(f"{service.base}/sessions/{sid}/index.m3u8")
        assert abs(duration - detail["recording"]["duration_seconds"]) < 1.0
    finally:
        with contextlib.suppress(Exception):
            await stop_service(service)
