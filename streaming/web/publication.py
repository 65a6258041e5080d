"""Publication for BIP and residents: nominal vote lists (CSV, JSON, printable), Atom/RSS feeds
of recordings, an iCalendar of sessions, embeddable players and oEmbed."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import quote, urlsplit

from aiohttp import web

from archive.council import AgendaEntry, Vote
from archive.index import ArchiveIndex, NotFound, Session
from archive.timeline import Timeline
from streaming.api.views import session_summary, vote_json
from streaming.hls.routes import private_if_withdrawn
from streaming.http import is_digits, json_error, session_id_of
from streaming.keys import ARCHIVE, CLOCK, SETTINGS
from streaming.web.templating import (
    XML_ILLEGAL,
    environment,
    page,
    player_words,
    render,
    words,
    zone_of,
)

FEED_SIZE = 50
CALENDAR_DAYS = 30
# Enough for twenty years of sessions and committee meetings (about 1,400); filtered here.
ALL_SESSIONS = 100_000
# Withdrawals and corrections must reach readers within a minute, even through a shared cache.
FEED_CACHE = "public, max-age=60"
HLS_TYPE = "application/vnd.apple.mpegurl"
EMBED_WIDTH = 640
MAX_DIMENSION = 10_000
SECONDS = re.compile(r"^\d{1,7}(\.\d{1,3})?$", re.ASCII)
# Excel runs a cell starting with these as a formula; a leading apostrophe keeps it text.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
SESSION_PATH = re.compile(r"^/sessions/(\d{1,12})/?$", re.ASCII)
LIVE_PATH = re.compile(r"^/live(?:/([a-z0-9][a-z0-9_-]{0,63}))?/?$")

# The vote list's columns (csv.* in the catalogue; the file is in Polish, for Excel).
CSV_COLUMNS = (
    "vote_number",
    "time",
    "second",
    "item_number",
    "item",
    "subject",
    "councillor",
    "caucus",
    "choice",
)
routes = web.RouteTableDef()


def _now(request: web.Request) -> datetime:
    """The service's clock (the gateway process has none injected: it uses the real one)."""
    clock = request.app.get(CLOCK)
    return clock() if clock is not None else datetime.now(UTC)


def public_base(request: web.Request) -> str:
    """The address residents reach us at (live.public_url), or "" when none is configured:
    addresses then stay relative to the site's root. Never the request's Host header, which
    anyone can set, and which a shared cache would hand on to everyone after them."""
    configured = request.app[SETTINGS].live.public_url
    return configured.rstrip("/") if configured else ""


def oembed_href(request: web.Request, session: Session) -> str | None:
    """The session page's oEmbed discovery address; None without live.public_url (oEmbed
    answers with absolute addresses only)."""
    base = public_base(request)
    if not base:
        return None
    target = f"{base}/sessions/{session.id}"
    return f"/oembed?url={quote(target, safe='')}&format=json"


def iframe(
    request: web.Request, *, src: str, width: int, height: int, title: str, allow: str
) -> str:
    """The player in a frame, as HTML to paste or to hand to an oEmbed consumer."""
    template = environment(request).get_template("iframe.html")
    return template.render(src=src, width=width, height=height, title=title, allow=allow).strip()


# Vote lists


@dataclass(frozen=True)
class VoteRecord:
    """What the vote lists need of one session, read at once."""

    session: Session
    items: dict[int, AgendaEntry]
    votes: list[Vote]
    timeline: Timeline


async def _vote_record(request: web.Request) -> VoteRecord:
    archive = request.app[ARCHIVE]
    sid = session_id_of(request)

    def read(index: ArchiveIndex) -> VoteRecord:
        session = index.get_session(sid)
        items = {entry.id: entry for entry in index.agenda_entries(sid)}
        return VoteRecord(session, items, index.votes(sid), index.timeline(sid))

    return await archive.read(read)


def _item(record: VoteRecord, vote: Vote) -> AgendaEntry | None:
    return None if vote.item_id is None else record.items.get(vote.item_id)


