"""Runs sessions: the one place where the archive's session state and the recorder meet."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self, TypeVar
from zoneinfo import ZoneInfo

from archive.index import (
    ArchiveIndex,
    AsyncArchive,
    Busy,
    Conflict,
    MarkerKind,
    NotFound,
    Session,
)
from archive.integrity import append_manifest, read_manifest, sha256_file
from config.settings import Settings
from recorder.analysis import SegmentAnalyzer
from recorder.audiohub import SoundHole
from recorder.ffmpeg import SEGMENT_LIST, SlateSource, parse_segment_line
from recorder.lifecycle import TaskSet
from recorder.push import ProgramPusher
from recorder.scheduler import ScheduleEntry, StopReason
from recorder.supervisor import (
    RUN_DIR,
    AlreadyRecording,
    CaptureBlocked,
    CaptureJob,
    FinishedSegment,
    Recorder,
)
from streaming.edge.llhls import LiveEdge
from streaming.services.continuity import ContinuityChecker
from streaming.services.indexer import ArchiveIndexer

log = logging.getLogger(__name__)


class ControlError(Exception):
    """An operator request that cannot be done now; the message says why."""


SLATE = "slate"
BREAK_SLATE = SlateSource("Przerwa w obradach", "Transmisja zostanie wznowiona po przerwie")
CLOSED_SLATE = SlateSource("Obrady niejawne", "Ta część posiedzenia nie jest transmitowana")
CLOSED_MARGIN = timedelta(seconds=0.5)
# A slate bridging to the room's return stays at most this many segments (plus 1 s).
BRIDGE_SEGMENTS = 3
# A start waits this long for the archive to store it before answering (seconds); capture has
# started before the wait.
START_RECORD_WAIT = 3.0
# A stop waits this long for the last media checks (seconds); unchecked, it is not complete.
CHECK_WAIT_SECONDS = 60.0

T = TypeVar("T")

NOT_RECORDED = "closed part: not recorded (recording.record_closed_parts = false)"


def announce_slate(session: Session, zone: ZoneInfo) -> SlateSource:
    """The slate before a session: when it will start in the site's time zone (Polish style,
    "10.00") and its title."""
    at = session.scheduled_start.astimezone(zone)
    return SlateSource(f"Transmisja rozpocznie się o godz. {at:%H.%M}", session.title)


class ProgramSelector:
    """Which camera of each chamber is the program: what goes live and into the recording."""

    def __init__(self, settings: Settings) -> None:
        self._default = {c.id: c.default_program for c in settings.chambers}
        self._current = dict(self._default)
        self._for_next: set[str] = set()  # chambers whose operator chose for the next session
        self._slate: dict[str, bool] = {}  # chamber -> slate ready (True) or coming (False)
        self._closed: set[str] = set()
        self._public_from: dict[str, datetime] = {}
        self._slate_live: set[str] = set()  # chambers whose slate has begun a file
        self._announcing: set[str] = set()  # chambers showing the slate before a session
        self._bridging: set[str] = set()  # chambers whose slate stays until the room returns
        self._listeners: list[Callable[[str, bool], None]] = []

    def listen(self, listener: Callable[[str, bool], None]) -> None:
        """Call listener(chamber, cut) at every change; cut is True when what is live must end
        at once (a closed part began)."""
        self._listeners.append(listener)

    def _changed(self, chamber: str, cut: bool = False) -> None:
        for listener in self._listeners:
            listener(chamber, cut)

    def live_allows(self, chamber: str, camera: str, started_at: datetime) -> bool:
        """Whether a file of camera that began at started_at may go out on the live stream
        now. Decided as each file begins: whatever is published of a file stays published."""
        if camera == SLATE:
            return chamber in self._closed or chamber in self._slate or chamber in self._bridging
        if chamber in self._closed:
            return False
        if chamber in self._slate and chamber in self._slate_live:
            return False
        return camera == self._current.get(chamber) and self.is_public(chamber, started_at)

    def bridging(self, chamber: str, on: bool) -> None:
        """After a break or a closed part the slate may stay on the live stream until the
        room's first file that may be shown begins (no stall in between)."""
        if on:
            self._bridging.add(chamber)
        else:
            self._bridging.discard(chamber)

    def announcing(self, chamber: str, on: bool) -> None:
        """The chamber's slate is (or no longer is) the one before a session: not recorded as
        part of the session's public program."""
        if on:
            self._announcing.add(chamber)
        else:
            self._announcing.discard(chamber)

    def is_announcing(self, chamber: str) -> bool:
        """Whether the chamber's slate is the one before a session."""
        return chamber in self._announcing

    def slate_file_started(self, chamber: str) -> None:
        """The slate began a file: from now on the live stream shows it, not the room."""
        if chamber in self._slate:
            self._slate_live.add(chamber)

    def restore(self, chamber: str, camera: str | None, *, for_next_session: bool) -> None:
        """Take the last switch from the archive, if the camera is still configured;
        for_next_session: it was made between sessions, for the next one."""
        if camera is not None and chamber in self._current:
            self._current[chamber] = camera
            if for_next_session:
                self._for_next.add(chamber)
        self._changed(chamber)

    def new_session(self, chamber: str) -> None:
        """A session begins: on the configured program camera, unless the operator chose
        another since the last session (a switch lasts for its session only)."""
        if chamber not in self._for_next:
            self._current[chamber] = self._default[chamber]
        self._for_next.discard(chamber)
        self._changed(chamber)

    def camera(self, chamber: str) -> str:
        """The chamber's program now: in a closed part the slate at once (no camera segment is
        public); in a break the slate once it has a segment to show."""
        if chamber in self._closed:
            return SLATE
        return SLATE if self._slate.get(chamber) else self._current[chamber]

    def closed_on(self, chamber: str) -> None:
        """A closed part began: from now on no camera segment joins the program."""
        self._closed.add(chamber)
        self._changed(chamber, cut=True)

    def closed_off(self, chamber: str, at: datetime) -> None:
        """The closed part ended at `at`: camera segments that began before it stay private."""
        self._closed.discard(chamber)
        self._public_from[chamber] = at
        self._changed(chamber)

    def is_public(self, chamber: str, started_at: datetime) -> bool:
        """Whether a camera segment that began at started_at may be public."""
        since = self._public_from.get(chamber)
        # The start is estimated from when the segment was seen finished, which is a little
        # late: keep a margin so that no closed moment slips through.
        return since is None or started_at - CLOSED_MARGIN >= since

    def operator_camera(self, chamber: str) -> str:
        """The camera the operator chose (the program again after a break)."""
        return self._current[chamber]

    def switch(self, chamber: str, camera: str, *, between_sessions: bool = False) -> None:
        """Make camera the chamber's program (after the break, if one is on); between
        sessions, the choice is for the next one."""
        self._current[chamber] = camera
        if between_sessions:
            self._for_next.add(chamber)
        else:
            self._for_next.discard(chamber)

    def slate_on(self, chamber: str) -> None:
        """A break began: the slate takes over as soon as its first segment exists."""
        self._slate.setdefault(chamber, False)
        self._changed(chamber)

    def slate_segment(self, chamber: str) -> None:
        """The slate has a segment: from now on it is the program."""
        if chamber in self._slate:
            self._slate[chamber] = True

    def slate_off(self, chamber: str) -> None:
        """The break ended: the room is the program again, at once."""
        self._slate.pop(chamber, None)
        self._slate_live.discard(chamber)
        self._changed(chamber)


