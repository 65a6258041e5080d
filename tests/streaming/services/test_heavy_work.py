"""The live picture and the record never wait on heavy work: with an MP4 export of a long
recording running and the CPU overloaded by work at the captions' level (recorder/priority.py),
the public LL-HLS playlist keeps gaining parts on time and every segment ffmpeg finished is in
the archive."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from conftest import Service, record_two_items, wait_for

from recorder.ffmpeg import SEGMENT_LIST
from recorder.priority import CAPTIONS, CAPTURE, EXPORTS, autogroup_nice_of, nice_of, spawn
from streaming.keys import ARCHIVE, RECORDER
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


def newest_part(playlist: str) -> str | None:
    """The URI of the last part the live playlist lists."""
    found = None
    for line in playlist.splitlines():
        if line.startswith("#EXT-X-PART:"):
            found = line.split('URI="', 1)[1].split('"', 1)[0]
    return found


def finished_by_ffmpeg(media: Path) -> set[str]:
    """camera/run/file of every segment ffmpeg listed as finished in the session's runs."""
    found = set()
    for listing in media.glob(f"*/run-*/{SEGMENT_LIST}"):
        for line in listing.read_text().splitlines():
            if line.strip():
                name = line.split(",", 1)[0]
                found.add(f"{listing.parent.parent.name}/{listing.parent.name}/{name}")
    return found


async def test_live_parts_keep_coming_and_no_segment_is_lost_under_heavy_work(
    service: Service,
) -> None:
    archive = service.app[ARCHIVE]
    part_seconds = service.settings.live.part_target_seconds
    # A recording to export, made long: its segments listed many times over.
    first = (await record_two_items(service))["id"]
    view = await archive.call(read_view, archive.index, first)
    plan = whole_plan(service.settings, view)
    plan = replace(plan, group="range-0-1", files=plan.files * LONG, chapters=())
    # Now a session goes live.
    live = (await service.begin(title="Sesja na żywo"))["id"]
    playlist_path = "/live/sala/index.m3u8"

    async def parts_flow() -> bool:
        text = await service.get_text(playlist_path, status=None)
        return newest_part(text) is not None

    await wait_for(parts_flow, 30, "parts in the live playlist")
    capture = next(s.pid for s in service.app[RECORDER].statuses() if s.session_id == live)
    assert capture is not None
    # The heavy work: the export, and as many busy processes at the captions' level as there
    # are cores (a transcription would be at that level).
    job = await service.app[EXPORTS_KEY].ensure(plan)
    assert isinstance(job, ExportJob)
    await wait_for(lambda: asyncio.sleep(0, job.progress > 0), 30, "the export at work")
    hogs = [
        await spawn(CAPTIONS, [sys.executable, "-c", "while True: pass"])
        for _ in range(os.cpu_count() or 2)
    ]
    try:
        export_pid = next(
            pid
            for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
            if _comm(pid) == "ffmpeg" and f".{job.target.stem}-" in _cmdline(pid)
        )
        # Capture at the service's level; the export below it, as named in recorder/priority.py.
        assert nice_of(capture) == CAPTURE.nice == 0
        assert autogroup_nice_of(capture) in (None, 0)
        assert nice_of(export_pid) == EXPORTS.nice
        assert autogroup_nice_of(export_pid) in (None, EXPORTS.nice)
        hog_ticks = [cpu_ticks(h.pid) for h in hogs]
        export_ticks = cpu_ticks(export_pid)
        progress_before = job.progress

        # Watch the live playlist: the longest time without a new part.
        last, changed_at, longest, parts = None, time.monotonic(), 0.0, 0
        started = time.monotonic()
        while time.monotonic() - started < WATCH_SECONDS:
            newest = newest_part(await service.get_text(playlist_path, status=None))
            now = time.monotonic()
            if newest != last:
                if last is not None:
                    parts += 1
                    longest = max(longest, now - changed_at)
                last, changed_at = newest, now
            await asyncio.sleep(POLL_SECONDS)
        longest = max(longest, time.monotonic() - changed_at)
        assert job.state == "working", "the export ended before the watch did: make it longer"
        hog_each = [cpu_ticks(h.pid) - ticks for h, ticks in zip(hogs, hog_ticks, strict=True)]
        hog_used = sum(hog_each)
        export_used = cpu_ticks(export_pid) - export_ticks
        progress_after = job.progress
    finally:
        for hog in hogs:
            hog.kill()
            await hog.wait()
    print(
        f"under load: {parts} new parts in {WATCH_SECONDS:.0f} s, longest wait {longest:.2f} s; "
        f"busy processes used {hog_used / 100:.1f} CPU s, the export {export_used / 100:.1f} "
        f"CPU s ({progress_before:.1%} to {progress_after:.1%})"
    )
    # The heavy work did run (the machine was busy), and the live edge never stood still.
    assert hog_used > 0 and export_used > 0 and progress_after > progress_before
    # Captions give way to downloads: the export (nice 15) gets at least about the share of each
    # process at the captions' level (nice 19). At the same level it got a tenth of it here.
    assert export_used >= max(hog_each) / 2, (export_used, hog_each)
    assert longest <= part_seconds + 1.0, f"the live playlist stood still {longest:.2f} s"
    assert parts >= WATCH_SECONDS / part_seconds / 2, parts

    # No segment lost: every one ffmpeg finished for the live session is in the archive.
    await service.post_json(f"/api/v1/sessions/{live}/stop")
    session = await archive.call(archive.index.get_session, live)
    media = service.settings.paths.session_media(session.chamber, live)
    finished = await asyncio.to_thread(finished_by_ffmpeg, media)
    indexed = {s.rel_path for s in await archive.call(archive.index.all_segments, live)}
    assert finished, "ffmpeg listed no segment"
    assert finished == indexed, (
        f"listed by ffmpeg but not indexed: {sorted(finished - indexed)}; "
        f"indexed but not listed: {sorted(indexed - finished)}"
    )
    recorded = await service.get_text(f"/sessions/{live}/index.m3u8")
    listed = [line for line in recorded.splitlines() if line.endswith(".ts")]
    assert all(any(line.endswith(path) for line in listed) for path in finished), listed


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
