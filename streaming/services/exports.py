"""Downloads of a session's public recording as one MP4, whole or as a clip: remuxed from the
recorded segments by ffmpeg (never re-encoded), made in the background, served with Range.

An export is exactly the public playlist's segments (redacted ones replaced by their slates),
keyed by a hash of that list and the chapters, so any redaction or marker change makes a new
file; the previous one is deleted only once the new one is complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Self
from urllib.parse import quote
from zoneinfo import ZoneInfo

from archive.editing import covered_segments
from archive.index import AgendaRow, ArchiveIndex, AsyncArchive, Segment, Session
from archive.publish import Chapter, chapters, slate_name
from config.settings import Settings
from recorder.ffmpeg import concat_list, export_argv
from recorder.lifecycle import TaskSet
from recorder.preflight import FfmpegProcess
from recorder.priority import EXPORTS
from streaming.services.slates import make_slates

log = logging.getLogger(__name__)


# How often ended sessions without a current whole-recording export are looked for.
AUTO_EVERY_SECONDS = 10.0
# One SIGINT, then SIGKILL after this long (a second SIGINT would corrupt the trailer).
STOP_TIMEOUT_SECONDS = 10.0
FINAL_NAME = re.compile(r"^(recording|item-\d+|range-\d+-\d+)-([0-9a-f]{16})\.mp4$")

ExportState = Literal["queued", "working", "done", "failed"]


class ExportFailed(Exception):
    """ffmpeg could not make the export (the message carries its last words)."""


@dataclass(frozen=True)
class RecordingView:
    """What a session's public copy consists of, read in one go from the archive."""

    session: Session
    segments: list[Segment]
    redacted: frozenset[int]
    agenda: list[AgendaRow]
    chapters: list[Chapter]

    @property
    def duration(self) -> float:
        """Seconds of the public copy: the program's segments end to end."""
        return sum(segment.duration for segment in self.segments)


def read_view(index: ArchiveIndex, session_id: int) -> RecordingView:
    """The session's public copy as the public playlist and chapters show it (archive thread)."""
    session = index.get_session(session_id)
    agenda = index.agenda(session_id)
    found = chapters(agenda, index.markers(session_id), index.timeline(session_id))
    return RecordingView(
        session,
        index.segments(session_id),
        index.redacted_segment_ids(session_id),
        agenda,
        found,
    )


@dataclass(frozen=True)
class ExportPlan:
    """One MP4 to make: its files in order, its chapters, and what a newer one supersedes."""

    session: Session
    group: str  # "recording", "item-<id>" or "range-<ms>-<ms>": a newer one replaces it
    label: str  # how the download is named after the session, e.g. "" or "punkt 2"
    files: tuple[tuple[Path, float], ...]  # (path, seconds) in playback order
    start: float  # where in the public copy the first file begins
    chapters: tuple[Chapter, ...]  # offsets within this export
    slates: tuple[Segment, ...]  # redacted segments whose slates must exist first

    @property
    def duration(self) -> float:
        """Seconds the export lasts."""
        return sum(seconds for _, seconds in self.files)

    @property
    def key(self) -> str:
        """A hash of everything that makes the file what it is."""
        content = {
            "group": self.group,
            "title": self.session.title,
            "files": [[str(path), round(seconds, 6)] for path, seconds in self.files],
            "chapters": [[c.label, round(c.start, 3), round(c.end, 3)] for c in self.chapters],
        }
        return hashlib.sha256(json.dumps(content, ensure_ascii=False).encode()).hexdigest()[:16]

    @property
    def file_name(self) -> str:
        """The export's name in the session's exports folder."""
        return f"{self.group}-{self.key}.mp4"


def _file_of(settings: Settings, session: Session, segment: Segment, redacted: bool) -> Path:
    # The same file the public playlist names for this segment (see publish.media_playlist).
    if redacted:
        root = settings.paths.redactions(session.id)
        return root / segment.camera / segment.run_dir / slate_name(segment.duration)
    return settings.paths.session_media(session.chamber, session.id) / segment.rel_path


def span_plan(
    settings: Settings, view: RecordingView, group: str, label: str, start: float, end: float
) -> ExportPlan:
    """The whole segments of the public copy that overlap [start, end)."""
    by_id = {segment.id: segment for segment in view.segments}
    covered = covered_segments(((s.id, s.duration) for s in view.segments), [(start, end)])
    chosen = [by_id[c.segment_id] for c in covered]
    first = covered[0].start if covered else 0.0
    last = covered[-1].start + covered[-1].duration if covered else 0.0
    shown = []
    for chapter in view.chapters:
        low, high = max(chapter.start, first), min(chapter.end, last)
        if high - low > RANGE_EPSILON:
            shown.append(
                Chapter(chapter.item_id, chapter.number, chapter.title, low - first, high - first)
            )
    return ExportPlan(
        view.session,
        group,
        label,
        tuple(
            (_file_of(settings, view.session, s, s.id in view.redacted), s.duration) for s in chosen
        ),
        first,
        tuple(shown),
        tuple(s for s in chosen if s.id in view.redacted),
    )


