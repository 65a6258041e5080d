"""Public pages, Polish first and English with ?lang=en: home, live player, session, archive.

Every page is a template extending page.html (skip link, landmarks, search box, language
switch), autoescaped; this module reads the archive and hands the templates plain values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from archive.continuity import MediaHole
from archive.council import AgendaEntry, Vote
from archive.index import ArchiveIndex, Marker, NotFound, Session
from archive.publish import Chapter, chapters
from archive.timeline import Timeline
from streaming.hls.routes import private_if_withdrawn
from streaming.http import is_digits
from streaming.keys import ARCHIVE, CLOCK, SETTINGS
from streaming.web.publication import embed_size, iframe, oembed_href, public_base
from streaming.web.templating import Catalogue, hms, page, player_words, words, zone_of

# Twenty years of sessions and committee meetings is about 1,400: all are read at once.
ALL_SESSIONS = 100_000
UPCOMING_SHOWN = 5
RECENT_SHOWN = 10
SECONDS = re.compile(r"^\d{1,7}(\.\d{1,3})?$", re.ASCII)
TERM_YEARS = re.compile(r"(\d{4})\s*[-–/]\s*(\d{4})")
# A ?t= a little past the end still plays the last frame; float sums differ in the last bits.
END_SLACK_SECONDS = 0.5

# The kinds of session the archive can be filtered by, as the catalogue names them (kind.*).
KINDS = ("session", "committee")

routes = web.RouteTableDef()


def _page(
    request: web.Request,
    template: str,
    title: str,
    status: int = 200,
    *,
    player: bool = False,
    **context: Any,
) -> web.Response:
    """A public page with the player's scripts (it follows the language cookie, so a shared
    cache asks obrady each time); a page with a player carries the player's words."""
    if player:
        context["player_words"] = player_words(request)
    return page(
        request,
        template,
        title=title,
        status=status,
        scripts=("/static/hls.min.js", "/static/player.js"),
        cache="no-cache",
        framable=True,
        **context,
    )


@dataclass(frozen=True)
class Back:
    """The link an error page offers: where to, and its words' key in the catalogue."""

    href: str
    key: str


ARCHIVE_LINK = Back("/archive", "pages.whole_archive")


def _error(request: web.Request, status: int, message: str, back: Back | None) -> web.Response:
    """A page saying what is wrong and what to do (400, 404 and 410 answers)."""
    said = words(request)
    if status == 410:
        title = said.text("site.withdrawn_title")
    else:
        title = said.text("pages.bad_request" if status == 400 else "pages.not_found")
    return page(
        request,
        "error.html",
        title=title,
        status=status,
        cache="no-cache",
        framable=True,
        message=message,
        back=back,
    )


def _now(request: web.Request) -> datetime:
    clock = request.app.get(CLOCK)
    return clock() if clock is not None else datetime.now(UTC)


# Home


@routes.get("/")
async def home(request: web.Request) -> web.Response:
    """What is live now, what is scheduled next, and the latest recordings."""
    archive = request.app[ARCHIVE]
    settings = request.app[SETTINGS]
    now = _now(request)
    sessions = await archive.call(archive.index.list_sessions, ALL_SESSIONS)
    live_rows = [
        (
            chamber,
            next((s for s in sessions if s.state == "live" and s.chamber == chamber.id), None),
        )
        for chamber in settings.chambers
    ]
    upcoming = sorted(
        (s for s in sessions if s.state == "scheduled" and s.scheduled_end > now and s.published),
        key=lambda s: s.scheduled_start,
    )[:UPCOMING_SHOWN]
    recent = sorted(
        (s for s in sessions if s.state == "ended" and s.published),
        key=lambda s: (s.ended_at or s.scheduled_end, s.id),
        reverse=True,
    )[:RECENT_SHOWN]
    return _page(
        request,
        "home.html",
        words(request).text("pages.home_title"),
        live_rows=live_rows,
        upcoming=upcoming,
        recent=recent,
    )


# Live


