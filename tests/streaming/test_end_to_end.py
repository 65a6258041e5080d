"""The whole path on real components: schedule -> ffmpeg capture -> live HLS in VLC -> archive."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from conftest import STAFF, Service, basic, segments_of, start_service, stop_service, wait_for
from helpers import VlcPlayer, decoded_duration, ffprobe

from recorder.supervisor import Recorder
from streaming.keys import RECORDER, SCHEDULER

AGENDA = """Porządek obrad:
1. Otwarcie sesji.
2. Podjęcie uchwał w sprawie:
  a) zmiany budżetu miasta na 2027 rok;
  b) nadania nazwy rondu;
3. Zamknięcie obrad.
"""


def iso(at: datetime) -> str:
    return at.isoformat()


async def create(
    service: Service,
    start_in: float = 3600,
    length_min: float = 60,
    title: str = "LVII Sesja Rady Miasta",
) -> dict[str, Any]:
    start = datetime.now(UTC) + timedelta(seconds=start_in)
    return await service.post_json(
        "/api/v1/sessions",
        {
            "title": title,
            "scheduled_start": iso(start),
            "scheduled_end": iso(start + timedelta(minutes=length_min)),
            "agenda_text": AGENDA,
        },
        status=201,
    )


def vtt_cues(text: str) -> list[tuple[float, float, str]]:
    cues = []
    pattern = re.compile(r"(\d\d):(\d\d):(\d\d)\.(\d{3}) --> (\d\d):(\d\d):(\d\d)\.(\d{3})\n(.+)")
    for m in pattern.finditer(text):
        g = [int(x) for x in m.groups()[:8]]
        start = g[0] * 3600 + g[1] * 60 + g[2] + g[3] / 1000
        end = g[4] * 3600 + g[5] * 60 + g[6] + g[7] / 1000
        cues.append((start, end, m.group(9)))
    return cues


async def test_scheduled_session_starts_by_itself_and_plays_live_in_vlc(service: Service) -> None:
    created = await create(service, start_in=2)
    sid = created["id"]
    assert created["state"] == "scheduled"
    assert [i["number"] for i in created["agenda"]] == ["1", "2", "3"]
    assert [i["number"] for i in created["agenda"][1]["items"]] == ["2.1", "2.2"]

    async def live() -> bool:
        return (await service.get_json(f"/api/v1/sessions/{sid}"))["state"] == "live"

    await wait_for(live, 20, "the scheduler to start the session")
    await wait_for(lambda: segments_of(service, sid), 20, "the first segment")
    playlist = await service.get_text("/live/index.m3u8")
    assert "#EXT-X-MEDIA-SEQUENCE:" in playlist and ".ts" in playlist
    assert "#EXT-X-ENDLIST" not in playlist
    # The chamber's own URL serves the same stream.
    assert ".ts" in await service.get_text("/live/sala/index.m3u8")

    player = VlcPlayer()
    try:
        player.play(service.base + "/live/index.m3u8")
        first, later = await player.wait_playing_and_advancing(timeout=40)
        assert later > first
    finally:
        await asyncio.to_thread(player.close)


async def test_chapters_breaks_and_recording_duration_match_the_room(
    make_settings: Any,
) -> None:
    # Without the break slate the program is one camera: its length must match the room's.
    settings = make_settings()
    settings = settings.model_copy(
        update={"live": settings.live.model_copy(update={"break_slate": False})}
    )
    service = await start_service(settings)
    try:
        await _chapters_breaks_and_duration(service)
    finally:
        await stop_service(service)


async def _chapters_breaks_and_duration(service: Service) -> None:
    created = await create(service)
    sid = created["id"]
    item_1 = created["agenda"][0]["id"]
    item_2a = created["agenda"][1]["items"][0]["id"]

    t_start = time.time()
    started = await service.post_json(f"/api/v1/sessions/{sid}/start")
    assert started["state"] == "live"
    await wait_for(lambda: segments_of(service, sid), 20, "the first segment")
    await asyncio.sleep(max(0.0, t_start + 3.0 - time.time()))

    t_item1 = time.time()
    await service.post_json(f"/api/v1/sessions/{sid}/items/{item_1}/start")
    await asyncio.sleep(3.0)
    t_break = time.time()
    on = await service.post_json(f"/api/v1/sessions/{sid}/break", {"on": True})
    assert on["in_break"] is True
    await asyncio.sleep(1.5)
    off = await service.post_json(f"/api/v1/sessions/{sid}/break", {"on": False})
    assert off["in_break"] is False
    t_item2 = time.time()
    await service.post_json(f"/api/v1/sessions/{sid}/items/{item_2a}/start")
    await asyncio.sleep(3.0)
    t_stop = time.time()
    stopped = await service.post_json(f"/api/v1/sessions/{sid}/stop")
    assert stopped["state"] == "ended"

    # Markers carry offsets that match the moments they were set.
    kinds = [(m["kind"], m["item_id"]) for m in stopped["markers"]]
    assert kinds == [
        ("item_start", item_1),
        ("break_start", None),
        ("break_end", None),
        ("item_start", item_2a),
    ]
    offsets = [m["offset_seconds"] for m in stopped["markers"]]
    assert abs(offsets[0] - (t_item1 - t_start)) < 1.0, offsets
    assert abs(offsets[1] - (t_break - t_start)) < 1.0, offsets
    assert abs(offsets[3] - (t_item2 - t_start)) < 1.0, offsets

    cues = vtt_cues(await service.get_text(f"/sessions/{sid}/chapters.vtt"))
    assert [c[2] for c in cues] == ["1. Otwarcie sesji", "2.1. zmiany budżetu miasta na 2027 rok"]
    assert abs(cues[0][0] - (t_item1 - t_start)) < 1.0, cues
    assert abs(cues[1][0] - (t_item2 - t_start)) < 1.0, cues
    assert cues[0][1] == cues[1][0]

    playlist = await service.get_text(f"/sessions/{sid}/index.m3u8")
    assert playlist.rstrip().endswith("#EXT-X-ENDLIST")
    assert "#EXT-X-DISCONTINUITY\n" not in playlist
    url = f"{service.base}/sessions/{sid}/index.m3u8"
    probe = await ffprobe(url)
    codecs = sorted(s["codec_name"] for s in probe["streams"])
    assert codecs == ["aac", "h264"], codecs
    # The recording begins when ffmpeg's first frame does, which under load can be a
    # second after the start request; from there to the stop, nothing may be missing.
    media_start = datetime.fromisoformat(stopped["recording"]["runs"][0]["media_started_at"])
    start_lag = media_start.timestamp() - t_start
    assert -0.5 < start_lag < 2.5, start_lag
    room = t_stop - media_start.timestamp()
    assert abs(float(probe["format"]["duration"]) - room) < 0.75, (probe["format"], room)
    duration = await decoded_duration(url)
    assert abs(duration - room) < 0.75, (duration, room, start_lag)
    assert abs(cues[1][1] - duration) < 0.5
    assert stopped["recording"]["complete"] is True
    assert "Nagranie kompletne." in await service.get_text(f"/sessions/{sid}")


async def test_killed_ffmpeg_is_restarted_and_the_playlist_carries_on(service: Service) -> None:
    created = await create(service)
    sid = created["id"]
    await service.post_json(f"/api/v1/sessions/{sid}/start")
    recorder: Recorder = service.app[RECORDER]
    supervisor = recorder.supervisor(sid)
    assert supervisor is not None

    async def two_segments() -> bool:
        return await segments_of(service, sid) >= 2

    await wait_for(two_segments, 20, "two segments")
    first_pid = supervisor.pid
    assert first_pid is not None
    os.kill(first_pid, signal.SIGKILL)

    async def restarted() -> bool:
        return supervisor.pid not in (None, first_pid)

    await wait_for(restarted, 10, "ffmpeg to be restarted")
    before = await segments_of(service, sid)

    async def more() -> bool:
        return await segments_of(service, sid) >= before + 2

    await wait_for(more, 20, "segments from the new ffmpeg")
    live = await service.get_text("/live/index.m3u8")
    assert "#EXT-X-DISCONTINUITY\n" in live

    stopped = await service.post_json(f"/api/v1/sessions/{sid}/stop")
    runs = stopped["recording"]["runs"]
    assert [r["ordinal"] for r in runs] == [1, 2]
    assert runs[0]["exit_code"] == -signal.SIGKILL
    [gap] = stopped["recording"]["gaps"]
    assert gap["cause"] == "ffmpeg was killed (signal 9)"
    assert stopped["recording"]["complete"] is False
    page = await service.get_text(f"/sessions/{sid}")
    assert "Przerwy w nagraniu: 1." in page and "ffmpeg was killed (signal 9)" in page
    playlist = await service.get_text(f"/sessions/{sid}/index.m3u8")
    assert playlist.count("#EXT-X-DISCONTINUITY\n") == 1
    assert playlist.rstrip().endswith("#EXT-X-ENDLIST")
    duration = await decoded_duration(f"{service.base}/sessions/{sid}/index.m3u8")
    assert abs(duration - stopped["recording"]["duration_seconds"]) < 1.0


async def test_operator_stop_is_final_and_one_live_session_per_chamber(service: Service) -> None:
    first = await create(service, title="Sesja A")
    second = await create(service, title="Sesja B")
    await service.post_json(f"/api/v1/sessions/{first['id']}/start")
    busy = await service.post_json(f"/api/v1/sessions/{second['id']}/start", status=409)
    assert f"session {first['id']}" in busy["error"] and "Sesja A" in busy["error"]
    assert busy["live_session_id"] == first["id"]
    again = await service.post_json(f"/api/v1/sessions/{first['id']}/start", status=409)
    assert "already live" in again["error"]

    await service.post_json(f"/api/v1/sessions/{first['id']}/stop")
    await service.app[SCHEDULER].reconcile()
    detail = await service.get_json(f"/api/v1/sessions/{first['id']}")
    assert detail["state"] == "ended" and detail["stopped_by"] == "op"
    assert not service.app[RECORDER].is_recording(first["id"])
    refused = await service.post_json(f"/api/v1/sessions/{first['id']}/start", status=409)
    assert "never restarted" in refused["error"]
    await service.post_json(f"/api/v1/sessions/{first['id']}/stop", status=409)
    # With the chamber free, the other session may start.
    await service.post_json(f"/api/v1/sessions/{second['id']}/start")
    await service.post_json(f"/api/v1/sessions/{second['id']}/stop")


async def test_session_in_its_window_at_start_up_records_at_once_and_overrun_limit_stops_it(
    make_settings: Any,
) -> None:
    # Overrun limit of 6 s: the session below is already past its scheduled end.
    settings = make_settings(overrun_limit_minutes=0.1)
    service = await start_service(settings)
    try:
        start = datetime.now(UTC) - timedelta(minutes=30)
        created = await service.post_json(
            "/api/v1/sessions",
            {
                "title": "Sesja po czasie",
                "scheduled_start": iso(start),
                "scheduled_end": iso(datetime.now(UTC) - timedelta(seconds=1)),
                "agenda_text": AGENDA,
            },
            status=201,
        )
        sid = created["id"]
        assert created["state"] == "live"  # creating it reconciled the schedule at once

        async def ended() -> dict[str, Any] | None:
            detail = await service.get_json(f"/api/v1/sessions/{sid}")
            return detail if detail["state"] == "ended" else None

        detail = await wait_for(ended, 30, "the overrun limit to stop the session")
        assert detail["stopped_by"] == "scheduler:overrun_limit"
        assert detail["recording"]["duration_seconds"] > 0
        # The scheduler's start and stop are in the audit log like an operator's.
        async with service.http.get(
            f"{service.base}/api/v1/audit?session_id={sid}", headers=basic(STAFF)
        ) as resp:
            log = [(e["user"], e["action"]) for e in reversed((await resp.json())["entries"])]
        assert log == [
            ("op", "session.create"),
            ("scheduler", "session.start"),
            ("scheduler", "session.stop"),
        ], log
    finally:
        await stop_service(service)


async def test_restart_of_the_service_continues_the_same_session(make_settings: Any) -> None:
    settings = make_settings()
    service = await start_service(settings)
    try:
        created = await create(service)
        sid = created["id"]
        await service.post_json(f"/api/v1/sessions/{sid}/start")

        async def two() -> bool:
            return await segments_of(service, sid) >= 2

        await wait_for(two, 20, "two segments")
    finally:
        await stop_service(service)

    service = await start_service(settings)
    try:
        before = await segments_of(service, sid)

        async def more() -> bool:
            return await segments_of(service, sid) >= before + 2

        await wait_for(more, 20, "recording to resume after the restart")
        detail = await service.post_json(f"/api/v1/sessions/{sid}/stop")
        assert [r["ordinal"] for r in detail["recording"]["runs"]] == [1, 2]
        sessions = await service.get_json("/api/v1/sessions")
        assert len(sessions["sessions"]) == 1
        playlist = await service.get_text(f"/sessions/{sid}/index.m3u8")
        assert "run-0001/" in playlist and "run-0002/" in playlist
    finally:
        await stop_service(service)
