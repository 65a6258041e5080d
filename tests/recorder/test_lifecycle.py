"""TaskSet and Background: what a part's children may rely on."""

from __future__ import annotations

import asyncio
import logging

import pytest

from recorder.lifecycle import Background, TaskSet


async def test_a_crash_is_logged_with_its_traceback_and_spares_the_siblings(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks = TaskSet("test part")
    sibling_ended = asyncio.Event()

    async def crashes() -> None:
        raise ValueError("broken loop")

    async def keeps_going() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            sibling_ended.set()

    sibling = tasks.spawn(keeps_going(), name="sibling")
    with caplog.at_level(logging.ERROR, logger="recorder.lifecycle"):
        crashed = tasks.spawn(crashes(), name="crasher")
        await asyncio.wait([crashed])
        await asyncio.sleep(0)
    [record] = caplog.records
    assert "test part: background task crasher crashed" in record.getMessage()
    assert record.exc_info is not None and isinstance(record.exc_info[1], ValueError)
    assert not sibling.done() and tasks.pending() == [sibling]

    await tasks.close()
    assert sibling.cancelled() and sibling_ended.is_set()
    assert tasks.pending() == []


async def test_close_cancels_timers_and_refuses_new_work() -> None:
    tasks = TaskSet("test part")
    fired: list[str] = []
    tasks.call_later(0.01, fired.append, "early")
    tasks.call_later(60, fired.append, "late")
    await asyncio.sleep(0.05)
    assert fired == ["early"] and len(tasks.timers()) == 1
    await tasks.close()
    assert tasks.timers() == [] and tasks.closed
    with pytest.raises(RuntimeError, match="test part is closed"):
        tasks.spawn(asyncio.sleep(1), name="too late")
    with pytest.raises(RuntimeError, match="test part is closed"):
        tasks.call_later(1, fired.append, "too late")


async def test_a_child_started_while_closing_is_closed_too() -> None:
    tasks = TaskSet("test part")
    started: list[asyncio.Task[object]] = []

    async def spawns_on_the_way_out() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            # Spawning after close() began is refused, so a part cannot leak a task.
            with pytest.raises(RuntimeError):
                started.append(tasks.spawn(asyncio.sleep(60), name="late child"))

    tasks.spawn(spawns_on_the_way_out(), name="parent")
    await asyncio.sleep(0)
    await tasks.close()
    assert started == [] and tasks.pending() == []


async def test_the_closer_s_own_cancellation_is_not_swallowed() -> None:
    tasks = TaskSet("test part")
    release = asyncio.Event()

    async def slow_to_stop() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await release.wait()

    tasks.spawn(slow_to_stop(), name="slow")
    await asyncio.sleep(0)
    closer = asyncio.create_task(tasks.close())
    await asyncio.sleep(0.01)
    closer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closer
    release.set()
    await tasks.close()
    assert tasks.pending() == []


async def test_background_runs_while_entered() -> None:
    ticks: list[int] = []
    three = asyncio.Event()

    async def loop() -> None:
        while True:
            ticks.append(len(ticks))
            if len(ticks) == 3:
                three.set()
            await asyncio.sleep(0.005)

    async with Background("ticker", loop) as part:
        await asyncio.wait_for(three.wait(), 5)
    count = len(ticks)
    await asyncio.sleep(0.02)
    assert len(ticks) == count and part.name == "ticker"
