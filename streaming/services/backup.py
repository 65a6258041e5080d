"""Backups that restore: a consistent copy of the archive, made while sessions record, into a
local folder or any remote rclone speaks (SFTP, S3, ...); and the restore that rebuilds a
working data folder from it.

A backup holds, under its destination:

- `media/`: every finished segment, copied once and never changed afterwards (rclone's
  `--immutable`: a segment that differs from its copy stops the backup, because one of the two
  is damaged), and the small files beside them (segment lists, manifests, sound holes);
- `redacted/`: the slates of redactions;
- `previous/<stamp>/`: the earlier versions of the small files that a later backup replaced;
- `database/obrady-<stamp>.sqlite3`: a snapshot of the index, made with SQLite's online backup
  API before the media are copied, so every segment it names is in the backup. The newest
  `backup.keep_databases` are kept;
- `backup.json`: what the last complete backup copied. It is written last.

The data folder keeps `backup-state.json`: when the last good backup finished, and the last
failure. The status, /metrics and the console read it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from archive.db import ArchiveError, connect_reader
from archive.index import ArchiveIndex
from config.paths import Paths
from config.settings import Settings
from recorder.ffmpeg import SEGMENT_LIST, SEGMENT_NAME, parse_segment_line
from streaming.services.control import recover_from_disk

log = logging.getLogger(__name__)

STATE_FILE = "backup-state.json"
SUMMARY = "backup.json"
DATABASES = "database"
# Folders of the data directory that a backup copies (the rest is made again from them:
# exports, the live edge's state, transcription scratch, pre-flight previews).
COPIED = ("media", "redacted")
_SNAPSHOT = re.compile(r"^obrady-(\d{8}T\d{6}Z)\.sqlite3$")
# Anything rclone prints after one of these is a secret of a connection string.
_SECRET_OPTION = re.compile(
    r"((?:pass|password|key_pem|key_file_pass|secret_access_key|token|client_secret)=)[^,:\s]+",
    re.I,
)


class BackupError(ArchiveError):
    """A backup or restore could not be made; the message says why and what to do."""


@dataclass(frozen=True)
class BackupReport:
    """What one `obrady backup` did."""

    destination: str
    started_at: str
    finished_at: str
    seconds: float
    database: str
    segments: int
    segments_copied: int
    files_copied: int
    bytes_copied: int


@dataclass(frozen=True)
class RestoreReport:
    """What one `obrady restore` did."""

    source: str
    database: str
    sessions: int
    segments: int
    recovered_segments: int
    files_copied: int
    bytes_copied: int
    live_sessions: list[int]
    seconds: float


def redact(text: str) -> str:
    """A destination or rclone output with the secrets of connection strings masked."""
    return _SECRET_OPTION.sub(r"\1…", text)


def _rclone() -> str:
    found = shutil.which("rclone")
    if found is None:
        raise BackupError(
            "rclone is not installed; obrady copies backups with it: apt-get install rclone"
        )
    return found


def _is_local(destination: str) -> bool:
    """True for a folder path, False for an rclone remote ("name:path", ":sftp,...:path")."""
    head = destination.split("/", 1)[0]
    return destination.startswith((".", "/")) or ":" not in head


def _join(base: str, *parts: str) -> str:
    if base.endswith(":"):
        return base + "/".join(parts)
    return base.rstrip("/") + "/" + "/".join(parts)


def _check_location(location: str, data: Path, what: str) -> str:
    """A local location made absolute and kept out of the data folder (and vice versa)."""
    if not location.strip():
        raise BackupError(f"the backup {what} is empty: name a folder or an rclone remote")
    if not _is_local(location):
        return location
    path = Path(location).expanduser().resolve()
    data = data.resolve()
    if path == data or data in path.parents or path in data.parents:
        raise BackupError(
            f"the backup {what} {path} overlaps the data folder {data}: "
            "a backup must be kept apart from what it protects"
        )
    return str(path)


def _run(args: list[str], what: str) -> list[dict[str, Any]]:
    """Run rclone with JSON logs; its log entries on success, BackupError on failure."""
    command = [_rclone(), *args, "--use-json-log", "--stats", "1h", "--stats-log-level", "NOTICE"]
    log.debug("rclone %s", redact(" ".join(args)))
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    entries: list[dict[str, Any]] = []
    for line in done.stderr.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            entry = {"level": "error", "msg": line} if line.strip() else None
        if isinstance(entry, dict):
            entries.append(entry)
    if done.returncode != 0:
        errors = [
            (f"{e['object']}: " if e.get("object") else "") + str(e.get("msg", "")).strip()
            for e in entries
            if e.get("level") in ("error", "critical", "fatal")
        ]
        # rclone tries three times; each attempt's summary repeats the errors before it.
        errors = [e for e in errors if not e.startswith("Attempt ")] or errors
        detail = redact("\n".join(dict.fromkeys(errors[-6:]))) or f"exit code {done.returncode}"
        raise BackupError(f"{what} failed (rclone exit {done.returncode}):\n{detail}")
    return entries


def _stats(entries: list[dict[str, Any]]) -> tuple[int, int]:
    """(files, bytes) transferred, from rclone's final statistics."""
    final = [e["stats"] for e in entries if isinstance(e.get("stats"), dict)]
    if not final:
        return 0, 0
    return int(final[-1].get("transfers", 0)), int(final[-1].get("bytes", 0))


