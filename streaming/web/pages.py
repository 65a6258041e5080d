"""Public pages, Polish first and English with ?lang=en: home, live player, session, archive.

Every page is built by streaming.i18n.page (skip link, landmarks, search box, language switch);
everything taken from the archive or the request is escaped here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web

from archive.council import AgendaEntry, Vote
from archive.index import Marker, NotFound, Session
from archive.publish import Chapter, chapters
from archive.timeline import Timeline
from streaming.hls.routes import private_if_withdrawn
from streaming.keys import ARCHIVE, CLOCK, SETTINGS
from streaming.web.i18n import Lang, lang_of, page, text
from streaming.web.publication import embed_size, feed_links, oembed_link, public_base

WARSAW = ZoneInfo("Europe/Warsaw")
# Twenty years of sessions and committee meetings is about 1,400: all are read at once.
ALL_SESSIONS = 100_000
UPCOMING_SHOWN = 5
RECENT_SHOWN = 10
SECONDS = re.compile(r"^\d{1,7}(\.\d{1,3})?$")
TERM_YEARS = re.compile(r"(\d{4})\s*[-–/]\s*(\d{4})")
# A ?t= a little past the end still plays the last frame; float sums differ in the last bits.
END_SLACK_SECONDS = 0.5

W: dict[str, dict[Lang, str]] = {
    "home_title": {"pl": "Obrady Rady Miasta", "en": "City Council sessions"},
    "live_now": {"pl": "Teraz na żywo", "en": "Live now"},
    "live_label": {"pl": "Na żywo", "en": "Live"},
    "watch": {"pl": "oglądaj transmisję", "en": "watch live"},
    "nothing_live": {
        "pl": "teraz nie trwa żadne posiedzenie.",
        "en": "no session is taking place now.",
    },
    "live_page": {"pl": "strona transmisji", "en": "live page"},
    "upcoming": {"pl": "Najbliższe posiedzenia", "en": "Coming up"},
    "none_upcoming": {"pl": "Brak zaplanowanych posiedzeń.", "en": "No sessions scheduled."},
    "recent": {"pl": "Najnowsze nagrania", "en": "Latest recordings"},
    "none_recent": {"pl": "Brak nagrań.", "en": "No recordings yet."},
    "whole_archive": {"pl": "Całe archiwum nagrań", "en": "The whole archive"},
    "live_title": {"pl": "Transmisja na żywo: {name}", "en": "Live: {name}"},
    "live_player": {"pl": "Transmisja na żywo", "en": "Live transmission"},
    "live_noscript": {
        "pl": "Stan obrad, porządek i głosowania odświeżają się co sekundę (wymaga JavaScriptu).",
        "en": "The state, agenda and votes refresh every second (this needs JavaScript).",
    },
    "live_captions": {
        "pl": "Napisy na żywo – automatyczne (rozpoznawanie mowy, mogą zawierać błędy "
        "i pojawiają się z kilkunastosekundowym opóźnieniem)",
        "en": "Live captions – automatic (speech recognition; they may contain mistakes "
        "and appear some seconds late)",
    },
    "recording": {"pl": "Nagranie posiedzenia", "en": "Recording of the session"},
    "moment_link": {"pl": "Link do bieżącej chwili nagrania", "en": "Link to this moment"},
    "chapters": {"pl": "Porządek obrad", "en": "Agenda"},
    "chapters_track": {"pl": "Punkty porządku obrad", "en": "Agenda items"},
    "no_chapters": {"pl": "Brak rozdziałów.", "en": "No chapters."},
    "starts_at": {"pl": "od", "en": "from"},
    "clip": {"pl": "pobierz fragment (MP4)", "en": "download this part (MP4)"},
    "course": {"pl": "Przebieg nagrania", "en": "Timeline of the recording"},
    "item_started": {"pl": "Punkt", "en": "Item"},
    "break": {"pl": "Przerwa", "en": "Break"},
    "break_end": {"pl": "Wznowienie obrad", "en": "Session resumed"},
    "closed": {"pl": "Wyłączenie jawności", "en": "Closed to the public"},
    "closed_end": {"pl": "Przywrócenie jawności", "en": "Open again"},
    "vote": {"pl": "Głosowanie", "en": "Vote"},
    "gap": {"pl": "Przerwa w nagraniu", "en": "Gap in the recording"},
    "no_events": {"pl": "Brak zdarzeń.", "en": "Nothing marked yet."},
    "votes": {"pl": "Głosowania", "en": "Votes"},
    "no_votes": {"pl": "W tym posiedzeniu nie było głosowań.", "en": "No votes were taken."},
    "vote_lists": {
        "pl": "Imienne wykazy głosowań (do druku)",
        "en": "Nominal vote lists (printable)",
    },
    "nominal": {"pl": "Wykaz imienny", "en": "How each councillor voted"},
    "councillor": {"pl": "Radny / radna", "en": "Councillor"},
    "caucus": {"pl": "Klub", "en": "Caucus"},
    "choice": {"pl": "Głos", "en": "Vote"},
    "in_recording": {"pl": "w nagraniu", "en": "in the recording"},
    "item": {"pl": "punkt", "en": "item"},
    "downloads": {"pl": "Pobierz", "en": "Downloads"},
    "transcript_txt": {
        "pl": "transkrypcja (tekst, rozpoznana automatycznie, poprawiana przez urząd)",
        "en": "transcript (text, recognised automatically, corrected by the office)",
    },
    "captions_vtt": {"pl": "napisy (WebVTT)", "en": "captions (WebVTT)"},
    "whole_mp4": {"pl": "Całe nagranie (MP4)", "en": "The whole recording (MP4)"},
    "chapters_vtt": {"pl": "Rozdziały (WebVTT)", "en": "Chapters (WebVTT)"},
    "votes_csv": {"pl": "Głosowania (CSV, Excel)", "en": "Votes (CSV, Excel)"},
    "votes_json": {"pl": "Głosowania (JSON)", "en": "Votes (JSON)"},
    "not_yet": {
        "pl": "Pliki do pobrania będą dostępne po zakończeniu posiedzenia.",
        "en": "Downloads are available once the session has ended.",
    },
    "embed": {"pl": "Osadź w BIP lub na stronie", "en": "Embed in BIP or a website"},
    "embed_code": {"pl": "Kod do wklejenia (iframe)", "en": "Code to paste (iframe)"},
    "continuity": {"pl": "Ciągłość nagrania", "en": "Continuity of the recording"},
    "no_recording": {"pl": "Brak nagrania.", "en": "No recording."},
    "complete": {"pl": "Nagranie kompletne.", "en": "The recording is complete."},
    "so_far": {"pl": "Jak dotąd bez przerw.", "en": "No gaps so far."},
    "gaps": {"pl": "Przerwy w nagraniu: {n}.", "en": "Gaps in the recording: {n}."},
    "gap_row": {"pl": "{s} s, w nagraniu od {at}", "en": "{s} s, at {at} in the recording"},
    "archive_title": {"pl": "Archiwum posiedzeń", "en": "Archive of sessions"},
    "filters": {"pl": "Filtry", "en": "Filters"},
    "term": {"pl": "Kadencja", "en": "Term"},
    "year": {"pl": "Rok", "en": "Year"},
    "kind": {"pl": "Rodzaj", "en": "Kind"},
    "all": {"pl": "wszystkie", "en": "all"},
    "show": {"pl": "Pokaż", "en": "Show"},
    "found": {"pl": "Znaleziono posiedzeń: {n}.", "en": "Sessions found: {n}."},
    "none_found": {"pl": "Brak posiedzeń.", "en": "No sessions."},
    "bad_filter": {
        "pl": "Nieznana wartość filtru {name}: {value}. Wybierz jedną z listy.",
        "en": "Unknown value of the filter {name}: {value}. Choose one from the list.",
    },
    "bad_page": {
        "pl": "Nie ma strony {raw}: podaj numer strony od 1 do {pages}.",
        "en": "There is no page {raw}: give a page number from 1 to {pages}.",
    },
    "pages": {"pl": "Strony archiwum", "en": "Archive pages"},
    "page_of": {"pl": "Strona {n} z {pages}", "en": "Page {n} of {pages}"},
    "previous": {"pl": "Poprzednia strona", "en": "Previous page"},
    "next": {"pl": "Następna strona", "en": "Next page"},
    "bad_request": {"pl": "Nieprawidłowy adres", "en": "Bad address"},
    "not_found": {"pl": "Nie znaleziono", "en": "Not found"},
    "no_session": {
        "pl": "Nie ma posiedzenia o numerze {id}. Sprawdź adres albo poszukaj w archiwum.",
        "en": "There is no session number {id}. Check the address or look in the archive.",
    },
    "no_chamber": {
        "pl": "Nie ma sali {id}. Transmisje są z sal: {known}.",
        "en": "There is no chamber {id}. Live transmissions come from: {known}.",
    },
    "bad_t": {
        "pl": "Parametr t to liczba sekund od początku nagrania, np. ?t=90 – podano {raw}.",
        "en": "t is the number of seconds into the recording, e.g. ?t=90 – not {raw}.",
    },
    "t_past_end": {
        "pl": "Nagranie trwa {length} ({s} s): podaj t od 0 do {s}, a nie {raw}.",
        "en": "The recording lasts {length} ({s} s): give t from 0 to {s}, not {raw}.",
    },
    "t_no_recording": {
        "pl": "To posiedzenie nie ma jeszcze nagrania: usuń z adresu parametr t.",
        "en": "This session has no recording yet: remove t from the address.",
    },
    "back_to_session": {"pl": "Strona posiedzenia", "en": "The session's page"},
}
STATES: dict[str, dict[Lang, str]] = {
    "scheduled": {"pl": "zaplanowane", "en": "scheduled"},
    "live": {"pl": "na żywo", "en": "live"},
    "ended": {"pl": "zakończone", "en": "ended"},
}
KINDS: dict[str, dict[Lang, str]] = {
    "session": {"pl": "sesja", "en": "council session"},
    "committee": {"pl": "posiedzenie komisji", "en": "committee meeting"},
}
CHOICES: dict[Lang, dict[str, str]] = {
    "pl": {"for": "za", "against": "przeciw", "abstain": "wstrzymał się", "absent": "nie głosował"},
    "en": {"for": "for", "against": "against", "abstain": "abstained", "absent": "did not vote"},
}
TOTALS: dict[Lang, tuple[str, str, str, str]] = {
    "pl": ("Za", "przeciw", "wstrzymało się", "nie głosowało"),
    "en": ("For", "against", "abstained", "did not vote"),
}

routes = web.RouteTableDef()


def _w(lang: Lang, key: str, **values: object) -> str:
    """A phrase in the language, with its {placeholders} filled (values are escaped)."""
    phrase = W[key][lang]
    return phrase.format(**{k: escape(str(v)) for k, v in values.items()}) if values else phrase


def _page(
    request: web.Request, title: str, body: str, head: str = "", status: int = 200
) -> web.Response:
    """A public page with the player's scripts (it follows the language cookie, so a shared
    cache asks obrady each time)."""
    return page(
        request,
        title,
        body,
        status=status,
        head=head,
        scripts=("/static/hls.min.js", "/static/player.js"),
        cache="no-cache",
        framable=True,
    )


def _error(request: web.Request, status: int, message: str, back: str = "") -> web.Response:
    """A page saying what is wrong and what to do (400, 404 and 410 answers)."""
    lang = lang_of(request)
    if status == 410:
        title = text(lang, "withdrawn_title")
    else:
        title = _w(lang, "bad_request" if status == 400 else "not_found")
    return page(
        request,
        title,
        f'<p class="error" role="alert">{message}</p>{back}',
        status=status,
        cache="no-cache",
        framable=True,
    )


def _now(request: web.Request) -> datetime:
    clock = request.app.get(CLOCK)
    return clock() if clock is not None else datetime.now(UTC)


def _start(session: Session) -> datetime:
    """When the session began, or is to begin (sessions are often started before their time)."""
    return (session.started_at or session.scheduled_start).astimezone(WARSAW)


def _when(session: Session) -> str:
    return f"{_start(session):%d.%m.%Y %H:%M}"


def _iso(session: Session) -> str:
    return _start(session).isoformat()


def hms(seconds: float) -> str:
    """Seconds as H:MM:SS (or M:SS under an hour), as players show them."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _kind(lang: Lang, kind: str) -> str:
    return KINDS.get(kind, {"pl": kind, "en": kind})[lang]