def whole_plan(settings: Settings, view: RecordingView) -> ExportPlan:
    """The whole public copy with its chapters."""
    return span_plan(settings, view, "recording", "", 0.0, view.duration)


def _metadata_escape(text: str) -> str:
    # ffmetadata: '=', ';', '#', '\' and newlines must be escaped with a backslash.
    text = " ".join(text.split())
    return re.sub(r"([=;#\\])", r"\\\1", text)


def ffmetadata(title: str, found: Sequence[Chapter]) -> str:
    """An ffmetadata file giving the MP4 its title and one chapter per agenda item."""
    lines = [";FFMETADATA1", f"title={_metadata_escape(title)}"]
    for chapter in found:
        lines += [
            "[CHAPTER]",
            "TIMEBASE=1/1000",
            f"START={round(chapter.start * 1000)}",
            f"END={round(chapter.end * 1000)}",
            f"title={_metadata_escape(chapter.label)}",
        ]
    return "\n".join(lines) + "\n"


def download_name(session: Session, label: str, zone: ZoneInfo) -> str:
    """A readable file name: date (in the site's time zone, settings.site.zone), title, and
    what part of the session it is."""
    when = (session.started_at or session.scheduled_start).astimezone(zone)
    words = f"{session.title} {label}".strip()
    return f"{when.date().isoformat()} {words}.mp4"


def content_disposition(name: str) -> str:
    """attachment with an ASCII fallback name and the exact one in UTF-8 (RFC 6266)."""
    # "ł" has no decomposition, so NFKD alone would drop it.
    ascii_name = unicodedata.normalize("NFKD", name.replace("ł", "l").replace("Ł", "L"))
    ascii_name = ascii_name.encode("ascii", "ignore").decode()
    ascii_name = re.sub(r"[^A-Za-z0-9._-]+", "-", ascii_name).strip("-") or "nagranie.mp4"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


@dataclass
class ExportJob:
    """An export being made (or that failed): its state and progress from 0 to 1."""

    plan: ExportPlan
    target: Path
    state: ExportState = "queued"
    progress: float = 0.0
    error: str | None = None
    done_event: asyncio.Event = field(default_factory=asyncio.Event)

    def on_progress(self, line: str) -> None:
        """Read one `-progress` line: out_time_us against the expected duration."""
        name, _, value = line.partition("=")
        if name != "out_time_us" or not value.lstrip("-").isdigit() or self.plan.duration <= 0:
            return
        # Below 1 until renamed: faststart still moves the index after the last packet.
        self.progress = max(self.progress, min(0.99, int(value) / 1e6 / self.plan.duration))


def _discard(*paths: Path) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _sweep_partials(root: Path) -> int:
    """Remove what exports interrupted by a crash left behind (never a finished export)."""
    removed = 0
    for path in root.glob("*/.*"):
        if path.is_file():
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _supersede(folder: Path, group: str, keep: Path) -> list[str]:
    """Delete older exports of the same group, now that `keep` replaces them."""
    removed = []
    for path in folder.glob(f"{group}-*.mp4"):
        match = FINAL_NAME.match(path.name)
        if match and match[1] == group and path != keep:
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed


def _finished(folder: Path) -> list[tuple[str, int]]:
    if not folder.is_dir():
        return []
    return sorted((p.name, p.stat().st_size) for p in folder.iterdir() if FINAL_NAME.match(p.name))