def _copy_list(
    source: Path, destination: str, files: list[str], extra: list[str], what: str
) -> tuple[int, int]:
    """rclone copy of the listed files (relative to source); (files, bytes) copied."""
    if not files:
        return 0, 0
    with tempfile.NamedTemporaryFile("w", suffix=".list", delete=False) as fh:
        fh.write("\n".join(files) + "\n")
        listing = fh.name
    try:
        entries = _run(
            ["copy", str(source), destination, "--files-from-raw", listing, *extra], what
        )
    finally:
        os.unlink(listing)
    return _stats(entries)


def media_files(root: Path) -> tuple[list[str], list[str]]:
    """(finished segments, other regular files) under root, as paths relative to it.

    A segment counts once its run's segment list names it: the one ffmpeg is still writing
    waits for the next backup. Named pipes (frames.fifo), hidden and partial files are left
    out."""
    segments: list[str] = []
    others: list[str] = []
    if not root.is_dir():
        return segments, others
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        folder = Path(dirpath)
        listed: set[str] | None = None
        if SEGMENT_LIST in filenames:
            text = (folder / SEGMENT_LIST).read_text("utf-8", "replace")
            listed = {e.file for e in map(parse_segment_line, text.splitlines()) if e is not None}
        for name in sorted(filenames):
            if name.startswith(".") or name.endswith((".part", ".tmp")):
                continue
            try:
                mode = os.lstat(folder / name).st_mode
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(mode):
                continue
            rel = (folder / name).relative_to(root).as_posix()
            if SEGMENT_NAME.match(name):
                if listed is not None and name in listed:
                    segments.append(rel)
            else:
                others.append(rel)
    return sorted(segments), sorted(others)


