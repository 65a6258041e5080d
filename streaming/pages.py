"""Minimal public pages in Polish: home, the live player of each chamber, a session's recording."""

from __future__ import annotations

from html import escape
from zoneinfo import ZoneInfo

from aiohttp import web

from archive.index import Session
from archive.publish import Chapter, chapters
from archive.timeline import Timeline
from streaming.api import session_id_of
from streaming.i18n import page
from streaming.keys import ARCHIVE, SETTINGS
from streaming.live import private_if_withdrawn
from streaming.publication import feed_links, oembed_link

WARSAW = ZoneInfo("Europe/Warsaw")
STATES = {"scheduled": "zaplanowana", "live": "na żywo", "ended": "zakończona"}

routes = web.RouteTableDef()


def _page(request: web.Request, title: str, body: str, head: str = "") -> web.Response:
    """A public page with the player's scripts (it follows the language cookie, so a shared
    cache asks obrady each time)."""
    return page(
        request,
        title,
        body,
        head=head,
        scripts=("/static/hls.min.js", "/static/player.js"),
        cache="no-cache",
        framable=True,
    )


def _when(session: Session) -> str:
    start = session.scheduled_start.astimezone(WARSAW)
    return start.strftime("%d.%m.%Y %H:%M")


def _continuity(session: Session, timeline: Timeline) -> str:
    """The continuity report: complete, or each gap with its time and cause."""
    if not timeline.spans:
        return '<h2>Ciągłość nagrania</h2><p id="continuity">Brak nagrania.</p>'
    gaps = timeline.gaps()
    if not gaps:
        verdict = "Nagranie kompletne." if session.state == "ended" else "Jak dotąd bez przerw."
        return f'<h2>Ciągłość nagrania</h2><p id="continuity">{verdict}</p>'
    rows = "".join(
        f"<li>{g.start.astimezone(WARSAW):%H:%M:%S}–{g.end.astimezone(WARSAW):%H:%M:%S} "
        f"({g.seconds:.1f} s, w nagraniu od {int(g.offset_seconds)} s): {escape(g.cause)}</li>"
        for g in gaps
    )
    return (
        f'<h2>Ciągłość nagrania</h2><p id="continuity">Przerwy w nagraniu: {len(gaps)}.</p>'
        f'<ul class="gaps">{rows}</ul>'
    )


@routes.get("/")
async def home(request: web.Request) -> web.Response:
    """What is live, what is scheduled, and the recordings."""
    archive = request.app[ARCHIVE]
    settings = request.app[SETTINGS]
    sessions = await archive.call(archive.index.list_sessions, 100)
    chambers = "".join(
        f'<li><a href="/live/{escape(c.id)}">{escape(c.name)}</a></li>' for c in settings.chambers
    )
    rows = "".join(
        f'<li><a href="/sessions/{s.id}">{escape(s.title)}</a> – {_when(s)} – '
        f"{STATES[s.state]}</li>"
        for s in sessions
    )
    return _page(
        request,
        "Obrady Rady Miasta",
        f"<h2>Transmisje</h2><ul>{chambers}</ul>"
        f"<h2>Posiedzenia</h2><ul>{rows or '<li>Brak posiedzeń.</li>'}</ul>",
        head=feed_links(),
    )


@routes.get("/live")
@routes.get("/live/{chamber}")
async def live_page(request: web.Request) -> web.Response:
    """The live player of a chamber, following its current session."""
    settings = request.app[SETTINGS]
    chamber_id = request.match_info.get("chamber", settings.chambers[0].id)
    try:
        chamber = settings.chamber(chamber_id)
    except KeyError:
        raise web.HTTPNotFound(text=f"Nie ma sali {chamber_id!r}.") from None
    src = f"/live/{chamber.id}/index.m3u8"
    return _page(
        request,
        f"Transmisja na żywo: {chamber.name}",
        f'<video id="player" controls muted autoplay playsinline data-src="{escape(src)}" '
        f'data-live="1" data-chamber="{escape(chamber.id)}" '
        'aria-label="Transmisja na żywo"></video>'
        f'<p id="status" data-chamber="{escape(chamber.id)}" aria-live="polite"></p>'
        '<div id="agenda"></div><div id="votes" aria-live="polite"></div>',
    )


@routes.get("/sessions/{id}")
async def session_page(request: web.Request) -> web.Response:
    """A session: its recording with the agenda as chapters."""
    archive = request.app[ARCHIVE]
    index = archive.index
    sid = session_id_of(request)

    def read() -> tuple[Session, list[Chapter], Timeline]:
        session = index.get_session(sid)
        timeline = index.timeline(sid)
        return session, chapters(index.agenda(sid), index.markers(sid), timeline), timeline

    session, found, timeline = await archive.call(read)
    # A withdrawn recording: 410 to the public, staff still see it.
    private = await private_if_withdrawn(request, session)
    items = "".join(
        f'<li><a href="?t={int(c.start)}" data-t="{c.start:.3f}">{escape(c.label)}</a></li>'
        for c in found
    )
    body = (
        f"<p>{_when(session)} – {STATES[session.state]}</p>"
        f'<video id="player" controls playsinline data-src="/sessions/{sid}/index.m3u8" '
        f'aria-label="Nagranie posiedzenia"></video>'
        f'<h2>Porządek obrad</h2><ol class="chapters">{items or "<li>Brak rozdziałów.</li>"}</ol>'
        + _continuity(session, timeline)
    )
    response = _page(request, session.title, body, head=oembed_link(request, session))
    if private:
        response.headers["Cache-Control"] = "private, no-store"
    return response
