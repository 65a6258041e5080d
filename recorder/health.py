"""Watches the free space of the data directory: warns early, and at the floor stops capture
cleanly (every written segment intact) instead of letting ffmpeg fail mid-segment."""

from __future__ import annotations

import asyncio
import logging
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, Self

from config.settings import StorageSettings
from recorder.lifecycle import TaskSet
from recorder.supervisor import Recorder

log = logging.getLogger(__name__)
GB = 1_000_000_000
# Capture resumes only once free space is this much above the floor, so it does not flap.
RESUME_MARGIN = 1.1


@dataclass
class DiskStatus:
    """The latest reading of the data directory's file system."""

    free_bytes: int = 0
    total_bytes: int = 0
    rate_bytes_per_second: float = 0.0
    level: Literal["ok", "warning", "full"] = "ok"

    @property
    def hours_left(self) -> float | None:
        """Hours of recording the free space holds at the current rate (None when idle)."""
        if self.rate_bytes_per_second <= 0:
            return None
        return self.free_bytes / self.rate_bytes_per_second / 3600


class DiskGuard:
    """Checks free space periodically and blocks or unblocks capture; `async with guard:`
    checks once (a full disk is known before the first capture starts), then keeps checking
    until the block is left."""

    def __init__(self, path: Path, settings: StorageSettings, recorder: Recorder) -> None:
        self._path = path
        self._settings = settings
        self._recorder = recorder
        self.status = DiskStatus()
        self._tasks = TaskSet("disk guard")

    async def __aenter__(self) -> Self:
        await self.check()
        self._tasks.spawn(self.run(), name="disk-guard")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._tasks.close()

    def snapshot(self) -> DiskStatus:
        """The last reading of free space, with the recording rate as of now."""
        return replace(self.status, rate_bytes_per_second=self._recorder.bytes_per_second())

    async def run(self) -> None:
        """Check until cancelled."""
        while True:
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("free-space check of %s failed", self._path)
            await asyncio.sleep(self._settings.check_every_seconds)

    async def check(self) -> DiskStatus:
        """Read free space once and act on it."""
        self._path.mkdir(parents=True, exist_ok=True)
        usage = await asyncio.to_thread(shutil.disk_usage, self._path)
        status = self.status
        status.free_bytes, status.total_bytes = usage.free, usage.total
        status.rate_bytes_per_second = self._recorder.bytes_per_second()
        floor = self._settings.min_free_gb * GB
        warn = self._settings.warn_free_gb * GB
        free_gb = usage.free / GB
        if usage.free < floor:
            if status.level != "full":
                reason = (
                    f"disk full: {free_gb:.2f} GB free in {self._path}, below "
                    f"storage.min_free_gb = {self._settings.min_free_gb:g}; free space to resume"
                )
                log.error("%s; stopping every capture cleanly", reason)
                status.level = "full"
                self._recorder.blocked = reason
                await self._recorder.stop_all(reason)
        elif status.level == "full" and usage.free < floor * RESUME_MARGIN:
            pass  # stay blocked until there is clearly room again
        else:
            if status.level == "full":
                log.warning("free space recovered (%.2f GB): capture may resume", free_gb)
                self._recorder.blocked = None
            new_level: Literal["ok", "warning"] = "warning" if usage.free < warn else "ok"
            if new_level == "warning" and status.level != "warning":
                hours = status.hours_left
                log.warning(
                    "low disk space: %.2f GB free in %s (storage.warn_free_gb = %g); %s",
                    free_gb,
                    self._path,
                    self._settings.warn_free_gb,
                    f"about {hours:.1f} h of recording left" if hours is not None else "idle",
                )
            status.level = new_level
        return status
