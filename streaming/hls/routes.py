"""HLS for viewers: the stable live URL of each chamber, each session's recording, its chapters,
and the media files, all served from what the recorder already wrote (no re-encoding)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NamedTuple

from aiohttp import web

from archive.index import ArchiveIndex, Segment, Session
from archive.publish import chapters, chapters_vtt, media_playlist
from config.settings import SLUG, Settings
from streaming.auth.access import identify, require
from streaming.edge.llhls import EdgeSnapshot, LiveSegment, Part
from streaming.edge.viewers import VIEWER_ID
from streaming.hls.viewers import client_of
from streaming.http import JSON, is_digits, json_error, read_json, session_id_of
from streaming.keys import ARCHIVE, LIVE_EDGE, MEDIA_BYTES, PLAYLISTS, SETTINGS, VIEWERS

RUN_NAME = re.compile(r"^run-\d{4,}$", re.ASCII)
FILE_NAME = re.compile(r"^seg-\d{6}\.ts$", re.ASCII)
SLATE_NAME = re.compile(r"^slate-\d{1,9}\.ts$", re.ASCII)
HLS_TYPE = "application/vnd.apple.mpegurl"

routes = web.RouteTableDef()


# A blocking request waits at most this many target durations (RFC 8216bis 6.2.5.2).
BLOCK_TARGETS = 3
PART_NAME = re.compile(r"^(\d{1,12})\.(\d{1,4})\.ts$", re.ASCII)
SEGMENT_NAME = re.compile(r"^(\d{1,12})-([a-z0-9][a-z0-9_-]{0,31})\.ts$", re.ASCII)
MEDIA_CACHE = "public, max-age=600"
# A recording may be withdrawn or redacted after it was published: a shared cache must let go
# of it within minutes, so nothing recorded is cached as immutable.
RECORDED_PLAYLIST_CACHE = "public, max-age=60"
RECORDED_MEDIA_CACHE = "public, max-age=600"
PRIVATE = "private, no-store"


def known_chamber(settings: Settings, chamber_id: str) -> str:
    """chamber_id if it is configured, else a 404."""
    if chamber_id not in {c.id for c in settings.chambers}:
        raise json_error(web.HTTPNotFound, f"chamber {chamber_id!r} is not configured")
    return chamber_id


def _chamber(request: web.Request, chamber_id: str) -> str:
    chamber_id = known_chamber(request.app[SETTINGS], chamber_id)
    request.app[VIEWERS].request(chamber_id, client_of(request))
    return chamber_id


# A beacon is {"id": "<at most 64 characters>"}: anything much longer is not one, and is not
# worth the time of reading it as JSON (this route is public, on both ports).
BEACON_MAX_BYTES = 1024


@routes.post("/live/{chamber}/viewers")
async def live_beacon(request: web.Request) -> web.Response:
    """A web player says it is playing (every few seconds), with its own random id."""
    chamber = known_chamber(request.app[SETTINGS], request.match_info["chamber"])
    if request.content_type != JSON:
        # Exactly what our player sends (player.js: fetch with Content-Type application/json):
        # a form or text/plain is what another site's page can send without asking.
        raise json_error(
            web.HTTPUnsupportedMediaType,
            f"send the beacon as {JSON} (not {request.content_type}): "
            '{"id": "<8-64 letters, digits, - or _>"}',
        )
    try:
        body = await read_json(request, BEACON_MAX_BYTES) if request.content_length else {}
    except ValueError:
        body = None
    viewer = body.get("id") if isinstance(body, dict) else None
    if not isinstance(viewer, str) or not VIEWER_ID.match(viewer):
        raise json_error(
            web.HTTPBadRequest, 'send {"id": "<8-64 letters, digits, - or _>"} as JSON'
        )
    request.app[VIEWERS].beacon(chamber, viewer, client_of(request))
    return web.Response(status=204, headers={"Cache-Control": "no-store"})


# What a live request asks for, decided the same way whichever server path answers it (the
# aiohttp routes below, or the gateway's fast path for the hot live routes, gateway_fast.py):
# each function raises the same JSON error for the same request.


def _non_negative(query: Mapping[str, str], name: str) -> int | None:
    raw = query.get(name)
    if raw is None:
        return None
    if not is_digits(raw) or len(raw) > 12:
        raise json_error(
            web.HTTPBadRequest, f"{name} must be a whole number 0 or more, not {raw!r}"
        )
    return int(raw)


class PlaylistAsk(NamedTuple):
    """A live playlist request: a plain reload (msn None) or a blocking one, maybe a delta."""

    msn: int | None
    part: int | None
    skip: bool

    def ready(self, snap: EdgeSnapshot) -> bool:
        """Whether snap answers this blocking reload."""
        assert self.msn is not None
        return snap.has(self.msn, self.part)

    @property
    def cache_control(self) -> str:
        """A plain reload may be held by a cache for about a part; a blocking one names a
        moment that has passed once it is answered, so it may be kept longer."""
        return "public, max-age=1" if self.msn is None else "public, max-age=6"


def playlist_ask(query: Mapping[str, str]) -> PlaylistAsk:
    """The playlist request's parameters (_HLS_msn, _HLS_part, _HLS_skip), or a 400."""
    msn = _non_negative(query, "_HLS_msn")
    part = _non_negative(query, "_HLS_part")
    skip = query.get("_HLS_skip")
    if part is not None and msn is None:
        raise json_error(web.HTTPBadRequest, "_HLS_part needs _HLS_msn")
    if skip not in (None, "YES", "v2"):
        raise json_error(web.HTTPBadRequest, f"_HLS_skip must be YES or v2, not {skip!r}")
    return PlaylistAsk(msn, part, skip is not None)


