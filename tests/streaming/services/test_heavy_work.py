"""The live picture and the record never wait on heavy work: with an MP4 export of a long
recording running and the CPU overloaded by work at the captions' level (recorder/priority.py),
or live captions recognising the session, the public LL-HLS playlist keeps gaining parts on
time and every segment ffmpeg finished is in the archive."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from conftest import Service, record_two_items, stop_service, wait_for
from helpers import newest_part, thread_ticks
from speech import start_speaking_service

from recorder.ffmpeg import SEGMENT_LIST
from recorder.priority import CAPTIONS, CAPTURE, EXPORTS, autogroup_nice_of, nice_of, spawn
from streaming.keys import ARCHIVE, RECORDER, TRANSCRIPTION
from streaming.keys import EXPORTS as EXPORTS_KEY
from streaming.services.exports import ExportJob, read_view, whole_plan

# How long the live playlist is watched under load.
WATCH_SECONDS = 15.0
POLL_SECONDS = 0.05
# A recording this many times longer than the one made here (the same files over and over): an
# export that takes longer than the watch.
LONG = 1500


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def finished_by_ffmpeg(media: Path) -> set[str]:
    """camera/run/file of every segment ffmpeg listed as finished in the session's runs."""
    found = set()
    for listing in media.glob(f"*/run-*/{SEGMENT_LIST}"):
        for line in listing.read_text().splitlines():
            if line.strip():
                name = line.split(",", 1)[0]
                found.add(f"{listing.parent.parent.name}/{listing.parent.name}/{name}")
    return found


async def long_export(service: Service, session_id: int) -> ExportJob:
    """An export of the session's recording listed LONG times over, started and at work."""
    archive = service.app[ARCHIVE]
    view = await archive.call(read_view, archive.index, session_id)
    plan = whole_plan(service.settings, view)
    plan = replace(plan, group="range-0-1", files=plan.files * LONG, chapters=())
    job = await service.app[EXPORTS_KEY].ensure(plan)
    assert isinstance(job, ExportJob)
    await wait_for(lambda: asyncio.sleep(0, job.progress > 0), 30, "the export at work")
    return job


def export_process(job: ExportJob) -> int:
    """The pid of the export's ffmpeg."""
    return next(
        pid
        for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
        if _comm(pid) == "ffmpeg" and f".{job.target.stem}-" in _cmdline(pid)
    )


async def parts_flow(service: Service, chamber: str = "sala") -> None:
    async def listed() -> bool:
        text = await service.get_text(f"/live/{chamber}/index.m3u8", status=None)
        return newest_part(text) is not None

    await wait_for(listed, 30, "parts in the live playlist")


def capture_at_service_level(service: Service, session_id: int) -> None:
    """The session's capture ffmpeg runs at the service's own level."""
    pid = next(s.pid for s in service.app[RECORDER].statuses() if s.session_id == session_id)
    assert pid is not None
    assert nice_of(pid) == CAPTURE.nice == 0
    assert autogroup_nice_of(pid) in (None, 0)


async def watch_live(service: Service, seconds: float, chamber: str = "sala") -> tuple[int, float]:
    """Poll the public live playlist for `seconds`: how many new parts it gained, and the
    longest time it went without one."""
    path = f"/live/{chamber}/index.m3u8"
    last, changed_at, longest, parts = None, time.monotonic(), 0.0, 0
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        newest = newest_part(await service.get_text(path, status=None))
        now = time.monotonic()
        if newest != last:
            if last is not None:
                parts += 1
                longest = max(longest, now - changed_at)
            last, changed_at = newest, now
        await asyncio.sleep(POLL_SECONDS)
    return parts, max(longest, time.monotonic() - changed_at)


def assert_on_time(service: Service, parts: int, longest: float, seconds: float) -> None:
    part_seconds = service.settings.live.part_target_seconds
    assert longest <= part_seconds + 1.0, f"the live playlist stood still {longest:.2f} s"
    assert parts >= seconds / part_seconds / 2, parts