def _session_line(lang: Lang, session: Session) -> str:
    """One session in a list: its title as a link, date, kind and state."""
    return (
        f'<li><a href="/sessions/{session.id}">{escape(session.title)}</a> '
        f'<span class="meta">– <time datetime="{_iso(session)}">{_when(session)}</time>, '
        f"{escape(_kind(lang, session.kind))}, {STATES[session.state][lang]}</span></li>"
    )


# Home


@routes.get("/")
async def home(request: web.Request) -> web.Response:
    """What is live now, what is scheduled next, and the latest recordings."""
    archive = request.app[ARCHIVE]
    settings = request.app[SETTINGS]
    lang = lang_of(request)
    now = _now(request)
    sessions = await archive.call(archive.index.list_sessions, ALL_SESSIONS)
    live_rows = []
    for chamber in settings.chambers:
        live = next((s for s in sessions if s.state == "live" and s.chamber == chamber.id), None)
        href = f"/live/{escape(chamber.id)}"
        if live is not None:
            live_rows.append(
                f'<li class="on-air"><strong>{_w(lang, "live_label")}:</strong> '
                f"{escape(live.title)} ({escape(chamber.name)}) – "
                f'<a href="{href}">{_w(lang, "watch")}</a></li>'
            )
        else:
            live_rows.append(
                f"<li>{escape(chamber.name)}: {_w(lang, 'nothing_live')} "
                f'<a href="{href}">{_w(lang, "live_page")}</a></li>'
            )
    upcoming = sorted(
        (s for s in sessions if s.state == "scheduled" and s.scheduled_end > now),
        key=lambda s: s.scheduled_start,
    )[:UPCOMING_SHOWN]
    recent = sorted(
        (s for s in sessions if s.state == "ended" and s.published),
        key=lambda s: (s.ended_at or s.scheduled_end, s.id),
        reverse=True,
    )[:RECENT_SHOWN]
    body = (
        f'<section aria-labelledby="h-live"><h2 id="h-live">{_w(lang, "live_now")}</h2>'
        f'<ul class="live-now">{"".join(live_rows)}</ul></section>'
        f'<section aria-labelledby="h-next"><h2 id="h-next">{_w(lang, "upcoming")}</h2>'
        + (
            f'<ul class="sessions">{"".join(_session_line(lang, s) for s in upcoming)}</ul>'
            if upcoming
            else f"<p>{_w(lang, 'none_upcoming')}</p>"
        )
        + f'</section><section aria-labelledby="h-recent"><h2 id="h-recent">'
        f"{_w(lang, 'recent')}</h2>"
        + (
            f'<ul class="sessions">{"".join(_session_line(lang, s) for s in recent)}</ul>'
            if recent
            else f"<p>{_w(lang, 'none_recent')}</p>"
        )
        + f'<p><a href="/archive">{_w(lang, "whole_archive")}</a></p></section>'
    )
    return _page(request, _w(lang, "home_title"), body, head=feed_links())


