"""RecordingScheduler on a real APScheduler: one start and one stop job per session under
deterministic ids, a session whose window holds now started at once, late starts within the
misfire grace still made, jobs of sessions that left the table removed, and stop reasons."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from conftest import wait_for

from recorder.scheduler import RecordingScheduler, ScheduleEntry, StopReason

HOUR = timedelta(hours=1)


@dataclass
class Table:
    """The sessions table as the scheduler sees it, and every start and stop it asked for."""

    entries: list[ScheduleEntry] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)
    stops: list[tuple[int, StopReason]] = field(default_factory=list)
    failing_starts: set[int] = field(default_factory=set)
    load_error: Exception | None = None

    async def load(self) -> list[ScheduleEntry]:
        if self.load_error is not None:
            raise self.load_error
        return list(self.entries)

    async def start(self, session_id: int) -> None:
        if session_id in self.failing_starts:
            raise RuntimeError(f"camera of session {session_id} unreachable")
        self.starts.append(session_id)

    async def stop(self, session_id: int, reason: StopReason) -> None:
        self.stops.append((session_id, reason))


def entry(
    sid: int,
    begins: datetime,
    length: timedelta = 2 * HOUR,
    state: str = "scheduled",
) -> ScheduleEntry:
    return ScheduleEntry(sid, state, begins, begins + length)  # type: ignore[arg-type]


SchedulerFactory = Callable[..., RecordingScheduler]


@pytest.fixture
async def make_scheduler(table: Table) -> AsyncIterator[SchedulerFactory]:
    """Build schedulers wired to `table`; every one is shut down after the test."""
    made: list[RecordingScheduler] = []

    def make(**options: object) -> RecordingScheduler:
        kwargs: dict[str, object] = {
            "preroll": timedelta(0),
            "overrun_limit": HOUR,
            "misfire_grace_seconds": 3600.0,
            "reconcile_every_seconds": 3600.0,
        }
        kwargs.update(options)
        scheduler = RecordingScheduler(
            load=table.load,
            start=table.start,
            stop=table.stop,
            **kwargs,  # type: ignore[arg-type]
        )
        made.append(scheduler)
        return scheduler

    yield make
    for scheduler in made:
        await asyncio.wait_for(scheduler.shutdown(), 10)


@pytest.fixture
def table() -> Table:
    return Table()


def frozen_clock() -> tuple[datetime, Callable[[], datetime]]:
    """A clock stopped at the real time now (APScheduler itself keeps the real clock)."""
    now = datetime.now(UTC)
    return now, lambda: now


def hold_the_event_loop(seconds: float) -> None:
    """Block the event loop, as a long synchronous call or a busy machine would."""
    time.sleep(seconds)


async def test_each_session_gets_one_start_and_one_stop_job_under_fixed_ids(
    table: Table, make_scheduler: SchedulerFactory
) -> None:
    now, clock = frozen_clock()
    table.entries = [entry(7, now + 2 * HOUR), entry(12, now + 5 * HOUR)]
    scheduler = make_scheduler(
        clock=clock, preroll=timedelta(minutes=1), overrun_limit=timedelta(minutes=90)
    )
    await scheduler.start()
    ids = ["reconcile", "start:12", "start:7", "stop:12", "stop:7"]
    assert scheduler.job_ids() == ids
    await scheduler.reconcile()
    await scheduler.reconcile()
    assert scheduler.job_ids() == ids  # replaced, never duplicated
    assert table.starts == [] and table.stops == []
    assert scheduler.capture_window(table.entries[0]) == (
        now + 2 * HOUR - timedelta(minutes=1),
        now + 4 * HOUR + timedelta(minutes=90),
    )


async def test_a_session_whose_window_holds_now_is_started_at_once(
    table: Table, make_scheduler: SchedulerFactory
) -> None:
    now, clock = frozen_clock()
    table.entries = [
        entry(1, now - timedelta(minutes=30)),  # obrady restarted in the middle of it
        entry(2, now + timedelta(seconds=30)),  # inside its pre-roll
        entry(3, now + HOUR, state="live"),  # started early by hand, then obrady restarted
        entry(4, now + 2 * HOUR),  # not yet
    ]
    scheduler = make_scheduler(clock=clock, preroll=timedelta(minutes=1))
    await scheduler.start()
    assert sorted(table.starts) == [1, 2, 3]
    assert table.stops == []
    # Started sessions keep only their overrun stop; the future one waits for its start job.
    assert scheduler.job_ids() == ["reconcile", "start:4", "stop:1", "stop:2", "stop:3", "stop:4"]


async def test_sessions_past_their_window_are_stopped_with_the_reason(
    table: Table, make_scheduler: SchedulerFactory
) -> None:
    now, clock = frozen_clock()
    table.entries = [
        # Still live long after its scheduled end plus the overrun limit.
        entry(5, now - 4 * HOUR, length=2 * HOUR, state="live"),
        # Never started (the machine was off) and its whole window has gone by.
        entry(6, now - 5 * HOUR, length=HOUR),
        # Past its scheduled end but inside the overrun limit: it goes on.
        entry(8, now - 2 * HOUR, length=90 * timedelta(minutes=1), state="live"),
    ]
    scheduler = make_scheduler(clock=clock, overrun_limit=HOUR)
    await scheduler.start()
    assert sorted(table.stops) == [(5, "overrun_limit"), (6, "window_passed")]
    assert table.starts == [8]
    assert scheduler.job_ids() == ["reconcile", "stop:8"]


async def test_jobs_of_deleted_ended_and_started_sessions_are_removed(
    table: Table, make_scheduler: SchedulerFactory
) -> None:
    now, clock = frozen_clock()
    table.entries = [entry(1, now + HOUR), entry(2, now + 2 * HOUR), entry(3, now + 3 * HOUR)]
    scheduler = make_scheduler(clock=clock)
    await scheduler.start()
    assert scheduler.job_ids() == [
        "reconcile", "start:1", "start:2", "start:3", "stop:1", "stop:2", "stop:3",
    ]  # fmt: skip
    # Session 1 is deleted, session 2 ended (the table no longer lists it as scheduled or
    # live), session 3 was started early by hand.
    table.entries = [entry(3, now + 3 * HOUR, state="live")]
    await scheduler.reconcile()
    assert scheduler.job_ids() == ["reconcile", "stop:3"]
    assert table.starts == [3]
    assert table.stops == []  # leaving the table is not a reason to stop anything


async def test_start_and_overrun_stop_jobs_fire_at_their_time(
    table: Table, make_scheduler: SchedulerFactory
) -> None:
    begins = datetime.now(UTC) + timedelta(seconds=1.5)
    table.entries = [entry(9, begins, length=timedelta(seconds=0.5))]
    scheduler = make_scheduler(overrun_limit=timedelta(seconds=1))
    await scheduler.start()
    assert table.starts == [] and scheduler.job_ids() == ["reconcile", "start:9", "stop:9"]

    async def started() -> bool:
        return table.starts == [9]

    await wait_for(started, 15, "the start job")
    # The session is live now, as the real start callback would have made it.
    table.entries = [entry(9, begins, length=timedelta(seconds=0.5), state="live")]

    async def stopped() -> bool:
        return table.stops == [(9, "overrun_limit")]

    await wait_for(stopped, 15, "the overrun stop job")
    assert table.starts == [9]
    assert scheduler.job_ids() == ["reconcile"]  # both one-off jobs are used up


async def test_a_start_made_late_by_a_busy_loop_still_happens_within_the_grace(
    table: Table, make_scheduler: SchedulerFactory
) -> None:
    table.entries = [entry(4, datetime.now(UTC) + timedelta(seconds=0.5))]
    scheduler = make_scheduler(misfire_grace_seconds=30)
    await scheduler.start()
    assert scheduler.job_ids() == ["reconcile", "start:4", "stop:4"]
    hold_the_event_loop(2.0)  # the start job is now well over a second late

    async def started() -> bool:
        return table.starts == [4]

    await wait_for(started, 15, "the late start")


async def test_a_start_later_than_the_grace_waits_for_the_next_reconcile(
    table: Table, make_scheduler: SchedulerFactory
) -> None:
    table.entries = [entry(4, datetime.now(UTC) + timedelta(seconds=0.5))]
    scheduler = make_scheduler(misfire_grace_seconds=1)
    await scheduler.start()
    hold_the_event_loop(2.0)

    async def job_dropped() -> bool:
        return "start:4" not in scheduler.job_ids()

    await wait_for(job_dropped, 15, "APScheduler to drop the missed start job")
    assert table.starts == []
    await scheduler.reconcile()  # the periodic reconcile records the rest of the session
    assert table.starts == [4]


async def test_the_periodic_reconcile_follows_changes_to_the_table(
    table: Table, make_scheduler: SchedulerFactory
) -> None:
    scheduler = make_scheduler(reconcile_every_seconds=0.2)
    await scheduler.start()
    assert scheduler.job_ids() == ["reconcile"]
    later = datetime.now(UTC) + HOUR
    table.entries = [entry(21, later), entry(22, later, state="live")]

    async def followed() -> bool:
        return table.starts == [22] and scheduler.job_ids() == [
            "reconcile", "start:21", "stop:21", "stop:22",
        ]  # fmt: skip

    await wait_for(followed, 15, "the periodic reconcile to add jobs and start session 22")


async def test_a_failing_load_or_start_leaves_the_rest_of_the_schedule_alone(
    table: Table, make_scheduler: SchedulerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    now, clock = frozen_clock()
    table.entries = [entry(1, now - HOUR), entry(2, now - HOUR), entry(3, now + HOUR)]
    table.failing_starts = {1}
    scheduler = make_scheduler(clock=clock)
    with caplog.at_level(logging.WARNING, logger="recorder.scheduler"):
        await scheduler.start()
        assert table.starts == [2]
        assert "scheduled start of session 1 did not happen" in caplog.text
        ids = ["reconcile", "start:3", "stop:1", "stop:2", "stop:3"]
        assert scheduler.job_ids() == ids

        table.load_error = OSError("database is locked")
        table.entries = []
        await scheduler.reconcile()
        assert "could not load the schedule" in caplog.text
        assert scheduler.job_ids() == ids  # an unreadable table removes nothing
        assert table.starts == [2] and table.stops == []


async def test_shutdown_waits_for_a_reconcile_in_progress(
    table: Table, make_scheduler: SchedulerFactory
) -> None:
    release = asyncio.Event()
    loading = asyncio.Event()

    async def slow_load() -> list[ScheduleEntry]:
        loading.set()
        await release.wait()
        return [entry(1, datetime.now(UTC) - timedelta(minutes=5))]

    table.load = slow_load  # type: ignore[method-assign]
    scheduler = make_scheduler()
    starting = asyncio.create_task(scheduler.start())
    await asyncio.wait_for(loading.wait(), 10)
    closing = asyncio.create_task(scheduler.shutdown())
    await asyncio.sleep(0)  # let shutdown reach the lock
    assert not closing.done()
    release.set()
    await asyncio.wait_for(asyncio.gather(starting, closing), 10)
    assert table.starts == [1]  # the reconcile it waited for finished its work
