"""Backups that restore: `obrady backup` while a session records, `obrady restore` into an empty
folder, `obrady verify --all`; to a local folder and to a real SFTP server (OpenSSH)."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    Service,
    free_port,
    record_two_items,
    segments_of,
    start_service,
    stop_service,
    wait_for,
)
from helpers import obrady
from servers import SftpServer

from archive.index import ArchiveIndex
from archive.integrity import sha256_file
from config.settings import Settings
from recorder.ffmpeg import FRAME_TIMES, SEGMENT_LIST
from streaming.services.backup import (
    STATE_FILE,
    BackupError,
    backup,
    media_files,
    read_state,
    restore,
)
from streaming.services.control import recover_from_disk


def with_data(settings: Settings, data: Path) -> Settings:
    server = settings.server.model_copy(update={"data_dir": data})
    return settings.model_copy(update={"server": server})


def tables(database: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of an archive database (read-only)."""
    conn = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)
    try:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                " ORDER BY name"
            )
        ]
        return {n: sorted(conn.execute(f'SELECT * FROM "{n}"'), key=repr) for n in names}
    finally:
        conn.close()


def checksums(database: Path) -> dict[str, str]:
    """rel path -> SHA-256 of every indexed segment of every session."""
    index = ArchiveIndex.reading(database)
    try:
        return {
            f"{sid}/{s.rel_path}": str(s.sha256)
            for sid in index.session_ids()
            for s in index.all_segments(sid)
        }
    finally:
        index.close()


async def test_backups_made_while_a_session_records_restore_every_record(
    make_settings: Any, tmp_path: Path
) -> None:
    settings = make_settings()
    data = settings.data_path
    dest = tmp_path / "backup"
    service = await start_service(settings)
    try:
        created = await record_two_items(service, stop=False)
        sid = created["id"]
        councillor = await service.post_json(
            "/api/v1/councillors", {"name": "Ewa Zielińska"}, status=201
        )
        await service.post_json(
            f"/api/v1/sessions/{sid}/votes",
            {
                "subject": "Przyjęcie porządku obrad",
                "choices": {str(councillor["councillors"][0]["id"]): "for"},
            },
            status=201,
        )

        def add_line() -> None:
            index = ArchiveIndex(data / "obrady.sqlite3")
            try:
                index.add_line(sid, 1.0, 3.0, "Otwieram sesję Rady Miasta.", "staff")
            finally:
                index.close()

        await asyncio.to_thread(add_line)

        # While the session records: a first backup, then an increment.
        first = await asyncio.to_thread(backup, settings, str(dest))
        assert first.segments >= 7
        assert first.segments_copied == first.segments
        have = await segments_of(service, sid)

        async def more() -> bool:
            return await segments_of(service, sid) >= have + 3

        await wait_for(more, 30, "three more segments")
        second = await asyncio.to_thread(backup, settings, str(dest))
        assert second.segments >= first.segments + 3
        # Only what is new is copied: each segment once, never again.
        assert second.segments_copied == second.segments - first.segments
        state = read_state(settings.paths)
        assert state["last_good"]["finished_at"] == second.finished_at

        # A restore of the backup made during the recording is whole and verifies.
        mid = tmp_path / "restored-mid"
        rc, out, err = await obrady("restore", str(dest), "--data-dir", str(mid))
        assert rc == 0, err
        assert f"session {sid} was recording when the backup was made" in out
        rc, out, err = await obrady("verify", "--all", "--data-dir", str(mid))
        assert rc == 0, out + err
        restored_mid = checksums(mid / "obrady.sqlite3")
        assert len(restored_mid) >= second.segments

        await service.post_json(f"/api/v1/sessions/{sid}/stop")
    finally:
        await stop_service(service)

    # Every restored segment is the recorded one, byte for byte.
    original = checksums(data / "obrady.sqlite3")
    assert restored_mid.items() <= original.items()

    # The final backup, restored, equals the archive in every table: sessions, agenda, markers,
    # votes and their choices, transcript lines and their history, runs, segments, users.
    third = await asyncio.to_thread(backup, settings, str(dest))
    assert third.segments == len(original)
    assert third.segments_copied == third.segments - second.segments
    final = tmp_path / "restored"
    report = await asyncio.to_thread(restore, with_data(settings, final), str(dest))
    assert report.recovered_segments == 0
    assert report.database == third.database
    assert report.live_sessions == []
    before, after = tables(data / "obrady.sqlite3"), tables(final / "obrady.sqlite3")
    assert before.keys() == after.keys()
    for name in before:
        assert before[name] == after[name], name
    for name in ("sessions", "markers", "votes", "vote_choices", "transcript_lines", "segments"):
        assert before[name], f"the test recorded no {name}"
    assert checksums(final / "obrady.sqlite3") == original
    rc, out, err = await obrady("verify", "--all", "--data-dir", str(final))
    assert rc == 0, out + err
    assert f"session {sid}: OK, {len(original)} segment(s)" in out
    assert (os.stat(final).st_mode & 0o777) == 0o700
    assert (os.stat(final / "obrady.sqlite3").st_mode & 0o777) == 0o600


