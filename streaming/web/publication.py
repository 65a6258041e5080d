"""Publication for BIP and residents: nominal vote lists (CSV, JSON, printable), Atom/RSS feeds
of recordings, an iCalendar of sessions, embeddable players and oEmbed."""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html import escape
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

from aiohttp import web

from archive.council import AgendaEntry, Vote
from archive.index import NotFound, Session
from archive.timeline import Timeline
from streaming.api.views import session_summary, vote_json
from streaming.auth.access import is_https
from streaming.hls.routes import private_if_withdrawn
from streaming.http import json_error, session_id_of
from streaming.keys import ARCHIVE, CLOCK, SETTINGS
from streaming.web.i18n import Lang, lang_of, page, text

WARSAW = ZoneInfo("Europe/Warsaw")
FEED_SIZE = 50
CALENDAR_DAYS = 30
# Enough for twenty years of sessions and committee meetings (about 1,400); filtered here.
ALL_SESSIONS = 100_000
# Withdrawals and corrections must reach readers within a minute, even through a shared cache.
FEED_CACHE = "public, max-age=60"
HLS_TYPE = "application/vnd.apple.mpegurl"
ATOM_NS = "http://www.w3.org/2005/Atom"
EMBED_WIDTH = 640
MAX_DIMENSION = 10_000
SECONDS = re.compile(r"^\d{1,7}(\.\d{1,3})?$")
# Characters XML 1.0 cannot carry at all, even escaped.
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
# Excel runs a cell starting with these as a formula; a leading apostrophe keeps it text.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
SESSION_PATH = re.compile(r"^/sessions/(\d{1,12})/?$")
LIVE_PATH = re.compile(r"^/live(?:/([a-z0-9][a-z0-9_-]{0,63}))?/?$")

CHOICE_WORDS: dict[Lang, dict[str, str]] = {
    "pl": {
        "for": "za",
        "against": "przeciw",
        "abstain": "wstrzymał się",
        "absent": "nie głosował",
    },
    "en": {"for": "for", "against": "against", "abstain": "abstained", "absent": "did not vote"},
}
WORDS: dict[str, dict[Lang, str]] = {
    "title": {"pl": "Imienne wykazy głosowań", "en": "Nominal vote lists"},
    "vote": {"pl": "Głosowanie nr", "en": "Vote no."},
    "councillor": {"pl": "Radny / radna", "en": "Councillor"},
    "caucus": {"pl": "Klub", "en": "Caucus"},
    "choice": {"pl": "Głos", "en": "Vote"},
    "item": {"pl": "Punkt porządku obrad", "en": "Agenda item"},
    "time": {"pl": "Godzina", "en": "Time"},
    "in_recording": {"pl": "w nagraniu", "en": "in the recording"},
    "totals": {"pl": "Wynik", "en": "Result"},
    "none": {"pl": "W tym posiedzeniu nie było głosowań.", "en": "No votes were taken."},
    "download": {"pl": "Pobierz", "en": "Download"},
    "recording": {"pl": "Nagranie posiedzenia", "en": "Recording of the session"},
    "full_page": {"pl": "Pełna strona posiedzenia", "en": "Full session page"},
    "live_page": {"pl": "Strona transmisji", "en": "Live page"},
    "live": {"pl": "Transmisja na żywo", "en": "Live transmission"},
    "feed": {"pl": "Nagrania posiedzeń", "en": "Session recordings"},
    "calendar": {"pl": "Kalendarz posiedzeń", "en": "Calendar of sessions"},
}
CSV_HEADER = (
    "Nr głosowania",
    "Czas",
    "Sekunda nagrania",
    "Nr punktu",
    "Punkt porządku obrad",
    "Przedmiot głosowania",
    "Radny",
    "Klub",
    "Głos",
)
PRINT_CSS = """<style>
.vote { margin: 1.5rem 0; }
.vote caption { text-align: left; font-weight: 700; padding: .25rem 0; }
.totals { font-weight: 600; }
@media print {
  header, .downloads { display: none; }
  main { max-width: none; margin: 0; }
  .vote { break-inside: avoid; page-break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
}
</style>
"""

routes = web.RouteTableDef()


def _word(lang: Lang, key: str) -> str:
    return WORDS[key][lang]


def _now(request: web.Request) -> datetime:
    """The service's clock (the gateway process has none injected: it uses the real one)."""
    clock = request.app.get(CLOCK)
    return clock() if clock is not None else datetime.now(UTC)


def public_base(request: web.Request) -> str:
    """The address residents reach us at: live.public_url, else what this request came to."""
    configured = request.app[SETTINGS].live.public_url
    if configured:
        return configured.rstrip("/")
    return f"{'https' if is_https(request) else 'http'}://{request.host}"


