"""The records beside the media, and the index rebuilt from them.

`write_changed_records` writes the record (archive/session_record.py) of every session that
changed since its last one; the service runs it every few seconds. `rebuild_index` makes a new
database from the media folders alone: each session from its record (or, without one, a bare
session named after its folder), its runs and segments from the segment lists and manifests,
its sound holes from sound-holes.jsonl. The media's own holes are found again by the media
check, which checks every session whose segments are unchecked."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from archive.db import ArchiveError, to_text
from archive.index import ArchiveIndex, AsyncArchive
from archive.session_record import RecordError, read_record, write_record
from config.paths import Paths
from config.settings import Settings
from recorder.supervisor import SOUND_HOLES
from streaming.services.control import recover_from_disk

log = logging.getLogger(__name__)

WRITE_EVERY_SECONDS = 2.0


async def write_changed_records(archive: AsyncArchive, paths: Paths) -> int:
    """Write the record of each session changed since its last; how many were written."""
    written = 0
    for session_id, version in await archive.read(ArchiveIndex.changed_records):
        record = await archive.read(ArchiveIndex.session_record, session_id)
        session = record["tables"]["sessions"][0]
        folder = paths.session_media(str(session["chamber"]), session_id)
        await asyncio.to_thread(write_record, folder, record)
        await archive.call(archive.index.record_written, session_id, version)
        written += 1
    return written


async def keep_records_written(archive: AsyncArchive, paths: Paths) -> None:
    """Write changed records every WRITE_EVERY_SECONDS until cancelled. Any failure (the
    database locked past its timeout, a full disk) is logged and tried again at the next
    round: the marks stay until a record is written."""
    while True:
        try:
            await write_changed_records(archive, paths)
        except Exception:  # a locked database, a full disk: the loop must go on
            log.exception("could not write the sessions' records beside their media")
        await asyncio.sleep(WRITE_EVERY_SECONDS)


class RebuildError(ArchiveError):
    """The index cannot be rebuilt here; the message says why and what to do."""


@dataclass(frozen=True)
class RebuildReport:
    """What `obrady index rebuild` put back."""

    sessions: int
    from_records: int
    without_record: list[int]
    segments: int
    sound_holes: int
    seconds: float


def _session_folders(media: Path) -> list[tuple[int, str, Path]]:
    """(session id, chamber, folder) of every session folder under media, by id."""
    found = []
    if media.is_dir():
        for chamber in media.iterdir():
            if not chamber.is_dir():
                continue
            for folder in chamber.iterdir():
                if folder.is_dir() and folder.name.isdigit():
                    found.append((int(folder.name), chamber.name, folder))
    ids = [f[0] for f in found]
    doubled = sorted({i for i in ids if ids.count(i) > 1})
    if doubled:
        raise RebuildError(f"session folders with the same id in two chambers: {doubled}")
    return sorted(found)


def _bare_session(index: ArchiveIndex, session_id: int, chamber: str, folder: Path) -> None:
    """A session known only from its media: named after its folder, placed at its files."""
    times = [p.stat().st_mtime for p in folder.glob("*/run-*/*") if p.is_file()]
    first = datetime.fromtimestamp(min(times) if times else folder.stat().st_mtime, UTC)
    last = datetime.fromtimestamp(max(times) if times else folder.stat().st_mtime, UTC)
    if last <= first:
        last = datetime.fromtimestamp(first.timestamp() + 1, UTC)
    index.insert_record(
        {
            "tables": {
                "sessions": [
                    {
                        "id": session_id,
                        "chamber": chamber,
                        "title": f"Nagranie {chamber} {first:%Y-%m-%d} (sesja {session_id})",
                        "kind": "session",
                        "scheduled_start": to_text(first),
                        "scheduled_end": to_text(last),
                        "state": "ended",
                        "started_at": to_text(first),
                        "ended_at": to_text(last),
                        "stopped_by": None,
                        "agenda_text": "",
                        "created_by": None,
                        "created_at": to_text(datetime.now(UTC)),
                    }
                ]
            }
        }
    )


def _sound_holes(index: ArchiveIndex, session_id: int, folder: Path) -> int:
    """The sound holes of sound-holes.jsonl that the record does not hold already."""
    path = folder / SOUND_HOLES
    if not path.is_file():
        return 0
    known = index.sound_hole_starts(session_id)
    added = 0
    for line in path.read_text("utf-8", "replace").splitlines():
        try:
            hole = json.loads(line)
            start = datetime.fromisoformat(hole["start"])
            seconds = float(hole["seconds"])
            cause = str(hole["cause"])
        except (ValueError, KeyError, TypeError):
            continue
        if start in known:
            continue
        index.record_sound_hole(session_id, start, seconds, cause)
        added += 1
    return added


def rebuild_index(settings: Settings) -> RebuildReport:
    """A new index from the media folders (the database must be gone: moved aside or lost)."""
    paths = settings.paths
    if paths.database.exists():
        raise RebuildError(
            f"{paths.database} exists; `obrady index rebuild` makes a new one from the media: "
            "move the old one aside first (keep it: it holds the accounts and the audit log)"
        )
    folders = _session_folders(paths.media)
    if not folders:
        raise RebuildError(f"no session folders under {paths.media}: is the data folder right?")
    clock = time.monotonic()
    configured = {c.id: c.default_program for c in settings.chambers}
    index = ArchiveIndex(paths.database)
    from_records = segments = holes = 0
    bare: list[int] = []
    try:
        for session_id, chamber, folder in folders:
            try:
                record = read_record(folder)
            except RecordError as exc:
                log.warning("%s; the session is rebuilt from its media only", exc)
                record = None
            if record is not None:
                if int(record.get("session_id", -1)) != session_id:
                    raise RebuildError(f"{folder}/record.json is the record of another session")
                try:
                    index.insert_record(record)
                except RecordError as exc:
                    raise RebuildError(
                        f"{folder}/record.json: {exc}; move it aside to rebuild that session "
                        "from its media alone"
                    ) from exc
                from_records += 1
            else:
                _bare_session(index, session_id, chamber, folder)
                bare.append(session_id)
            program = index.program_camera(chamber, session_id) or configured.get(chamber, "")
            recover_from_disk(index, session_id, folder, program or "main")
            segments += len(index.all_segments(session_id))
            holes += _sound_holes(index, session_id, folder)
        broken = index._conn.execute("PRAGMA foreign_key_check").fetchall()  # noqa: SLF001
        if broken:
            raise RebuildError(f"the rebuilt index has broken references: {broken[:5]}")
    except BaseException:
        index.close()
        for leftover in (paths.database, Path(f"{paths.database}-wal"),
                         Path(f"{paths.database}-shm")):  # fmt: skip
            leftover.unlink(missing_ok=True)
        raise
    index.close()
    return RebuildReport(
        sessions=len(folders),
        from_records=from_records,
        without_record=bare,
        segments=segments,
        sound_holes=holes,
        seconds=round(time.monotonic() - clock, 3),
    )
