"""A chamber with two cameras and the microphone system's own audio: each camera is recorded
on its own, the program camera goes live and into the session recording, and the operator
switches it with a discontinuity and no gap longer than one segment."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from cameras.camera import RtspCamera
from conftest import OPERATOR, STAFF, free_port, start_service, stop_service, wait_for
from helpers import decoded_duration, decoded_frames, ffprobe, peak_db

from config.settings import parse_settings


def chamber_head(data: Path, port: int) -> str:
    """The service and the chamber "sala", recorded in 1 s segments from the start."""
    return f"""
[server]
port = {port}
data_dir = "{data}"
[recording]
segment_seconds = 1
preroll_seconds = 0
[[chambers]]
id = "sala"
name = "Sala obrad"
"""


def chamber_config(data: Path, port: int, cam1: str, cam2: str, mics: str) -> str:
    return (
        chamber_head(data, port)
        + f"""program = "glowna"
[chambers.audio]
kind = "rtsp"
url = "{mics}"
[[chambers.cameras]]
id = "glowna"
name = "Kamera główna"
[chambers.cameras.source]
kind = "rtsp"
url = "{cam1}"
[[chambers.cameras]]
id = "mownica"
name = "Mównica"
[chambers.cameras.source]
kind = "rtsp"
url = "{cam2}"
"""
    )


def one_camera_config(data: Path, camera: str, audio: str) -> str:
    """One RTSP camera at `camera` with the chamber sound `audio` (the [chambers.audio] body)."""
    return (
        chamber_head(data, free_port())
        + f"""[chambers.audio]
{audio}
[chambers.source]
kind = "rtsp"
url = "{camera}"
"""
    )


async def test_program_switch_and_chamber_audio(tmp_path: Path) -> None:
    # The cameras' own microphones are silent; the chamber's sound comes from the mic system.
    cam1 = RtspCamera(free_port(), width=320, height=180, silent=True)
    cam2 = RtspCamera(free_port(), width=256, height=144, silent=True)
    mics = RtspCamera(free_port(), width=64, height=64)
    for camera in (cam1, cam2, mics):
        await camera.start()
    settings = parse_settings(
        chamber_config(tmp_path / "data", free_port(), cam1.url, cam2.url, mics.url)
    )
    service = await start_service(settings)
    try:
        chambers = await service.get_json("/api/v1/chambers")
        assert chambers["chambers"][0]["program"] == "glowna"
        assert [c["id"] for c in chambers["chambers"][0]["cameras"]] == ["glowna", "mownica"]
        created = await service.begin()
        sid = created["id"]

        async def both_recording() -> list[dict[str, Any]] | None:
            captures = (await service.status())["captures"]
            ok = len(captures) == 2 and all(c["segments"] >= 3 for c in captures)
            return captures if ok else None

        captures = await wait_for(both_recording, 30, "both cameras to record")
        assert {(c["camera"], c["program"]) for c in captures} == {
            ("glowna", True),
            ("mownica", False),
        }
        live = await service.get_text("/live/index.m3u8")
        assert "-glowna.ts" in live and "-mownica.ts" not in live

        refused = await service.post_json(
            "/api/v1/chambers/sala/program", {"camera": "x"}, status=404
        )
        assert "glowna" in refused["error"] and "mownica" in refused["error"]
        await service.post_json(
            "/api/v1/chambers/sala/program", {"camera": "mownica"}, auth=STAFF, status=403
        )
        switched = await service.post_json(
            "/api/v1/chambers/sala/program", {"camera": "mownica"}, auth=OPERATOR
        )
        assert switched == {"chamber": "sala", "program": "mownica", "session_id": sid}

        async def live_from_cam2() -> str | None:
            text = await service.get_text("/live/index.m3u8")
            return text if text.count("-mownica.ts") >= 2 else None

        live = await wait_for(live_from_cam2, 20, "the live stream to switch cameras")
        assert "#EXT-X-DISCONTINUITY\n" in live

        async def recorded_from_cam2() -> bool:
            text = await service.get_text(f"/sessions/{sid}/index.m3u8")
            return text.count("/media/mownica/") >= 2

        await wait_for(recorded_from_cam2, 20, "two of camera 2's segments in the recording")
        detail = await service.post_json(f"/api/v1/sessions/{sid}/stop")

        # The session recording is the program: camera 1, then camera 2, one discontinuity.
        playlist = await service.get_text(f"/sessions/{sid}/index.m3u8")
        uris = [line for line in playlist.splitlines() if line.endswith(".ts")]
        cameras = [uri.split("/media/")[1].split("/")[0] for uri in uris]
        switch_at = cameras.index("mownica")
        assert set(cameras[:switch_at]) == {"glowna"} and set(cameras[switch_at:]) == {"mownica"}
        assert playlist.count("#EXT-X-DISCONTINUITY\n") == 1
        assert all(g["seconds"] <= 1.0 + 0.1 for g in detail["recording"]["gaps"]), detail
        duration = await decoded_duration(f"{service.base}/sessions/{sid}/index.m3u8")
        # Every recorded second decodes: the frames (10 a second) against the listed length.
        # (The timestamps' span is no measure here: it jumps where the two runs join, by up to
        # a segment either way, and each run's first frames before a keyframe are not kept.)
        frames = await decoded_frames(f"{service.base}/sessions/{sid}/index.m3u8")
        recorded = detail["recording"]["duration_seconds"]
        assert abs(frames / 10 - recorded) < 0.5, (frames, recorded)

        # Each camera is recorded on its own, for the whole session.
        for camera, width in (("glowna", 320), ("mownica", 256)):
            url = f"{service.base}/sessions/{sid}/cameras/{camera}/index.m3u8"
            probe = await ffprobe(url, auth=STAFF)
            video = next(s for s in probe["streams"] if s["codec_type"] == "video")
            assert video["width"] == width
            own = await decoded_duration(url, auth=STAFF)
            assert own > duration - 3.0, (camera, own, duration)

        # The sound is the chamber's (a tone), not the cameras' silent microphones.
        last = uris[-2].split("/media/")[-1]
        path = settings.data_path / "media" / "sala" / str(sid) / last
        assert await peak_db(path) > -30
    finally:
        await stop_service(service)
        for camera in (cam1, cam2, mics):
            await camera.stop()


async def test_chamber_audio_from_an_alsa_line_input(tmp_path: Path) -> None:
    # ALSA's "null" device is a real capture device paced in real time; here it delivers loud
    # noise (measured: mean -4.5 dB). The camera's own microphone is silent, so sound in the
    # recording shows that the line input replaced the camera's audio.
    camera = RtspCamera(free_port(), silent=True)
    await camera.start()
    settings = parse_settings(
        one_camera_config(tmp_path / "data", camera.url, 'kind = "alsa"\ndevice = "null"')
    )
    service = await start_service(settings)
    try:
        created = await service.begin()
        sid = created["id"]

        async def recorded() -> dict[str, Any] | None:
            captures = (await service.status())["captures"]
            return captures[0] if captures and captures[0]["segments"] >= 3 else None

        capture = await wait_for(recorded, 30, "three segments")
        assert capture["audio"] == "chamber"
        detail = await service.post_json(f"/api/v1/sessions/{sid}/stop")
        assert detail["recording"]["gaps"] == []
        segment = sorted((settings.data_path / "media" / "sala" / str(sid)).rglob("seg-*.ts"))[1]
        probe = await ffprobe(str(segment))
        audio = next(s for s in probe["streams"] if s["codec_type"] == "audio")
        assert (audio["codec_name"], audio["sample_rate"]) == ("aac", "48000")
        assert await peak_db(segment) > -30
    finally:
        await stop_service(service)
        await camera.stop()


async def test_a_microphone_outage_is_a_hole_in_the_sound_of_the_record(tmp_path: Path) -> None:
    """The conference system's stream goes away mid-session: the camera keeps recording (with
    silence), the status says the chamber sound is missing while it is, and the session's
    continuity lists the hole in the audio, so the recording is not complete."""
    camera = RtspCamera(free_port(), width=160, height=90, silent=True)
    mic_port = free_port()
    mics = RtspCamera(mic_port, video="none", audio="pcma")
    for source in (camera, mics):
        await source.start()
    text = one_camera_config(tmp_path / "data", camera.url, f'kind = "rtsp"\nurl = "{mics.url}"')
    service = await start_service(parse_settings(text))
    try:
        sid = (await service.begin())["id"]

        async def sound(state: str) -> dict[str, Any] | None:
            captures = (await service.status())["captures"]
            shared = captures[0]["chamber_sound"] if captures else None
            ok = shared is not None and shared["source_state"] == state
            return captures[0] if ok and captures[0]["segments"] >= 2 else None

        await wait_for(lambda: sound("receiving"), 30, "the chamber sound")
        await mics.stop()
        silent = await wait_for(lambda: sound("failed"), 15, "the sound to be missed")
        assert any("no chamber sound" in p for p in silent["source"]["problems"]), silent
        metrics = await service.get_text("/metrics")
        assert f'obrady_chamber_sound_receiving{{chamber="sala",session="{sid}"}} 0.0' in metrics
        await asyncio.sleep(1)
        mics = RtspCamera(mic_port, video="none", audio="pcma")
        await mics.start()
        back = await wait_for(lambda: sound("receiving"), 15, "the sound back")
        assert back["restarts"] == 0, back  # the camera's capture never stopped for it
        detail = await service.post_json(f"/api/v1/sessions/{sid}/stop")
    finally:
        await stop_service(service)
        await camera.stop()
        await mics.stop()
    recording = detail["recording"]
    audio = [c for c in recording["continuity"] if c["kind"] == "audio"]
    assert len(audio) == 1, recording["continuity"]
    assert audio[0]["seconds"] >= 1.0 and "sound" in audio[0]["cause"], audio
    assert audio[0]["offset_seconds"] is not None and audio[0]["offset_seconds"] > 1.0, audio
    assert recording["complete"] is False


def two_synthetic_cameras(data: Path, port: int) -> str:
    cameras = "".join(
        f"""
