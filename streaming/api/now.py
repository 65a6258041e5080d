"""What is happening in a chamber now, for the live page: state, agenda, current item, votes.

The live page asks every second; one answer per chamber is kept for half a second, so a
crowd of residents costs the archive two reads a second, and a cache in front may keep it
for one second (Cache-Control: max-age=1).
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from aiohttp import web

from archive.index import ArchiveIndex, AsyncArchive, Session, utc_now
from archive.timeline import Timeline
from archive.transcripts import TranscriptLine
from streaming.api.openapi import operation
from streaming.api.views import agenda_tree, session_summary, vote_json
from streaming.http import json_error
from streaming.keys import ARCHIVE, CLOCK, NOW_CACHE, SETTINGS

routes = web.RouteTableDef()

KEEP_SECONDS = 0.5
# How many of the newest transcript lines the live page gets as captions.
LIVE_CAPTION_LINES = 3
# How long after its end a session still shows as "ended" on the live page.
ENDED_SHOWN = timedelta(hours=1)


def caption_json(line: TranscriptLine, timeline: Timeline) -> dict[str, Any]:
    """A live caption: its line, seconds of the recording and the moment it was said."""
    said = timeline.at_offset(line.start)
    return {
        "id": line.id,
        "start_seconds": round(line.start, 3),
        "end_seconds": round(line.end, 3),
        "at": said.isoformat() if said else None,
        "text": line.text,
        "automatic": not line.corrected,
    }


async def chamber_now(
    archive: AsyncArchive, chamber: str, announce_minutes: int, now_at: Any
) -> dict[str, Any]:
    """The state of a chamber as residents should see it."""

    def read(index: ArchiveIndex) -> dict[str, Any]:
        session: Session | None = index.live_session(chamber)
        if session is None:
            sessions = [s for s in index.list_sessions(50) if s.chamber == chamber]
            upcoming = sorted(
                (s for s in sessions if s.state == "scheduled" and s.scheduled_end > now_at),
                key=lambda s: s.scheduled_start,
            )
            ended = [
                s
                for s in sessions
                if s.state == "ended" and s.ended_at and now_at - s.ended_at < ENDED_SHOWN
            ]
            if ended:
                session = max(ended, key=lambda s: s.ended_at or now_at)
            elif upcoming:
                session = upcoming[0]
        if session is None:
            return {"chamber": chamber, "state": "idle", "session": None}
        markers = index.markers(session.id)
        timeline = index.timeline(session.id)
        state = {"scheduled": "before", "ended": "ended", "live": "live"}[session.state]
        if session.state == "live":
            closed = [m.kind for m in markers if m.kind in ("closed_start", "closed_end")]
            breaks = [m.kind for m in markers if m.kind in ("break_start", "break_end")]
            if closed and closed[-1] == "closed_start":
                state = "closed"
            elif breaks and breaks[-1] == "break_start":
                state = "break"
        current = next((m.item_id for m in reversed(markers) if m.kind == "item_start"), None)
        votes = index.votes(session.id)
        captions = None
        if session.state == "live":
            hidden = index.hidden_ranges(session.id)
            captions = [
                caption_json(line, timeline)
                for line in index.last_lines(session.id, LIVE_CAPTION_LINES)
                if not any(low < line.end and high > line.start for low, high in hidden)
            ]
        return {
            "chamber": chamber,
            "state": state,
            "session": session_summary(session),
            "current_item_id": current if session.state == "live" else None,
            "agenda": agenda_tree(index.agenda_entries(session.id)),
            # The newest first: the live page shows the latest result on top.
            "votes": [vote_json(v, timeline) for v in reversed(votes)][:20],
            # Live captions (automatic speech recognition), newest last; None unless live.
            "captions": captions,
        }

    return await archive.read(read)


@routes.get("/api/v1/chambers/{chamber}/now")
@operation("What residents see: state, agenda, current item, votes")
async def now(request: web.Request) -> web.Response:
    """The chamber's state: before start, live, break, closed part, ended, or idle."""
    settings = request.app[SETTINGS]
    chamber = request.match_info["chamber"]
    if chamber not in {c.id for c in settings.chambers}:
        known = ", ".join(c.id for c in settings.chambers)
        raise json_error(web.HTTPNotFound, f"chamber {chamber!r} is not configured; known: {known}")
    answer = await kept_chamber_now(request.app, chamber)
    return web.json_response(answer, headers={"Cache-Control": "public, max-age=1"})


async def kept_chamber_now(app: web.Application, chamber: str) -> dict[str, Any]:
    """chamber_now of a configured chamber, read at most every KEEP_SECONDS (the live page's
    polling and the public status share the reads)."""
    cache = app[NOW_CACHE]
    kept = cache.get(chamber)
    if kept is None or time.monotonic() - kept[0] > KEEP_SECONDS:
        clock = app[CLOCK] if CLOCK in app else None
        at = clock() if clock else utc_now()
        answer = await chamber_now(app[ARCHIVE], chamber, app[SETTINGS].live.announce_minutes, at)
        kept = (time.monotonic(), answer)
        cache[chamber] = kept
    return kept[1]