# Live


@routes.get("/live")
@routes.get("/live/{chamber}")
async def live_page(request: web.Request) -> web.Response:
    """The live player of a chamber, following its current session (player.js fills in the
    state, agenda with the current item, and votes from /api/v1/chambers/{chamber}/now)."""
    settings = request.app[SETTINGS]
    lang = lang_of(request)
    chamber_id = request.match_info.get("chamber", settings.chambers[0].id)
    try:
        chamber = settings.chamber(chamber_id)
    except KeyError:
        known = ", ".join(c.id for c in settings.chambers)
        return _error(request, 404, _w(lang, "no_chamber", id=chamber_id, known=known))
    src = f"/live/{chamber.id}/index.m3u8"
    cid = escape(chamber.id)
    body = (
        f'<video id="player" controls muted autoplay playsinline data-src="{escape(src)}" '
        f'data-live="1" data-chamber="{cid}" aria-label="{_w(lang, "live_player")}"></video>'
        # Live captions (player.js shows the newest lines while the session runs).
        f'<section id="live-captions" class="live-captions" hidden aria-labelledby="h-captions">'
        f'<h2 id="h-captions" class="caption-label">{_w(lang, "live_captions")}</h2>'
        '<p class="caption-lines" lang="pl"></p></section>'
        f'<p id="status" class="state" data-chamber="{cid}" role="status"></p>'
        f"<noscript><p>{_w(lang, 'live_noscript')}</p></noscript>"
        '<p id="session-link"></p>'
        # Polite announcements of a new current item or vote: the lists below are redrawn,
        # and reading them out whole every time would drown a screen reader's user.
        '<p id="announce" class="visually-hidden" aria-live="polite"></p>'
        '<div id="agenda"></div><div id="votes"></div>'
    )
    return _page(request, _w(lang, "live_title", name=chamber.name), body)


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