@routes.get("/live")
@routes.get("/live/{chamber}")
async def live_page(request: web.Request) -> web.Response:
    """The live player of a chamber, following its current session (player.js fills in the
    state, agenda with the current item, and votes from /api/v1/chambers/{chamber}/now)."""
    settings = request.app[SETTINGS]
    said = words(request)
    chamber_id = request.match_info.get("chamber", settings.chambers[0].id)
    try:
        chamber = settings.chamber(chamber_id)
    except KeyError:
        known = ", ".join(c.id for c in settings.chambers)
        return _error(request, 404, said.text("pages.no_chamber", id=chamber_id, known=known), None)
    title = said.text("pages.live_title", name=chamber.name)
    return _page(request, "live.html", title, player=True, chamber=chamber)


# Session


@dataclass(frozen=True)
class SessionRecord:
    """What the session page needs, read from the archive at once."""

    session: Session
    entries: dict[int, AgendaEntry]
    chapters: list[Chapter]
    markers: list[Marker]
    votes: list[Vote]
    timeline: Timeline
    transcribed: bool = False
    holes: tuple[MediaHole, ...] = ()
    unchecked: int = 0


@dataclass(frozen=True)
class ShownGap:
    """Something missing from the recording, as the page lists it: a stretch no run covers or a
    hole in the recorded video or audio."""

    start: datetime
    end: datetime
    seconds: float
    offset_seconds: float
    cause: str


def _missing(record: SessionRecord) -> list[ShownGap]:
    """The run gaps and the media holes of a recording, in wall-clock order."""
    timeline = record.timeline
    shown = [
        ShownGap(g.start, g.end, g.seconds, g.offset_seconds, g.cause) for g in timeline.gaps()
    ]
    for hole in record.holes:
        offset = timeline.offset_of(hole.start) or 0.0
        shown.append(ShownGap(hole.start, hole.end, hole.seconds, offset, hole.cause))
    return sorted(shown, key=lambda gap: gap.start)


@dataclass(frozen=True)
class Event:
    """One thing marked in the recording, as the timeline lists it (text is plain)."""

    offset: float
    kind: str
    text: str


@dataclass(frozen=True)
class ShownVote:
    """A vote on the session page with its agenda item and moment in the recording."""

    vote: Vote
    entry: AgendaEntry | None
    offset: float | None


def _start_at(said: Catalogue, raw: str | None, duration: float) -> float | str | None:
    """The ?t= seconds to start at, None without one, or the message saying what to fix."""
    if raw is None or raw == "":
        return None
    if not SECONDS.match(raw):
        return said.text("pages.bad_t", raw=repr(raw[:40]))
    seconds = float(raw)
    if duration <= 0:
        return said.text("pages.t_no_recording") if seconds > 0 else None
    if seconds > duration + END_SLACK_SECONDS:
        return said.text("pages.t_past_end", length=hms(duration), s=int(duration), raw=raw)
    return seconds


def _events(said: Catalogue, record: SessionRecord) -> list[Event]:
    """Everything marked in the recording, in time order."""
    timeline = record.timeline
    names = {
        "break_start": "pages.break",
        "break_end": "pages.break_end",
        "closed_start": "pages.closed",
        "closed_end": "pages.closed_end",
    }
    found: list[Event] = []
    for marker in record.markers:
        offset = timeline.offset_of(marker.at)
        if offset is None:
            continue
        if marker.kind == "item_start":
            entry = record.entries.get(marker.item_id or -1)
            what = f"{said.text('pages.item_started')} " + (
                f"{entry.number}. {entry.title}" if entry else ""
            )
        else:
            what = said.text(names.get(marker.kind, "pages.break"))
        found.append(Event(offset, marker.kind, what))
    for vote in record.votes:
        offset = timeline.offset_of(vote.at)
        if offset is not None:
            found.append(Event(offset, "vote", f"{said.text('pages.vote')}: {vote.subject}"))
    for gap in _missing(record):
        found.append(
            Event(gap.offset_seconds, "gap", f"{said.text('pages.gap')} ({gap.seconds:.0f} s)")
        )
    found.sort(key=lambda event: event.offset)
    return found