def feed_links() -> str:
    """The home page's <link rel="alternate"> tags announcing the feeds and the calendar."""
    return (
        '<link rel="alternate" type="application/atom+xml" title="Nagrania posiedzeń (Atom)" '
        'href="/feeds/recordings.atom">\n'
        '<link rel="alternate" type="application/rss+xml" title="Nagrania posiedzeń (RSS)" '
        'href="/feeds/recordings.rss">\n'
        '<link rel="alternate" type="text/calendar" title="Kalendarz posiedzeń" '
        'href="/feeds/sessions.ics">\n'
    )


def oembed_link(request: web.Request, session: Session) -> str:
    """The session page's oEmbed discovery tag."""
    target = f"{public_base(request)}/sessions/{session.id}"
    href = f"/oembed?url={quote(target, safe='')}&format=json"
    return (
        f'<link rel="alternate" type="application/json+oembed" href="{escape(href)}" '
        f'title="{escape(session.title)}">\n'
    )


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
    index = archive.index
    sid = session_id_of(request)

    def read() -> VoteRecord:
        session = index.get_session(sid)
        items = {entry.id: entry for entry in index.agenda_entries(sid)}
        return VoteRecord(session, items, index.votes(sid), index.timeline(sid))

    return await archive.call(read)


def _item(record: VoteRecord, vote: Vote) -> AgendaEntry | None:
    return None if vote.item_id is None else record.items.get(vote.item_id)


def _warsaw(at: datetime) -> str:
    return at.astimezone(WARSAW).strftime("%Y-%m-%d %H:%M:%S")


def _cell(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_START) else value