def check_blocking(ask: PlaylistAsk, snap: EdgeSnapshot | None) -> None:
    """A 400 for a blocking reload that may never be answered."""
    assert ask.msn is not None
    if snap is not None and ask.msn > snap.last_msn + 2:
        raise json_error(
            web.HTTPBadRequest,
            f"_HLS_msn={ask.msn} is too far ahead: the newest segment is {snap.last_msn}",
        )
    if ask.part is not None and ask.part > 1000:
        raise json_error(web.HTTPBadRequest, f"_HLS_part={ask.part} is out of range")


def block_seconds(settings: Settings, snap: EdgeSnapshot | None) -> float:
    """How long a blocking request may be held."""
    target = snap.target if snap is not None else settings.recording.segment_seconds
    return BLOCK_TARGETS * max(1.0, float(target))


def reload_timed_out(chamber_id: str, ask: PlaylistAsk) -> web.HTTPException:
    """The answer to a blocking reload that was not satisfied in time."""
    return json_error(
        web.HTTPServiceUnavailable,
        f"segment {ask.msn} of chamber {chamber_id!r} did not appear in time; retry",
    )


def nothing_live(chamber_id: str) -> web.HTTPException:
    """The answer while a chamber has never transmitted."""
    return json_error(
        web.HTTPNotFound,
        f"nothing has been transmitted from chamber {chamber_id!r} yet; "
        "the live stream appears here when its first session starts",
    )


async def _live_playlist(request: web.Request, chamber_id: str, prefix: str) -> web.Response:
    chamber_id = _chamber(request, chamber_id)
    edge = request.app[LIVE_EDGE]
    ask = playlist_ask(request.query)
    snap = edge.snapshot(chamber_id)
    if ask.msn is not None:
        # A blocking reload: answer as soon as the playlist holds that segment (or part).
        check_blocking(ask, snap)
        waited = await edge.wait(chamber_id, ask.ready, block_seconds(request.app[SETTINGS], snap))
        if waited is None:
            raise reload_timed_out(chamber_id, ask)
        snap = waited
    if snap is None:
        raise nothing_live(chamber_id)
    body = request.app[PLAYLISTS].get(chamber_id, snap, prefix, ask.skip)
    return web.Response(
        body=body, content_type=HLS_TYPE, headers={"Cache-Control": ask.cache_control}
    )


@routes.get("/live/index.m3u8")
async def live_default(request: web.Request) -> web.Response:
    """The first chamber's live playlist."""
    chamber = request.app[SETTINGS].chambers[0].id
    return await _live_playlist(request, chamber, f"{chamber}/")


@routes.get("/live/{chamber}/index.m3u8")
async def live_chamber(request: web.Request) -> web.Response:
    """A chamber's live playlist (Low-Latency HLS; plain HLS players use the same URL): the
    same URL for every session, break and restart."""
    return await _live_playlist(request, request.match_info["chamber"], "")


def part_ask(snap: EdgeSnapshot | None, name: str) -> tuple[int, int]:
    """(msn, part number) of a part name in the live window (or about to be), else a 404."""
    match = PART_NAME.match(name)
    if match is None:
        raise json_error(web.HTTPNotFound, "no such part")
    msn, number = int(match[1]), int(match[2])
    if snap is None or msn > snap.last_msn + 1 or msn < snap.segments[0].msn:
        raise json_error(web.HTTPNotFound, f"part {msn}.{number} is not in the live window")
    return msn, number


def part_ready(snap: EdgeSnapshot, msn: int, number: int) -> bool:
    """Whether snap holds part `number` of segment msn (or the whole segment, complete)."""
    segment = snap.find(msn)
    return segment is not None and (segment.complete or len(segment.parts) > number)


