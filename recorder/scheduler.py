"""Starts and stops capture on the sessions' schedule; the sessions table is the source of truth
and APScheduler jobs only call back into start/stop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Self

from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]

log = logging.getLogger(__name__)

StopReason = Literal["overrun_limit", "window_passed"]


@dataclass(frozen=True)
class ScheduleEntry:
    """What the scheduler needs to know of a scheduled or live session."""

    session_id: int
    state: Literal["scheduled", "live"]
    scheduled_start: datetime
    scheduled_end: datetime


Loader = Callable[[], Awaitable[list[ScheduleEntry]]]
Starter = Callable[[int], Awaitable[None]]
Stopper = Callable[[int, StopReason], Awaitable[None]]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class RecordingScheduler:
    """Keeps one start job and one overrun-stop job per session, and reconciles with the table."""

    def __init__(
        self,
        *,
        load: Loader,
        start: Starter,
        stop: Stopper,
        preroll: timedelta,
        overrun_limit: timedelta,
        misfire_grace_seconds: float,
        reconcile_every_seconds: float = 30.0,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._load = load
        self._start = start
        self._stop = stop
        self._preroll = preroll
        self._overrun = overrun_limit
        self._grace = max(1, int(misfire_grace_seconds))
        self._every = reconcile_every_seconds
        self._clock = clock
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._lock = asyncio.Lock()
        # The tasks APScheduler runs our jobs in: it cancels them at shutdown, we wait for them.
        self._jobs: set[asyncio.Task[object]] = set()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown()

    def capture_window(self, entry: ScheduleEntry) -> tuple[datetime, datetime]:
        """When capture of a session starts (pre-roll) and when it is stopped at the latest."""
        return entry.scheduled_start - self._preroll, entry.scheduled_end + self._overrun

    async def start(self) -> None:
        """Start the scheduler (needs a running loop) and reconcile at once."""
        self._scheduler.start()
        self._scheduler.add_job(
            self._reconcile_job,
            "interval",
            seconds=self._every,
            id="reconcile",
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=self._grace,
        )
        await self.reconcile()

    async def shutdown(self) -> None:
        """Stop firing jobs and wait for the running ones to end (running captures are the
        recorder's to stop)."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)  # cancels the jobs' tasks
        while jobs := [job for job in self._jobs if not job.done()]:
            for job in jobs:
                job.cancel()
            await asyncio.wait(jobs)
        async with self._lock:
            pass

    @asynccontextmanager
    async def _job(self) -> AsyncIterator[None]:
        """Marks the running task as one of our jobs, until it ends."""
        task = asyncio.current_task()
        assert task is not None
        self._jobs.add(task)
        try:
            yield
        finally:
            self._jobs.discard(task)

    async def _reconcile_job(self) -> None:
        async with self._job():
            await self.reconcile()

    def job_ids(self) -> list[str]:
        """Ids of the jobs now scheduled (for health views and tests)."""
        return sorted(job.id for job in self._scheduler.get_jobs())

    async def reconcile(self) -> None:
        """Bring jobs and captures in line with the sessions table."""
        async with self._lock:
            try:
                entries = await self._load()
            except Exception:
                log.exception("could not load the schedule")
                return
            now = self._clock()
            wanted: set[str] = {"reconcile"}
            for entry in entries:
                begin, hard_stop = self.capture_window(entry)
                sid = entry.session_id
                if now >= hard_stop:
                    reason: StopReason = (
                        "overrun_limit" if entry.state == "live" else "window_passed"
                    )
                    await self._call_stop(sid, reason)
                    continue
                wanted.add(f"stop:{sid}")
                self._add(f"stop:{sid}", hard_stop, self._fire_stop, sid)
                if now >= begin or entry.state == "live":
                    # A live session (started early by hand, or left live by a crash) resumes.
                    await self._call_start(sid)
                else:
                    wanted.add(f"start:{sid}")
                    self._add(f"start:{sid}", begin, self._fire_start, sid)
            for job in self._scheduler.get_jobs():
                if job.id not in wanted:
                    job.remove()

    def _add(
        self, job_id: str, at: datetime, func: Callable[[int], Awaitable[None]], sid: int
    ) -> None:
        self._scheduler.add_job(
            func,
            "date",
            run_date=at,
            args=[sid],
            id=job_id,
            replace_existing=True,
            coalesce=True,
            misfire_grace_time=self._grace,
        )

    async def _fire_start(self, session_id: int) -> None:
        async with self._job(), self._lock:
            await self._call_start(session_id)

    async def _fire_stop(self, session_id: int) -> None:
        async with self._job(), self._lock:
            await self._call_stop(session_id, "overrun_limit")

    async def _call_start(self, session_id: int) -> None:
        try:
            await self._start(session_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("scheduled start of session %s did not happen: %s", session_id, exc)

    async def _call_stop(self, session_id: int, reason: StopReason) -> None:
        try:
            await self._stop(session_id, reason)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("scheduled stop of session %s did not happen: %s", session_id, exc)