@routes.get("/sessions/{id}/votes.csv")
async def votes_csv(request: web.Request) -> web.Response:
    """The session's nominal votes, one row per councillor per vote, for Excel in Polish."""
    record = await _vote_record(request)
    out = io.StringIO()
    # Polish Excel splits on ";" (the comma is the decimal separator there).
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    words = CHOICE_WORDS["pl"]
    for number, vote in enumerate(record.votes, start=1):
        offset = record.timeline.offset_of(vote.at)
        item = _item(record, vote)
        for choice in vote.choices:
            writer.writerow(
                [
                    str(number),
                    _warsaw(vote.at),
                    "" if offset is None else str(int(offset)),
                    item.number if item else "",
                    _cell(item.title) if item else "",
                    _cell(vote.subject),
                    _cell(choice.name),
                    _cell(choice.caucus),
                    words[choice.choice],
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


def _vote_table(lang: Lang, record: VoteRecord, number: int, vote: Vote) -> str:
    """One vote as a table with its caption and totals."""
    words = CHOICE_WORDS[lang]
    item = _item(record, vote)
    offset = record.timeline.offset_of(vote.at)
    details = [f"{_word(lang, 'time')}: {vote.at.astimezone(WARSAW):%H:%M:%S}"]
    if item is not None:
        details.append(f"{_word(lang, 'item')}: {escape(item.number)}. {escape(item.title)}")
    if offset is not None:
        at = f"{int(offset) // 3600}:{int(offset) % 3600 // 60:02d}:{int(offset) % 60:02d}"
        if record.session.published:
            at = f'<a href="/sessions/{record.session.id}?t={int(offset)}">{at}</a>'
        details.append(f"{_word(lang, 'in_recording')}: {at}")
    rows = "".join(
        f'<tr><th scope="row">{escape(c.name)}</th><td>{escape(c.caucus)}</td>'
        f'<td data-choice="{c.choice}">{escape(words[c.choice])}</td></tr>'
        for c in vote.choices
    )
    totals = ", ".join(f"{words[k]}: {n}" for k, n in vote.totals().items())
    return (
        f'<section class="vote" id="vote-{vote.id}">'
        f"<table><caption>{_word(lang, 'vote')} {number}: {escape(vote.subject)}</caption>"
        f'<thead><tr><th scope="col">{_word(lang, "councillor")}</th>'
        f'<th scope="col">{_word(lang, "caucus")}</th>'
        f'<th scope="col">{_word(lang, "choice")}</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
        f'<p class="totals">{_word(lang, "totals")}: {escape(totals)}</p>'
        f'<p class="details">{" · ".join(details)}</p></section>'
    )


@routes.get("/sessions/{id}/votes")
async def votes_page(request: web.Request) -> web.Response:
    """The nominal vote lists as a printable page (stays public when the recording is not)."""
    record = await _vote_record(request)
    lang = lang_of(request)
    session = record.session
    sid = session.id
    tables = "".join(
        _vote_table(lang, record, number, vote) for number, vote in enumerate(record.votes, start=1)
    )
    when = session.scheduled_start.astimezone(WARSAW).strftime("%d.%m.%Y")
    recording = (
        f' · <a href="/sessions/{sid}">{_word(lang, "recording")}</a>' if session.published else ""
    )
    body = (
        f"<p>{escape(session.title)} – {when}</p>"
        f'<p class="downloads">{_word(lang, "download")}: '
        f'<a href="/sessions/{sid}/votes.csv" download>CSV</a> · '
        f'<a href="/sessions/{sid}/votes.json">JSON</a>{recording}</p>'
        + (tables or f"<p>{_word(lang, 'none')}</p>")
    )
    return page(
        request,
        f"{_word(lang, 'title')}: {session.title}",
        body,
        head=PRINT_CSS,
        cache="no-cache",
        framable=True,
    )


# Feeds


async def _recordings(request: web.Request) -> list[Session]:
    """The newest ended, published sessions, most recently ended first."""
    archive = request.app[ARCHIVE]
    sessions = await archive.call(archive.index.list_sessions, ALL_SESSIONS)
    ended = [s for s in sessions if s.state == "ended" and s.published]
    ended.sort(key=lambda s: (s.ended_at or s.scheduled_end, s.id), reverse=True)
    return ended[:FEED_SIZE]


def _xml_text(value: str) -> str:
    return XML_ILLEGAL.sub("", value)


def _sub(parent: ET.Element, tag: str, value: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: _xml_text(v) for k, v in attrs.items()})
    if value is not None:
        element.text = _xml_text(value)
    return element


def _chamber_name(request: web.Request, chamber_id: str) -> str:
    try:
        return request.app[SETTINGS].chamber(chamber_id).name
    except KeyError:
        return chamber_id  # a chamber since taken out of the configuration


def _xml_response(root: ET.Element, content_type: str) -> web.Response:
    body = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return web.Response(
        body=body,
        content_type=content_type,
        charset="utf-8",
        headers={"Cache-Control": FEED_CACHE},
    )


def _summary(request: web.Request, session: Session) -> str:
    when = (session.started_at or session.scheduled_start).astimezone(WARSAW)
    return f"{when:%d.%m.%Y %H:%M}, {_chamber_name(request, session.chamber)}"


@routes.get("/feeds/recordings.atom")
async def recordings_atom(request: web.Request) -> web.Response:
    """An Atom feed of the newest published recordings."""
    base = public_base(request)
    sessions = await _recordings(request)
    feed = ET.Element("feed", {"xmlns": ATOM_NS, "xml:lang": "pl"})
    _sub(feed, "id", f"{base}/feeds/recordings.atom")
    _sub(feed, "title", "Nagrania posiedzeń – obrady")
    newest = max((s.ended_at for s in sessions if s.ended_at), default=_now(request))
    _sub(feed, "updated", newest.astimezone(UTC).isoformat())
    _sub(_sub(feed, "author"), "name", "obrady")
    _sub(feed, "link", rel="self", href=f"{base}/feeds/recordings.atom")
    _sub(feed, "link", rel="alternate", type="text/html", href=f"{base}/")
    for session in sessions:
        entry = _sub(feed, "entry")
        page_url = f"{base}/sessions/{session.id}"
        _sub(entry, "id", page_url)
        _sub(entry, "title", session.title)
        ended = (session.ended_at or session.scheduled_end).astimezone(UTC)
        started = (session.started_at or session.scheduled_start).astimezone(UTC)
        _sub(entry, "published", started.isoformat())
        _sub(entry, "updated", ended.isoformat())
        _sub(entry, "summary", _summary(request, session))
        _sub(entry, "link", rel="alternate", type="text/html", href=page_url)
        _sub(
            entry,
            "link",
            rel="enclosure",
            type=HLS_TYPE,
            href=f"{base}/sessions/{session.id}/index.m3u8",
        )
    return _xml_response(feed, "application/atom+xml")


@routes.get("/feeds/recordings.rss")
async def recordings_rss(request: web.Request) -> web.Response:
    """An RSS 2.0 feed of the newest published recordings."""
    base = public_base(request)
    sessions = await _recordings(request)
    rss = ET.Element("rss", version="2.0")
    channel = _sub(rss, "channel")
    _sub(channel, "title", "Nagrania posiedzeń – obrady")
    _sub(channel, "link", f"{base}/")
    _sub(channel, "description", "Nagrania sesji Rady Miasta i posiedzeń komisji")
    _sub(channel, "language", "pl")
    _sub(channel, "lastBuildDate", format_datetime(_now(request).astimezone(UTC), usegmt=True))
    for session in sessions:
        item = _sub(channel, "item")
        page_url = f"{base}/sessions/{session.id}"
        _sub(item, "title", session.title)
        _sub(item, "link", page_url)
        _sub(item, "guid", page_url, isPermaLink="true")
        ended = (session.ended_at or session.scheduled_end).astimezone(UTC)
        _sub(item, "pubDate", format_datetime(ended, usegmt=True))
        _sub(item, "description", _summary(request, session))
        # RSS requires a length; a playlist's size says nothing about the recording's.
        _sub(
            item,
            "enclosure",
            url=f"{base}/sessions/{session.id}/index.m3u8",
            length="0",
            type=HLS_TYPE,
        )
    return _xml_response(rss, "application/rss+xml")


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
        "X-WR-CALNAME:Posiedzenia Rady Miasta",
    ]
    for s in shown:
        # What happened, once it has: the actual start and end, else the scheduled ones.
        start = s.started_at or s.scheduled_start
        end = s.ended_at or max(s.scheduled_end, now if s.state == "live" else s.scheduled_end)
        if end <= start:
            end = start + timedelta(minutes=1)
        lines += [
            "BEGIN:VEVENT",
            f"UID:session-{s.id}@{host}",
            f"DTSTAMP:{_ics_time(now)}",
            f"DTSTART:{_ics_time(start)}",
            f"DTEND:{_ics_time(end)}",
            f"SUMMARY:{ics_escape(s.title)}",
            f"LOCATION:{ics_escape(_chamber_name(request, s.chamber))}",
            f"URL:{base}/sessions/{s.id}",
            f"STATUS:{'CONFIRMED' if s.state != 'scheduled' else 'TENTATIVE'}",
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


def _embed_page(request: web.Request, title: str, video: str, link: str) -> web.Response:
    """A page with only the player and a link out, for a frame in BIP (no X-Frame-Options)."""
    lang = lang_of(request)
    html = f"""<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} – obrady</title>
<link rel="stylesheet" href="/static/obrady.css">
<style>
body {{ margin: 0; background: #000; color: #fff; }}
video {{ display: block; width: 100%; height: auto; }}
.out {{ margin: 0; padding: .25rem .5rem; font-size: .9rem; }}
.out a {{ color: #fff; }}
</style>
<script src="/static/hls.min.js" defer></script>
<script src="/static/player.js" defer></script>
</head>
<body>
{video}
<p class="out">{link}</p>
</body>
</html>
"""
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
    lang = lang_of(request)
    # A withdrawn recording: 410 to the public, staff still see it (never kept by a cache).
    try:
        private = await private_if_withdrawn(request, session)
    except web.HTTPGone:
        message = f'<p role="alert">{text(lang, "withdrawn").format(id=sid)}</p>'
        gone = _embed_page(request, text(lang, "withdrawn_title"), message, "")
        gone.set_status(410)
        gone.headers["Cache-Control"] = "no-store"
        return gone
    full = f"/sessions/{sid}" + (f"?t={start}" if start else "")
    video = (
        f'<video id="player" controls playsinline preload="metadata" '
        f'data-src="/sessions/{sid}/index.m3u8" aria-label="{escape(session.title)}"></video>'
    )
    link = (
        f'<a href="{escape(full)}" target="_blank" rel="noopener">'
        f"{escape(session.title)} – {_word(lang, 'full_page')}</a>"
    )
    response = _embed_page(request, session.title, video, link)
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
    lang = lang_of(request)
    title = f"{_word(lang, 'live')}: {chamber.name}"
    video = (
        f'<video id="player" controls muted autoplay playsinline '
        f'data-src="/live/{escape(chamber.id)}/index.m3u8" data-live="1" '
        f'data-chamber="{escape(chamber.id)}" aria-label="{escape(title)}"></video>'
    )
    link = (
        f'<a href="/live/{escape(chamber.id)}" target="_blank" rel="noopener">'
        f"{escape(chamber.name)} – {_word(lang, 'live_page')}</a>"
    )
    return _embed_page(request, title, video, link)


def _dimension(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 6 or not 1 <= int(raw) <= MAX_DIMENSION:
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
    bases = {public_base(request), f"http://{request.host}", f"https://{request.host}"}
    for base in bases:
        own = urlsplit(base)
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
        start = re.search(r"(?:^|&)t=(\d{1,7})(?:&|$)", query)
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
        title = f"Transmisja na żywo: {chamber.name}"
        src = f"{base}/embed/live/{chamber.id}"
    else:
        raise json_error(web.HTTPNotFound, f"{url!r} is not a session or live page of this site")
    width, height = embed_size(maxwidth, maxheight)
    html = (
        f'<iframe src="{escape(src)}" width="{width}" height="{height}" '
        f'title="{escape(title)}" style="border:0" allow="autoplay; fullscreen" '
        "allowfullscreen></iframe>"
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
