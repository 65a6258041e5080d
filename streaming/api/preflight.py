"""Pre-flight checks before a session: source previews, audio meters and a test recording.

The operator console's pre-flight view polls these JSON routes (operators and admins only);
recorder/preflight.py runs the ffmpeg behind them and says how a camera under capture is shown.

GET  /api/v1/chambers/{chamber}/preflight                       cameras, disk, test recordings
GET  /api/v1/chambers/{chamber}/cameras/{camera}/preview.jpg    the newest preview picture
POST /api/v1/chambers/{chamber}/test-recordings                 {"camera": id, "seconds": 3..60}
GET  /api/v1/chambers/{chamber}/test-recordings/{id}            one test recording's state
GET  /api/v1/chambers/{chamber}/test-recordings/{id}.mp4        its file (H.264 + AAC MP4)
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from aiohttp import web

from recorder.preflight import (
    Busy,
    CameraMonitor,
    ChamberPreflight,
    NotFound,
    TestRecording,
)
from recorder.redact import SECRETS
from streaming.api.body import read_body
from streaming.api.models import TestRecordingStart
from streaming.api.openapi import OPERATORS, operation
from streaming.auth.access import audit, require
from streaming.http import json_error
from streaming.keys import DISK, PREFLIGHT

log = logging.getLogger(__name__)

TEST_ID = "{id:[0-9a-z-]+}"
TEST_ID_SCHEMA = {"schema": {"type": "string", "pattern": "^[0-9a-z-]+$"}}
NO_STORE = {"Cache-Control": "no-store"}

routes = web.RouteTableDef()


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _chamber(request: web.Request) -> ChamberPreflight:
    try:
        return request.app[PREFLIGHT].chamber(request.match_info["chamber"])
    except NotFound as exc:
        raise json_error(web.HTTPNotFound, str(exc)) from None


def _monitor(chamber: ChamberPreflight, camera_id: str) -> CameraMonitor:
    try:
        return chamber.monitor(camera_id)
    except NotFound as exc:
        raise json_error(web.HTTPNotFound, str(exc)) from None


def _test(chamber: ChamberPreflight, test_id: str) -> TestRecording:
    try:
        return chamber.test(test_id)
    except NotFound as exc:
        raise json_error(web.HTTPNotFound, str(exc)) from None


def test_url(chamber_id: str, test: TestRecording) -> str:
    """Where a test recording's state is read."""
    return f"/api/v1/chambers/{chamber_id}/test-recordings/{test.id}"


def test_json(chamber_id: str, test: TestRecording) -> dict[str, Any]:
    """A test recording as the console sees it."""
    url = test_url(chamber_id, test)
    return {
        "id": test.id,
        "camera": test.camera_id,
        "seconds": test.seconds,
        "state": test.state,
        "error": test.error,
        "started_at": _iso(test.started_at),
        "finished_at": _iso(test.finished_at),
        "size_bytes": test.size_bytes,
        "video": test.video,
        "audio": test.audio,
        "url": url,
        "video_url": f"{url}.mp4" if test.state == "done" else None,
    }


def camera_json(chamber_id: str, monitor: CameraMonitor) -> dict[str, Any]:
    """One camera's picture, meter and video as the console shows them."""
    camera = monitor.camera
    preview_at = monitor.preview_at()
    state, error = monitor.current_state()
    video = monitor.video
    source = camera.source
    if video is None and source.kind == "synthetic":
        video_json: dict[str, Any] = {
            "width": source.width, "height": source.height, "fps": source.fps, "codec": "synthetic"
        }  # fmt: skip
    elif video is not None:
        video_json = {
            "width": video.width, "height": video.height, "fps": video.fps, "codec": video.codec
        }  # fmt: skip
    else:
        video_json = {"width": None, "height": None, "fps": None, "codec": None}
    return {
        "id": camera.id,
        "name": camera.name or camera.id,
        "state": state,
        "error": error,
        # "preflight": this view's own ffmpeg; "recording": the session capture's media.
        "from": "recording" if monitor.recorded is not None else "preflight",
        "preview_url": f"/api/v1/chambers/{chamber_id}/cameras/{camera.id}/preview.jpg",
        "preview_at": _iso(preview_at),
        "audio": {
            "peak_db": _round(monitor.level.peak_db),
            "rms_db": _round(monitor.level.rms_db),
            "at": _iso(monitor.level.at),
        },
        "video": video_json,
        "pid": monitor.pid,
    }