def _start_at(lang: Lang, raw: str | None, duration: float) -> float | str | None:
    """The ?t= seconds to start at, None without one, or the message saying what to fix."""
    if raw is None or raw == "":
        return None
    if not SECONDS.match(raw):
        return _w(lang, "bad_t", raw=repr(raw[:40]))
    seconds = float(raw)
    if duration <= 0:
        return _w(lang, "t_no_recording") if seconds > 0 else None
    if seconds > duration + END_SLACK_SECONDS:
        return _w(lang, "t_past_end", length=hms(duration), s=int(duration), raw=raw)
    return seconds


def _moment(sid: int, offset: float | None, label: str) -> str:
    """A link to a moment of the recording: ?t= for a new visit, data-t for this player."""
    if offset is None:
        return label
    return f'<a href="/sessions/{sid}?t={int(offset)}" data-t="{offset:.3f}">{label}</a>'


def _chapters(lang: Lang, record: SessionRecord) -> str:
    sid = record.session.id
    ended = record.session.state == "ended"
    rows = []
    for c in record.chapters:
        clip = ""
        if ended:
            clip = (
                f' · <a href="/sessions/{sid}/items/{c.item_id}/clip.mp4" download>'
                f'{_w(lang, "clip")}<span class="visually-hidden">: {_w(lang, "item")} '
                f"{escape(c.number)}</span></a>"
            )
        rows.append(
            f'<li data-item="{c.item_id}" data-start="{c.start:.3f}" data-end="{c.end:.3f}">'
            f'<a href="/sessions/{sid}?t={int(c.start)}" data-t="{c.start:.3f}">'
            f'{escape(c.label)}</a> <span class="meta">({_w(lang, "starts_at")} '
            f"{hms(c.start)})</span>{clip}</li>"
        )
    if not rows:
        return f"<p>{_w(lang, 'no_chapters')}</p>"
    return f'<ol class="chapters">{"".join(rows)}</ol>'