class ArchiveCaptureEvents:
    """What the recorder reports: the live edge, the pushers and the analyser hear of it at
    once; the archive's records follow on the indexer's own queue, so a slow archive never
    holds up capture or the live picture."""

    def __init__(
        self,
        indexer: ArchiveIndexer,
        edge: LiveEdge,
        analyzer: SegmentAnalyzer,
        program: ProgramSelector,
        pushers: dict[str, list[ProgramPusher]] | None = None,
        checker: ContinuityChecker | None = None,
    ) -> None:
        self._indexer = indexer
        self._edge = edge
        self._analyzer = analyzer
        self._program = program
        self._pushers = pushers or {}
        self._checker = checker

    async def run_started(
        self, job: CaptureJob, ordinal: int, run_dir: Path, started_at: datetime
    ) -> int:
        """Queue the run's record; its token at once."""
        return self._indexer.run_started(
            job.session_id, ordinal, run_dir.name, started_at, job.camera_id
        )

    async def segment_started(self, job: CaptureJob, path: Path, started_at: datetime) -> None:
        """A new file: it may become the live segment, cut into parts as it grows."""
        if job.camera_id == SLATE:
            self._program.slate_file_started(job.chamber_id)
        self._edge.file_started(job.chamber_id, job.camera_id, path, started_at)

    async def capture_exited(self, job: CaptureJob) -> None:
        """A camera's ffmpeg ended: a file it left unfinished is not live any more."""
        self._edge.run_ended(job.chamber_id, job.camera_id)

    async def segment_finished(self, job: CaptureJob, segment: FinishedSegment) -> None:
        """Close the live segment, hand a program segment to the pushers, and queue its
        checksum and record."""
        # Program membership is decided as each segment finishes: a switch takes effect at the
        # next segment boundary of each camera, so at most one segment is missed or repeated.
        if job.camera_id == SLATE:
            self._program.slate_segment(job.chamber_id)
        program = self._program.camera(job.chamber_id) == job.camera_id
        if job.camera_id == SLATE and self._program.is_announcing(job.chamber_id):
            program = False  # the slate before the session is not the session's recording
        if program and job.camera_id != SLATE:
            began = segment.observed_at - timedelta(seconds=segment.entry.duration)
            program = self._program.is_public(job.chamber_id, began)
        self._edge.file_finished(
            job.chamber_id, job.camera_id, segment.path, segment.entry.duration
        )
        if program:
            for pusher in self._pushers.get(job.chamber_id, []):
                pusher.submit(segment.run_token, segment.path)
        if job.camera_id != SLATE:  # a slate is a still picture and silence by design
            self._analyzer.submit(job.key, job.chamber_id, segment.path, segment.entry.duration)
        rel = f"{job.camera_id}/{segment.path.parent.name}/{segment.path.name}"
        self._indexer.segment_finished(job.session_id, job.media_dir.parent, rel, segment, program)
        if program and self._checker is not None:
            # The recording is the program: its media are checked against the wall clock.
            self._checker.segment_finished(job, segment)

    async def run_ended(
        self,
        job: CaptureJob,
        run_token: int,
        ended_at: datetime,
        exit_code: int | None,
        reason: str,
    ) -> None:
        """Queue how and why the run ended."""
        self._indexer.run_ended(job.session_id, run_token, ended_at, exit_code, reason)
        if self._checker is not None:
            self._checker.run_ended(run_token)

    async def sound_missing(self, session_id: int, hole: SoundHole) -> None:
        """Queue the record of a hole in the chamber's shared sound."""
        self._indexer.sound_hole(session_id, hole.start, hole.seconds, hole.cause)