def part_timed_out(msn: int, number: int) -> web.HTTPException:
    """The answer to a part request that was not satisfied in time."""
    return json_error(web.HTTPServiceUnavailable, f"part {msn}.{number} is not ready; retry")


def part_of(snap: EdgeSnapshot, msn: int, number: int) -> tuple[LiveSegment, Part]:
    """The segment and part for a ready part request, or a 404 (the segment ended sooner)."""
    segment = snap.find(msn)
    if segment is None or len(segment.parts) <= number:
        raise json_error(web.HTTPNotFound, f"segment {msn} has no part {number}")
    return segment, segment.parts[number]


def segment_of(snap: EdgeSnapshot | None, name: str) -> LiveSegment:
    """The complete live segment a segment name asks for, else a 404."""
    match = SEGMENT_NAME.match(name)
    segment = snap.find(int(match[1])) if match is not None and snap is not None else None
    if match is None or segment is None or segment.camera != match[2] or segment.end is None:
        raise json_error(web.HTTPNotFound, "no such segment in the live window")
    return segment


def media_gone() -> web.HTTPException:
    """The answer when the live file was removed meanwhile."""
    return json_error(web.HTTPNotFound, "the live media file is gone")


async def _read_range(request: web.Request, rel: str, start: int, end: int) -> bytes:
    try:
        return await request.app[MEDIA_BYTES].read(rel, start, end)
    except FileNotFoundError:
        raise media_gone() from None


@routes.get("/live/{chamber}/p/{name}")
async def live_part(request: web.Request) -> web.Response:
    """A partial segment; the next one (the preload hint) is held until it exists."""
    chamber = _chamber(request, request.match_info["chamber"])
    edge = request.app[LIVE_EDGE]
    snap = edge.snapshot(chamber)
    msn, number = part_ask(snap, request.match_info["name"])
    assert snap is not None

    def ready(s: EdgeSnapshot) -> bool:
        return part_ready(s, msn, number)

    if not ready(snap):
        waited = await edge.wait(chamber, ready, block_seconds(request.app[SETTINGS], snap))
        if waited is None:
            raise part_timed_out(msn, number)
        snap = waited
    segment, part = part_of(snap, msn, number)
    data = await _read_range(request, segment.path, part.start, part.end)
    return web.Response(
        body=data, content_type="video/mp2t", headers={"Cache-Control": MEDIA_CACHE}
    )


@routes.get("/live/{chamber}/s/{name}")
async def live_segment(request: web.Request) -> web.Response:
    """A whole live segment (what plain HLS players load)."""
    chamber = _chamber(request, request.match_info["chamber"])
    segment = segment_of(request.app[LIVE_EDGE].snapshot(chamber), request.match_info["name"])
    data = await _read_range(request, segment.path, 0, segment.end or 0)
    return web.Response(
        body=data, content_type="video/mp2t", headers={"Cache-Control": MEDIA_CACHE}
    )


async def _session(request: web.Request) -> Session:
    # Reads go to the archive's reader threads: never behind the recorder's writes.
    return await request.app[ARCHIVE].read(ArchiveIndex.get_session, session_id_of(request))


async def private_if_withdrawn(request: web.Request, session: Session) -> bool:
    """Whether a session's recording may go out only privately: a withdrawn one is 410 to the
    public and served to signed-in staff (archive.sealed) with `private, no-store`."""
    if session.published:
        return False
    if await identify(request, request.app[ARCHIVE]) is None:
        raise json_error(
            web.HTTPGone,
            f"session {session.id} is withdrawn: its recording is not published",
            # Publishing it again must reach the public at once, not after a cache's TTL.
            {"Cache-Control": "no-store"},
        )
    await require(request, "archive.sealed")
    return True


@routes.get("/sessions/{id}/index.m3u8")
async def session_playlist(request: web.Request) -> web.Response:
    """The session's public recording; an EVENT playlist while live, VOD with ENDLIST once
    stopped. Redacted segments are replaced by slates of the same length, so offsets stay."""
    archive = request.app[ARCHIVE]
    session = await _session(request)
    private = await private_if_withdrawn(request, session)

    def read(index: ArchiveIndex) -> tuple[list[Segment], frozenset[int]]:
        return index.segments(session.id), index.redacted_segment_ids(session.id)

    segments, redacted = await archive.read(read)
    if not segments:
        raise json_error(web.HTTPNotFound, f"session {session.id} has no recording yet")
    return _recording(request, session, segments, "../", private=private, redacted=redacted)


