"""How long backups and restores of a large archive take.

Builds a synthetic archive of --hours of recording (sessions of --session-hours, segments of
--segment-seconds, one camera, a transcript line every 5 s), indexed by obrady's own recovery
from the media. The archive's segments are small (--segment-kb) so that 100 hours fit on a test
disk with the real number of files; one more session, recorded after the first backup, is
written at a real bitrate (--bitrate-kbps). Then it measures, with the wall-clock and the CPU
time of obrady and rclone together:

- the first backup of the whole archive into a local folder;
- the nightly increment: the one new session;
- a restore of the whole archive into an empty folder, then `obrady verify --all`;
- `obrady index rebuild` of the restored archive with its database gone: sessions, runs and
  segments from the media, agendas and transcripts from each session's record.json.

    PYTHONPATH=. .venv/bin/python bench/backup.py [--hours 100] [--work DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from archive.index import ArchiveIndex
from archive.session_record import write_record
from config.settings import Settings, parse_settings
from recorder.ffmpeg import SEGMENT_LIST
from streaming.services.backup import backup, restore
from streaming.services.control import recover_from_disk
from streaming.services.records import rebuild_index

T = TypeVar("T")
CONFIG = """
[server]
data_dir = "{data}"
[[chambers]]
id = "sala"
name = "Sala obrad"
[chambers.source]
kind = "synthetic"
"""


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(what: str, fn: Callable[[], T]) -> tuple[T, float, float]:
    cpu, wall = cpu_seconds(), time.monotonic()
    result = fn()
    wall, cpu = time.monotonic() - wall, cpu_seconds() - cpu
    print(f"{what}: {wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)
    return result, wall, cpu


def add_session(
    data: Path, index: ArchiveIndex, start: datetime, hours: float, seg_s: float, seg_bytes: int
) -> tuple[int, int]:
    """A session of `hours` recorded in segments of seg_bytes; (session id, bytes)."""
    session = index.create_session(
        chamber="sala",
        title=f"Sesja {start:%Y-%m-%d}",
        kind="session",
        scheduled_start=start,
        scheduled_end=start + timedelta(hours=hours),
        agenda_text="",
        agenda=[],
        created_by=None,
    )
    folder = data / "media" / "sala" / str(session.id)
    run = folder / "main" / "run-0001"
    run.mkdir(parents=True)
    count = round(hours * 3600 / seg_s)
    block = os.urandom(seg_bytes + 4096)
    lines = []
    for n in range(count):
        # Each file differs (a fresh offset into the random block), as real segments do.
        (run / f"seg-{n:06d}.ts").write_bytes(block[n % 4096 : n % 4096 + seg_bytes])
        lines.append(f"seg-{n:06d}.ts,{n * seg_s:.6f},{(n + 1) * seg_s:.6f}")
    (run / SEGMENT_LIST).write_text("\n".join(lines) + "\n")
    recover_from_disk(index, session.id, folder, "main")
    now = datetime.now(UTC).isoformat()
    conn = index._conn  # noqa: SLF001 - a bulk transcript, for the database's size only
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO transcript_lines (session_id, start_seconds, end_seconds, text, source,"
        " created_at) VALUES (?,?,?,?, 'automatic', ?)",
        [
            (session.id, t, t + 4.5, f"Radny zabiera głos w sprawie punktu {t // 600:.0f}.", now)
            for t in range(0, int(hours * 3600), 5)
        ],
    )
    conn.execute("COMMIT")
    # The record obrady keeps beside the media (the service writes it whenever it changes).
    write_record(folder, index.session_record(session.id))
    return session.id, count * seg_bytes


def folder_size(path: Path) -> tuple[int, int]:
    files = size = 0
    for root, _, names in os.walk(path):
        for name in names:
            files += 1
            size += os.lstat(os.path.join(root, name)).st_size
    return files, size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=100)
    parser.add_argument("--session-hours", type=float, default=4)
    parser.add_argument("--segment-seconds", type=float, default=2)
    parser.add_argument("--segment-kb", type=int, default=8)
    parser.add_argument("--bitrate-kbps", type=int, default=2000)
    parser.add_argument("--work", type=Path, help="a folder to build in (default: a temporary one)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="obrady-bench-backup-"))
    work.mkdir(parents=True, exist_ok=True)
    data, dest, restored = work / "data", work / "backup", work / "restored"
    for folder in (data, dest, restored):
        shutil.rmtree(folder, ignore_errors=True)
    settings: Settings = parse_settings(CONFIG.format(data=data))
    seg_s = args.segment_seconds
    sessions = max(1, round(args.hours / args.session_hours))
    print(
        f"archive: {sessions} sessions of {args.session_hours:g} h, {seg_s:g} s segments of "
        f"{args.segment_kb} KiB; the new session at {args.bitrate_kbps} kbit/s",
        flush=True,
    )
    index = ArchiveIndex(data / "obrady.sqlite3")
    start = datetime(2024, 1, 1, 10, tzinfo=UTC)

    def build() -> None:
        for n in range(sessions):
            add_session(data, index, start + timedelta(days=7 * n), args.session_hours, seg_s,
                        args.segment_kb * 1024)  # fmt: skip

    timed("build and index the archive from its media", build)
    files, size = folder_size(data)
    print(f"archive: {files} files, {size / 1e9:.2f} GB, database "
          f"{(data / 'obrady.sqlite3').stat().st_size / 1e6:.0f} MB", flush=True)  # fmt: skip

    first, wall1, cpu1 = timed("first backup", lambda: backup(settings, str(dest)))
    print(f"  {first.files_copied} files, {first.bytes_copied / 1e9:.2f} GB copied", flush=True)

    seg_bytes = args.bitrate_kbps * 1000 // 8 * int(seg_s)
    new = start + timedelta(days=7 * sessions)
    (_, new_bytes), _, _ = timed(
        "record one more session (writing it)",
        lambda: add_session(data, index, new, args.session_hours, seg_s, seg_bytes),
    )
    index.close()
    nightly, wall2, cpu2 = timed("nightly increment", lambda: backup(settings, str(dest)))
    print(f"  {nightly.segments_copied} segments, {nightly.bytes_copied / 1e9:.2f} GB copied "
          f"(the new session: {new_bytes / 1e9:.2f} GB)", flush=True)  # fmt: skip
    idle, _, _ = timed("a backup with nothing new", lambda: backup(settings, str(dest)))
    print(f"  {idle.segments_copied} segments copied", flush=True)

    target = settings.model_copy(
        update={"server": settings.server.model_copy(update={"data_dir": restored})}
    )
    report: Any
    report, wall3, _ = timed("restore into an empty folder", lambda: restore(target, str(dest)))
    print(f"  {report.sessions} sessions, {report.segments} segments", flush=True)
    verify = [sys.executable, "-m", "streaming.app.cli", "verify", "--all", "--data-dir",
              str(restored)]  # fmt: skip
    done, _, _ = timed(
        "obrady verify --all on the restored archive",
        lambda: subprocess.run(verify, capture_output=True, text=True, check=False),
    )
    print(f"  exit {done.returncode}: {done.stdout.strip().splitlines()[-1]}", flush=True)
    if done.returncode != 0:
        print(done.stderr[-2000:], file=sys.stderr)
        return 1
    # The database lost: moved aside, and rebuilt from the media and the records.
    for name in ("obrady.sqlite3", "obrady.sqlite3-wal", "obrady.sqlite3-shm"):
        if (restored / name).exists():
            (restored / name).rename(restored / (name + ".lost"))
    rebuilt, wall4, cpu4 = timed("obrady index rebuild", lambda: rebuild_index(target))
    print(f"  {rebuilt.sessions} sessions ({rebuilt.from_records} from their record), "
          f"{rebuilt.segments} segments", flush=True)  # fmt: skip
    if (rebuilt.sessions, rebuilt.segments) != (report.sessions, report.segments):
        print("the rebuilt index differs from the restored one", file=sys.stderr)
        return 1
    print(
        f"summary: first backup {wall1:.0f} s; nightly increment {wall2:.1f} s wall, "
        f"{cpu2:.1f} s CPU; restore {wall3:.0f} s; index rebuild {wall4:.0f} s wall, "
        f"{cpu4:.0f} s CPU"
    )
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
