"""The archive index follows the recorder on its own queue.

The recorder reports runs and segments as ffmpeg makes them; the live edge, the pushers and the
analyser hear of them at once (`ArchiveCaptureEvents`), and the archive's records follow here,
in order, on one queue with one worker. A slow, locked or failing database delays the index and
nothing else: the recorder never waits for it.

Runs are known to the rest of obrady by a token this queue hands out at once; the archive's run
id is learnt when the run's record is written. A write that fails because the database is busy
or unwell (`sqlite3.OperationalError`) is tried again, with a growing pause, until it succeeds;
any other failure is logged and kept in the status, and the job is dropped (the segment stays on
disk and in ffmpeg's segment list). Leaving `async with indexer:` finishes the queue first
(bounded); what is still queued then is on disk, and `recover_from_disk` indexes it when the
session resumes.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Self, TypeVar

from archive.index import AsyncArchive
from archive.integrity import append_manifest, sha256_file
from recorder.lifecycle import TaskSet
from recorder.supervisor import FinishedSegment

log = logging.getLogger(__name__)

# A busy or unwell database is tried again after this pause, doubling up to the cap (seconds).
RETRY_FIRST = 0.2
RETRY_CAP = 5.0
# Leaving the block waits this long for the queue to empty (seconds).
CLOSE_WAIT = 60.0

T = TypeVar("T")


class NotIndexed(RuntimeError):
    """A queued write that will never be made: the indexer closed before it ran."""


@dataclass
class _Job:
    what: str
    session_id: int
    work: Callable[[], Awaitable[None]]
    queued_at: float
    # Resolved when the write is made (or dropped), for whoever must learn its result.
    done: asyncio.Future[Any] | None = None


class ArchiveIndexer:
    """One ordered queue of archive writes for what the recorder reports."""

    def __init__(self, archive: AsyncArchive, clock: Callable[[], float] = time.monotonic) -> None:
        self._archive = archive
        self._clock = clock
        self._jobs: deque[_Job] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._tokens = itertools.count(1)
        self._run_ids: dict[int, int | None] = {}
        self._tasks = TaskSet("archive indexer")
        self.indexed = 0
        self.retries = 0
        self.dropped = 0
        self.last_error: str | None = None
        self.last_error_at: float | None = None

    async def __aenter__(self) -> Self:
        self._tasks.spawn(self._work(), name="archive-indexer")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            async with asyncio.timeout(CLOSE_WAIT):
                await self.drain()
        except TimeoutError:
            log.error(
                "the archive index is %d writes behind at shutdown; the media are on disk and "
                "are indexed when their session resumes",
                len(self._jobs),
            )
        await self._tasks.close()
        for job in self._jobs:
            if job.done is not None and not job.done.done():
                job.done.set_exception(NotIndexed(f"{job.what}: obrady shut down before it"))

    # What the recorder reports -----------------------------------------------------------

    def run_started(
        self, session_id: int, ordinal: int, run_dir: str, started_at: datetime, camera: str
    ) -> int:
        """Queue the run's record; returns its token at once."""
        token = next(self._tokens)
        self._run_ids[token] = None

        async def work() -> None:
            self._run_ids[token] = await self._archive.call(
                self._archive.index.add_run, session_id, ordinal, run_dir, started_at, camera
            )

        self._put(_Job(f"run {run_dir} of {camera}", session_id, work, self._clock()))
        return token

    def segment_finished(
        self, session_id: int, session_dir: Path, rel: str, segment: FinishedSegment, program: bool
    ) -> None:
        """Queue the segment's checksum, manifest line and record."""
        digest: list[str] = []

        async def work() -> None:
            run_id = self._run_ids.get(segment.run_token)
            if run_id is None:
                raise LookupError(f"the run of {rel} was not indexed")
            if not digest:  # a retry does not hash or append twice
                digest.append(await asyncio.to_thread(sha256_file, segment.path))
                await asyncio.to_thread(append_manifest, session_dir, rel, digest[0])
            entry = segment.entry
            await self._archive.call(
                self._archive.index.add_segment,
                run_id,
                entry.seq,
                entry.file,
                entry.start,
                entry.duration,
                segment.observed_at,
                segment.size_bytes,
                digest[0],
                program,
                segment.zero_at,
            )

        self._put(_Job(f"segment {rel}", session_id, work, self._clock()))

    def run_ended(
        self,
        session_id: int,
        token: int,
        ended_at: datetime,
        exit_code: int | None,
        reason: str,
    ) -> None:
        """Queue the end of the run's record."""

        async def work() -> None:
            run_id = self._run_ids.pop(token, None)
            if run_id is None:
                raise LookupError(f"run token {token} was not indexed")
            await self._archive.call(
                self._archive.index.end_run, run_id, ended_at, exit_code, reason
            )

        self._put(_Job(f"end of run token {token}", session_id, work, self._clock()))

    def sound_hole(self, session_id: int, start: datetime, seconds: float, cause: str) -> None:
        """Queue the record of a hole in the chamber's shared sound."""

        async def work() -> None:
            await self._archive.call(
                self._archive.index.record_sound_hole, session_id, start, seconds, cause
            )

        self._put(_Job(f"sound hole of session {session_id}", session_id, work, self._clock()))

    # Any other write that must keep its place among them -----------------------------------

    def write(
        self, what: str, session_id: int, fn: Callable[..., T], /, *args: Any, **kwargs: Any
    ) -> asyncio.Future[T]:
        """Queue fn(*args, **kwargs) (an archive write, run on the archive thread) behind
        everything queued so far; returns at once. The future holds fn's result, or the error
        that dropped it (a busy database is tried again, like every write here)."""
        done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        # Nobody has to wait for it: a dropped write is already logged and counted.
        done.add_done_callback(lambda f: f.cancelled() or f.exception())

        async def work() -> None:
            result = await self._archive.call(fn, *args, **kwargs)
            if not done.done():
                done.set_result(result)

        self._put(_Job(what, session_id, work, self._clock(), done))
        return done

    # Waiting for it ------------------------------------------------------------------------

    async def drain(self) -> None:
        """Wait until every write queued so far is done (or dropped)."""
        await self._idle.wait()

    def status(self) -> dict[str, Any]:
        """The queue's state, JSON-ready: how far behind the index is and why."""
        now = self._clock()
        oldest = self._jobs[0].queued_at if self._jobs else None
        return {
            "backlog": len(self._jobs),
            "behind_seconds": round(now - oldest, 3) if oldest is not None else 0.0,
            "indexed": self.indexed,
            "retries": self.retries,
            "dropped": self.dropped,
            "last_error": self.last_error,
            "last_error_seconds_ago": (
                round(now - self.last_error_at, 1) if self.last_error_at is not None else None
            ),
        }

    # The worker ----------------------------------------------------------------------------

    def _put(self, job: _Job) -> None:
        if self._tasks.closed:
            log.error("archive indexer closed: %s not indexed (it is on disk)", job.what)
            if job.done is not None:
                job.done.set_exception(NotIndexed(f"{job.what}: obrady is shutting down"))
            return
        self._jobs.append(job)
        self._idle.clear()
        self._wake.set()

    async def _work(self) -> None:
        while True:
            if not self._jobs:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            job = self._jobs[0]
            await self._do(job)
            self._jobs.popleft()

    async def _do(self, job: _Job) -> None:
        pause = RETRY_FIRST
        while True:
            try:
                await job.work()
            except sqlite3.OperationalError as exc:
                self.retries += 1
                self._failed(job, exc, retrying=True)
                await asyncio.sleep(pause)
                pause = min(RETRY_CAP, pause * 2)
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.dropped += 1
                self._failed(job, exc, retrying=False)
                if job.done is not None and not job.done.done():
                    job.done.set_exception(exc)
                return
            self.indexed += 1
            return

    def _failed(self, job: _Job, exc: BaseException, *, retrying: bool) -> None:
        self.last_error = f"{job.what}: {type(exc).__name__}: {exc}"
        self.last_error_at = self._clock()
        if retrying:
            log.warning("archive index: %s; trying again", self.last_error)
        else:
            log.error(
                "archive index: %s; not indexed (session %s: the file stays on disk and in "
                "ffmpeg's segment list)",
                self.last_error,
                job.session_id,
                exc_info=exc,
            )
