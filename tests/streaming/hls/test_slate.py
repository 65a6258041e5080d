"""A break shows the public a slate on the same live URL while the cameras keep recording."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from conftest import STAFF, Service, basic, start_service, stop_service, wait_for
from helpers import ffprobe, peak_db

from config.settings import Settings
from streaming.keys import ARCHIVE
from streaming.services.control import announce_slate


def newest_camera(playlist: str) -> str:
    """The camera of the newest complete segment on the live URL (".../s/12-main.ts")."""
    uris = [line for line in playlist.splitlines() if line.endswith(".ts")]
    return uris[-1].rsplit("-", 1)[1].removesuffix(".ts") if uris else ""


async def test_break_slate_on_the_same_url(service: Service, tmp_path: Path) -> None:
    created = await service.begin()
    sid = created["id"]

    async def live_from(camera: str) -> str | None:
        text = await service.get_text("/live/index.m3u8", status=None)
        return text if newest_camera(text) == camera else None

    await wait_for(lambda: live_from("main"), 20, "the room on the live URL")
    await service.post_json(f"/api/v1/sessions/{sid}/break", {"on": True})
    slate = await wait_for(lambda: live_from("slate"), 20, "the break slate on the live URL")
    assert "#EXT-X-DISCONTINUITY\n" in slate

    # The slate is H.264 + AAC with silence: the room's talk in a break is not broadcast.
    uri = [x for x in slate.splitlines() if x.endswith(".ts")][-1]
    async with service.http.get(f"{service.base}/live/{uri}") as resp:
        assert resp.status == 200
        path = tmp_path / "slate.ts"
        path.write_bytes(await resp.read())
    probe = await ffprobe(str(path))
    assert sorted(s["codec_name"] for s in probe["streams"]) == ["aac", "h264"]
    assert await peak_db(path) < -60

    async def room_still_recorded() -> dict[str, Any] | None:
        status = await service.status()
        cams = {c["camera"]: c for c in status["captures"]}
        ok = "slate" in cams and cams["slate"]["program"] and not cams["main"]["program"]
        return cams if ok else None

    cams = await wait_for(room_still_recorded, 10, "the camera to keep recording in the break")
    before = cams["main"]["segments"]

    async def main_grew() -> bool:
        status = await service.status()
        main = next(c for c in status["captures"] if c["camera"] == "main")
        return bool(main["segments"] >= before + 2)

    await wait_for(main_grew, 10, "camera segments during the break")
    await service.post_json(f"/api/v1/sessions/{sid}/break", {"on": False})
    await wait_for(lambda: live_from("main"), 20, "the room back on the live URL")
    status = await service.status()
    assert [c["camera"] for c in status["captures"]] == ["main"]  # the slate capture ended

    detail = await service.post_json(f"/api/v1/sessions/{sid}/stop")
    program = await service.get_text(f"/sessions/{sid}/index.m3u8")
    cameras = [
        x.split("/media/")[1].split("/")[0] for x in program.splitlines() if x.endswith(".ts")
    ]
    first_slate = cameras.index("slate")
    last_slate = len(cameras) - 1 - cameras[::-1].index("slate")
    assert set(cameras[:first_slate]) == {"main"} and set(cameras[last_slate + 1 :]) == {"main"}
    # The camera's own recording has no hole: the break is in it, in full.
    await service.get_text(f"/sessions/{sid}/cameras/main/index.m3u8", status=401)
    own = await service.get_text(f"/sessions/{sid}/cameras/main/index.m3u8", auth=STAFF)
    assert "#EXT-X-DISCONTINUITY" not in own
    assert [r["camera"] for r in detail["recording"]["runs"]].count("main") == 1
    # Staff only: a shared cache in front must never keep it for the public.
    url = f"{service.base}/sessions/{sid}/cameras/main/index.m3u8"
    async with service.http.get(url, headers=basic(STAFF)) as resp:
        assert resp.headers["Cache-Control"] == "private, no-store"


async def test_closed_part_never_reaches_the_public(service: Service) -> None:
    created = await service.begin()
    sid = created["id"]

    async def main_segments() -> int:
        status = await service.status()
        return int(next(c for c in status["captures"] if c["camera"] == "main")["segments"])

    await wait_for(lambda: _ge(main_segments(), 2), 20, "two segments")
    await service.post_json(f"/api/v1/sessions/{sid}/closed", {"on": True}, auth=STAFF, status=403)
    closed = await service.post_json(f"/api/v1/sessions/{sid}/closed", {"on": True})
    closed_by = time.time()
    assert closed["closed"] is True
    n_on = await main_segments()

    async def newest(camera: str) -> bool:
        text = await service.get_text("/live/index.m3u8", status=None)
        return newest_camera(text) == camera

    await wait_for(lambda: newest("slate"), 20, "the closed-part slate on the live URL")
    # On the live URL the room's segment was cut short at once: nothing it published was
    # filmed after the closed part began.
    live = await service.get_text("/live/index.m3u8")
    room = [(start, length) for camera, start, length in live_segments(live) if camera == "main"]
    assert room, live
    assert all(start + length <= closed_by + 0.1 for start, length in room), (room, closed_by)
    await wait_for(lambda: _ge(main_segments(), n_on + 4), 20, "recording in the closed part")
    n_off = await main_segments()
    reopened = await service.post_json(f"/api/v1/sessions/{sid}/closed", {"on": False})
    assert reopened["closed"] is False
    await wait_for(lambda: newest("main"), 20, "the room back on the live URL")
    await service.post_json(f"/api/v1/sessions/{sid}/stop")

    # Every camera segment that held any of the closed part, including the two that straddle
    # its start and its end, is out of the public program...
    program = await service.get_text(f"/sessions/{sid}/index.m3u8")
    public = {int(x.rsplit("seg-", 1)[1][:6]) for x in program.splitlines() if "/media/main/" in x}
    closed_seqs = set(range(n_on, n_off + 1))
    assert public and not public & closed_seqs, (sorted(public), n_on, n_off)
    # ...its files are refused to the public and served to staff, never to a shared cache...
    private = f"/sessions/{sid}/media/main/run-0001/seg-{n_on + 1:06d}.ts"
    await service.get_text(private, status=401)
    async with service.http.get(service.base + private, headers=basic(STAFF)) as resp:
        assert resp.status == 200 and resp.headers["Cache-Control"] == "private, no-store"
    # ...and the sealed archive keeps the whole of it.
    own = await service.get_text(f"/sessions/{sid}/cameras/main/index.m3u8", auth=STAFF)
    assert "#EXT-X-DISCONTINUITY" not in own
    assert f"seg-{n_off:06d}.ts" in own


def live_segments(playlist: str) -> list[tuple[str, float, float]]:
    """(camera, start as a Unix time, duration) of each complete segment of a live playlist."""
    found = []
    start = length = 0.0
    for line in playlist.splitlines():
        if line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            start = datetime.fromisoformat(line.split(":", 1)[1]).timestamp()
        elif line.startswith("#EXTINF:"):
            length = float(line[8:].split(",")[0])
        elif line.endswith(".ts"):
            found.append((newest_camera(line), start, length))
    return found


async def _ge(value: Any, n: int) -> bool:
    return bool(await value >= n)


async def test_slate_before_the_session_then_the_room_on_the_same_url(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    live = settings.live.model_copy(update={"announce_minutes": 5})
    service = await start_service(settings.model_copy(update={"live": live}))
    try:
        start = datetime.now(UTC) + timedelta(minutes=2)
        created = await service.post_json(
            "/api/v1/sessions",
            {
                "title": "Sesja nadzwyczajna",
                "scheduled_start": start.isoformat(),
                "scheduled_end": (start + timedelta(hours=1)).isoformat(),
                "agenda_text": "1. Otwarcie.\n",
            },
            status=201,
        )
        sid = created["id"]
        session = await service.app[ARCHIVE].call(service.app[ARCHIVE].index.get_session, sid)
        slate = announce_slate(session, service.settings.site.zone)
        local = start.astimezone(ZoneInfo("Europe/Warsaw"))
        assert slate.text == f"Transmisja rozpocznie się o godz. {local:%H.%M}"
        assert slate.subtitle == "Sesja nadzwyczajna"

        async def newest(camera: str) -> str | None:
            text = await service.get_text("/live/index.m3u8", status=None)
            return text if newest_camera(text) == camera else None

        before = await wait_for(lambda: newest("slate"), 20, "the slate before the session")
        assert (await service.get_json(f"/api/v1/sessions/{sid}"))["state"] == "scheduled"
        first_msn = int(before.split("#EXT-X-MEDIA-SEQUENCE:")[1].split()[0])

        await service.post_json(f"/api/v1/sessions/{sid}/start")
        room = await wait_for(lambda: newest("main"), 20, "the room on the same URL")
        assert "#EXT-X-DISCONTINUITY\n" in room
        assert int(room.split("#EXT-X-MEDIA-SEQUENCE:")[1].split()[0]) >= first_msn
        status = await service.status()
        assert [c["camera"] for c in status["captures"]] == ["main"]  # the slate ended

        await service.post_json(f"/api/v1/sessions/{sid}/stop")
        # The session's recording is the session: the slate before it is not in it.
        program = await service.get_text(f"/sessions/{sid}/index.m3u8")
        assert "/media/slate/" not in program and "/media/main/" in program
    finally:
        await stop_service(service)


async def test_closed_part_not_recorded_when_the_configuration_says_so(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    recording = settings.recording.model_copy(update={"record_closed_parts": False})
    service = await start_service(settings.model_copy(update={"recording": recording}))
    try:
        created = await service.begin()
        sid = created["id"]

        async def cameras() -> list[str]:
            status = await service.status()
            return [c["camera"] for c in status["captures"] if c["state"] == "recording"]

        async def recording_only(names: list[str]) -> bool:
            return await cameras() == names

        await wait_for(lambda: recording_only(["main"]), 20, "the camera recording")

        async def main_segments() -> int:
            status = await service.status()
            return sum(c["segments"] for c in status["captures"] if c["camera"] == "main")

        # A run stopped before its first segment leaves nothing behind (an empty attempt): let
        # the camera record something before the closed part stops it.
        await wait_for(main_segments, 20, "the camera's first segment")
        await service.post_json(f"/api/v1/sessions/{sid}/closed", {"on": True})
        closed_at = datetime.now(UTC)
        await wait_for(lambda: recording_only(["slate"]), 20, "the camera stopped, the slate on")
        await service.post_json(f"/api/v1/sessions/{sid}/closed", {"on": False})
        reopened_at = datetime.now(UTC)
        await wait_for(lambda: recording_only(["main"]), 20, "the camera recording again")

        async def second_run_recorded() -> bool:
            detail = await service.get_json(f"/api/v1/sessions/{sid}")
            runs = [r for r in detail["recording"]["runs"] if r["camera"] == "main"]
            return len(runs) == 2 and runs[1]["segments"] >= 1

        await wait_for(second_run_recorded, 20, "a segment after the closed part")
        detail = await service.post_json(f"/api/v1/sessions/{sid}/stop")
    finally:
        await stop_service(service)
    runs = [r for r in detail["recording"]["runs"] if r["camera"] == "main"]
    assert len(runs) == 2, runs
    assert runs[0]["end_reason"].startswith("closed part: not recorded")
    # The camera stopped when the closed part began and started again when it ended.
    assert datetime.fromisoformat(runs[0]["ended_at"]) - closed_at < timedelta(seconds=3)
    assert datetime.fromisoformat(runs[1]["started_at"]) >= reopened_at - timedelta(seconds=0.5)