def _local(request: web.Request, at: datetime) -> str:
    return at.astimezone(zone_of(request)).strftime("%Y-%m-%d %H:%M:%S")


def _cell(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_START) else value


@routes.get("/sessions/{id}/votes.csv")
async def votes_csv(request: web.Request) -> web.Response:
    """The session's nominal votes, one row per councillor per vote, for Excel in Polish."""
    record = await _vote_record(request)
    out = io.StringIO()
    # Polish Excel splits on ";" (the comma is the decimal separator there).
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    # The file is for Excel in Polish whatever the page's language.
    said = words(request, "pl")
    writer.writerow([said.text(f"csv.{column}") for column in CSV_COLUMNS])
    for number, vote in enumerate(record.votes, start=1):
        offset = record.timeline.offset_of(vote.at)
        item = _item(record, vote)
        for choice in vote.choices:
            writer.writerow(
                [
                    str(number),
                    _local(request, vote.at),
                    "" if offset is None else str(int(offset)),
                    item.number if item else "",
                    _cell(item.title) if item else "",
                    _cell(vote.subject),
                    _cell(choice.name),
                    _cell(choice.caucus),
                    said.text(f"choice.{choice.choice}"),
                ]
            )
    # The byte order mark is how Excel knows the file is UTF-8 (else Polish letters break).
    body = ("\ufeff" + out.getvalue()).encode("utf-8")
    name = f"glosowania-sesja-{record.session.id}.csv"
    return web.Response(
        body=body,
        content_type="text/csv",
        charset="utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-cache",
        },
    )


@routes.get("/sessions/{id}/votes.json")
async def votes_json(request: web.Request) -> web.Response:
    """The session and its nominal votes with totals and per-councillor lists."""
    record = await _vote_record(request)
    votes = []
    for number, vote in enumerate(record.votes, start=1):
        item = _item(record, vote)
        shown: dict[str, Any] = {"number": number, **vote_json(vote, record.timeline)}
        shown["item"] = None if item is None else {"number": item.number, "title": item.title}
        votes.append(shown)
    sid = record.session.id
    return web.json_response(
        {
            "session": session_summary(record.session),
            "votes": votes,
            "csv_url": f"/sessions/{sid}/votes.csv",
            "page_url": f"/sessions/{sid}/votes",
        },
        headers={"Cache-Control": "no-cache"},
    )


@dataclass(frozen=True)
class VoteRow:
    """A vote on the printable lists with its agenda item and moment in the recording."""

    vote: Vote
    entry: AgendaEntry | None
    offset: float | None

    @property
    def clock(self) -> str:
        """The moment in the recording as H:MM:SS."""
        whole = int(self.offset or 0)
        return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


@routes.get("/sessions/{id}/votes")
async def votes_page(request: web.Request) -> web.Response:
    """The nominal vote lists as a printable page (stays public when the recording is not)."""
    record = await _vote_record(request)
    session = record.session
    rows = [
        VoteRow(vote, _item(record, vote), record.timeline.offset_of(vote.at))
        for vote in record.votes
    ]
    return page(
        request,
        "votes.html",
        title=f"{words(request).text('votes.title')}: {session.title}",
        cache="no-cache",
        framable=True,
        session=session,
        votes=rows,
    )


# Feeds


async def _recordings(request: web.Request) -> list[Session]:
    """The newest ended, published sessions, most recently ended first."""
    archive = request.app[ARCHIVE]
    sessions = await archive.call(archive.index.list_sessions, ALL_SESSIONS)
    ended = [s for s in sessions if s.state == "ended" and s.published]
    ended.sort(key=lambda s: (s.ended_at or s.scheduled_end, s.id), reverse=True)
    return ended[:FEED_SIZE]


def _chamber_name(request: web.Request, chamber_id: str) -> str:
    try:
        return request.app[SETTINGS].chamber(chamber_id).name
    except KeyError:
        return chamber_id  # a chamber since taken out of the configuration


def _xml_response(body: str, content_type: str) -> web.Response:
    return web.Response(
        body=body.encode("utf-8"),
        content_type=content_type,
        charset="utf-8",
        headers={"Cache-Control": FEED_CACHE},
    )