def tiny_archive(data: Path, segments: int = 3) -> int:
    """An archive with one session of `segments` small segment files (not real media: the
    backup copies bytes), indexed as the recorder would index them; the session's id."""
    index = ArchiveIndex(data / "obrady.sqlite3")
    try:
        at = datetime.now(UTC) - timedelta(hours=2)
        session = index.create_session(
            chamber="sala",
            title="Sesja",
            kind="session",
            scheduled_start=at,
            scheduled_end=at + timedelta(hours=1),
            agenda_text="",
            agenda=[],
            created_by=None,
        )
        folder = data / "media" / "sala" / str(session.id)
        run = folder / "main" / "run-0001"
        run.mkdir(parents=True)
        lines = []
        for n in range(segments):
            (run / f"seg-{n:06d}.ts").write_bytes(os.urandom(20_000))
            lines.append(f"seg-{n:06d}.ts,{n}.000000,{n + 1}.000000")
        (run / SEGMENT_LIST).write_text("\n".join(lines) + "\n")
        assert recover_from_disk(index, session.id, folder, "main") == segments
        return session.id
    finally:
        index.close()


def test_only_finished_segments_are_copied(tmp_path: Path) -> None:
    data = tmp_path / "data"
    sid = tiny_archive(data, 2)
    run = data / "media" / "sala" / str(sid) / "main" / "run-0001"
    (run / "seg-000002.ts").write_bytes(b"still being written")
    os.mkfifo(run / FRAME_TIMES)
    (run / ".seg.part").write_bytes(b"x")
    finished, others = media_files(data / "media")
    prefix = f"sala/{sid}"
    assert finished == [
        f"{prefix}/main/run-0001/seg-000000.ts",
        f"{prefix}/main/run-0001/seg-000001.ts",
    ]
    assert others == [f"{prefix}/main/run-0001/{SEGMENT_LIST}", f"{prefix}/manifest.sha256"]


async def test_a_changed_segment_stops_the_backup_and_its_copy_is_kept(
    make_settings: Any, tmp_path: Path
) -> None:
    settings = make_settings()
    data = settings.data_path
    sid = tiny_archive(data)
    dest = tmp_path / "backup"
    good = backup(settings, str(dest))
    assert good.segments_copied == 3
    rel = f"sala/{sid}/main/run-0001/seg-000001.ts"
    recorded = sha256_file(data / "media" / rel)
    with (data / "media" / rel).open("ab") as fh:  # damage on the archive's disk
        fh.write(b"\0" * 100)
    with pytest.raises(BackupError) as failed:
        backup(settings, str(dest))
    assert "seg-000001.ts" in str(failed.value)
    assert sha256_file(dest / "media" / rel) == recorded  # the good copy is untouched
    state = json.loads((data / STATE_FILE).read_text())
    assert state["last_good"]["finished_at"] == good.finished_at
    assert "seg-000001.ts" in state["last_failure"]["error"]
    # verify --all names the damaged file and fails.
    rc, out, err = await obrady("verify", "--all", "--data-dir", str(data))
    assert rc == 1
    assert f"session {sid}: main/run-0001/seg-000001.ts: SHA-256 mismatch" in err


