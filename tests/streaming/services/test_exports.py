"""MP4 downloads of a recording and its items, on real capture: remuxed, chaptered, public."""

from __future__ import annotations

import asyncio
import json
import struct
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from conftest import STAFF, Service, basic, record_two_items, wait_for
from helpers import ffprobe

from recorder.ffmpeg import concat_list, export_argv
from streaming.keys import ARCHIVE, EXPORTS
from streaming.services.exports import (
    ExportJob,
    ExportManager,
    content_disposition,
    ffmetadata,
    read_view,
    whole_plan,
)


async def record_live(service: Service) -> dict[str, Any]:
    """A real recording still live (conftest.record_two_items)."""
    return await record_two_items(service, stop=False)


async def fetch(
    service: Service, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    async with service.http.get(service.base + path, headers=headers or {}) as resp:
        return resp.status, dict(resp.headers), await resp.read()


async def download(
    service: Service, path: str, timeout: float = 60
) -> tuple[dict[str, str], bytes]:
    """GET until the export is ready (202 meanwhile); its headers and bytes."""

    async def ready() -> tuple[dict[str, str], bytes] | None:
        status, headers, body = await fetch(service, path)
        if status == 202:
            answer = json.loads(body)
            assert answer["state"] == "working" and 0 <= answer["progress"] <= 1, answer
            assert headers["Retry-After"].isdigit()
            return None
        assert status == 200, (status, body[:300])
        return headers, body

    return await wait_for(ready, timeout, f"the export {path}", interval=0.2)


def top_boxes(data: bytes) -> list[str]:
    """The MP4's top-level box types in file order."""
    boxes, at = [], 0
    while at + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        if size == 1:
            size = struct.unpack(">Q", data[at + 8 : at + 16])[0]
        boxes.append(kind.decode("latin-1"))
        if size < 8:
            break
        at += size
    return boxes


async def probe_file(path: Path, *extra: str) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        "ffprobe", "-v", "error", "-print_format", "json", *extra, str(path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return json.loads(out)  # type: ignore[no-any-return]


def exported(service: Service, sid: int, prefix: str) -> list[Path]:
    folder = service.settings.data_path / "exports" / str(sid)
    return sorted(folder.glob(f"{prefix}-*.mp4"))


async def test_the_whole_recording_downloads_as_one_playable_mp4(
    service: Service, tmp_path: Path
) -> None:
    created = await record_live(service)
    sid = created["id"]
    status, _, body = await fetch(service, f"/sessions/{sid}/recording.mp4")
    assert status == 409 and b"still being made" in body
    status, _, _ = await fetch(service, f"/sessions/{sid}/clip.mp4?start=0&end=1")
    assert status == 409
    stopped = await service.post_json(f"/api/v1/sessions/{sid}/stop")
    duration = stopped["recording"]["duration_seconds"]

    started = time.monotonic()
    headers, data = await download(service, f"/sessions/{sid}/recording.mp4")
    print(f"whole recording ({duration:.1f} s) ready {time.monotonic() - started:.2f} s after ask")
    assert headers["Content-Type"] == "video/mp4"
    assert headers["Cache-Control"] == "public, max-age=600"
    disposition = headers["Content-Disposition"]
    assert (
        disposition.startswith('attachment; filename="') and "Sesja-Rady-Miasta.mp4" in disposition
    )
    assert "filename*=UTF-8''" in disposition
    # faststart: the index comes before the media, so a player starts before the download ends.
    boxes = top_boxes(data)
    assert "moov" in boxes and "mdat" in boxes and boxes.index("moov") < boxes.index("mdat")

    path = tmp_path / "recording.mp4"
    path.write_bytes(data)
    probe = await probe_file(path, "-show_format", "-show_streams", "-show_chapters")
    # Besides picture and sound, MP4 keeps the chapters' names in a text track (bin_data).
    media = [s["codec_name"] for s in probe["streams"] if s["codec_type"] in ("video", "audio")]
    assert sorted(media) == ["aac", "h264"]
    assert abs(float(probe["format"]["duration"]) - duration) < 0.5, (probe["format"], duration)
    assert [c["tags"]["title"] for c in probe["chapters"]] == [
        "1. Otwarcie sesji",
        "2. Budżet miasta",
    ]
    # Runs and files are laid end to end: timestamps never go back.
    packets = await probe_file(path, "-select_streams", "v:0", "-show_entries", "packet=dts_time")
    times = [float(p["dts_time"]) for p in packets["packets"]]
    assert times == sorted(times) and len(set(times)) == len(times)

    status, ranged, part = await fetch(
        service, f"/sessions/{sid}/recording.mp4", {"Range": "bytes=100-1099"}
    )
    assert status == 206 and part == data[100:1100]
    assert ranged["Content-Range"] == f"bytes 100-1099/{len(data)}"

    listed = await service.get_json(f"/api/v1/sessions/{sid}/exports")
    assert [(e["state"], e["url"]) for e in listed["exports"]] == [
        ("done", f"/sessions/{sid}/recording.mp4")
    ]


async def test_an_item_clip_and_a_range_clip_in_whole_segments(service: Service) -> None:
    created = await record_live(service)
    sid = created["id"]
    item_1, item_2, item_3 = (i["id"] for i in created["agenda"])
    stopped = await service.post_json(f"/api/v1/sessions/{sid}/stop")
    total = stopped["recording"]["duration_seconds"]
    vtt = await service.get_text(f"/sessions/{sid}/chapters.vtt")
    assert "1. Otwarcie sesji" in vtt

    # A range nobody asked for before: first 202 (working), then the file.
    path = f"/sessions/{sid}/clip.mp4?start=1.2&end=3.5"
    status, _, body = await fetch(service, path)
    answer = json.loads(body)
    assert status == 202 and answer["state"] == "working", answer
    assert answer["status_url"] == f"/api/v1/sessions/{sid}/exports"
    _, data = await download(service, path)
    probe = await ffprobe(f"{service.base}{path}")
    # A browser that clicked the link is shown the progress on a page that reloads itself.
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    status, headers, body = await fetch(service, f"/sessions/{sid}/clip.mp4?end=2", browser)
    page = body.decode()
    assert status == 202 and headers["Content-Type"].startswith("text/html"), page[:300]
    assert '<meta http-equiv="refresh" content="2">' in page and "<progress" in page
    assert "Przygotowujemy plik MP4" in page and headers["Cache-Control"] == "no-store"
    await download(service, f"/sessions/{sid}/clip.mp4?end=2")
    # Whole 1 s segments: 1.2-3.5 becomes 1-4.
    assert abs(float(probe["format"]["duration"]) - 3.0) < 0.3, probe["format"]

    item_path = f"/sessions/{sid}/items/{item_1}/clip.mp4"
    status, _, body = await fetch(service, item_path)
    span = json.loads(body)
    assert status == 202, span
    await download(service, item_path)
    markers = (await service.get_json(f"/api/v1/sessions/{sid}"))["markers"]
    assert markers[0]["item_id"] == item_1
    start, end = markers[0]["offset_seconds"], markers[1]["offset_seconds"]
    # Cut at segment boundaries (1 s here): each end at most one segment beyond the chapter.
    assert start - 1.0 < span["start_seconds"] <= start + 0.01, (span, start)
    clip_end = span["start_seconds"] + span["duration_seconds"]
    assert end - 0.01 <= clip_end < end + 1.0, (span, end)
    probe = await ffprobe(f"{service.base}{item_path}")
    assert abs(float(probe["format"]["duration"]) - span["duration_seconds"]) < 0.1
    second = markers[1]

    # The last chapter runs to the end of the recording.
    await download(service, f"/sessions/{sid}/items/{item_2}/clip.mp4")
    probe = await ffprobe(f"{service.base}/sessions/{sid}/items/{item_2}/clip.mp4")
    assert abs(float(probe["format"]["duration"]) - (total - second["offset_seconds"])) <= 1.1

    never = await service.get_json(f"/sessions/{sid}/items/{item_3}/clip.mp4", status=404)
    assert "was never taken up" in never["error"]
    unknown = await service.get_json(f"/sessions/{sid}/items/999999/clip.mp4", status=404)
    assert "does not exist" in unknown["error"]
    await service.get_json(f"/sessions/{sid}/items/abc/clip.mp4", status=404)
    # Digits to str.isdigit() that int() refuses ("²", once a 500) or reads ("٣"): refused.
    for odd in ("²", "٣", "1²"):
        refused = await service.get_json(f"/sessions/{sid}/items/{odd}/clip.mp4", status=404)
        assert "ASCII digits" in refused["error"], refused
    await service.get_json("/sessions/424242/recording.mp4", status=404)
    await service.get_json("/sessions/424242/items/1/clip.mp4", status=404)
    await service.get_json("/api/v1/sessions/424242/exports", status=404)

    for query, words in [
        ("start=3&end=1", "must be after start"),
        ("start=-1&end=2", "start must be 0 or more"),
        ("start=0&end=9999", "beyond the recording"),
        (f"start={total + 5}", "beyond the recording"),
        ("start=abc&end=2", "start must be a number of seconds"),
        ("start=1&end=nan", "end must be a number of seconds"),
        ("start=1&end=inf", "end must be a number of seconds"),
        ("start=2&end=2", "must be after start"),
        ("start=²&end=2", "start must be a number of seconds"),
        ("start=٣&end=4", "start must be a number of seconds"),
        ("start=1_0", "start must be a number of seconds"),
    ]:
        bad = await service.get_json(f"/sessions/{sid}/clip.mp4?{query}", status=400)
        assert words in bad["error"], (query, bad)


async def test_redaction_makes_a_new_export_and_withdrawal_hides_it(service: Service) -> None:
    created = await record_live(service)
    sid = created["id"]
    stopped = await service.post_json(f"/api/v1/sessions/{sid}/stop")
    duration = stopped["recording"]["duration_seconds"]
    await download(service, f"/sessions/{sid}/recording.mp4")
    [before] = exported(service, sid, "recording")

    async with service.http.post(
        f"{service.base}/api/v1/sessions/{sid}/redactions",
        json={"start_seconds": 2.5, "end_seconds": 4.0, "reason": "dane osobowe"},
        headers=basic(STAFF),
    ) as resp:
        assert resp.status == 201, await resp.text()
    _, data = await download(service, f"/sessions/{sid}/recording.mp4")
    [after] = exported(service, sid, "recording")
    # A new export (keyed by the segment list), the superseded one deleted, the length kept.
    assert after.name != before.name and not before.exists()
    probe = await ffprobe(str(after))
    media = [s["codec_name"] for s in probe["streams"] if s["codec_type"] in ("video", "audio")]
    assert sorted(media) == ["aac", "h264"]
    assert abs(float(probe["format"]["duration"]) - duration) < 0.5
    assert after.read_bytes() == data
    # Slates start their timestamps at 0; the joined file still never goes back.
    packets = await probe_file(after, "-select_streams", "v:0", "-show_entries", "packet=dts_time")
    times = [float(p["dts_time"]) for p in packets["packets"]]
    assert times == sorted(times) and len(set(times)) == len(times)

    async with service.http.post(
        f"{service.base}/api/v1/sessions/{sid}/publish",
        json={"published": False},
        headers=basic(STAFF),
    ) as resp:
        assert resp.status == 200
    for path in (
        f"/sessions/{sid}/recording.mp4",
        f"/sessions/{sid}/clip.mp4?start=0&end=2",
        f"/api/v1/sessions/{sid}/exports",
    ):
        status, headers, body = await fetch(service, path)
        assert status == 410 and b"withdrawn" in body, (path, status)
    # Staff still get it, never kept by a shared cache.
    status, headers, _ = await fetch(service, f"/sessions/{sid}/recording.mp4", basic(STAFF))
    assert status == 200 and headers["Cache-Control"] == "private, no-store"


async def test_stopping_an_export_leaves_no_file(service: Service) -> None:
    created = await record_live(service)
    sid = created["id"]
    await service.post_json(f"/api/v1/sessions/{sid}/stop")
    archive = service.app[ARCHIVE]
    view = await archive.call(read_view, archive.index, sid)
    plan = whole_plan(service.settings, view)
    # The same files many times over: an export long enough to be stopped halfway.
    plan = replace(plan, group="range-0-1", files=plan.files * 400, chapters=())
    manager = ExportManager(service.settings, archive, auto_every_seconds=3600)
    job = await manager.ensure(plan)
    assert isinstance(job, ExportJob)

    async def moving() -> bool:
        return job.state == "working" and job.progress > 0

    await wait_for(moving, 30, "export progress")
    await asyncio.wait_for(manager.close(), 20)
    assert job.state == "failed" and not job.target.exists()
    # None of this job's working files is left (the service's own export of the whole
    # recording may be at work in the same folder meanwhile: its files are not this job's).
    mine = f".{job.target.stem}-"
    assert not [p for p in job.target.parent.iterdir() if p.name.startswith(mine)]
    # The service's own manager is untouched by this one.
    assert service.app[EXPORTS] is not manager


def test_export_argv_is_a_remux_with_faststart() -> None:
    argv = export_argv(Path("/x/.l.ffconcat"), Path("/x/.r.part"), metadata=Path("/x/.m"))
    assert argv == [
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-nostats",
        "-progress", "pipe:1", "-f", "concat", "-safe", "0", "-i", "/x/.l.ffconcat",
        "-f", "ffmetadata", "-i", "/x/.m", "-map_metadata", "1", "-map_chapters", "1",
        "-map", "0:v:0", "-map", "0:a:0?", "-c", "copy", "-bsf:a", "aac_adtstoasc",
        "-movflags", "+faststart", "-f", "mp4", "-n", "/x/.r.part",
    ]  # fmt: skip


def test_lists_metadata_and_names_are_escaped() -> None:
    listing = concat_list([(Path("/d/it's.ts"), 1.0)], durations=False)
    assert listing == "ffconcat version 1.0\nfile '/d/it'\\''s.ts'\n"
    text = ffmetadata("A=B; #1", [])
    assert text == ";FFMETADATA1\ntitle=A\\=B\\; \\#1\n"
    header = content_disposition("2024-05-01 Sesja – punkt 2. Łódź.mp4")
    assert header.startswith('attachment; filename="2024-05-01-Sesja-punkt-2.-Lodz.mp4"')
    assert "filename*=UTF-8''2024-05-01%20Sesja%20%E2%80%93" in header