def recover_from_disk(
    index: ArchiveIndex,
    session_id: int,
    session_dir: Path,
    program_camera: str,
    runs: list[Path] | None = None,
) -> int:
    """Bring the index in line with the media on disk (the truth); returns segments added.
    runs: the run folders to look at (by default every one on disk now).

    Runs on the archive thread: it reads files.
    """
    added = 0
    if runs is None:
        runs = sorted(session_dir.glob("*/run-*")) if session_dir.is_dir() else []
    in_manifest = read_manifest(session_dir)
    for run_dir in runs:
        camera = run_dir.parent.name
        match = RUN_DIR.match(run_dir.name)
        listing = run_dir / SEGMENT_LIST
        if match is None or not listing.is_file():
            continue
        entries = [
            e
            for e in map(parse_segment_line, listing.read_text("utf-8", "replace").splitlines())
            if e is not None and (run_dir / e.file).is_file()
        ]
        if not entries:
            continue
        ordinal = int(match.group(1))
        run_id = index.run_id_by_ordinal(session_id, ordinal, camera)
        if run_id is None:
            first = run_dir / entries[0].file
            started = datetime.fromtimestamp(first.stat().st_mtime, UTC)
            run_id = index.add_run(session_id, ordinal, run_dir.name, started, camera)
        known = index.segment_seqs(run_id)
        for entry in entries:
            if entry.seq in known:
                continue
            path = run_dir / entry.file
            rel = f"{camera}/{run_dir.name}/{entry.file}"
            digest = sha256_file(path)
            if rel not in in_manifest:
                append_manifest(session_dir, rel, digest)
            stat = path.stat()
            index.add_segment(
                run_id,
                entry.seq,
                entry.file,
                entry.start,
                entry.duration,
                datetime.fromtimestamp(stat.st_mtime, UTC),
                stat.st_size,
                digest,
                camera == program_camera,
            )
            added += 1
    index.close_open_runs(session_id, "obrady stopped unexpectedly")
    if added:
        log.warning("session %s: indexed %d segment(s) found on disk", session_id, added)
    return added