def _summary(request: web.Request, session: Session) -> str:
    when = (session.started_at or session.scheduled_start).astimezone(zone_of(request))
    return f"{when:%d.%m.%Y %H:%M}, {_chamber_name(request, session.chamber)}"


def _feed_entry(request: web.Request, base: str, session: Session) -> dict[str, str]:
    ended = (session.ended_at or session.scheduled_end).astimezone(UTC)
    started = (session.started_at or session.scheduled_start).astimezone(UTC)
    return {
        "url": f"{base}/sessions/{session.id}",
        "title": session.title,
        "summary": _summary(request, session),
        "published": started.isoformat(),
        "updated": ended.isoformat(),
        "pub_date": format_datetime(ended, usegmt=True),
    }


def _feed_base(request: web.Request) -> str:
    return XML_ILLEGAL.sub("", public_base(request))


@routes.get("/feeds/recordings.atom")
async def recordings_atom(request: web.Request) -> web.Response:
    """An Atom feed of the newest published recordings (in Polish)."""
    base = _feed_base(request)
    sessions = await _recordings(request)
    newest = max((s.ended_at for s in sessions if s.ended_at), default=_now(request))
    body = render(
        request,
        "atom.xml",
        lang="pl",
        base=base,
        updated=newest.astimezone(UTC).isoformat(),
        entries=[_feed_entry(request, base, s) for s in sessions],
        hls_type=HLS_TYPE,
    )
    return _xml_response(body, "application/atom+xml")


@routes.get("/feeds/recordings.rss")
async def recordings_rss(request: web.Request) -> web.Response:
    """An RSS 2.0 feed of the newest published recordings (in Polish)."""
    base = _feed_base(request)
    sessions = await _recordings(request)
    body = render(
        request,
        "rss.xml",
        lang="pl",
        base=base,
        built=format_datetime(_now(request).astimezone(UTC), usegmt=True),
        entries=[_feed_entry(request, base, s) for s in sessions],
        hls_type=HLS_TYPE,
    )
    return _xml_response(body, "application/rss+xml")


def ics_escape(value: str) -> str:
    """A TEXT value escaped as RFC 5545 3.3.11 says."""
    value = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return value.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n")


def ics_fold(line: str) -> str:
    """One content line folded at 75 octets (RFC 5545 3.1), never inside a UTF-8 character."""
    parts: list[str] = []
    current = ""
    size = 0
    limit = 75
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > limit:
            parts.append(current)
            current, size, limit = "", 0, 74  # a continuation begins with one space
        current += char
        size += width
    parts.append(current)
    return "\r\n ".join(parts)


def _ics_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