def _events(lang: Lang, record: SessionRecord) -> list[tuple[float, str, str]]:
    """(offset, kind, text) of everything marked in the recording, in time order."""
    timeline = record.timeline
    words = {
        "break_start": "break",
        "break_end": "break_end",
        "closed_start": "closed",
        "closed_end": "closed_end",
    }
    found: list[tuple[float, str, str]] = []
    for marker in record.markers:
        offset = timeline.offset_of(marker.at)
        if offset is None:
            continue
        if marker.kind == "item_start":
            entry = record.entries.get(marker.item_id or -1)
            what = f"{_w(lang, 'item_started')} " + (
                f"{escape(entry.number)}. {escape(entry.title)}" if entry else ""
            )
        else:
            what = _w(lang, words.get(marker.kind, "break"))
        found.append((offset, marker.kind, what))
    for vote in record.votes:
        offset = timeline.offset_of(vote.at)
        if offset is not None:
            found.append((offset, "vote", f"{_w(lang, 'vote')}: {escape(vote.subject)}"))
    for gap in timeline.gaps():
        found.append((gap.offset_seconds, "gap", f"{_w(lang, 'gap')} ({gap.seconds:.0f} s)"))
    found.sort(key=lambda event: event[0])
    return found


def _course(lang: Lang, record: SessionRecord) -> str:
    """The timeline: a bar for the eye (breaks, closed parts, votes) and a list for everyone."""
    sid = record.session.id
    duration = record.timeline.duration
    events = _events(lang, record)
    if not events:
        return f"<p>{_w(lang, 'no_events')}</p>"
    bar = ""
    if duration > 0:

        def pct(offset: float) -> float:
            return max(0.0, min(100.0, offset / duration * 100))

        spans = []
        opened: dict[str, float] = {}
        for offset, kind, _ in events:
            if kind in ("break_start", "closed_start"):
                opened[kind] = offset
            elif kind in ("break_end", "closed_end"):
                start_kind = kind.replace("_end", "_start")
                if start_kind in opened:
                    begin = opened.pop(start_kind)
                    spans.append((begin, offset, start_kind))
        for start_kind, begin in opened.items():
            spans.append((begin, duration, start_kind))
        parts = [
            f'<span class="span span-{kind}" style="left:{pct(a):.2f}%;'
            f'width:{max(pct(b) - pct(a), 0.5):.2f}%"></span>'
            for a, b, kind in spans
        ]
        parts += [
            f'<span class="tick tick-{kind}" style="left:{pct(offset):.2f}%"></span>'
            for offset, kind, _ in events
            if kind in ("item_start", "vote")
        ]
        # The bar repeats the list below for sighted readers; the list is what is announced.
        bar = f'<div class="timeline public" aria-hidden="true">{"".join(parts)}</div>'
    rows = "".join(
        f'<li class="event-{kind}">{_moment(sid, offset, hms(offset))} {text}</li>'
        for offset, kind, text in events
    )
    return f'{bar}<ol class="events">{rows}</ol>'


