"""Checks every program segment's media against the wall clock, off the capture path, and
writes what it finds behind the segment's own record on the archive indexer's queue.

One worker, one queue, in the order segments finished: the check of a segment continues from
the run's previous segment (a hole across two files is found). Each check reads the segment's
packets with ffprobe at the analysis priority; the holes go to the archive through
`ArchiveIndexer.write`, so they keep their order with the segment records. A session's stop
waits for the queue (`drain`), so its record says whether the media were all checked.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from archive.index import AsyncArchive
from recorder.continuity import (
    Dropped,
    FileGrowth,
    RunState,
    StreamTail,
    check_segment,
    read_packets,
)
from recorder.lifecycle import TaskSet
from recorder.supervisor import CaptureJob, FinishedSegment
from streaming.services.indexer import ArchiveIndexer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Check:
    session_id: int
    camera: str
    run_token: int
    run_dir: str
    seq: int
    path: Path
    growth: FileGrowth | None
    dropped: tuple[Dropped, ...] = ()
    listed_start: float | None = None


class ContinuityChecker:
    """One ordered queue of media checks, each written to the archive after its segment."""

    def __init__(self, archive: AsyncArchive, indexer: ArchiveIndexer, threshold: float) -> None:
        self._archive = archive
        self._indexer = indexer
        self._threshold = threshold
        self._queue: deque[_Check | int] = deque()  # an int: the run with that token ended
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._runs: dict[int, RunState] = {}
        self._tasks = TaskSet("continuity checker")
        self.checked = 0
        self.failed = 0

    async def __aenter__(self) -> Self:
        self._tasks.spawn(self._work(), name="continuity-checker")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._tasks.close()

    def segment_finished(self, job: CaptureJob, segment: FinishedSegment) -> None:
        """Queue the check of a segment (after its record was queued on the indexer)."""
        self._put(
            _Check(
                job.session_id,
                job.camera_id,
                segment.run_token,
                segment.path.parent.name,
                segment.entry.seq,
                segment.path,
                segment.growth,
                tuple(Dropped(d.start, d.end, d.cause) for d in segment.dropped),
                segment.entry.start,
            )
        )

    def run_ended(self, run_token: int) -> None:
        """The run ended: forget its state once its segments are checked."""
        self._put(run_token)

    async def drain(self) -> None:
        """Wait until every check queued so far is done and its result queued on the indexer."""
        await self._idle.wait()

    async def check_rest(self, session_id: int, session_dir: Path) -> int:
        """The final check of an ended session: every program segment not checked yet (indexed
        from disk after a restart, or whose check failed) is checked from its timestamps alone,
        continuing from the run's previous segment. Returns how many were checked; call it once
        the indexer has drained, and drain it again for the results."""
        rest = await self._archive.read(lambda index: index.unchecked_segments(session_id))
        states: dict[tuple[str, str], tuple[int, RunState]] = {}
        checked = 0
        for segment in rest:
            key = (segment.camera, segment.run_dir)
            known = states.get(key)
            if known is not None and known[0] == segment.seq - 1:
                state = known[1]
            else:
                state = RunState()
                for kind, end in (
                    ("video", segment.previous_video_end),
                    ("audio", segment.previous_audio_end),
                ):
                    if end is not None:
                        state.tails[kind] = StreamTail(end, None)
            path = session_dir / segment.camera / segment.run_dir / segment.file
            item = _Check(
                session_id, segment.camera, 0, segment.run_dir, segment.seq, path, None,
                listed_start=segment.media_start,
            )  # fmt: skip
            try:
                await self._check(item, state)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.failed += 1
                log.exception("continuity: could not check %s", path)
                continue
            states[key] = (segment.seq, state)
            checked += 1
        return checked

    async def check_ended(self, session_dir: Callable[[str, int], Path]) -> int:
        """Check the ended sessions whose media were never checked (recorded before the check
        existed): one after another, newest first, at the check's low priority; returns how
        many segments were checked. session_dir(chamber, id) is a session's media folder."""
        checked = 0
        for session_id, chamber in await self._archive.read(lambda index: index.ended_unchecked()):
            done = await self.check_rest(session_id, session_dir(chamber, session_id))
            await self._indexer.drain()
            log.info("continuity: %d segments of ended session %s checked", done, session_id)
            checked += done
        return checked

    @property
    def backlog(self) -> int:
        """Checks waiting."""
        return sum(1 for item in self._queue if isinstance(item, _Check))

    def status(self) -> dict[str, int]:
        """The checks' progress, JSON-ready: waiting, done, and failed (unchecked segments)."""
        return {"backlog": self.backlog, "checked": self.checked, "failed": self.failed}

    def _put(self, item: _Check | int) -> None:
        if self._tasks.closed:
            return
        self._queue.append(item)
        self._idle.clear()
        self._wake.set()

    async def _work(self) -> None:
        while True:
            if not self._queue:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            item = self._queue[0]
            if isinstance(item, int):
                self._runs.pop(item, None)
            else:
                try:
                    await self._check(item, self._runs.setdefault(item.run_token, RunState()))
                except asyncio.CancelledError:
                    raise
                except Exception:
                    # The segment stays unchecked: its session's recording is not "complete".
                    self.failed += 1
                    log.exception("continuity: could not check %s", item.path)
            self._queue.popleft()

    async def _check(self, item: _Check, state: RunState) -> None:
        packets = await read_packets(item.path)
        result = check_segment(
            packets, item.growth, state, self._threshold, item.dropped, item.listed_start
        )
        for hole in result.holes:
            log.warning(
                "session %s, camera %s, %s/%d: %s missing for %.3f s from media time %.3f: %s",
                item.session_id, item.camera, item.run_dir, item.seq, hole.kind, hole.seconds,
                hole.media_at, hole.cause,
            )  # fmt: skip
        self.checked += 1
        index = self._archive.index
        self._indexer.write(
            f"media check of {item.camera}/{item.run_dir}/{item.path.name}",
            item.session_id,
            index.record_media_check,
            item.session_id,
            item.camera,
            item.run_dir,
            item.seq,
            None if result.video is None else (result.video.start, result.video.end),
            None if result.audio is None else (result.audio.start, result.audio.end),
            [(h.kind, h.media_at, h.seconds, h.cause) for h in result.holes],
        )
