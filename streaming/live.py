"""HLS for viewers: the stable live URL of each chamber, each session's recording, its chapters,
and the media files, all served from what the recorder already wrote (no re-encoding)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Protocol

from aiohttp import web

from archive.index import Segment, Session
from archive.publish import chapters, chapters_vtt, media_playlist
from config.settings import SLUG, Settings
from streaming.api import session_id_of
from streaming.auth import authenticate
from streaming.http import json_error
from streaming.keys import ARCHIVE, LIVE_WINDOW, SETTINGS

ARCHIVE_ROLES = ("operator", "staff", "admin")
RUN_NAME = re.compile(r"^run-\d{4,}$")
FILE_NAME = re.compile(r"^seg-\d{6}\.ts$")
HLS_TYPE = "application/vnd.apple.mpegurl"

routes = web.RouteTableDef()


def session_dir(settings: Settings, session: Session) -> Path:
    """The folder holding a session's media (one sub-folder per camera)."""
    return settings.data_path / "media" / session.chamber / str(session.id)


class LiveWindow(Protocol):
    """Where the live playlist gets each chamber's newest program segments."""

    async def window(self, chamber: str) -> list[Segment]:
        """The chamber's newest program segments, oldest first."""
        ...


async def _live_playlist(request: web.Request, chamber_id: str, prefix: str) -> web.Response:
    settings = request.app[SETTINGS]
    if chamber_id not in {c.id for c in settings.chambers}:
        raise json_error(web.HTTPNotFound, f"chamber {chamber_id!r} is not configured")
    window = await request.app[LIVE_WINDOW].window(chamber_id)
    if not window:
        raise json_error(
            web.HTTPNotFound,
            f"nothing has been transmitted from chamber {chamber_id!r} yet; "
            "the live stream appears here when its first session starts",
        )
    body = media_playlist(
        window,
        uri_prefix=prefix,
        ended=False,
        target_seconds=settings.recording.segment_seconds,
        window=True,
    )
    # Short-lived: a cache in front may hold it for at most about half a segment.
    return web.Response(
        text=body, content_type=HLS_TYPE, headers={"Cache-Control": "public, max-age=1"}
    )


@routes.get("/live/index.m3u8")
async def live_default(request: web.Request) -> web.Response:
    """The first chamber's live playlist."""
    return await _live_playlist(request, request.app[SETTINGS].chambers[0].id, "../sessions/")


@routes.get("/live/{chamber}/index.m3u8")
async def live_chamber(request: web.Request) -> web.Response:
    """A chamber's live playlist: the same URL for every session, break and restart."""
    return await _live_playlist(request, request.match_info["chamber"], "../../sessions/")


async def _session(request: web.Request) -> Session:
    archive = request.app[ARCHIVE]
    return await archive.call(archive.index.get_session, session_id_of(request))


@routes.get("/sessions/{id}/index.m3u8")
async def session_playlist(request: web.Request) -> web.Response:
    """The session's recording; an EVENT playlist while live, VOD with ENDLIST once stopped."""
    archive = request.app[ARCHIVE]
    session = await _session(request)
    segments = await archive.call(archive.index.segments, session.id)
    if not segments:
        raise json_error(web.HTTPNotFound, f"session {session.id} has no recording yet")
    return _recording(request, session, segments, "../")


def _recording(
    request: web.Request, session: Session, segments: list[Segment], prefix: str
) -> web.Response:
    """A recording's playlist: EVENT while the session is live, VOD with ENDLIST after."""
    ended = session.state == "ended"
    body = media_playlist(
        segments,
        uri_prefix=prefix,
        ended=ended,
        target_seconds=request.app[SETTINGS].recording.segment_seconds,
    )
    cache = "public, max-age=3600" if ended else "public, max-age=1"
    return web.Response(text=body, content_type=HLS_TYPE, headers={"Cache-Control": cache})


@routes.get("/sessions/{id}/chapters.vtt")
async def session_chapters(request: web.Request) -> web.Response:
    """WebVTT chapters: one per agenda item that was started, named by number and title."""
    archive = request.app[ARCHIVE]
    session = await _session(request)
    index = archive.index

    def read() -> str:
        return chapters_vtt(
            chapters(
                index.agenda(session.id), index.markers(session.id), index.timeline(session.id)
            )
        )

    body = await archive.call(read)
    return web.Response(
        text=body,
        content_type="text/vtt",
        charset="utf-8",
        headers={"Cache-Control": "public, max-age=5"},
    )


@routes.get("/sessions/{id}/cameras/{camera}/index.m3u8")
async def camera_playlist(request: web.Request) -> web.Response:
    """One camera's own recording of the session (every camera is recorded on its own)."""
    archive = request.app[ARCHIVE]
    # A camera's own recording holds breaks and closed parts: staff only.
    await authenticate(request, archive, ARCHIVE_ROLES)
    session = await _session(request)
    camera = request.match_info["camera"]
    segments = await archive.call(archive.index.camera_segments, session.id, camera)
    if not segments:
        raise json_error(
            web.HTTPNotFound, f"session {session.id} has no recording from camera {camera!r}"
        )
    return _recording(request, session, segments, "../../../")


@routes.get("/sessions/{id}/media/{camera}/{run}/{file}")
async def session_media(request: web.Request) -> web.FileResponse:
    """One recorded segment; immutable once written."""
    camera = request.match_info["camera"]
    run, name = request.match_info["run"], request.match_info["file"]
    if not SLUG.match(camera) or not RUN_NAME.match(run) or not FILE_NAME.match(name):
        raise json_error(web.HTTPNotFound, "no such media file")
    session = await _session(request)
    archive = request.app[ARCHIVE]
    public = await archive.call(archive.index.is_program_file, session.id, camera, run, name)
    if not public:
        # Not in the public program (a break, a closed part, another camera): staff only, and
        # never kept by a shared cache.
        await authenticate(request, archive, ARCHIVE_ROLES)
    cache = "public, max-age=31536000, immutable" if public else "private, no-store"
    path = session_dir(request.app[SETTINGS], session) / camera / run / name
    # FileResponse answers 404 itself when the file is missing, without blocking the loop.
    return web.FileResponse(path, headers={"Content-Type": "video/mp2t", "Cache-Control": cache})