def _votes(lang: Lang, record: SessionRecord) -> str:
    sid = record.session.id
    if not record.votes:
        return f"<p>{_w(lang, 'no_votes')}</p>"
    words = CHOICES[lang]
    labels = TOTALS[lang]
    sections = []
    for number, vote in enumerate(record.votes, start=1):
        offset = record.timeline.offset_of(vote.at)
        entry = record.entries.get(vote.item_id) if vote.item_id is not None else None
        details = [f"<time>{vote.at.astimezone(WARSAW):%H:%M:%S}</time>"]
        if entry is not None:
            details.append(f"{_w(lang, 'item')} {escape(entry.number)}. {escape(entry.title)}")
        if offset is not None:
            details.append(_moment(sid, offset, f"{_w(lang, 'in_recording')} {hms(offset)}"))
        t = vote.totals()
        totals = (
            f"{labels[0]}: {t['for']}, {labels[1]}: {t['against']}, "
            f"{labels[2]}: {t['abstain']}, {labels[3]}: {t['absent']}"
        )
        rows = "".join(
            f'<tr data-councillor="{c.councillor_id}"><th scope="row">{escape(c.name)}</th>'
            f'<td>{escape(c.caucus)}</td><td data-choice="{escape(c.choice)}">'
            f"{escape(words.get(c.choice, c.choice))}</td></tr>"
            for c in vote.choices
        )
        sections.append(
            f'<section class="vote" id="vote-{vote.id}" aria-labelledby="vote-{vote.id}-h">'
            f'<h3 id="vote-{vote.id}-h">{number}. {escape(vote.subject)}</h3>'
            f'<p class="meta">{" · ".join(details)}</p>'
            f'<p class="totals">{totals}</p>'
            f"<details><summary>{_w(lang, 'nominal')}</summary>"
            f'<table class="nominal"><caption class="visually-hidden">{_w(lang, "nominal")}: '
            f"{escape(vote.subject)}</caption><thead><tr>"
            f'<th scope="col">{_w(lang, "councillor")}</th>'
            f'<th scope="col">{_w(lang, "caucus")}</th>'
            f'<th scope="col">{_w(lang, "choice")}</th></tr></thead>'
            f"<tbody>{rows}</tbody></table></details></section>"
        )
    return f'<p><a href="/sessions/{sid}/votes">{_w(lang, "vote_lists")}</a></p>' + "".join(
        sections
    )


def _downloads(lang: Lang, record: SessionRecord) -> str:
    sid = record.session.id
    links = [f'<li><a href="/sessions/{sid}/chapters.vtt">{_w(lang, "chapters_vtt")}</a></li>']
    if record.transcribed:
        links += [
            f'<li><a href="/sessions/{sid}/transcript.txt" download>'
            f"{_w(lang, 'transcript_txt')}</a></li>",
            f'<li><a href="/sessions/{sid}/captions.vtt">{_w(lang, "captions_vtt")}</a></li>',
        ]
    if record.votes:
        links += [
            f'<li><a href="/sessions/{sid}/votes.csv" download>{_w(lang, "votes_csv")}</a></li>',
            f'<li><a href="/sessions/{sid}/votes.json">{_w(lang, "votes_json")}</a></li>',
        ]
    if record.session.state == "ended" and record.timeline.duration > 0:
        whole = (
            f'<li><a href="/sessions/{sid}/recording.mp4" download>{_w(lang, "whole_mp4")}</a></li>'
        )
        return f'<ul class="downloads">{whole}{"".join(links)}</ul>'
    return f'<p>{_w(lang, "not_yet")}</p><ul class="downloads">{"".join(links)}</ul>'


def _embed(lang: Lang, request: web.Request, session: Session) -> str:
    width, height = embed_size(None, None)
    code = (
        f'<iframe src="{public_base(request)}/embed/sessions/{session.id}" width="{width}" '
        f'height="{height}" title="{escape(session.title)}" style="border:0" '
        'allow="fullscreen" allowfullscreen></iframe>'
    )
    return (
        f'<p><label for="embed-code">{_w(lang, "embed_code")}</label></p>'
        f'<textarea id="embed-code" readonly rows="3" cols="70">{escape(code)}</textarea>'
    )


def _continuity(lang: Lang, session: Session, timeline: Timeline) -> str:
    """The continuity report: complete, or each gap with its time and cause."""
    if not timeline.spans:
        return f'<p id="continuity">{_w(lang, "no_recording")}</p>'
    gaps = timeline.gaps()
    if not gaps:
        verdict = _w(lang, "complete" if session.state == "ended" else "so_far")
        return f'<p id="continuity">{verdict}</p>'
    rows = "".join(
        f"<li>{g.start.astimezone(WARSAW):%H:%M:%S}–{g.end.astimezone(WARSAW):%H:%M:%S} "
        f"({_w(lang, 'gap_row', s=f'{g.seconds:.1f}', at=int(g.offset_seconds))}): "
        f"{escape(g.cause)}</li>"
        for g in gaps
    )
    return f'<p id="continuity">{_w(lang, "gaps", n=len(gaps))}</p><ul class="gaps">{rows}</ul>'