def _bar(events: list[Event], duration: float) -> dict[str, list[dict[str, Any]]] | None:
    """The timeline's bar for the eye: breaks and closed parts as spans, items and votes as
    ticks, in percent of the recording."""
    if duration <= 0:
        return None

    def pct(offset: float) -> float:
        return max(0.0, min(100.0, offset / duration * 100))

    spans = []
    opened: dict[str, float] = {}
    for event in events:
        if event.kind in ("break_start", "closed_start"):
            opened[event.kind] = event.offset
        elif event.kind in ("break_end", "closed_end"):
            start_kind = event.kind.replace("_end", "_start")
            if start_kind in opened:
                begin = opened.pop(start_kind)
                spans.append((begin, event.offset, start_kind))
    for start_kind, begin in opened.items():
        spans.append((begin, duration, start_kind))
    return {
        "spans": [
            {"kind": kind, "left": pct(a), "width": max(pct(b) - pct(a), 0.5)}
            for a, b, kind in spans
        ],
        "ticks": [
            {"kind": event.kind, "left": pct(event.offset)}
            for event in events
            if event.kind in ("item_start", "vote")
        ],
    }


@routes.get("/sessions/{id}")
async def session_page(request: web.Request) -> web.Response:
    """A session: its recording with the agenda as chapters, its timeline, votes, downloads,
    embed code and continuity; ?t= starts the player at that second."""
    archive = request.app[ARCHIVE]
    settings = request.app[SETTINGS]
    said = words(request)
    raw_id = request.match_info["id"]
    if not is_digits(raw_id) or len(raw_id) > 12:
        return _error(request, 404, said.text("pages.no_session", id=raw_id[:40]), ARCHIVE_LINK)
    sid = int(raw_id)

    def read(index: ArchiveIndex) -> SessionRecord:
        session = index.get_session(sid)
        timeline = index.timeline(sid)
        markers = index.markers(sid)
        return SessionRecord(
            session,
            {e.id: e for e in index.agenda_entries(sid)},
            chapters(index.agenda(sid), markers, timeline),
            markers,
            index.votes(sid),
            timeline,
            index.has_transcript(sid),
            tuple(index.media_holes(sid)),
            index.unchecked_program_segments(sid),
        )

    try:
        record = await archive.read(read)  # a reader thread: never behind the writes
    except NotFound:
        return _error(request, 404, said.text("pages.no_session", id=sid), ARCHIVE_LINK)
    session = record.session
    # A withdrawn recording: 410 to the public, staff still see it.
    try:
        private = await private_if_withdrawn(request, session)
    except web.HTTPGone:
        gone = _error(request, 410, said.text("site.withdrawn", id=sid), ARCHIVE_LINK)
        # Publishing it again must reach the public at once, not after a cache's TTL.
        gone.headers["Cache-Control"] = "no-store"
        return gone
    duration = record.timeline.duration
    start = _start_at(said, request.query.get("t"), duration)
    if isinstance(start, str):
        return _error(request, 400, start, Back(f"/sessions/{sid}", "pages.back_to_session"))
    live_href: str | None = f"/live/{session.chamber}"
    try:
        chamber_name = settings.chamber(session.chamber).name
    except KeyError:
        chamber_name = session.chamber  # a chamber since taken out of the configuration
        live_href = None
    # A session still to come has no recording: no player, but when and where to watch live.
    coming = session.state == "scheduled"
    base = public_base(request)
    width, height = embed_size(None, None)
    events = _events(said, record)
    votes = [
        ShownVote(
            vote,
            record.entries.get(vote.item_id) if vote.item_id is not None else None,
            record.timeline.offset_of(vote.at),
        )
        for vote in record.votes
    ]
    response = _page(
        request,
        "session.html",
        session.title,
        player=not coming,
        session=session,
        coming=coming,
        live_href=live_href,
        oembed_href=oembed_href(request, session),
        chamber_name=chamber_name,
        duration=duration,
        start=start,
        # Captions (automatic, corrected by staff) once the recording has a transcript.
        transcribed=record.transcribed,
        base=base,
        chapters=record.chapters,
        events=events,
        bar=_bar(events, duration),
        votes=votes,
        embed_code=iframe(
            request,
            src=f"{base}/embed/sessions/{session.id}",
            width=width,
            height=height,
            title=session.title,
            allow="fullscreen",
        ),
        has_recording=bool(record.timeline.spans),
        gaps=_missing(record) if record.timeline.spans else [],
        media_checked=record.unchecked == 0,
    )
    if private:
        response.headers["Cache-Control"] = "private, no-store"
    return response