def _snapshot_database(database: Path, target: Path) -> None:
    """A consistent copy of the live database (SQLite's online backup API), checked."""
    if not database.is_file():
        raise BackupError(f"no archive database at {database}: is the data folder right?")
    source = connect_reader(database)
    try:
        copy = sqlite3.connect(str(target))
        try:
            source.backup(copy)
            result = copy.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            copy.close()
    finally:
        source.close()
    if result != "ok":
        raise BackupError(f"the database snapshot failed its integrity check: {result}")
    with target.open("rb") as fh:
        os.fsync(fh.fileno())


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_state(paths: Paths) -> dict[str, Any]:
    """The data folder's record of backups ({} before the first)."""
    try:
        data = json.loads((paths.data / STATE_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _snapshots(destination: str) -> list[str]:
    out = subprocess.run(
        [_rclone(), "lsf", "--files-only", _join(destination, DATABASES)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        return []
    return sorted(n for n in out.stdout.split() if _SNAPSHOT.match(n))


def backup(settings: Settings, destination: str | None = None) -> BackupReport:
    """Copy what is new in the archive to destination (default: backup.destination).

    Safe while sessions record: the database snapshot comes first, so every segment it names is
    already finished on disk, and `backup.json` is written only when everything is copied."""
    paths = settings.paths
    chosen = destination or settings.backup.destination
    if not chosen:
        raise BackupError(
            "no backup destination: give `obrady backup --to DEST` or set backup.destination"
        )
    dest = _check_location(chosen, paths.data, "destination")
    started = datetime.now(UTC)
    clock = time.monotonic()
    try:
        report = _backup(settings, dest, started, clock)
    except BackupError as exc:
        _record_failure(paths, dest, started, str(exc))
        raise
    state = read_state(paths)
    state["last_good"] = asdict(report)
    state.pop("last_failure", None)
    _write_json(paths.data / STATE_FILE, state)
    return report


def _record_failure(paths: Paths, dest: str, at: datetime, error: str) -> None:
    with contextlib.suppress(OSError):
        state = read_state(paths)
        state["last_failure"] = {
            "at": at.isoformat(),
            "destination": redact(dest),
            "error": redact(error),
        }
        _write_json(paths.data / STATE_FILE, state)


def _backup(settings: Settings, dest: str, started: datetime, clock: float) -> BackupReport:
    paths = settings.paths
    stamp = _stamp(started)
    snapshot_name = f"obrady-{stamp}.sqlite3"
    with tempfile.TemporaryDirectory(prefix="obrady-backup-") as work:
        snapshot = Path(work) / snapshot_name
        _snapshot_database(paths.database, snapshot)
        files = size = segments = segments_copied = 0
        for folder in COPIED:
            root = paths.data / folder
            finished, others = media_files(root)
            segments += len(finished) if folder == "media" else 0
            target = _join(dest, folder)
            # Finished segments never change: one that differs from its copy is damage.
            f, b = _copy_list(root, target, finished, ["--immutable"], f"copying {folder}")
            files, size = files + f, size + b
            segments_copied += f if folder == "media" else 0
            # Segment lists and manifests grow: the version a copy replaces is kept.
            keep = ["--backup-dir", _join(dest, "previous", stamp, folder)]
            f, b = _copy_list(root, target, others, keep, f"copying {folder} (lists)")
            files, size = files + f, size + b
        _run(
            ["copyto", str(snapshot), _join(dest, DATABASES, snapshot_name)], "copying the database"
        )
        files += 1
        size += snapshot.stat().st_size
    for old in _snapshots(dest)[: -settings.backup.keep_databases]:
        _run(["deletefile", _join(dest, DATABASES, old)], f"removing the old snapshot {old}")
    finished_at = datetime.now(UTC)
    report = BackupReport(
        destination=redact(dest),
        started_at=started.isoformat(),
        finished_at=finished_at.isoformat(),
        seconds=round(time.monotonic() - clock, 3),
        database=snapshot_name,
        segments=segments,
        segments_copied=segments_copied,
        files_copied=files,
        bytes_copied=size,
    )
    with tempfile.TemporaryDirectory(prefix="obrady-backup-") as work:
        summary = Path(work) / SUMMARY
        _write_json(summary, asdict(report))
        _run(["copyto", str(summary), _join(dest, SUMMARY)], "writing backup.json")
    return report


def _is_empty(paths: Paths) -> bool:
    if not paths.data.exists():
        return True
    if paths.database.exists():
        return False
    return not any(
        (paths.data / folder).exists() and any((paths.data / folder).iterdir()) for folder in COPIED
    )


def restore(settings: Settings, source: str) -> RestoreReport:
    """Rebuild a working archive in the (empty) data folder from the backup at source."""
    paths = settings.paths
    src = _check_location(source, paths.data, "source")
    if not _is_empty(paths):
        raise BackupError(
            f"{paths.data} already holds an archive; restore goes into an empty data folder "
            "(move this one aside, or give --data-dir an empty folder)"
        )
    clock = time.monotonic()
    snapshots = _snapshots(src)
    if not snapshots:
        raise BackupError(
            f"no database snapshot in {redact(src)}/{DATABASES}: is this an obrady backup, "
            "and did a backup finish there?"
        )
    paths.data.mkdir(parents=True, exist_ok=True)
    os.chmod(paths.data, 0o700)
    files = size = 0
    listing = subprocess.run(
        [_rclone(), "lsf", "--dirs-only", src], capture_output=True, text=True, check=False
    ).stdout.split()
    for folder in COPIED:
        if f"{folder}/" not in listing:
            continue
        entries = _run(
            ["copy", _join(src, folder), str(paths.data / folder)], f"copying {folder} back"
        )
        f, b = _stats(entries)
        files, size = files + f, size + b
    chosen, problems = _restore_database(src, snapshots, paths.database)
    for problem in problems:
        log.warning("%s", problem)
    index = ArchiveIndex(paths.database)  # applies the migrations of this obrady
    try:
        recovered, sessions, segments, live = _catch_up(index, settings)
    finally:
        index.close()
    return RestoreReport(
        source=redact(src),
        database=chosen,
        sessions=sessions,
        segments=segments,
        recovered_segments=recovered,
        files_copied=files + 1,
        bytes_copied=size + paths.database.stat().st_size,
        live_sessions=live,
        seconds=round(time.monotonic() - clock, 3),
    )


def _restore_database(src: str, snapshots: list[str], target: Path) -> tuple[str, list[str]]:
    """The newest snapshot that passes SQLite's integrity check, put at target."""
    problems: list[str] = []
    partial = target.with_name(f".{target.name}.restoring")
    for name in reversed(snapshots):
        _run(["copyto", _join(src, DATABASES, name), str(partial)], f"copying {name} back")
        try:
            conn = sqlite3.connect(str(partial))
            try:
                result = conn.execute("PRAGMA integrity_check").fetchone()[0]
            finally:
                conn.close()
        except sqlite3.DatabaseError as exc:
            result = str(exc)
        if result == "ok":
            os.chmod(partial, 0o600)
            os.replace(partial, target)
            return name, problems
        problems.append(f"snapshot {name} is damaged ({result}); trying an older one")
        partial.unlink(missing_ok=True)
    raise BackupError("every database snapshot in the backup is damaged: " + "; ".join(problems))


def _catch_up(index: ArchiveIndex, settings: Settings) -> tuple[int, int, int, list[int]]:
    """Index the segments that were finished after the snapshot was taken (the media are the
    truth); (segments recovered, sessions, segments, sessions that were live)."""
    configured = {c.id: c.default_program for c in settings.chambers}
    recovered = segments = 0
    live: list[int] = []
    ids = index.session_ids()
    for session_id in ids:
        session = index.get_session(session_id)
        if session.state == "live":
            live.append(session_id)
        folder = settings.paths.session_media(session.chamber, session_id)
        if folder.is_dir():
            program = index.program_camera(session.chamber, session_id) or configured.get(
                session.chamber, ""
            )
            recovered += recover_from_disk(index, session_id, folder, program or "")
        segments += len(index.all_segments(session_id))
    return recovered, len(ids), segments, live


def backup_status(settings: Settings, now: datetime) -> dict[str, Any]:
    """What the status, /metrics and the console say about backups: the last good one, its age,
    the last failure, and a warning when the last good backup is too old (or failed since)."""
    state = read_state(settings.paths)
    good = state.get("last_good") if isinstance(state.get("last_good"), dict) else None
    failure = state.get("last_failure") if isinstance(state.get("last_failure"), dict) else None
    finished = _moment(good.get("finished_at")) if good else None
    age = None if finished is None else max(0.0, (now - finished).total_seconds())
    limit = settings.backup.warn_after_hours
    warning = problem = None
    if finished is None:
        problem = "none"
        warning = "no backup has been made: run `obrady backup` (or enable obrady-backup.timer)"
    elif age is not None and age > limit * 3600:
        problem = "stale"
        warning = f"the last good backup is {age / 3600:.0f} h old (more than {limit:g} h)"
    if failure is not None:
        problem = "failed"
        why = " ".join(str(failure.get("error", "")).split())[:300]
        warning = (warning + "; " if warning else "") + f"the last backup failed: {why}"
    return {
        "last_good_at": None if finished is None else finished.isoformat(),
        "age_seconds": None if age is None else round(age),
        "destination": good.get("destination") if good else None,
        "segments": good.get("segments") if good else None,
        "last_failure": failure,
        "limit_hours": limit,
        # none, stale or failed (the console words it); None while backups are fine
        "problem": problem,
        "warning": warning,
    }


def _moment(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