@routes.get("/api/v1/chambers/{chamber}/preflight")
@operation("Pre-flight: each camera's preview, audio level, disk", OPERATORS)
async def get_preflight(request: web.Request) -> web.Response:
    """The chamber's cameras (state, preview, audio meter, video), disk, test recordings."""
    await require(request, "preflight")
    chamber = _chamber(request)
    preflight = request.app[PREFLIGHT]
    recorded = preflight.recorded(chamber.chamber.id)
    await chamber.touch(recorded)
    disk = request.app[DISK].snapshot()
    hours = disk.hours_left
    settings = preflight.settings
    body = {
        "chamber": chamber.chamber.id,
        "name": chamber.chamber.name,
        "recording": bool(recorded),
        "cameras": [camera_json(chamber.chamber.id, m) for m in chamber.monitors.values()],
        "disk": {
            "free_bytes": disk.free_bytes,
            "hours_left": None if hours is None else round(hours, 2),
            "level": disk.level,
        },
        "test_recordings": [test_json(chamber.chamber.id, t) for t in reversed(chamber.tests)],
        "idle_seconds": settings.idle_seconds,
        "preview_every_seconds": settings.preview_every_seconds,
        "meter_every_seconds": settings.meter_every_seconds,
    }
    return web.json_response(SECRETS.scrub_json(body), headers=NO_STORE)


@routes.get("/api/v1/chambers/{chamber}/cameras/{camera}/preview.jpg")
@operation(
    "A camera's latest preview picture (JPEG)", OPERATORS, media="image/jpeg", errors=("503",)
)
async def get_preview(request: web.Request) -> web.Response:
    """The camera's newest preview picture (JPEG); 503 until the first one is made."""
    await require(request, "preflight")
    chamber = _chamber(request)
    monitor = _monitor(chamber, request.match_info["camera"])
    preflight = request.app[PREFLIGHT]
    camera_id = monitor.camera.id
    await chamber.touch(preflight.recorded(chamber.chamber.id), [camera_id])
    picture = await asyncio.to_thread(monitor.read_preview)
    if picture is None:
        why = f": {monitor.error}" if monitor.state == "failed" and monitor.error else ""
        raise json_error(
            web.HTTPServiceUnavailable,
            f"no picture yet from camera {camera_id} of chamber {chamber.chamber.id}"
            f"{why}; try again in a second",
            {"Retry-After": "1", **NO_STORE},
        )
    data, at = picture
    headers = {**NO_STORE, "Last-Modified": at.strftime("%a, %d %b %Y %H:%M:%S GMT")}
    return web.Response(body=data, content_type="image/jpeg", headers=headers)


async def _test_request(request: web.Request, chamber: ChamberPreflight) -> tuple[str, int]:
    body = await read_body(request, TestRecordingStart, {"cameras": list(chamber.monitors)})
    _monitor(chamber, body.camera)
    return body.camera, body.seconds


@routes.post("/api/v1/chambers/{chamber}/test-recordings")
@operation(
    "Make a short test recording",
    OPERATORS,
    body=TestRecordingStart,
    ok=202,
)
async def post_test_recording(request: web.Request) -> web.Response:
    """Start a short test recording of one camera; 409 while another runs in the chamber."""
    user = await require(request, "preflight")
    chamber = _chamber(request)
    camera, seconds = await _test_request(request, chamber)
    recording = bool(request.app[PREFLIGHT].recorded(chamber.chamber.id))
    try:
        test = chamber.start_test(camera, seconds, recording, user.name)
    except Busy as exc:
        raise json_error(web.HTTPConflict, str(exc)) from None
    chamber_id = chamber.chamber.id
    await audit(
        request,
        user,
        "preflight.test_recording",
        f"chamber {chamber_id}",
        after={"id": test.id, "camera": camera, "seconds": seconds},
    )
    log.info("%s started test recording %s of %s/%s", user.name, test.id, chamber_id, camera)
    url = test_url(chamber_id, test)
    return web.json_response(
        test_json(chamber_id, test), status=202, headers={"Location": url, **NO_STORE}
    )


@routes.get(f"/api/v1/chambers/{{chamber}}/test-recordings/{TEST_ID}.mp4")
@operation(
    "A finished test recording (MP4)",
    OPERATORS,
    media="video/mp4",
    errors=("409",),
    params={"id": TEST_ID_SCHEMA},
)
async def get_test_recording_file(request: web.Request) -> web.StreamResponse:
    """A finished test recording's MP4 (ranges supported, for the browser's <video>)."""
    await require(request, "preflight")
    chamber = _chamber(request)
    test = _test(chamber, request.match_info["id"])
    if test.state != "done":
        status = web.HTTPConflict if test.state == "recording" else web.HTTPNotFound
        raise json_error(
            status, f"test recording {test.id} is {test.state}: {test.error or 'not ready yet'}"
        )
    if not test.path.is_file():
        raise json_error(web.HTTPNotFound, f"test recording {test.id} has no file any more")
    return web.FileResponse(
        test.path, headers={"Content-Type": "video/mp4", "Cache-Control": "private, no-cache"}
    )


@routes.get(f"/api/v1/chambers/{{chamber}}/test-recordings/{TEST_ID}")
@operation("A test recording's state", OPERATORS, params={"id": TEST_ID_SCHEMA})
async def get_test_recording(request: web.Request) -> web.Response:
    """One test recording's state."""
    await require(request, "preflight")
    chamber = _chamber(request)
    test = _test(chamber, request.match_info["id"])
    return web.json_response(
        SECRETS.scrub_json(test_json(chamber.chamber.id, test)), headers=NO_STORE
    )