[[chambers.cameras]]
id = "{camera}"
name = "{camera}"
[chambers.cameras.source]
kind = "synthetic"
width = 160
height = 90
fps = 10
label = "{camera}"
"""
        for camera in ("glowna", "mownica")
    )
    return f"""
[server]
host = "127.0.0.1"
port = {port}
data_dir = "{data}"
[recording]
segment_seconds = 1
preroll_seconds = 0
[live]
announce_minutes = 0
[monitoring]
offair = false
[[chambers]]
id = "sala"
name = "Sala obrad"
program = "glowna"
{cameras}"""


async def test_a_switch_lasts_for_its_session_only(tmp_path: Path) -> None:
    """The configured program camera starts every session; the operator's switch stays with
    its session (across a restart of obrady), and a choice made between sessions is for the
    next one."""
    settings = parse_settings(two_synthetic_cameras(tmp_path / "data", free_port()))

    async def program(service: Any) -> str:
        chambers = await service.get_json("/api/v1/chambers")
        return str(chambers["chambers"][0]["program"])

    async def live_from(service: Any, camera: str) -> bool:
        text = await service.get_text("/live/sala/index.m3u8", status=None)
        uris = [line for line in text.splitlines() if line.endswith(".ts")]
        return bool(uris) and uris[-1].endswith(f"-{camera}.ts")

    service = await start_service(settings)
    try:
        first = (await service.begin(title="Pierwsza"))["id"]
        assert await program(service) == "glowna"
        await service.post_json("/api/v1/chambers/sala/program", {"camera": "mownica"})
        await service.post_json(f"/api/v1/sessions/{first}/stop")
        assert await program(service) == "mownica"  # until the next session begins

        second = (await service.begin(title="Druga"))["id"]
        assert await program(service) == "glowna"
        await wait_for(lambda: live_from(service, "glowna"), 20, "the next session on glowna")
        await service.post_json("/api/v1/chambers/sala/program", {"camera": "mownica"})
    finally:
        await stop_service(service)

    # obrady restarts while the second session is live: the operator's choice stands.
    service = await start_service(settings)
    try:
        assert await program(service) == "mownica"
        await wait_for(lambda: live_from(service, "mownica"), 20, "the resumed session on mownica")
        await service.post_json(f"/api/v1/sessions/{second}/stop")
        # Chosen between sessions: for the next one, across a restart too.
        chosen = await service.post_json("/api/v1/chambers/sala/program", {"camera": "mownica"})
        assert chosen["session_id"] is None
    finally:
        await stop_service(service)
    service = await start_service(settings)
    try:
        assert await program(service) == "mownica"
        await service.begin(title="Trzecia")
        assert await program(service) == "mownica"
        await wait_for(lambda: live_from(service, "mownica"), 20, "the third session on mownica")
    finally:
        await stop_service(service)
