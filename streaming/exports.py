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
import math
import os
import re
import unicodedata
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from html import escape as html_escape
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo

from aiohttp import web

from archive.editing import covered_segments
from archive.index import AgendaRow, ArchiveIndex, AsyncArchive, Segment, Session
from archive.publish import Chapter, chapters, slate_name
from config.settings import Settings
from recorder.ffmpeg import export_argv
from recorder.preflight import FfmpegProcess
from streaming.api import session_id_of
from streaming.editing import make_slates
from streaming.http import json_error
from streaming.i18n import lang_of, page, wants_html
from streaming.keys import ARCHIVE, SETTINGS
from streaming.live import private_if_withdrawn, redaction_dir, session_dir

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

# At most this many ffmpeg exports at once (the machine also records); the rest wait.
MAX_RUNNING = 2
# How often ended sessions without a current whole-recording export are looked for.
AUTO_EVERY_SECONDS = 10.0
# One SIGINT, then SIGKILL after this long (a second SIGINT would corrupt the trailer).
STOP_TIMEOUT_SECONDS = 10.0
RETRY_AFTER_SECONDS = 2
# Float sums of segment durations differ in the last bits: a range may end this far past them.
RANGE_EPSILON = 1e-3
DOWNLOAD_CACHE = "public, max-age=600"
PRIVATE = "private, no-store"
DISPLAY_ZONE = ZoneInfo("Europe/Warsaw")
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
        root = redaction_dir(settings, session.id)
        return root / segment.camera / segment.run_dir / slate_name(segment.duration)
    return session_dir(settings, session) / segment.rel_path


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


def concat_list(files: Sequence[tuple[Path, float]]) -> str:
    """An ffconcat list of the files; each lasts what its own timestamps say."""
    lines = ["ffconcat version 1.0"]
    for path, _ in files:
        # Inside single quotes only the quote itself needs care: close, escape, reopen.
        quoted = str(path).replace("'", "'\\''")
        lines.append(f"file '{quoted}'")
    return "\n".join(lines) + "\n"