class ExportManager:
    """Makes MP4 exports in the background, at most `exports.max_running` ffmpeg at a time and
    below capture and the live edge (recorder/priority.py, EXPORTS: on a busy machine a
    download waits), and on its own the whole-recording export of every ended, published
    session that lacks one."""

    def __init__(
        self,
        settings: Settings,
        archive: AsyncArchive,
        *,
        max_running: int | None = None,
        auto_every_seconds: float = AUTO_EVERY_SECONDS,
    ) -> None:
        self._settings = settings
        self._archive = archive
        if max_running is None:
            max_running = settings.exports.max_running
        self._slots = asyncio.Semaphore(max_running)
        self._every = auto_every_seconds
        self._jobs: dict[Path, ExportJob] = {}
        self._tasks = TaskSet("exports")
        self._failed: set[Path] = set()
        self.root = settings.paths.exports

    def folder(self, session_id: int) -> Path:
        """Where a session's exports are kept."""
        return self.root / str(session_id)

    async def start(self) -> None:
        """Clear partial files of a previous run and start looking for ended sessions."""
        removed = await asyncio.to_thread(_sweep_partials, self.root)
        if removed:
            log.info("exports: removed %d partial files left by an interrupted run", removed)
        self._tasks.spawn(self._auto_export(), name="exports-auto")

    async def close(self) -> None:
        """Stop the watcher and every export (ffmpeg gets one SIGINT, then SIGKILL)."""
        await self._tasks.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def ensure(self, plan: ExportPlan) -> Path | ExportJob:
        """The finished file if it exists, else the job making it (started if need be)."""
        target = self.folder(plan.session.id) / plan.file_name
        job = self._jobs.get(target)
        if job is not None and job.state in ("queued", "working"):
            return job
        if await asyncio.to_thread(target.is_file):
            return target
        job = self._jobs.get(target)
        if job is not None and job.state in ("queued", "working"):
            return job  # started by another request while we looked at the disk
        job = ExportJob(plan, target)
        self._jobs[target] = job
        self._tasks.spawn(self._run(job), name=f"export-{plan.file_name}")
        return job

    def jobs_of(self, session_id: int) -> list[ExportJob]:
        """The session's exports known since start-up that are not finished."""
        return [
            job
            for job in self._jobs.values()
            if job.plan.session.id == session_id and job.state != "done"
        ]

    async def finished(self, session_id: int) -> list[tuple[str, int]]:
        """Names and sizes of the session's finished exports."""
        return await asyncio.to_thread(_finished, self.folder(session_id))

    async def _run(self, job: ExportJob) -> None:
        plan = job.plan
        try:
            async with self._slots:
                job.state = "working"
                started = asyncio.get_running_loop().time()
                await self._make(job)
                took = asyncio.get_running_loop().time() - started
            job.state, job.progress = "done", 1.0
            self._failed.discard(job.target)
            log.info(
                "export %s of session %d: %.1f s of media in %.2f s",
                plan.file_name,
                plan.session.id,
                plan.duration,
                took,
            )
            removed = await asyncio.to_thread(_supersede, job.target.parent, plan.group, job.target)
            if removed:
                log.info("exports superseded by %s: %s", plan.file_name, ", ".join(removed))
        except asyncio.CancelledError:
            job.state, job.error = "failed", "stopped with the service"
            raise
        except Exception as exc:
            job.state, job.error = "failed", str(exc) or type(exc).__name__
            self._failed.add(job.target)
            log.exception("export %s of session %d failed", plan.file_name, plan.session.id)
        finally:
            job.done_event.set()

    async def _make(self, job: ExportJob) -> None:
        plan = job.plan
        if plan.slates:
            # Slates are made when a redaction is added; this only fills in a missing one.
            await make_slates(self._settings, plan.session, list(plan.slates), priority=EXPORTS)
        folder = job.target.parent
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        # Dot-names are never served and are swept at start-up: a crash leaves nothing visible.
        tag = uuid.uuid4().hex[:12]
        listing = folder / f".{job.target.stem}-{tag}.ffconcat"
        metadata = folder / f".{job.target.stem}-{tag}.ffmeta"
        partial = folder / f".{job.target.stem}-{tag}.part"
        title = plan.session.title + (f" – {plan.label}" if plan.label else "")
        try:
            await asyncio.to_thread(
                listing.write_text, concat_list(plan.files, durations=False), "utf-8"
            )
            await asyncio.to_thread(metadata.write_text, ffmetadata(title, plan.chapters), "utf-8")
            process = FfmpegProcess(
                export_argv(listing, partial, metadata=metadata),
                on_stdout=job.on_progress,
                priority=EXPORTS,
            )
            await process.start()
            try:
                code = await process.wait()
            except asyncio.CancelledError:
                await asyncio.shield(process.stop(STOP_TIMEOUT_SECONDS))
                raise
            if code != 0:
                raise ExportFailed(f"ffmpeg exited with {code}: {process.last_words()}")
            await asyncio.to_thread(os.replace, partial, job.target)
        finally:
            await asyncio.to_thread(_discard, listing, metadata, partial)

    async def _auto_export(self) -> None:
        while True:
            try:
                await self.export_ended()
            except Exception:
                log.exception("could not look for recordings to export")
            await asyncio.sleep(self._every)

    async def export_ended(self) -> None:
        """Start the whole-recording export of each ended, published session that has none."""
        archive = self._archive
        sessions = await archive.call(archive.index.list_sessions)
        for session in sessions:
            if session.state != "ended" or not session.published:
                continue
            view = await archive.read(read_view, session.id)
            if not view.segments:
                continue
            plan = whole_plan(self._settings, view)
            target = self.folder(session.id) / plan.file_name
            if target in self._failed:
                continue  # not again on its own: a request for the download retries it
            await self.ensure(plan)


# --- routes ---------------------------------------------------------------------------------


# Float sums of segment durations differ in the last bits: a range may end this far past them.
RANGE_EPSILON = 1e-3
