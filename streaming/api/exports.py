"""GET /api/v1/sessions/{id}/exports: the state of a session's MP4 downloads."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from streaming.api.openapi import operation
from streaming.hls.routes import private_if_withdrawn
from streaming.http import session_id_of
from streaming.keys import ARCHIVE, EXPORTS
from streaming.services.exports import FINAL_NAME

routes = web.RouteTableDef()
PRIVATE = "private, no-store"


@routes.get("/api/v1/sessions/{id}/exports")
@operation(
    "MP4 downloads of the public recording (/sessions/{id}/recording.mp4, "
    "/sessions/{id}/items/{item_id}/clip.mp4, /sessions/{id}/clip.mp4?start=&end=) "
    "and their progress",
    errors=("401", "403", "410"),
)
async def list_exports(request: web.Request) -> web.Response:
    """The session's MP4 exports: finished ones and those being made, with their progress."""
    archive = request.app[ARCHIVE]
    sid = session_id_of(request)
    session = await archive.call(archive.index.get_session, sid)
    private = await private_if_withdrawn(request, session)
    manager = request.app[EXPORTS]
    found: list[dict[str, Any]] = []
    for name, size in await manager.finished(sid):
        group = FINAL_NAME.match(name)
        assert group is not None
        found.append(
            {
                "name": name,
                "state": "done",
                "progress": 1.0,
                "size_bytes": size,
                "url": _url_of(sid, group[1]),
            }
        )
    for job in manager.jobs_of(sid):
        found.append(
            {
                "name": job.target.name,
                "state": "working" if job.state in ("queued", "working") else job.state,
                "queued": job.state == "queued",
                "progress": round(job.progress, 3),
                "duration_seconds": round(job.plan.duration, 3),
                "error": job.error,
                "url": _url_of(sid, job.plan.group),
            }
        )
    return web.json_response(
        {"session_id": sid, "exports": found},
        headers={"Cache-Control": PRIVATE if private else "no-store"},
    )


def _url_of(session_id: int, group: str) -> str:
    if group == "recording":
        return f"/sessions/{session_id}/recording.mp4"
    if group.startswith("item-"):
        return f"/sessions/{session_id}/items/{group[5:]}/clip.mp4"
    low, high = (int(ms) / 1000 for ms in group[6:].split("-"))
    return f"/sessions/{session_id}/clip.mp4?start={low:g}&end={high:g}"