class SessionControl:
    """Start, stop, agenda items and breaks, with the rules operators rely on; leaving
    `async with control:` cancels every timer and task it started and waits for them."""

    def __init__(
        self,
        settings: Settings,
        archive: AsyncArchive,
        recorder: Recorder,
        program: ProgramSelector,
        clock: Callable[[], datetime],
        indexer: ArchiveIndexer | None = None,
        checker: ContinuityChecker | None = None,
    ) -> None:
        self._settings = settings
        self._archive = archive
        self._indexer = indexer
        self._checker = checker
        self._recorder = recorder
        self.program = program
        self._clock = clock
        self._locks: dict[str, asyncio.Lock] = {}
        self._slates: dict[int, SlateSource] = {}
        self._announced: dict[str, int] = {}  # chamber -> session its slate announces
        # chamber -> (session, the task that ends the bridge at the latest) while a slate
        # bridges to the room's return
        self._bridges: dict[str, tuple[int, asyncio.Task[None]]] = {}
        self._tasks = TaskSet("session control")
        # session -> its start's record, queued and not yet made
        self._starting: dict[int, asyncio.Future[Session]] = {}

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Cancel every timer and task started here and wait for them (captures are the
        recorder's to stop: live sessions stay live, and resume at the next start)."""
        await self._tasks.close()
        self._bridges.clear()

    def background(self) -> list[asyncio.Task[Any] | asyncio.TimerHandle]:
        """The tasks and timers started here that have not ended (for tests and health)."""
        return [*self._tasks.pending(), *self._tasks.timers()]

    def session_dir(self, session: Session) -> Path:
        """The folder holding a session's media (one sub-folder per camera)."""
        return self._settings.paths.session_media(session.chamber, session.id)

    def _lock(self, chamber: str) -> asyncio.Lock:
        return self._locks.setdefault(chamber, asyncio.Lock())

    async def _get(self, session_id: int) -> Session:
        # A reader: a busy writer (a locked database) does not hold up starts and stops.
        return await self._archive.read(ArchiveIndex.get_session, session_id)

    def _write(
        self, what: str, session_id: int, fn: Callable[..., T], *args: Any
    ) -> asyncio.Future[T]:
        """An archive write that keeps its place among the recorder's (on the indexer's queue,
        tried again while the database is busy), or made at once without an indexer."""
        if self._indexer is None:
            return asyncio.ensure_future(self._archive.call(fn, *args))
        return self._indexer.write(what, session_id, fn, *args)

    async def start(self, session_id: int, *, by: str, manual: bool) -> Session:
        """Make a session live and make sure it is being recorded.

        A manual start of a session already live is refused; the scheduler's start of one is a
        resume (after a restart of obrady) and simply makes sure capture runs.

        Capture starts first, on what the archive says now (read beside any write); the
        session's "live" record is queued with the recorder's own and waited for at most
        START_RECORD_WAIT seconds. A locked or slow database delays that record, never capture:
        the answer is then the session as it will be stored.
        """
        session = await self._get(session_id)
        async with self._lock(session.chamber):
            session = await self._get(session_id)
            recording = self._recorder.is_recording(session_id)
            if manual and session.state == "live" and recording:
                raise Conflict(f"session {session_id} is already live")
            try:
                chamber = self._settings.chamber(session.chamber)
            except KeyError:
                raise Conflict(
                    f"session {session_id} belongs to chamber {session.chamber!r}, which is not "
                    "in the configuration: add the chamber back to record it"
                ) from None
            if session.state == "ended":
                raise Conflict(
                    f"session {session_id} has ended ({session.stopped_by or 'stopped'}); "
                    "a stopped session is never restarted: schedule a new one"
                )
            other = await self._archive.read(ArchiveIndex.live_session, session.chamber)
            if other is not None and other.id != session_id:
                raise Conflict(
                    f"chamber {session.chamber!r} is recording session {other.id} "
                    f"({other.title!r}); stop it first",
                    live_session_id=other.id,
                )
            at = self._clock()
            if session.state == "live" and not recording:
                # obrady stopped while this session was live: index what ffmpeg finished after
                # the last segment we saw, and close the runs that were cut off. Only the runs
                # on disk now: the new ones are the recorder's to report.
                session_dir = self.session_dir(session)
                self._write(
                    f"recovery of session {session_id}",
                    session_id,
                    recover_from_disk,
                    self._archive.index,
                    session_id,
                    session_dir,
                    self.program.camera(chamber.id),
                    sorted(session_dir.glob("*/run-*")) if session_dir.is_dir() else [],
                )
            began = self._starting.get(session_id)
            if began is None or began.done():
                began = self._write(
                    f"start of session {session_id}",
                    session_id,
                    self._archive.index.begin_live,
                    session_id,
                    at,
                )
                self._starting[session_id] = began
                began.add_done_callback(lambda f: self._started_or_not(session_id, f))
            if session.state != "live":  # as it will be stored
                session = dataclasses.replace(session, state="live", started_at=at)
                self.program.new_session(chamber.id)
            closed = await self.in_closed(session_id)
            await self._update_slate(session)  # resumed in a break or a closed part
            if self._settings.recording.record_closed_parts or not closed:
                self._start_cameras(session, by)
            try:
                async with asyncio.timeout(START_RECORD_WAIT):
                    return await asyncio.shield(began)
            except TimeoutError:
                log.warning(
                    "session %s: capture runs; its start waits for the archive (%s)",
                    session_id,
                    "database busy" if self._indexer is None else self._indexer.status(),
                )
                return session
            except (Conflict, NotFound):
                if not recording:
                    await self._recorder.stop(session_id)
                raise

    def _started_or_not(self, session_id: int, began: asyncio.Future[Session]) -> None:
        """When the start's record is made or refused: a refused one (another session went
        live meanwhile) must not leave capture running for a session that is not live."""
        if self._starting.get(session_id) is began:
            del self._starting[session_id]
        if began.cancelled() or began.exception() is None:
            return
        log.error("session %s: its start was not recorded: %s", session_id, began.exception())
        if isinstance(began.exception(), (Conflict, NotFound)):
            self._tasks.spawn(self._recorder.stop(session_id), name=f"unstart-{session_id}")

    def _start_cameras(self, session: Session, by: str) -> None:
        """Make sure every camera of the session's chamber is being recorded."""
        chamber = self._settings.chamber(session.chamber)
        for camera in chamber.camera_list:
            if self._recorder.supervisor(session.id, camera.id) is not None:
                continue
            log.info("session %s: capture of camera %s starts (%s)", session.id, camera.id, by)
            job = CaptureJob(
                session.id,
                chamber.id,
                camera.id,
                camera.source,
                self.session_dir(session) / camera.id,
                chamber.audio,
            )
            try:
                self._recorder.start(job)
            except CaptureBlocked as exc:
                raise Conflict(f"session {session.id} is live but cannot record: {exc}") from None

    async def switch_program(self, chamber_id: str, camera_id: str, *, by: str) -> int | None:
        """Make a camera the chamber's program; returns the live session it applies to, if any."""
        try:
            chamber = self._settings.chamber(chamber_id)
        except KeyError:
            raise NotFound(f"chamber {chamber_id!r} is not configured") from None
        ids = [camera.id for camera in chamber.camera_list]
        if camera_id not in ids:
            raise NotFound(f"camera {camera_id!r} is not in chamber {chamber_id!r}; cameras: {ids}")
        live = await self._archive.read(ArchiveIndex.live_session, chamber_id)
        self.program.switch(chamber_id, camera_id, between_sessions=live is None)
        await self._archive.call(
            self._archive.index.add_switch,
            chamber_id,
            camera_id,
            self._clock(),
            live.id if live else None,
            by,
        )
        log.info("chamber %s: program camera is now %s (%s)", chamber_id, camera_id, by)
        return None if live is None else live.id

    async def stop(self, session_id: int, *, by: str) -> Session:
        """End a session for good: capture finishes its last segment, then the record closes."""
        session = await self._get(session_id)
        async with self._lock(session.chamber):
            session = await self._get(session_id)
            if session.state == "ended":
                raise Conflict(f"session {session_id} has already ended")
            requested_at = self._clock()
            if session.state == "live" and not self._recorder.is_recording(session_id):
                await self._archive.call(
                    recover_from_disk,
                    self._archive.index,
                    session_id,
                    self.session_dir(session),
                    self.program.camera(session.chamber)
                    if session.chamber in {c.id for c in self._settings.chambers}
                    else "",
                )
            await self._end_bridge(session.chamber)
            await self._recorder.stop(session_id)
            if self._checker is not None:
                # The last check of the media: a stop is complete only once they are checked.
                try:
                    async with asyncio.timeout(CHECK_WAIT_SECONDS):
                        await self._checker.drain()
                except TimeoutError:
                    log.error(
                        "session %s: %d segments not checked at the stop; the recording is not "
                        "complete",
                        session_id,
                        self._checker.backlog,
                    )
            if self._indexer is not None:
                # The record closes after the last segments are in it.
                await self._indexer.drain()
                if self._checker is not None:
                    await self._check_rest(session)
            self._slates.pop(session_id, None)
            self.program.slate_off(session.chamber)
            if await self.in_closed(session_id):
                self.program.closed_off(session.chamber, self._clock())
            log.info("session %s: ended by %s", session_id, by)
            return await self._archive.call(self._archive.index.end, session_id, requested_at, by)

    async def _check_rest(self, session: Session) -> None:
        """The final media check: segments indexed from disk or not checked yet."""
        assert self._checker is not None and self._indexer is not None
        try:
            async with asyncio.timeout(CHECK_WAIT_SECONDS):
                if await self._checker.check_rest(session.id, self.session_dir(session)):
                    await self._indexer.drain()
        except TimeoutError:
            log.error("session %s: the final media check did not finish", session.id)

    async def scheduled_stop(self, session_id: int, reason: StopReason) -> None:
        """The scheduler's stop: the overrun limit passed, or the window passed unrecorded."""
        await self.stop(session_id, by=f"scheduler:{reason}")

    async def start_item(self, session_id: int, item_id: int, *, by: str) -> None:
        """Mark the moment an agenda item starts."""
        session = await self._live(session_id)
        agenda = await self._archive.call(self._archive.index.agenda, session.id)
        if item_id not in {row.id for row in agenda}:
            raise NotFound(f"agenda item {item_id} is not in session {session_id}")
        await self._archive.call(
            self._archive.index.add_marker, session_id, "item_start", self._clock(), item_id, by
        )

    async def set_break(self, session_id: int, on: bool, *, by: str) -> None:
        """Start or end a break."""
        await self._toggle(session_id, on, "break", by)

    async def set_closed(self, session_id: int, on: bool, *, by: str) -> None:
        """Start or end a part closed to the public (wyłączenie jawności)."""
        await self._toggle(session_id, on, "closed", by)

    async def _toggle(self, session_id: int, on: bool, what: str, by: str) -> None:
        session = await self._live(session_id)
        async with self._lock(session.chamber):
            current = await self._state_of(session.id, what)
            words = {"break": "a break", "closed": "a closed part"}[what]
            if on and current:
                raise Conflict(f"session {session_id} is already in {words}")
            if not on and not current:
                raise Conflict(f"session {session_id} is not in {words}")
            kind: MarkerKind = f"{what}_{'start' if on else 'end'}"  # type: ignore[assignment]
            at = self._clock()
            if what == "closed":
                # Before the marker is stored: not one more camera segment becomes public.
                if on:
                    self.program.closed_on(session.chamber)
                else:
                    self.program.closed_off(session.chamber, at)
            await self._archive.call(self._archive.index.add_marker, session_id, kind, at, None, by)
            await self._update_slate(session)
            if what == "closed" and not self._settings.recording.record_closed_parts:
                if on:
                    for camera in self._settings.chamber(session.chamber).camera_list:
                        await self._recorder.stop_camera(session.id, camera.id, NOT_RECORDED)
                else:
                    self._start_cameras(session, by)

    async def _state_of(self, session_id: int, what: str) -> bool:
        markers = await self._archive.read(ArchiveIndex.markers, session_id)
        kinds = [m.kind for m in markers if m.kind in (f"{what}_start", f"{what}_end")]
        return bool(kinds) and kinds[-1] == f"{what}_start"

    async def in_closed(self, session_id: int) -> bool:
        """Whether a closed part is on."""
        return await self._state_of(session_id, "closed")

    async def _update_slate(self, session: Session) -> None:
        """Run the slate the public should see now (closed part over break), or none."""
        closed = await self.in_closed(session.id)
        brk = self._settings.live.break_slate and await self.in_break(session.id)
        want = CLOSED_SLATE if closed else BREAK_SLATE if brk else None
        running = self._slates.get(session.id)
        if closed:
            self.program.closed_on(session.chamber)
        if want == running:
            return
        await self._end_bridge(session.chamber)
        if running is not None:
            self._slates.pop(session.id, None)
            if want is None and session.state == "live":
                self._start_bridge(session)
            else:
                await self._recorder.stop_camera(session.id, SLATE)
        if self._announced.get(session.chamber) == session.id:
            del self._announced[session.chamber]
            self.program.announcing(session.chamber, False)
        self.program.slate_off(session.chamber)
        if want is not None:
            self._run_slate(session, want)

    def _run_slate(self, session: Session, source: SlateSource) -> bool:
        """Start the session's slate capture and put it on the live stream; False (logged) if
        it cannot run."""
        self.program.slate_on(session.chamber)
        job = CaptureJob(
            session.id, session.chamber, SLATE, source, self.session_dir(session) / SLATE
        )
        try:
            self._recorder.start(job)
        except (CaptureBlocked, AlreadyRecording) as exc:
            log.warning("session %s: no slate %r: %s", session.id, source.text, exc)
            self.program.slate_off(session.chamber)
            return False
        self._slates[session.id] = source
        return True

    def _start_bridge(self, session: Session) -> None:
        """Keep the slate running (and live) until the room's first file may be shown, for at
        most BRIDGE_SEGMENTS segments."""
        chamber = session.chamber
        self.program.bridging(chamber, True)
        limit = BRIDGE_SEGMENTS * self._settings.recording.segment_seconds + 1

        async def at_the_latest() -> None:
            await asyncio.sleep(limit)
            async with self._lock(chamber):
                await self._end_bridge(chamber)

        timer = self._tasks.spawn(at_the_latest(), name=f"bridge-{chamber}")
        self._bridges[chamber] = (session.id, timer)

    async def _end_bridge(self, chamber: str) -> None:
        """Stop a bridging slate (the room is live again, or something else comes)."""
        bridge = self._bridges.pop(chamber, None)
        if bridge is None:
            return
        session_id, timer = bridge
        if timer is not asyncio.current_task():
            timer.cancel()
        self.program.bridging(chamber, False)
        await self._recorder.stop_camera(session_id, SLATE)

    def room_went_live(self, chamber: str, camera: str) -> None:
        """The live edge began a file of `camera`: a bridging slate is no longer needed."""
        if camera == SLATE or chamber not in self._bridges or self._tasks.closed:
            return

        async def end() -> None:
            async with self._lock(chamber):
                await self._end_bridge(chamber)

        self._tasks.spawn(end(), name=f"bridge-end-{chamber}")

    async def announce(self) -> None:
        """Show the slate before each chamber's next session, from live.announce_minutes before
        its scheduled start until it starts (or is no longer due)."""
        lead = timedelta(minutes=self._settings.live.announce_minutes)
        now = self._clock()
        sessions = await self._archive.call(self._archive.index.active_sessions)
        for chamber in self._settings.chambers:
            due = [
                s
                for s in sessions
                if s.chamber == chamber.id
                and s.state == "scheduled"
                and lead
                and s.scheduled_start - lead <= now < s.scheduled_end
            ]
            live = any(s.chamber == chamber.id and s.state == "live" for s in sessions)
            wanted = due[0] if due and not live else None
            async with self._lock(chamber.id):
                current = self._announced.get(chamber.id)
                if current is not None and (wanted is None or wanted.id != current):
                    if self._slates.pop(current, None) is not None:
                        await self._recorder.stop_camera(current, SLATE)
                    del self._announced[chamber.id]
                    self.program.announcing(chamber.id, False)
                    self.program.slate_off(chamber.id)
                if wanted is None or wanted.id in self._slates or live:
                    continue
                self.program.announcing(chamber.id, True)
                if not self._run_slate(wanted, announce_slate(wanted, self._settings.site.zone)):
                    self.program.announcing(chamber.id, False)
                    continue
                self._announced[chamber.id] = wanted.id
                log.info("chamber %s: announcing session %s", chamber.id, wanted.id)

    async def in_break(self, session_id: int) -> bool:
        """Whether the last break marker opened a break."""
        markers = await self._archive.read(ArchiveIndex.markers, session_id)
        breaks = [m.kind for m in markers if m.kind in ("break_start", "break_end")]
        return bool(breaks) and breaks[-1] == "break_start"

    async def _live(self, session_id: int) -> Session:
        began = self._starting.get(session_id)
        if began is not None:
            try:
                async with asyncio.timeout(START_RECORD_WAIT):
                    await asyncio.shield(began)
            except TimeoutError:
                raise Busy(
                    f"session {session_id} is being recorded, but the archive has not yet "
                    "stored its start (the database is busy): try again in a few seconds",
                    retry_after=5,
                ) from None
            except (Conflict, NotFound):
                pass  # told below, from the archive
        session = await self._get(session_id)
        if session.state != "live":
            raise Conflict(
                f"session {session_id} is {session.state}, not live: start it first"
                if session.state == "scheduled"
                else f"session {session_id} has ended; markers can no longer be added"
            )
        return session

    async def schedule(self) -> list[ScheduleEntry]:
        """What the scheduler must handle: every scheduled or live session."""
        sessions = await self._archive.call(self._archive.index.active_sessions)
        return [
            ScheduleEntry(s.id, s.state, s.scheduled_start, s.scheduled_end)  # type: ignore[arg-type]
            for s in sessions
            if s.state in ("scheduled", "live")
        ]
