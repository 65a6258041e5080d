"""Pre-flight: each camera's preview picture refreshes and its audio meter moves, a short test
recording plays as H.264 + AAC, bad requests are refused, and no ffmpeg outlives its use."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

from cameras.camera import RtspCamera
from conftest import (
    OPERATOR,
    STAFF,
    SYNTHETIC_SOURCE,
    Service,
    basic,
    config_text,
    free_port,
    rtsp_source,
    start_service,
    stop_service,
    wait_for,
)
from helpers import ffprobe

from config.settings import PreflightSettings, RtspSource, SyntheticSource, parse_settings
from recorder.preflight import meter_filter, monitor_argv, parse_level, parse_video_info
from streaming.keys import ARCHIVE

API = "/api/v1/chambers/sala"
PREFLIGHT = f"{API}/preflight"
PREVIEW = f"{API}/cameras/main/preview.jpg"
TESTS = f"{API}/test-recordings"
# Short idle and refresh times keep the tests quick; the defaults are 30 s and 2 s.
FAST = "\n[preflight]\nidle_seconds = 3\npreview_every_seconds = 0.5\n"


def settings_for(tmp_path: Path, source: str = SYNTHETIC_SOURCE) -> Any:
    return parse_settings(config_text(tmp_path / "data", free_port(), source) + FAST)


def alive(pid: int) -> bool:
    """Whether a process with this pid exists (and is not a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def get(service: Service, path: str, auth: tuple[str, str] | None = OPERATOR) -> Any:
    async with service.http.get(service.base + path, headers=basic(auth)) as resp:
        return resp.status, dict(resp.headers), await resp.read()


async def get_json(service: Service, path: str) -> Any:
    status, _, body = await get(service, path)
    assert status == 200, body
    return json.loads(body)


async def preflight(service: Service) -> dict[str, Any]:
    data: dict[str, Any] = await get_json(service, PREFLIGHT)
    return data


async def gone(pid: int) -> bool:
    return not alive(pid)


async def post(service: Service, body: Any, status: int) -> dict[str, Any]:
    result: dict[str, Any] = await service.post_json(TESTS, body, status=status)
    return result


def test_monitor_argv_reuses_the_capture_input_and_writes_preview_and_levels() -> None:
    settings = PreflightSettings()
    rtsp = RtspSource(kind="rtsp", url="rtsp://10.0.0.5/stream1")
    argv = monitor_argv(rtsp, None, Path("/d/main.jpg"), settings)
    assert argv == [
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "info", "-nostats", "-n",
        "-analyzeduration", "500000", "-probesize", "500000",
        "-rtsp_transport", "tcp", "-timeout", "5000000", "-i", "rtsp://10.0.0.5/stream1",
        "-filter_complex", "[0:v:0]fps=fps=1/2[s0];[s0]scale=640:-2[s1];[s1]format=yuvj420p[s2]",
        "-map", "[s2]", "-f", "image2", "-atomic_writing", "1", "-q:v", "5", "-update", "1",
        "/d/main.jpg",
        # The video rides along (copied into nothing): a camera without audio still works.
        "-map", "0:v:0", "-map", "0:a:0?", "-f", "null", "-af", meter_filter(0.2),
        "-c:v", "copy", "-",
    ]  # fmt: skip
    assert "asetnsamples=n=9600:p=0" in meter_filter(0.2)
    synthetic = monitor_argv(
        SyntheticSource(kind="synthetic", width=320, height=180, fps=10),
        None,
        Path("/d/main.jpg"),
        settings,
    )
    # The same picture as capture: the paced test pattern with its label and clock.
    assert synthetic[7:11] == ["-f", "lavfi", "-re", "-i"]
    assert "text=%{localtime}" in synthetic[synthetic.index("-filter_complex") + 1]
    assert "-y" not in argv and "-y" not in synthetic


def test_level_and_video_lines_are_parsed() -> None:
    assert parse_level("lavfi.astats.Overall.Peak_level=-18.063656") == ("peak", -18.063656)
    assert parse_level("lavfi.astats.Overall.RMS_level=-inf") == ("rms", -200.0)
    assert parse_level("frame:2    pts:19200   pts_time:0.4") is None
    info = parse_video_info(
        "  Stream #0:0: Video: h264 (Constrained Baseline), yuv420p(progressive), 320x180, "
        "10 fps, 10 tbr, 90k tbn"
    )
    assert info is not None and (info.codec, info.width, info.height, info.fps) == (
        "h264",
        320,
        180,
        10.0,
    )


async def test_preview_meter_test_recording_and_refusals(tmp_path: Path) -> None:
    service = await start_service(settings_for(tmp_path))
    pid = None
    try:
        # Who may look: operators and admins only.
        for path in (PREFLIGHT, PREVIEW, f"{TESTS}/x"):
            assert (await get(service, path, auth=None))[0] == 401
            status, _, body = await get(service, path, auth=STAFF)
            assert status == 403 and b"role staff" in body
        await service.post_json(TESTS, {"camera": "main"}, auth=None, status=401)
        await service.post_json(TESTS, {"camera": "main"}, auth=STAFF, status=403)

        # Unknown things are named in the answer.
        status, _, body = await get(service, f"{API}/cameras/nope/preview.jpg")
        assert status == 404 and b"no camera 'nope'" in body and b"main" in body
        status, _, body = await get(service, "/api/v1/chambers/kuchnia/preflight")
        assert status == 404 and b"kuchnia" in body

        first = await preflight(service)
        camera = first["cameras"][0]
        assert camera["id"] == "main" and camera["state"] in ("starting", "ok")
        assert camera["preview_url"] == PREVIEW
        assert first["disk"]["free_bytes"] > 0 and "hours_left" in first["disk"]
        pid = camera["pid"]
        assert pid is not None and alive(pid)

        async def picture() -> tuple[bytes, str] | None:
            status, headers, body = await get(service, PREVIEW)
            if status == 503:
                return None
            assert status == 200, body
            assert headers["Content-Type"] == "image/jpeg"
            assert headers["Cache-Control"] == "no-store"
            assert body[:2] == b"\xff\xd8"
            return body, headers["Last-Modified"]

        jpeg, _ = await wait_for(picture, 15, "the first preview picture")

        async def newer() -> bytes | None:
            got = await picture()
            return got[0] if got is not None and got[0] != jpeg else None

        # The burned-in clock changes every second, so a refreshed picture differs.
        await wait_for(newer, 10, "a refreshed preview picture")

        async def loud() -> dict[str, Any] | None:
            cam = (await preflight(service))["cameras"][0]
            peak = cam["audio"]["peak_db"]
            return cam if peak is not None and peak > -30 else None

        cam = await wait_for(loud, 10, "the 440 Hz tone on the audio meter")
        assert cam["state"] == "ok" and cam["error"] is None
        assert cam["audio"]["rms_db"] is not None and cam["audio"]["at"] is not None
        assert cam["preview_at"] is not None and cam["pid"] == pid
        assert cam["video"] == {"width": 320, "height": 180, "fps": 10, "codec": "rawvideo"}

        # Bad test recording requests.
        for seconds in (0, 1000, 2, 61, "10", 3.5, True):
            refused = await post(service, {"camera": "main", "seconds": seconds}, 400)
            assert "seconds must be a whole number from 3 to 60" in refused["error"]
        assert "camera is required" in (await post(service, {"seconds": 5}, 400))["error"]
        assert "no camera 'x'" in (await post(service, {"camera": "x"}, 404))["error"]
        async with service.http.post(
            service.base + TESTS, data=b"{not json", headers=basic(OPERATOR)
        ) as resp:
            assert resp.status == 400 and "JSON object" in (await resp.json())["error"]

        started = await post(service, {"camera": "main", "seconds": 3}, 202)
        assert started["state"] == "recording" and started["url"] == f"{TESTS}/{started['id']}"
        busy = await post(service, {"camera": "main", "seconds": 5}, 409)
        assert "one at a time" in busy["error"]

        async def finished() -> dict[str, Any] | None:
            test: dict[str, Any] = await get_json(service, started["url"])
            return test if test["state"] != "recording" else None

        test = await wait_for(finished, 30, "the test recording to finish")
        assert test["state"] == "done", test
        assert test["video_url"] == f"{started['url']}.mp4"
        status, headers, body = await get(service, test["video_url"])
        assert status == 200 and headers["Content-Type"] == "video/mp4"
        local = tmp_path / "test.mp4"
        local.write_bytes(body)
        probe = await ffprobe(str(local))
        codecs = {s["codec_type"]: s["codec_name"] for s in probe["streams"]}
        assert codecs == {"video": "h264", "audio": "aac"}
        assert 2.5 <= float(probe["format"]["duration"]) <= 3.6
        # +faststart: the index (moov) comes before the media (mdat).
        assert body.index(b"moov") < body.index(b"mdat")
        folder = service.settings.data_path / "preflight" / "sala" / "tests"
        assert (folder / f"{test['id']}.mp4").is_file()
        assert not list((service.settings.data_path / "media").rglob("*.mp4"))
        listed = (await preflight(service))["test_recordings"]
        assert [t["id"] for t in listed] == [test["id"]]
        archive = service.app[ARCHIVE]
        entries = await archive.call(archive.index.audit_log)
        entry = next(e for e in entries if e.action == "preflight.test_recording")
        assert entry.user_name == OPERATOR[0] and entry.target == "chamber sala"
        assert entry.after == {"id": test["id"], "camera": "main", "seconds": 3}

        # Nobody asks any more: the monitor's ffmpeg goes away by itself.
        await wait_for(lambda: gone(pid), 15, f"the idle monitor ffmpeg {pid} to stop")

        # Asked again: a new one starts; stopping the service ends it.
        pid = (await preflight(service))["cameras"][0]["pid"]
        assert pid is not None and alive(pid)
    finally:
        await stop_service(service)
    assert pid is not None and not alive(pid), "the monitor ffmpeg outlived the service"


async def test_recorded_camera_is_shown_from_its_recording(tmp_path: Path) -> None:
    service = await start_service(settings_for(tmp_path))
    try:
        await service.begin()

        async def from_recording() -> dict[str, Any] | None:
            cam = (await preflight(service))["cameras"][0]
            return cam if cam["from"] == "recording" and cam["preview_at"] else None

        cam = await wait_for(from_recording, 20, "a preview from the recorded segments")
        # No second connection to a camera that is being recorded.
        assert cam["pid"] is None and cam["state"] == "ok"
        status, headers, body = await get(service, PREVIEW)
        assert status == 200 and body[:2] == b"\xff\xd8"
        refused = await post(service, {"camera": "main", "seconds": 3}, 409)
        assert "being recorded" in refused["error"]
    finally:
        await stop_service(service)


async def test_rtsp_camera_preview_meter_and_copied_test_recording(tmp_path: Path) -> None:
    async with RtspCamera(free_port(), width=320, height=180) as camera:
        service = await start_service(settings_for(tmp_path, rtsp_source(camera.url)))
        try:

            async def ready() -> dict[str, Any] | None:
                cam = (await preflight(service))["cameras"][0]
                ok = cam["preview_at"] and (cam["audio"]["peak_db"] or -999) > -30
                return cam if ok else None

            cam = await wait_for(ready, 20, "the RTSP camera's preview and meter")
            assert cam["video"]["codec"] == "h264"
            assert (cam["video"]["width"], cam["video"]["height"]) == (320, 180)
            pid = cam["pid"]

            started = await post(service, {"camera": "main", "seconds": 3}, 202)

            async def finished() -> dict[str, Any] | None:
                test: dict[str, Any] = await get_json(service, started["url"])
                return test if test["state"] != "recording" else None

            test = await wait_for(finished, 30, "the RTSP test recording to finish")
            assert test["state"] == "done", test
            # The camera's H.264 and AAC go into the file as they come.
            assert (test["video"], test["audio"]) == ("copy", "copy")
            status, _, body = await get(service, test["video_url"])
            local = tmp_path / "rtsp.mp4"
            local.write_bytes(body)
            probe = await ffprobe(str(local))
            codecs = {s["codec_type"]: s["codec_name"] for s in probe["streams"]}
            assert codecs == {"video": "h264", "audio": "aac"}
            assert 2.5 <= float(probe["format"]["duration"]) <= 3.6

            # A camera that stops sending is reported, with what is wrong.
            assert camera.pid is not None
            os.kill(camera.pid, signal.SIGSTOP)
            try:

                async def failed() -> dict[str, Any] | None:
                    cam = (await preflight(service))["cameras"][0]
                    return cam if cam["state"] == "failed" else None

                cam = await wait_for(failed, 20, "the stalled camera to be reported")
                assert "camera" in cam["error"] or "ffmpeg exited" in cam["error"], cam
            finally:
                os.kill(camera.pid, signal.SIGCONT)
        finally:
            await stop_service(service)
        assert not alive(pid)