async def test_restore_refuses_an_archive_in_place_and_a_folder_that_is_no_backup(
    make_settings: Any, tmp_path: Path
) -> None:
    settings = make_settings()
    data = settings.data_path
    tiny_archive(data)
    dest = tmp_path / "backup"
    backup(settings, str(dest))
    before = tables(data / "obrady.sqlite3")
    rc, _, err = await obrady("restore", str(dest), "--data-dir", str(data))
    assert rc == 1
    assert "already holds an archive" in err and "empty data folder" in err
    assert tables(data / "obrady.sqlite3") == before
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, _, err = await obrady("restore", str(empty), "--data-dir", str(tmp_path / "new"))
    assert rc == 1
    assert "no database snapshot" in err
    assert not (tmp_path / "new" / "obrady.sqlite3").exists()
    # A backup inside the data folder protects nothing.
    rc, _, err = await obrady("backup", "--to", str(data / "copy"), "--data-dir", str(data))
    assert rc == 1
    assert "overlaps the data folder" in err
    rc, _, err = await obrady("backup", "--data-dir", str(data))
    assert rc == 1
    assert "no backup destination" in err


async def test_a_backup_to_an_sftp_server_restores(make_settings: Any, tmp_path: Path) -> None:
    settings = make_settings()
    data = settings.data_path
    sid = tiny_archive(data)
    async with SftpServer(free_port(), tmp_path / "sshd") as server:
        remote = server.remote(tmp_path / "remote")
        first = await asyncio.to_thread(backup, settings, remote)
        assert first.segments_copied == 3
        assert "key_file" in first.destination
        again = await asyncio.to_thread(backup, settings, remote)
        assert again.segments_copied == 0
        restored = tmp_path / "restored"
        report = await asyncio.to_thread(restore, with_data(settings, restored), remote)
    assert report.sessions == 1 and report.segments == 3
    for n in range(3):
        rel = f"media/sala/{sid}/main/run-0001/seg-{n:06d}.ts"
        assert sha256_file(restored / rel) == sha256_file(data / rel)
        assert sha256_file(tmp_path / "remote" / rel) == sha256_file(data / rel)
    rc, out, err = await obrady("verify", "--all", "--data-dir", str(restored))
    assert rc == 0, out + err


async def console_of(service: Service, lang: str) -> str:
    """The console page as a signed-in administrator's browser gets it."""
    headers = await service.signed_in()
    async with service.http.get(f"{service.base}/console?lang={lang}", headers=headers) as resp:
        assert resp.status == 200 and resp.url.path == "/console", resp.url
        return await resp.text()


async def test_the_status_metrics_and_console_warn_until_a_good_backup_and_when_it_is_old(
    service: Service, tmp_path: Path
) -> None:
    status = await service.status()
    assert status["backup"]["problem"] == "none" and status["backup"]["last_good_at"] is None
    assert "obrady_backup_failing 1.0" in await service.get_text("/metrics")
    console = await console_of(service, "pl")
    assert "Nie wykonano jeszcze kopii zapasowej archiwum" in console

    report = await asyncio.to_thread(backup, service.settings, str(tmp_path / "backup"))
    status = await service.status()
    assert status["backup"]["problem"] is None and status["backup"]["warning"] is None
    assert status["backup"]["last_good_at"] == report.finished_at
    assert 0 <= status["backup"]["age_seconds"] < 60
    metrics = await service.get_text("/metrics")
    assert "obrady_backup_failing 0.0" in metrics
    assert "obrady_backup_age_seconds " in metrics
    assert 'id="backup-warning"' not in await console_of(service, "pl")

    # A day and more later (the state file is what the nightly run leaves behind).
    state_file = service.settings.data_path / STATE_FILE
    state = json.loads(state_file.read_text())
    old = datetime.fromisoformat(report.finished_at) - timedelta(hours=30)
    state["last_good"]["finished_at"] = old.isoformat()
    state_file.write_text(json.dumps(state))
    status = await service.status()
    assert status["backup"]["problem"] == "stale"
    assert status["backup"]["age_seconds"] >= 30 * 3600
    console = await console_of(service, "en")
    assert "The last good backup of the archive is 30 h old (more than 25 h)." in console

    # A failed run is said at once, with rclone's reason.
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(BackupError) as failed:
        await asyncio.to_thread(backup, service.settings, str(tmp_path / "file" / "x"))
    status = await service.status()
    assert status["backup"]["problem"] == "failed"
    assert "failed" in status["backup"]["warning"]
    console = await console_of(service, "pl")
    assert "Ostatnia kopia zapasowa archiwum nie powiodła się" in console
    assert str(failed.value).split()[0] in console