def download_name(session: Session, label: str) -> str:
    """A readable file name: date, title, and what part of the session it is."""
    when = (session.started_at or session.scheduled_start).astimezone(DISPLAY_ZONE)
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
    """Makes MP4 exports in the background, at most MAX_RUNNING ffmpeg at a time, and on its
    own the whole-recording export of every ended, published session that lacks one."""

    def __init__(
        self,
        settings: Settings,
        archive: AsyncArchive,
        *,
        max_running: int = MAX_RUNNING,
        auto_every_seconds: float = AUTO_EVERY_SECONDS,
    ) -> None:
        self._settings = settings
        self._archive = archive
        self._slots = asyncio.Semaphore(max_running)
        self._every = auto_every_seconds
        self._jobs: dict[Path, ExportJob] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._failed: set[Path] = set()
        self._auto: asyncio.Task[None] | None = None
        self.root = settings.data_path / "exports"

    def folder(self, session_id: int) -> Path:
        """Where a session's exports are kept."""
        return self.root / str(session_id)

    async def start(self) -> None:
        """Clear partial files of a previous run and start looking for ended sessions."""
        removed = await asyncio.to_thread(_sweep_partials, self.root)
        if removed:
            log.info("exports: removed %d partial files left by an interrupted run", removed)
        self._auto = asyncio.create_task(self._auto_export(), name="exports-auto")

    async def close(self) -> None:
        """Stop the watcher and every export (ffmpeg gets one SIGINT, then SIGKILL)."""
        tasks = [t for t in (self._auto, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

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
        task = asyncio.create_task(self._run(job), name=f"export-{plan.file_name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
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
            await make_slates(self._settings, plan.session, list(plan.slates))
        folder = job.target.parent
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        # Dot-names are never served and are swept at start-up: a crash leaves nothing visible.
        tag = uuid.uuid4().hex[:12]
        listing = folder / f".{job.target.stem}-{tag}.ffconcat"
        metadata = folder / f".{job.target.stem}-{tag}.ffmeta"
        partial = folder / f".{job.target.stem}-{tag}.part"
        title = plan.session.title + (f" – {plan.label}" if plan.label else "")
        try:
            await asyncio.to_thread(listing.write_text, concat_list(plan.files), "utf-8")
            await asyncio.to_thread(metadata.write_text, ffmetadata(title, plan.chapters), "utf-8")
            process = FfmpegProcess(
                export_argv(listing, partial, metadata=metadata), on_stdout=job.on_progress
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
            view = await archive.call(read_view, archive.index, session.id)
            if not view.segments:
                continue
            plan = whole_plan(self._settings, view)
            target = self.folder(session.id) / plan.file_name
            if target in self._failed:
                continue  # not again on its own: a request for the download retries it
            await self.ensure(plan)


EXPORTS = web.AppKey("exports", ExportManager)


async def exports_ctx(app: web.Application) -> AsyncIterator[None]:
    """The export manager, started after the archive and stopped before it."""
    manager = ExportManager(app[SETTINGS], app[ARCHIVE])
    await manager.start()
    app[EXPORTS] = manager
    yield
    await manager.close()


# --- routes ---------------------------------------------------------------------------------


async def _view(request: web.Request) -> tuple[RecordingView, bool]:
    """The session's public copy if it may be downloaded now, and whether only privately."""
    archive = request.app[ARCHIVE]
    sid = session_id_of(request)
    session = await archive.call(archive.index.get_session, sid)
    private = await private_if_withdrawn(request, session)
    if session.state == "live":
        raise json_error(
            web.HTTPConflict,
            f"session {sid} is live: the recording is still being made; "
            "download it after the session ends",
        )
    if session.state == "scheduled":
        raise json_error(web.HTTPNotFound, f"session {sid} has not been recorded yet")
    view = await archive.call(read_view, archive.index, sid)
    if not view.segments:
        raise json_error(web.HTTPNotFound, f"session {sid} has no recording")
    return view, private


def _status_url(session_id: int) -> str:
    return f"/api/v1/sessions/{session_id}/exports"


async def _serve(request: web.Request, plan: ExportPlan, private: bool) -> web.StreamResponse:
    """The finished MP4 (Range requests answered by FileResponse), or 202 while it is made."""
    result = await request.app[EXPORTS].ensure(plan)
    if isinstance(result, Path):
        return web.FileResponse(
            result,
            headers={
                "Content-Type": "video/mp4",
                "Content-Disposition": content_disposition(download_name(plan.session, plan.label)),
                "Cache-Control": PRIVATE if private else DOWNLOAD_CACHE,
            },
        )
    if wants_html(request):
        return _progress_page(request, plan, result)
    return web.json_response(
        {
            "state": "working",
            "queued": result.state == "queued",
            "progress": round(result.progress, 3),
            # Whole segments: where the export begins in the recording and how long it lasts.
            "start_seconds": round(plan.start, 3),
            "duration_seconds": round(plan.duration, 3),
            "status_url": _status_url(plan.session.id),
        },
        status=202,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS), "Cache-Control": "no-store"},
    )


_PROGRESS_WORDS = {
    "pl": (
        "Przygotowujemy plik MP4",
        "Plik {name} jest składany z nagrania (bez ponownego kodowania). Gotowe: {percent}%.",
        "Czeka w kolejce na swoją kolej.",
        "Strona odświeża się sama; pobieranie zacznie się, gdy plik będzie gotowy.",
        "Strona posiedzenia",
    ),
    "en": (
        "Preparing the MP4 file",
        "{name} is being put together from the recording (not re-encoded). Done: {percent}%.",
        "It is waiting in the queue for its turn.",
        "This page reloads itself; the download starts when the file is ready.",
        "The session's page",
    ),
}


def _progress_page(request: web.Request, plan: ExportPlan, job: ExportJob) -> web.Response:
    """What a browser shows after clicking a download that is still being made: the progress,
    reloading itself until the file is there (the reload then downloads it)."""
    title, made, queued, reloads, back = _PROGRESS_WORDS[lang_of(request)]
    percent = round(job.progress * 100)
    name = html_escape(download_name(plan.session, plan.label))
    body = (
        f'<p role="status">{made.format(name=name, percent=percent)}'
        f"{' ' + queued if job.state == 'queued' else ''}</p>"
        f'<p><progress max="100" value="{percent}" aria-label="{title}">{percent}%</progress></p>'
        f"<p>{reloads}</p>"
        f'<p><a href="/sessions/{plan.session.id}">{back}</a></p>'
    )
    response = page(
        request,
        title,
        body,
        status=202,
        head=f'<meta http-equiv="refresh" content="{RETRY_AFTER_SECONDS}">',
        cache="no-store",
    )
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


@routes.get("/sessions/{id}/recording.mp4")
async def recording_mp4(request: web.Request) -> web.StreamResponse:
    """The whole public recording as one MP4 with chapters (202 while it is being made)."""
    view, private = await _view(request)
    return await _serve(request, whole_plan(request.app[SETTINGS], view), private)


@routes.get("/sessions/{id}/items/{item_id}/clip.mp4")
async def item_clip(request: web.Request) -> web.StreamResponse:
    """One agenda item's chapter as an MP4, in whole segments (it may begin and end up to a
    segment beyond the chapter: nothing is re-encoded)."""
    raw = request.match_info["item_id"]
    view, private = await _view(request)
    sid = view.session.id
    item = next((row for row in view.agenda if raw.isdigit() and row.id == int(raw)), None)
    if item is None:
        raise json_error(web.HTTPNotFound, f"agenda item {raw!r} does not exist in session {sid}")
    chapter = next((c for c in view.chapters if c.item_id == item.id), None)
    if chapter is None:
        raise json_error(
            web.HTTPNotFound,
            f"agenda item {item.id} ({item.number}. {item.title}) was never taken up in session "
            f"{sid}: it has no chapter in the recording",
        )
    label = f"punkt {item.number}"
    plan = span_plan(
        request.app[SETTINGS], view, f"item-{item.id}", label, chapter.start, chapter.end
    )
    return await _serve(request, plan, private)


def _seconds(request: web.Request, name: str, default: float) -> float:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise json_error(
            web.HTTPBadRequest,
            f"{name} must be a number of seconds (e.g. {name}=12.5), not {raw!r}",
        )
    return value


@routes.get("/sessions/{id}/clip.mp4")
async def range_clip(request: web.Request) -> web.StreamResponse:
    """Any stretch of the public recording (?start=&end= in seconds) as an MP4, in whole
    segments."""
    view, private = await _view(request)
    total = view.duration
    start = _seconds(request, "start", 0.0)
    end = _seconds(request, "end", total)
    problem = None
    beyond = f"goes beyond the recording, which lasts {total:.3f} s"
    if start < 0:
        problem = f"start must be 0 or more, not {start:g}"
    elif start >= total:
        problem = f"start {start:g} {beyond}"
    elif end <= start:
        problem = f"end ({end:g}) must be after start ({start:g})"
    elif end > total + RANGE_EPSILON:
        problem = f"end {end:g} {beyond}"
    if problem is not None:
        raise json_error(web.HTTPBadRequest, problem)
    end = min(end, total)
    plan = span_plan(request.app[SETTINGS], view, "range", "", start, end)
    group = f"range-{round(plan.start * 1000)}-{round((plan.start + plan.duration) * 1000)}"
    label = f"{plan.start:.0f}-{plan.start + plan.duration:.0f} s"
    plan = span_plan(request.app[SETTINGS], view, group, label, start, end)
    return await _serve(request, plan, private)


def _url_of(session_id: int, group: str) -> str:
    if group == "recording":
        return f"/sessions/{session_id}/recording.mp4"
    if group.startswith("item-"):
        return f"/sessions/{session_id}/items/{group[5:]}/clip.mp4"
    low, high = (int(ms) / 1000 for ms in group[6:].split("-"))
    return f"/sessions/{session_id}/clip.mp4?start={low:g}&end={high:g}"


@routes.get("/api/v1/sessions/{id}/exports")
async def list_exports(request: web.Request) -> web.Response:
    """The session's MP4 exports: finished ones and those being made, with their progress."""
    archive = request.app[ARCHIVE]
    sid = session_id_of(request)
    session = await archive.call(archive.index.get_session, sid)
    private = await private_if_withdrawn(request, session)
    manager = request.app[EXPORTS]
    found: list[dict[str, Any]] = []
    for name, size in await manager.finished(sid):
        group = FINAL_NAME.match(name)
        assert group is not None
        found.append(
            {
                "name": name,
                "state": "done",
                "progress": 1.0,
                "size_bytes": size,
                "url": _url_of(sid, group[1]),
            }
        )
    for job in manager.jobs_of(sid):
        found.append(
            {
                "name": job.target.name,
                "state": "working" if job.state in ("queued", "working") else job.state,
                "queued": job.state == "queued",
                "progress": round(job.progress, 3),
                "duration_seconds": round(job.plan.duration, 3),
                "error": job.error,
                "url": _url_of(sid, job.plan.group),
            }
        )
    return web.json_response(
        {"session_id": sid, "exports": found},
        headers={"Cache-Control": PRIVATE if private else "no-store"},
    )