def _section(key: str, title: str, content: str) -> str:
    return f'<section aria-labelledby="h-{key}"><h2 id="h-{key}">{title}</h2>{content}</section>'


@routes.get("/sessions/{id}")
async def session_page(request: web.Request) -> web.Response:
    """A session: its recording with the agenda as chapters, its timeline, votes, downloads,
    embed code and continuity; ?t= starts the player at that second."""
    archive = request.app[ARCHIVE]
    settings = request.app[SETTINGS]
    index = archive.index
    lang = lang_of(request)
    raw_id = request.match_info["id"]
    if not raw_id.isdigit() or len(raw_id) > 12:
        return _error(request, 404, _w(lang, "no_session", id=raw_id[:40]), _archive_link(lang))
    sid = int(raw_id)

    def read() -> SessionRecord:
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
        )

    try:
        record = await archive.call(read)
    except NotFound:
        return _error(request, 404, _w(lang, "no_session", id=sid), _archive_link(lang))
    session = record.session
    # A withdrawn recording: 410 to the public, staff still see it.
    try:
        private = await private_if_withdrawn(request, session)
    except web.HTTPGone:
        message = text(lang, "withdrawn").format(id=sid)
        gone = _error(request, 410, message, _archive_link(lang))
        # Publishing it again must reach the public at once, not after a cache's TTL.
        gone.headers["Cache-Control"] = "no-store"
        return gone
    duration = record.timeline.duration
    start = _start_at(lang, request.query.get("t"), duration)
    if isinstance(start, str):
        back = f'<p><a href="/sessions/{sid}">{_w(lang, "back_to_session")}</a></p>'
        return _error(request, 400, start, back)
    try:
        chamber_name = settings.chamber(session.chamber).name
    except KeyError:
        chamber_name = session.chamber  # a chamber since taken out of the configuration
    # Captions (automatic, corrected by staff) once the recording has a transcript.
    captions_url = f"/sessions/{sid}/captions.vtt" if record.transcribed else None
    captions = f' data-captions="{escape(captions_url)}"' if captions_url else ""
    start_attr = f' data-start="{start:.3f}"' if start is not None else ""
    base = public_base(request)
    video = (
        f'<video id="player" controls playsinline preload="metadata" '
        f'data-src="/sessions/{sid}/index.m3u8"{start_attr}{captions} '
        f'aria-label="{_w(lang, "recording")}: {escape(session.title)}">'
        f'<track kind="chapters" src="/sessions/{sid}/chapters.vtt" srclang="{lang}" '
        f'label="{_w(lang, "chapters_track")}" default></video>'
        f'<p class="moment"><label for="moment">{_w(lang, "moment_link")}</label> '
        f'<input id="moment" type="url" readonly size="45" '
        f'value="{escape(base)}/sessions/{sid}" data-base="{escape(base)}/sessions/{sid}"></p>'
    )
    body = (
        f'<p class="meta"><time datetime="{_iso(session)}">{_when(session)}</time> · '
        f"{escape(_kind(lang, session.kind))} · {escape(chamber_name)} · "
        f"{STATES[session.state][lang]}"
        + (f" · {hms(duration)}" if duration > 0 else "")
        + "</p>"
        + video
        + _section("chapters", _w(lang, "chapters"), _chapters(lang, record))
        + _section("course", _w(lang, "course"), _course(lang, record))
        + _section("votes", _w(lang, "votes"), _votes(lang, record))
        + _section("downloads", _w(lang, "downloads"), _downloads(lang, record))
        + _section("embed", _w(lang, "embed"), _embed(lang, request, session))
        + _section(
            "continuity", _w(lang, "continuity"), _continuity(lang, session, record.timeline)
        )
    )
    response = _page(request, session.title, body, head=oembed_link(request, session))
    if private:
        response.headers["Cache-Control"] = "private, no-store"
    return response


# Archive


def _archive_link(lang: Lang) -> str:
    return f'<p><a href="/archive">{_w(lang, "whole_archive")}</a></p>'


def term_years(term: str) -> tuple[int, int] | None:
    """The first and last year of a term written like "2024-2029", or None."""
    found = TERM_YEARS.search(term)
    if found is None:
        return None
    first, last = int(found[1]), int(found[2])
    return (first, last) if first <= last else None