@routes.get("/feeds/sessions.ics")
async def sessions_ics(request: web.Request) -> web.Response:
    """An iCalendar of the sessions to come, live, and of the last 30 days."""
    archive = request.app[ARCHIVE]
    base = public_base(request)
    now = _now(request)
    since = now - timedelta(days=CALENDAR_DAYS)
    sessions = await archive.call(archive.index.list_sessions, ALL_SESSIONS)
    shown = [
        s
        for s in sessions
        if s.state in ("scheduled", "live")
        or s.scheduled_start >= since
        or (s.ended_at is not None and s.ended_at >= since)
    ]
    shown.sort(key=lambda s: (s.scheduled_start, s.id))
    host = urlsplit(base).hostname or "obrady"
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//obrady//Posiedzenia Rady Miasta//PL",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{ics_escape(words(request, 'pl').text('feed.calendar_name'))}",
    ]
    for s in shown:
        # What happened, once it has: the actual start and end, else the scheduled ones.
        start = s.started_at or s.scheduled_start
        end = s.ended_at or max(s.scheduled_end, now if s.state == "live" else s.scheduled_end)
        if end <= start:
            end = start + timedelta(minutes=1)
        # A withdrawn session's page answers 410: no URL to it. One still to come stays in the
        # calendar as CANCELLED under the same UID, so a subscribed calendar marks (or drops)
        # the event it already holds instead of keeping it as coming; one that took place
        # stays as it was (its vote lists are still published).
        if s.published:
            status = "CONFIRMED" if s.state != "scheduled" else "TENTATIVE"
        else:
            status = "CANCELLED" if s.state == "scheduled" else "CONFIRMED"
        lines += [
            "BEGIN:VEVENT",
            f"UID:session-{s.id}@{host}",
            f"DTSTAMP:{_ics_time(now)}",
            f"DTSTART:{_ics_time(start)}",
            f"DTEND:{_ics_time(end)}",
            f"SUMMARY:{ics_escape(s.title)}",
            f"LOCATION:{ics_escape(_chamber_name(request, s.chamber))}",
            *([f"URL:{base}/sessions/{s.id}"] if s.published else []),
            f"STATUS:{status}",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    body = "".join(ics_fold(line) + "\r\n" for line in lines)
    return web.Response(
        body=body.encode("utf-8"),
        content_type="text/calendar",
        charset="utf-8",
        headers={"Cache-Control": FEED_CACHE},
    )


# Embeds and oEmbed


def _embed_page(request: web.Request, title: str, **context: Any) -> web.Response:
    """A page with only the player and a link out, for a frame in BIP (no X-Frame-Options)."""
    every: dict[str, Any] = {
        "withdrawn_id": None,
        "chamber": None,
        "session": None,
        "full": "",
        "coming": None,
    }
    html = render(
        request, "embed.html", title=title, player_words=player_words(request), **(every | context)
    )
    return web.Response(
        text=html,
        content_type="text/html",
        charset="utf-8",
        # It follows the language cookie, so a shared cache asks obrady each time.
        headers={"Cache-Control": "no-cache", "Referrer-Policy": "same-origin"},
    )


def _start_at(request: web.Request) -> str | None:
    """The ?t= seconds to start playing from; 400 if it is not a number of seconds."""
    raw = request.query.get("t")
    if raw is None or raw == "":
        return None
    if not SECONDS.match(raw):
        raise json_error(
            web.HTTPBadRequest, f"t must be the seconds into the recording, e.g. t=90, not {raw!r}"
        )
    return raw


@routes.get("/embed/sessions/{id}")
async def embed_session(request: web.Request) -> web.Response:
    """The recording's player alone, for a frame on another site; ?t= starts it there."""
    archive = request.app[ARCHIVE]
    sid = session_id_of(request)
    start = _start_at(request)
    session = await archive.call(archive.index.get_session, sid)
    # A withdrawn recording: 410 to the public, staff still see it (never kept by a cache).
    try:
        private = await private_if_withdrawn(request, session)
    except web.HTTPGone:
        title = words(request).text("site.withdrawn_title")
        gone = _embed_page(request, title, withdrawn_id=sid)
        gone.set_status(410)
        gone.headers["Cache-Control"] = "no-store"
        return gone
    full = f"/sessions/{sid}" + (f"?t={start}" if start else "")
    coming: dict[str, str] | None = None
    if session.state == "scheduled":
        # Nothing recorded yet: no player, but when it starts and where to watch it live.
        at = session.scheduled_start.astimezone(zone_of(request))
        known = {c.id for c in request.app[SETTINGS].chambers}
        coming = {
            "when": f"{at:%d.%m.%Y %H:%M}",
            "name": _chamber_name(request, session.chamber),
            "live": f"/live/{session.chamber}" if session.chamber in known else "",
        }
    response = _embed_page(request, session.title, session=session, full=full, coming=coming)
    if private:
        response.headers["Cache-Control"] = "private, no-store"
    return response


@routes.get("/embed/live/{chamber}")
async def embed_live(request: web.Request) -> web.Response:
    """A chamber's live player alone, for a frame on another site."""
    settings = request.app[SETTINGS]
    chamber_id = request.match_info["chamber"]
    try:
        chamber = settings.chamber(chamber_id)
    except KeyError:
        raise json_error(web.HTTPNotFound, f"chamber {chamber_id!r} is not configured") from None
    title = f"{words(request).text('votes.live')}: {chamber.name}"
    return _embed_page(request, title, chamber=chamber)


def _dimension(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    if not is_digits(raw) or len(raw) > 6 or not 1 <= int(raw) <= MAX_DIMENSION:
        raise json_error(
            web.HTTPBadRequest,
            f"{name} must be a whole number of pixels from 1 to {MAX_DIMENSION}, not {raw!r}",
        )
    return int(raw)


def embed_size(maxwidth: int | None, maxheight: int | None) -> tuple[int, int]:
    """The player's 16:9 size: 640 wide unless maxwidth or maxheight asks for less."""
    width = EMBED_WIDTH
    if maxwidth is not None:
        width = min(width, maxwidth)
    if maxheight is not None:
        width = min(width, maxheight * 16 // 9)
    width = max(width, 1)
    return width, max(width * 9 // 16, 1)


def _our_path(request: web.Request, url: str) -> tuple[str, str] | None:
    """The path and query of url if it is one of our pages' addresses, else None."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    own = urlsplit(public_base(request))
    prefix = own.path.rstrip("/")
    if parts.netloc.lower() == own.netloc.lower() and parts.path.startswith(prefix + "/"):
        return parts.path[len(prefix) :], parts.query
    return None


@routes.get("/oembed")
async def oembed(request: web.Request) -> web.Response:
    """oEmbed 1.0 (JSON) for a session's recording or a chamber's live page."""
    url = request.query.get("url")
    if not url:
        raise json_error(web.HTTPBadRequest, "url is required: the address of a session page")
    fmt = request.query.get("format", "json")
    maxwidth = _dimension(request, "maxwidth")
    maxheight = _dimension(request, "maxheight")
    if fmt != "json":
        raise json_error(web.HTTPNotImplemented, f"format {fmt!r} is not offered; use json")
    if not public_base(request):
        raise json_error(
            web.HTTPNotFound,
            "oEmbed is off: live.public_url, the address residents use, is not configured",
        )
    ours = _our_path(request, url)
    if ours is None:
        raise json_error(web.HTTPNotFound, f"{url!r} is not a session or live page of this site")
    path, query = ours
    base = public_base(request)
    session_match = SESSION_PATH.match(path)
    live_match = LIVE_PATH.match(path)
    if session_match:
        archive = request.app[ARCHIVE]
        try:
            session = await archive.call(archive.index.get_session, int(session_match[1]))
        except NotFound:
            session = None
        if session is None or not session.published:
            # Unknown or withdrawn: nothing to embed (oEmbed answers 404 either way).
            raise json_error(web.HTTPNotFound, f"{url!r} is not a published session")
        title = session.title
        start = re.search(r"(?:^|&)t=(\d{1,7})(?:&|$)", query, re.ASCII)
        src = f"{base}/embed/sessions/{session.id}" + (f"?t={start[1]}" if start else "")
    elif live_match:
        settings = request.app[SETTINGS]
        chamber_id = live_match[1] or settings.chambers[0].id
        try:
            chamber = settings.chamber(chamber_id)
        except KeyError:
            raise json_error(
                web.HTTPNotFound, f"chamber {chamber_id!r} is not configured"
            ) from None
        # oEmbed's title is in Polish, as the embedded page's default.
        title = f"{words(request, 'pl').text('votes.live')}: {chamber.name}"
        src = f"{base}/embed/live/{chamber.id}"
    else:
        raise json_error(web.HTTPNotFound, f"{url!r} is not a session or live page of this site")
    width, height = embed_size(maxwidth, maxheight)
    html = iframe(
        request, src=src, width=width, height=height, title=title, allow="autoplay; fullscreen"
    )
    return web.json_response(
        {
            "version": "1.0",
            "type": "video",
            "title": title,
            "provider_name": "obrady",
            "provider_url": f"{base}/",
            "html": html,
            "width": width,
            "height": height,
            "cache_age": 60,
        },
        # Consumers may ask from a browser on another site.
        headers={"Access-Control-Allow-Origin": "*", "Cache-Control": FEED_CACHE},
    )
