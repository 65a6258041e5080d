"""The one lifecycle shape of every long-lived part: `async with part:` starts it, and leaving
the block stops every task and timer it started and waits for them.

A part keeps its child tasks in a TaskSet: like asyncio.TaskGroup it owns them and waits for
them on the way out, but a child that crashes is logged with its traceback and leaves its
siblings running (a failure in one background loop must never stop capture), and a part may
add children at any time after it started (a capture per session, a timer per break).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Self

log = logging.getLogger(__name__)


class TaskSet:
    """The tasks and timers one part started; close() cancels every one and waits for it."""

    def __init__(self, owner: str) -> None:
        self._owner = owner
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self._closed = False

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        """Run coro as a child task; a crash is logged (with its traceback), not raised."""
        if self._closed:
            coro.close()
            raise RuntimeError(f"{self._owner} is closed: {name} was not started")
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def call_later(
        self, delay: float, callback: Callable[..., object], *args: Any
    ) -> asyncio.TimerHandle:
        """Call callback(*args) after delay seconds, unless close() comes first."""
        if self._closed:
            raise RuntimeError(f"{self._owner} is closed: no timer can be set")
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle

        def fire() -> None:
            self._timers.discard(handle)
            callback(*args)

        handle = loop.call_later(delay, fire)
        self._timers.add(handle)
        return handle

    def cancel_timer(self, handle: asyncio.TimerHandle) -> None:
        """Cancel a timer set with call_later (nothing if it fired already)."""
        handle.cancel()
        self._timers.discard(handle)

    @property
    def closed(self) -> bool:
        """Whether close() was called (no new child can start)."""
        return self._closed

    async def cancel(self, task: asyncio.Task[Any]) -> None:
        """Cancel one child and wait until it ended; the caller's own cancellation still
        comes through (unlike `suppress(CancelledError)` around an await of the child)."""
        task.cancel()
        await asyncio.wait([task])

    def pending(self) -> list[asyncio.Task[Any]]:
        """The children that have not finished."""
        return [task for task in self._tasks if not task.done()]

    def timers(self) -> list[asyncio.TimerHandle]:
        """The timers still due."""
        return [handle for handle in self._timers if not handle.cancelled()]

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("%s: background task %s crashed", self._owner, task.get_name(), exc_info=exc)

    async def close(self) -> None:
        """Cancel every timer and child and wait until each child has ended (its `finally`
        included); no new child can start from now on."""
        self._closed = True
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        # spawn() is refused from now on, so a child cannot start another on its way out.
        tasks = [task for task in self._tasks if not task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)  # the closer's own cancellation still comes through


class Background:
    """A part that runs one coroutine function in the background while it is entered: the
    announcer loop, the demo autopilot, the gateway's viewer-count writer."""

    def __init__(self, name: str, work: Callable[[], Awaitable[None]]) -> None:
        self.name = name
        self._work = work
        self._tasks = TaskSet(name)

    async def _run(self) -> None:
        await self._work()

    async def __aenter__(self) -> Self:
        self._tasks.spawn(self._run(), name=self.name)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._tasks.close()