@routes.get("/sessions/{id}/original.m3u8")
async def original_playlist(request: web.Request) -> web.Response:
    """The recording as it was made, redacted ranges included: staff only (archive.sealed)."""
    await require(request, "archive.sealed")
    archive = request.app[ARCHIVE]
    session = await _session(request)
    segments = await archive.call(archive.index.segments, session.id)
    if not segments:
        raise json_error(web.HTTPNotFound, f"session {session.id} has no recording yet")
    return _recording(request, session, segments, "../", private=True)


def _recording(
    request: web.Request,
    session: Session,
    segments: list[Segment],
    prefix: str,
    *,
    private: bool = False,
    redacted: frozenset[int] = frozenset(),
) -> web.Response:
    """A recording's playlist: EVENT while the session is live, VOD with ENDLIST after. A
    private one (staff only) is never kept by a shared cache."""
    ended = session.state == "ended"
    body = media_playlist(
        segments,
        uri_prefix=prefix,
        ended=ended,
        target_seconds=request.app[SETTINGS].recording.segment_seconds,
        redacted=redacted,
    )
    cache = RECORDED_PLAYLIST_CACHE if ended else "public, max-age=1"
    if private:
        cache = PRIVATE
    return web.Response(text=body, content_type=HLS_TYPE, headers={"Cache-Control": cache})


@routes.get("/sessions/{id}/chapters.vtt")
async def session_chapters(request: web.Request) -> web.Response:
    """WebVTT chapters: one per agenda item that was started, named by number and title."""
    archive = request.app[ARCHIVE]
    session = await _session(request)
    private = await private_if_withdrawn(request, session)

    def read(index: ArchiveIndex) -> str:
        return chapters_vtt(
            chapters(
                index.agenda(session.id), index.markers(session.id), index.timeline(session.id)
            )
        )

    body = await archive.read(read)
    return web.Response(
        text=body,
        content_type="text/vtt",
        charset="utf-8",
        headers={"Cache-Control": PRIVATE if private else "public, max-age=5"},
    )


@routes.get("/sessions/{id}/cameras/{camera}/index.m3u8")
async def camera_playlist(request: web.Request) -> web.Response:
    """One camera's own recording of the session (every camera is recorded on its own)."""
    archive = request.app[ARCHIVE]
    # A camera's own recording holds breaks and closed parts: staff only.
    await require(request, "archive.sealed")
    session = await _session(request)
    camera = request.match_info["camera"]
    segments = await archive.call(archive.index.camera_segments, session.id, camera)
    if not segments:
        raise json_error(
            web.HTTPNotFound, f"session {session.id} has no recording from camera {camera!r}"
        )
    return _recording(request, session, segments, "../../../", private=True)


@routes.get("/sessions/{id}/media/{camera}/{run}/{file}")
async def session_media(request: web.Request) -> web.FileResponse:
    """One recorded segment, never changed once written: public if it is in the published
    program and not redacted, otherwise for staff only."""
    camera = request.match_info["camera"]
    run, name = request.match_info["run"], request.match_info["file"]
    if not SLUG.match(camera) or not RUN_NAME.match(run) or not FILE_NAME.match(name):
        raise json_error(web.HTTPNotFound, "no such media file")
    session = await _session(request)
    archive = request.app[ARCHIVE]

    def public_file(index: ArchiveIndex) -> bool:
        return index.is_program_file(session.id, camera, run, name) and not index.is_redacted_file(
            session.id, camera, run, name
        )

    public = await archive.read(public_file)
    if public:
        public = not await private_if_withdrawn(request, session)
    else:
        # Not in the public program (a break, a closed part, another camera, a redacted
        # range): staff only, and never kept by a shared cache.
        await require(request, "archive.sealed")
    path = (
        request.app[SETTINGS].paths.session_media(session.chamber, session.id) / camera / run / name
    )
    # FileResponse answers 404 itself when the file is missing, without blocking the loop.
    return web.FileResponse(
        path,
        headers={
            "Content-Type": "video/mp2t",
            "Cache-Control": RECORDED_MEDIA_CACHE if public else PRIVATE,
        },
    )


@routes.get("/sessions/{id}/redacted/{camera}/{run}/{file}")
async def redaction_slate(request: web.Request) -> web.FileResponse:
    """A slate that stands in for redacted segments in the public copy."""
    camera = request.match_info["camera"]
    run, name = request.match_info["run"], request.match_info["file"]
    if not SLUG.match(camera) or not RUN_NAME.match(run) or not SLATE_NAME.match(name):
        raise json_error(web.HTTPNotFound, "no such slate")
    session = await _session(request)
    private = await private_if_withdrawn(request, session)
    path = request.app[SETTINGS].paths.redactions(session.id) / camera / run / name
    return web.FileResponse(
        path,
        headers={
            "Content-Type": "video/mp2t",
            "Cache-Control": PRIVATE if private else RECORDED_MEDIA_CACHE,
        },
    )