# Archive


def term_years(term: str) -> tuple[int, int] | None:
    """The first and last year of a term written like "2024-2029", or None."""
    found = TERM_YEARS.search(term)
    if found is None:
        return None
    first, last = int(found[1]), int(found[2])
    return (first, last) if first <= last else None


# Sessions listed on one page of the archive (?page=N).
ARCHIVE_PAGE_SIZE = 50


def _pager(request: web.Request, number: int, pages: int) -> dict[str, Any] | None:
    """Links to the previous and next page of the archive, keeping the filters."""
    if pages <= 1:
        return None
    kept = [(k, v) for k, v in request.query.items() if k != "page"]

    def link(to: int) -> str:
        return f"/archive?{urlencode([*kept, ('page', str(to))])}"

    return {
        "number": number,
        "pages": pages,
        "previous": link(number - 1) if number > 1 else None,
        "next": link(number + 1) if number < pages else None,
    }


@routes.get("/archive")
async def archive_page(request: web.Request) -> web.Response:
    """Sessions by term, year and kind (?term=&year=&kind=), newest first, grouped by year,
    ARCHIVE_PAGE_SIZE to a page (?page=)."""
    archive = request.app[ARCHIVE]
    settings = request.app[SETTINGS]
    said = words(request)
    zone = zone_of(request)
    # The configured term and every earlier one with councillors on record, newest first.
    known = await archive.call(archive.index.terms)
    terms = sorted(
        {settings.console.term, *(t for t in known if term_years(t))},
        key=lambda t: term_years(t) or (0, 0),
        reverse=True,
    )
    sessions = [
        s for s in await archive.call(archive.index.list_sessions, ALL_SESSIONS) if s.published
    ]

    def year_of(session: Session) -> int:
        return (session.started_at or session.scheduled_start).astimezone(zone).year

    years = sorted({year_of(s) for s in sessions}, reverse=True)
    chosen = {name: request.query.get(name, "") for name in ("term", "year", "kind")}
    allowed = {
        "term": {"", *terms},
        "year": {""} | {str(y) for y in years},
        "kind": {"", *KINDS},
    }
    for name, value in chosen.items():
        if value not in allowed[name]:
            message = said.text("pages.bad_filter", name=name, value=repr(value[:40]))
            return _error(request, 400, message, ARCHIVE_LINK)
    years_of_term = term_years(chosen["term"]) if chosen["term"] else None
    shown = []
    for s in sessions:
        year = year_of(s)
        if years_of_term and not years_of_term[0] <= year <= years_of_term[1]:
            continue
        if chosen["year"] and year != int(chosen["year"]):
            continue
        if chosen["kind"] and s.kind != chosen["kind"]:
            continue
        shown.append(s)
    pages = max(1, -(-len(shown) // ARCHIVE_PAGE_SIZE))
    raw_page = request.query.get("page", "1")
    if not is_digits(raw_page) or len(raw_page) > 12 or not 1 <= int(raw_page) <= pages:
        message = said.text("pages.bad_page", raw=repr(raw_page[:40]), pages=pages)
        return _error(request, 400, message, ARCHIVE_LINK)
    number = int(raw_page)
    on_page = shown[(number - 1) * ARCHIVE_PAGE_SIZE : number * ARCHIVE_PAGE_SIZE]
    every = said.text("pages.all")
    filters = [
        {"name": "term", "options": [("", every)] + [(t, t) for t in terms]},
        {"name": "year", "options": [("", every)] + [(str(y), str(y)) for y in years]},
        {"name": "kind", "options": [("", every)] + [(k, said.text(f"kind.{k}")) for k in KINDS]},
    ]
    for one in filters:
        one["chosen"] = chosen[str(one["name"])]
    groups: dict[int, list[Session]] = {}
    for s in on_page:
        groups.setdefault(year_of(s), []).append(s)
    return _page(
        request,
        "archive.html",
        said.text("pages.archive_title"),
        filters=filters,
        found=len(shown),
        groups=list(groups.items()),
        pager=_pager(request, number, pages),
    )