async def stop_and_check_nothing_lost(service: Service, session_id: int) -> None:
    """Stop the session: every segment ffmpeg listed is indexed and in the recorded playlist."""
    archive = service.app[ARCHIVE]
    await service.post_json(f"/api/v1/sessions/{session_id}/stop")
    session = await archive.call(archive.index.get_session, session_id)
    media = service.settings.paths.session_media(session.chamber, session_id)
    finished = await asyncio.to_thread(finished_by_ffmpeg, media)
    indexed = {s.rel_path for s in await archive.call(archive.index.all_segments, session_id)}
    assert finished, "ffmpeg listed no segment"
    assert finished == indexed, (
        f"listed by ffmpeg but not indexed: {sorted(finished - indexed)}; "
        f"indexed but not listed: {sorted(indexed - finished)}"
    )
    recorded = await service.get_text(f"/sessions/{session_id}/index.m3u8")
    listed = [line for line in recorded.splitlines() if line.endswith(".ts")]
    assert all(any(line.endswith(path) for line in listed) for path in finished), listed


async def test_live_parts_keep_coming_and_no_segment_is_lost_under_heavy_work(
    service: Service,
) -> None:
    # A recording to export, then a session that goes live.
    first = (await record_two_items(service))["id"]
    live = (await service.begin(title="Sesja na żywo"))["id"]
    await parts_flow(service)
    capture_at_service_level(service, live)
    # The heavy work: the export, and as many busy processes at the captions' level as there
    # are cores (a transcription would be at that level).
    job = await long_export(service, first)
    hogs = [
        await spawn(CAPTIONS, [sys.executable, "-c", "while True: pass"])
        for _ in range(os.cpu_count() or 2)
    ]
    try:
        export_pid = export_process(job)
        assert nice_of(export_pid) == EXPORTS.nice
        assert autogroup_nice_of(export_pid) in (None, EXPORTS.nice)
        hog_ticks = [cpu_ticks(h.pid) for h in hogs]
        export_ticks = cpu_ticks(export_pid)
        progress_before = job.progress
        parts, longest = await watch_live(service, WATCH_SECONDS)
        assert job.state == "working", "the export ended before the watch did: make it longer"
        hog_each = [cpu_ticks(h.pid) - ticks for h, ticks in zip(hogs, hog_ticks, strict=True)]
        export_used = cpu_ticks(export_pid) - export_ticks
        progress_after = job.progress
    finally:
        for hog in hogs:
            hog.kill()
            await hog.wait()
    print(
        f"under load: {parts} new parts in {WATCH_SECONDS:.0f} s, longest wait {longest:.2f} s; "
        f"busy processes used {sum(hog_each) / 100:.1f} CPU s, the export "
        f"{export_used / 100:.1f} CPU s ({progress_before:.1%} to {progress_after:.1%})"
    )
    # The heavy work did run (the machine was busy), and the live edge never stood still.
    assert sum(hog_each) > 0 and export_used > 0 and progress_after > progress_before
    # Captions give way to downloads: the export (nice 15) gets at least about the share of each
    # process at the captions' level (nice 19). At the same level it got a tenth of it here.
    assert export_used >= max(hog_each) / 2, (export_used, hog_each)
    assert_on_time(service, parts, longest, WATCH_SECONDS)
    await stop_and_check_nothing_lost(service, live)


async def test_live_captions_and_an_export_leave_the_live_edge_alone(tmp_path: Path) -> None:
    service = await start_speaking_service(tmp_path)
    try:
        first = (await record_two_items(service))["id"]
        job = await long_export(service, first)
        live = (await service.begin(title="Sesja z napisami"))["id"]
        await parts_flow(service)
        capture_at_service_level(service, live)
        captions = service.app[TRANSCRIPTION]

        async def captioning() -> bool:
            captioner = captions.live.get(live)
            return captioner is not None and captioner.status.windows > 0

        # Live captions at work (their first window heard), and the export still running.
        await wait_for(captioning, 40, "live captions of the running session")
        before = thread_ticks()
        windows = captions.live[live].status.windows
        parts, longest = await watch_live(service, WATCH_SECONDS)
        after = thread_ticks()
        windows = captions.live[live].status.windows - windows
        assert job.state == "working", "the export ended before the watch did: make it longer"
        # Recognition worked during the watch, on threads at the captions' level.
        lowered = sum(
            ticks - before.get(tid, (0, 0))[0]
            for tid, (ticks, nice) in after.items()
            if nice == service.settings.transcription.nice == CAPTIONS.nice
        )
        print(
            f"with live captions ({windows} windows, {lowered / 100:.1f} CPU s at nice 19) and "
            f"an export: {parts} new parts in {WATCH_SECONDS:.0f} s, longest wait {longest:.2f} s"
        )
        assert lowered > 0 and windows >= 1
        assert_on_time(service, parts, longest, WATCH_SECONDS)
        await stop_and_check_nothing_lost(service, live)
    finally:
        await stop_service(service)


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError:
        return ""