def _select(name: str, label: str, options: Sequence[tuple[str, str]], chosen: str) -> str:
    rendered = "".join(
        f'<option value="{escape(value)}"{" selected" if value == chosen else ""}>'
        f"{escape(text)}</option>"
        for value, text in options
    )
    return (
        f'<p class="filter"><label for="f-{name}">{label}</label> '
        f'<select id="f-{name}" name="{name}">{rendered}</select></p>'
    )


# Sessions listed on one page of the archive (?page=N).
ARCHIVE_PAGE_SIZE = 50


def _pager(request: web.Request, lang: Lang, number: int, pages: int) -> str:
    """Links to the previous and next page of the archive, keeping the filters."""
    if pages <= 1:
        return ""
    kept = [(k, v) for k, v in request.query.items() if k != "page"]

    def link(to: int, key: str, rel: str) -> str:
        href = f"/archive?{urlencode([*kept, ('page', str(to))])}"
        return f'<li><a href="{escape(href)}" rel="{rel}">{_w(lang, key)}</a></li>'

    items = [link(number - 1, "previous", "prev")] if number > 1 else []
    items.append(f'<li aria-current="page">{_w(lang, "page_of", n=number, pages=pages)}</li>')
    if number < pages:
        items.append(link(number + 1, "next", "next"))
    return f'<nav class="pager" aria-label="{_w(lang, "pages")}"><ul>{"".join(items)}</ul></nav>'


@routes.get("/archive")
async def archive_page(request: web.Request) -> web.Response:
    """Sessions by term, year and kind (?term=&year=&kind=), newest first, grouped by year,
    ARCHIVE_PAGE_SIZE to a page (?page=)."""
    archive = request.app[ARCHIVE]
    settings = request.app[SETTINGS]
    lang = lang_of(request)
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
    years = sorted({_start(s).year for s in sessions}, reverse=True)
    chosen = {name: request.query.get(name, "") for name in ("term", "year", "kind")}
    allowed = {
        "term": {"", *terms},
        "year": {""} | {str(y) for y in years},
        "kind": {"", *KINDS},
    }
    for name, value in chosen.items():
        if value not in allowed[name]:
            message = _w(lang, "bad_filter", name=name, value=repr(value[:40]))
            return _error(request, 400, message, _archive_link(lang))
    years_of_term = term_years(chosen["term"]) if chosen["term"] else None
    shown = []
    for s in sessions:
        year = _start(s).year
        if years_of_term and not years_of_term[0] <= year <= years_of_term[1]:
            continue
        if chosen["year"] and year != int(chosen["year"]):
            continue
        if chosen["kind"] and s.kind != chosen["kind"]:
            continue
        shown.append(s)
    pages = max(1, -(-len(shown) // ARCHIVE_PAGE_SIZE))
    raw_page = request.query.get("page", "1")
    if not raw_page.isdigit() or not 1 <= int(raw_page) <= pages:
        message = _w(lang, "bad_page", raw=repr(raw_page[:40]), pages=pages)
        return _error(request, 400, message, _archive_link(lang))
    number = int(raw_page)
    on_page = shown[(number - 1) * ARCHIVE_PAGE_SIZE : number * ARCHIVE_PAGE_SIZE]
    every = _w(lang, "all")
    form = (
        f'<form method="get" action="/archive" class="filters" aria-labelledby="h-filters">'
        f'<h2 id="h-filters">{_w(lang, "filters")}</h2>'
        + _select("term", _w(lang, "term"), [("", every)] + [(t, t) for t in terms], chosen["term"])
        + _select(
            "year",
            _w(lang, "year"),
            [("", every)] + [(str(y), str(y)) for y in years],
            chosen["year"],
        )
        + _select(
            "kind",
            _w(lang, "kind"),
            [("", every)] + [(k, words[lang]) for k, words in KINDS.items()],
            chosen["kind"],
        )
        + ('<input type="hidden" name="lang" value="en">' if lang == "en" else "")
        + f'<p><button type="submit">{_w(lang, "show")}</button></p></form>'
    )
    groups: dict[int, list[Session]] = {}
    for s in on_page:
        groups.setdefault(_start(s).year, []).append(s)
    listing = "".join(
        f'<section aria-labelledby="y-{year}"><h2 id="y-{year}">{year}</h2>'
        f'<ul class="sessions">{"".join(_session_line(lang, s) for s in group)}</ul></section>'
        for year, group in groups.items()
    )
    found = f'<p id="found">{_w(lang, "found", n=len(shown))}</p>'
    pager = _pager(request, lang, number, pages)
    body = form + found + (listing or f"<p>{_w(lang, 'none_found')}</p>") + pager
    return _page(request, _w(lang, "archive_title"), body)
