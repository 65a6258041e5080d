"""Publication: vote lists (CSV, JSON, printable), feeds, the calendar, embeds and oEmbed."""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from conftest import STAFF, Service, basic, start_service, stop_service, wait_for

from config.settings import Settings
from streaming.app.gateway import create_gateway_app
from streaming.web.publication import embed_size, ics_fold

AGENDA = """Porządek obrad:
1. Otwarcie sesji.
2. Podjęcie uchwał w sprawie:
  a) zmiany budżetu miasta na 2027 rok;
3. Zamknięcie obrad.
"""
COUNCIL = [
    {"name": "Anna Nowak", "caucus": "KO"},
    {"name": "Jan Wiśniewski", "caucus": "PiS"},
    {"name": "Łukasz Żółtowski", "caucus": "PiS"},
    {"name": "Maria Kowalczyk", "caucus": ""},
]
CHOICES = {
    "Anna Nowak": "for",
    "Jan Wiśniewski": "against",
    "Łukasz Żółtowski": "abstain",
    "Maria Kowalczyk": "absent",
}
POLISH = {"for": "za", "against": "przeciw", "abstain": "wstrzymał się", "absent": "nie głosował"}
SUBJECT = "Uchwała nr LIX/700/26 w sprawie zmiany budżetu; autopoprawka, wersja 2"
ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture
async def service(make_settings: Callable[..., Settings]) -> AsyncIterator[Service]:
    """A running obrady whose live.public_url is its own address: feeds, embeds and oEmbed
    give absolute addresses only from there."""
    svc = await start_service(make_settings(public=True))
    try:
        yield svc
    finally:
        await stop_service(svc)


async def fetch(
    service: Service, path: str, auth: tuple[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """GET path: status, headers and the raw body."""
    async with service.http.get(service.base + path, headers=basic(auth)) as resp:
        return resp.status, dict(resp.headers), await resp.read()


async def schedule(service: Service, title: str, hours_ahead: float = 1) -> dict[str, Any]:
    """Schedule a session hours_ahead from now."""
    start = datetime.now(UTC) + timedelta(hours=hours_ahead)
    created: dict[str, Any] = await service.post_json(
        "/api/v1/sessions",
        {
            "title": title,
            "scheduled_start": start.isoformat(),
            "scheduled_end": (start + timedelta(hours=2)).isoformat(),
            "agenda_text": AGENDA,
        },
        status=201,
    )
    return created


async def voted_session(service: Service, title: str = "LIX Sesja Rady Miasta") -> dict[str, Any]:
    """A session recorded for a few seconds with one nominal vote under item 2.1, then stopped."""
    added = await service.post_json("/api/v1/councillors", {"councillors": COUNCIL}, status=201)
    ids = {c["name"]: c["id"] for c in added["councillors"]}
    created = await schedule(service, title)
    sid = created["id"]
    item = created["agenda"][1]["items"][0]["id"]
    await service.post_json(f"/api/v1/sessions/{sid}/start")
    await service.post_json(f"/api/v1/sessions/{sid}/items/{item}/start")

    async def recorded() -> bool:
        detail = await service.get_json(f"/api/v1/sessions/{sid}")
        return bool(detail["recording"]["duration_seconds"] > 0)

    await wait_for(recorded, 30, "the first recorded segment")
    choices = {str(ids[name]): choice for name, choice in CHOICES.items()}
    await service.post_json(
        f"/api/v1/sessions/{sid}/votes", {"subject": SUBJECT, "choices": choices}, status=201
    )
    stopped: dict[str, Any] = await service.post_json(f"/api/v1/sessions/{sid}/stop")
    return stopped


async def test_vote_lists_as_csv_json_and_a_printable_page(service: Service) -> None:
    session = await voted_session(service)
    sid = session["id"]
    [vote] = session["votes"]

    status, headers, raw = await fetch(service, f"/sessions/{sid}/votes.csv")
    assert status == 200, raw
    assert headers["Content-Type"] == "text/csv; charset=utf-8"
    assert headers["Content-Disposition"] == f'attachment; filename="glosowania-sesja-{sid}.csv"'
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs for UTF-8
    assert b"\r\n" in raw
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline=""), delimiter=";"))
    header, *lines = rows
    assert header[0] == "Nr głosowania" and header[-1] == "Głos"
    assert len(lines) == len(COUNCIL)
    by_name = {row[6]: row for row in lines}
    for name, choice in CHOICES.items():
        row = by_name[name]
        assert row[0] == "1"
        assert row[3] == "2.1" and row[4].startswith("zmiany budżetu miasta")
        assert row[5] == SUBJECT  # the ";" and "," inside survive the round trip
        assert row[8] == POLISH[choice]
        assert row[2] == str(int(vote["offset_seconds"]))
    assert by_name["Łukasz Żółtowski"][7] == "PiS" and by_name["Maria Kowalczyk"][7] == ""
    warsaw = datetime.fromisoformat(vote["at"]).astimezone(ZoneInfo("Europe/Warsaw"))
    assert lines[0][1] == warsaw.strftime("%Y-%m-%d %H:%M:%S")

    listed = await service.get_json(f"/sessions/{sid}/votes.json")
    assert listed["session"]["id"] == sid and listed["session"]["state"] == "ended"
    [shown] = listed["votes"]
    assert shown["number"] == 1 and shown["subject"] == SUBJECT
    assert shown["totals"] == {"for": 1, "against": 1, "abstain": 1, "absent": 1}
    assert shown["item"] == {"number": "2.1", "title": "zmiany budżetu miasta na 2027 rok"}
    assert {c["name"]: c["choice"] for c in shown["choices"]} == CHOICES
    assert shown["choices"] == vote["choices"]

    status, headers, raw = await fetch(service, f"/sessions/{sid}/votes")
    html = raw.decode()
    assert status == 200 and 'lang="pl"' in html and "X-Frame-Options" not in headers
    assert headers["Cache-Control"] == "no-cache"
    assert "@media print" in html and "<caption>" in html and 'scope="col"' in html
    for name, choice in CHOICES.items():
        assert f'<th scope="row">{name}</th>' in html
        row = re.search(rf'<th scope="row">{name}</th><td>[^<]*</td><td[^>]*>([^<]+)</td>', html)
        assert row and row[1] == POLISH[choice], name
    assert "Uchwała nr LIX/700/26" in html and "za: 1" in html
    english = await service.get_text(f"/sessions/{sid}/votes?lang=en")
    assert 'lang="en"' in english and "Nominal vote lists" in english
    assert "did not vote" in english and "abstained" in english

    # Withdrawing the recording does not withdraw the vote lists (art. 14: published at once).
    await service.post_json(f"/api/v1/sessions/{sid}/publish", {"published": False}, auth=STAFF)
    assert (await fetch(service, f"/sessions/{sid}"))[0] == 410
    assert (await fetch(service, f"/sessions/{sid}/votes.csv"))[0] == 200
    assert (await fetch(service, f"/sessions/{sid}/votes.json"))[0] == 200
    page = await service.get_text(f"/sessions/{sid}/votes")
    assert "Anna Nowak" in page and f'href="/sessions/{sid}?t=' not in page


async def test_feeds_list_published_recordings_and_the_calendar_lists_sessions(
    service: Service,
) -> None:
    title = 'Sesja nadzwyczajna, budżet & <inwestycje> "2027"; część 1'
    ended = await service.begin(title=title)
    await service.post_json(f"/api/v1/sessions/{ended['id']}/stop")
    withdrawn = await service.begin(title="Sesja wycofana")
    await service.post_json(f"/api/v1/sessions/{withdrawn['id']}/stop")
    await service.post_json(
        f"/api/v1/sessions/{withdrawn['id']}/publish", {"published": False}, auth=STAFF
    )
    long_title = "Posiedzenie Komisji Budżetu, Finansów i Rozwoju Gospodarczego Miasta " * 2
    scheduled = await schedule(service, long_title.strip(), hours_ahead=48)
    called_off = await schedule(service, "Sesja odwołana", hours_ahead=24)
    await service.post_json(
        f"/api/v1/sessions/{called_off['id']}/publish", {"published": False}, auth=STAFF
    )

    status, headers, raw = await fetch(service, "/feeds/recordings.atom")
    assert status == 200 and headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    feed = ET.fromstring(raw)
    assert feed.tag == f"{ATOM}feed"
    entries = feed.findall(f"{ATOM}entry")
    assert [e.findtext(f"{ATOM}title") for e in entries] == [title]
    links = {link.get("rel"): link for link in entries[0].findall(f"{ATOM}link")}
    assert links["alternate"].get("href") == f"{service.base}/sessions/{ended['id']}"
    enclosure = links["enclosure"]
    assert enclosure.get("href") == f"{service.base}/sessions/{ended['id']}/index.m3u8"
    assert enclosure.get("type") == "application/vnd.apple.mpegurl"
    assert datetime.fromisoformat(entries[0].findtext(f"{ATOM}updated") or "").tzinfo

    status, headers, raw = await fetch(service, "/feeds/recordings.rss")
    assert status == 200 and headers["Content-Type"] == "application/rss+xml; charset=utf-8"
    rss = ET.fromstring(raw)
    items = rss.findall("channel/item")
    assert [i.findtext("title") for i in items] == [title]
    assert items[0].findtext("link") == f"{service.base}/sessions/{ended['id']}"
    enc = items[0].find("enclosure")
    assert enc is not None and enc.get("url", "").endswith(f"/sessions/{ended['id']}/index.m3u8")
    assert items[0].findtext("pubDate", "").endswith("GMT")

    status, headers, raw = await fetch(service, "/feeds/sessions.ics")
    assert status == 200 and headers["Content-Type"] == "text/calendar; charset=utf-8"
    text = raw.decode("utf-8")
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    physical = text.split("\r\n")[:-1]
    assert all(len(line.encode("utf-8")) <= 75 for line in physical)
    assert any(line.startswith(" ") for line in physical)  # the long title was folded
    unfolded = text.replace("\r\n ", "").split("\r\n")[:-1]
    assert unfolded[0] == "BEGIN:VCALENDAR" and unfolded[-1] == "END:VCALENDAR"
    events: list[dict[str, str]] = []
    for line in unfolded:
        if line == "BEGIN:VEVENT":
            events.append({})
        elif events and ":" in line and line != "END:VEVENT":
            key, value = line.split(":", 1)
            events[-1][key] = value
    by_url = {e["URL"]: e for e in events if "URL" in e}
    planned = by_url[f"{service.base}/sessions/{scheduled['id']}"]
    assert planned["SUMMARY"] == long_title.strip().replace(",", "\\,")
    assert planned["LOCATION"] == "Sala obrad"
    assert re.fullmatch(r"\d{8}T\d{6}Z", planned["DTSTART"])
    assert re.fullmatch(r"\d{8}T\d{6}Z", planned["DTEND"])
    assert re.fullmatch(r"\d{8}T\d{6}Z", planned["DTSTAMP"])
    start = datetime.strptime(planned["DTSTART"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert start == datetime.fromisoformat(scheduled["scheduled_start"]).replace(microsecond=0)
    assert len({e["UID"] for e in events}) == len(events) == 4
    done = by_url[f"{service.base}/sessions/{ended['id']}"]
    assert done["SUMMARY"] == 'Sesja nadzwyczajna\\, budżet & <inwestycje> "2027"\\; część 1'
    assert planned["STATUS"] == "TENTATIVE" and done["STATUS"] == "CONFIRMED"
    # Withdrawn: no link to a page that answers 410. One still to come is CANCELLED under the
    # UID it was published with; one that took place stays as it was.
    by_uid = {e["UID"].split("@")[0]: e for e in events}
    off = by_uid[f"session-{called_off['id']}"]
    assert off["STATUS"] == "CANCELLED" and "URL" not in off, off
    took_place = by_uid[f"session-{withdrawn['id']}"]
    assert took_place["STATUS"] == "CONFIRMED" and "URL" not in took_place, took_place
    assert (await fetch(service, f"/sessions/{called_off['id']}"))[0] == 410

    home = await service.get_text("/")
    assert '<link rel="alternate" type="application/atom+xml"' in home
    upcoming = home.split('id="h-next"')[1].split('id="h-recent"')[0]
    assert f'href="/sessions/{scheduled["id"]}"' in upcoming
    assert f'href="/sessions/{called_off["id"]}"' not in upcoming
    assert 'type="application/rss+xml"' in home and 'type="text/calendar"' in home


async def test_embeds_and_oembed(service: Service) -> None:
    session = await service.begin(title="LX Sesja & budżet")
    sid = session["id"]
    await service.post_json(f"/api/v1/sessions/{sid}/stop")

    status, headers, raw = await fetch(service, f"/embed/sessions/{sid}?t=90")
    html = raw.decode()
    assert status == 200 and "X-Frame-Options" not in headers
    assert re.search(rf'<video id="player"[^>]* data-src="/sessions/{sid}/index.m3u8"', html)
    assert '<script src="/static/hls.min.js" defer>' in html
    assert '<script src="/static/player.js" defer>' in html
    assert f'href="/sessions/{sid}?t=90"' in html and "LX Sesja &amp; budżet" in html
    live = await fetch(service, "/embed/live/sala")
    assert live[0] == 200 and "X-Frame-Options" not in live[1]
    assert 'data-src="/live/sala/index.m3u8" data-live="1"' in live[2].decode()
    # A session still to come: no player (its playlist would answer 404), but when and where.
    coming = await schedule(service, "LXI Sesja zapowiedziana")
    at = datetime.fromisoformat(coming["scheduled_start"]).astimezone(ZoneInfo("Europe/Warsaw"))
    status, _, raw = await fetch(service, f"/embed/sessions/{coming['id']}?lang=en")
    html = raw.decode()
    assert status == 200 and "<video" not in html and "index.m3u8" not in html, html
    assert f"The session is scheduled for {at:%d.%m.%Y %H:%M};" in html
    assert '<a href="/live/sala" target="_blank" rel="noopener">Watch live: Sala obrad</a>' in html

    page_url = f"{service.base}/sessions/{sid}"
    session_page = await service.get_text(f"/sessions/{sid}")
    discovery = f"/oembed?url={quote(page_url, safe='')}&amp;format=json"
    assert (
        f'<link rel="alternate" type="application/json+oembed" href="{discovery}"' in session_page
    )
    answer = await service.get_json(discovery.replace("&amp;", "&"))
    assert answer["version"] == "1.0" and answer["type"] == "video"
    assert answer["provider_name"] == "obrady" and answer["title"] == "LX Sesja & budżet"
    assert (answer["width"], answer["height"]) == (640, 360)
    src = re.search(r'<iframe src="([^"]+)"', answer["html"])
    assert src and src[1] == f"{service.base}/embed/sessions/{sid}"
    small = await service.get_json(
        f"/oembed?url={quote(page_url + '?t=30')}&maxwidth=400&maxheight=300"
    )
    assert (small["width"], small["height"]) == (400, 225)
    assert f'src="{service.base}/embed/sessions/{sid}?t=30"' in small["html"]
    flat = await service.get_json(f"/oembed?url={quote(page_url)}&maxheight=90")
    assert (flat["width"], flat["height"]) == (160, 90)
    live_answer = await service.get_json(f"/oembed?url={quote(service.base + '/live/sala')}")
    assert f'src="{service.base}/embed/live/sala"' in live_answer["html"]

    # Withdrawn: the embed is gone as the page is, and there is nothing to embed.
    await service.post_json(f"/api/v1/sessions/{sid}/publish", {"published": False}, auth=STAFF)
    status, headers, _ = await fetch(service, f"/embed/sessions/{sid}")
    assert status == 410 and headers["Cache-Control"] == "no-store"
    staff = await fetch(service, f"/embed/sessions/{sid}", auth=STAFF)
    assert staff[0] == 200 and staff[1]["Cache-Control"] == "private, no-store"
    assert (await fetch(service, f"/oembed?url={quote(page_url)}"))[0] == 404


async def test_without_a_public_url_no_address_comes_from_the_host_header(
    make_settings: Callable[..., Settings],
) -> None:
    """Anyone can send any Host header, and a shared cache hands the answer on to everyone:
    without live.public_url, addresses stay relative to the site, and oEmbed (absolute
    addresses only) is off."""
    service = await start_service(make_settings())
    forged = {"Host": "evil.example", "X-Forwarded-Proto": "https"}
    try:
        session = await service.begin(title="Sesja bez adresu")
        sid = session["id"]
        await service.post_json(f"/api/v1/sessions/{sid}/stop")
        bodies = {}
        for path in ("/feeds/recordings.atom", "/feeds/recordings.rss", "/feeds/sessions.ics",
                     f"/sessions/{sid}", f"/embed/sessions/{sid}"):  # fmt: skip
            async with service.http.get(service.base + path, headers=forged) as resp:
                assert resp.status == 200, path
                bodies[path] = await resp.text()
                assert "evil.example" not in bodies[path], path
        atom = ET.fromstring(bodies["/feeds/recordings.atom"].encode())
        links = {link.get("rel"): link.get("href") for link in atom.iter(f"{ATOM}link")}
        assert links["alternate"] == f"/sessions/{sid}"
        assert links["enclosure"] == f"/sessions/{sid}/index.m3u8"
        rss = ET.fromstring(bodies["/feeds/recordings.rss"].encode())
        assert rss.findtext("channel/item/link") == f"/sessions/{sid}"
        assert f"URL:/sessions/{sid}\r\n" in bodies["/feeds/sessions.ics"]
        page = bodies[f"/sessions/{sid}"]
        assert "application/json+oembed" not in page
        # The page's script completes these from the browser's own address.
        assert f'data-base="/sessions/{sid}"' in page
        assert f"&lt;iframe src=&#34;/embed/sessions/{sid}&#34;" in page
        target = quote(f"http://evil.example/sessions/{sid}", safe="")
        async with service.http.get(f"{service.base}/oembed?url={target}", headers=forged) as r:
            assert r.status == 404 and "live.public_url" in (await r.json())["error"]
    finally:
        await stop_service(service)


async def test_bad_input_gets_a_clear_4xx(service: Service) -> None:
    session = await service.begin(start=False, title="Sesja")
    sid = session["id"]
    page_url = quote(f"{service.base}/sessions/{sid}", safe="")
    cases = [
        ("/sessions/999999/votes.csv", 404),
        ("/sessions/999999/votes.json", 404),
        ("/sessions/999999/votes", 404),
        ("/sessions/abc/votes.csv", 404),
        ("/sessions/99999999999999999999/votes.json", 404),
        ("/embed/sessions/999999", 404),
        ("/embed/sessions/abc", 404),
        (f"/embed/sessions/{sid}?t=abc", 400),
        (f"/embed/sessions/{sid}?t=-5", 400),
        ("/embed/live/nowhere", 404),
        ("/oembed", 400),
        (f"/oembed?url={page_url}&format=xml", 501),
        (f"/oembed?url={page_url}&maxwidth=abc", 400),
        (f"/oembed?url={page_url}&maxwidth=0", 400),
        (f"/oembed?url={page_url}&maxheight=-1", 400),
        (f"/oembed?url={quote('https://example.com/sessions/1')}", 404),
        (f"/oembed?url={quote(service.base + '/sessions/999999')}", 404),
        (f"/oembed?url={quote(service.base + '/sessions/abc')}", 404),
        (f"/oembed?url={quote(service.base + '/live/nowhere')}", 404),
        (f"/oembed?url={quote(service.base + '/console')}", 404),
        ("/oembed?url=not%20a%20url", 404),
        ("/oembed?url=http://[::1", 404),
    ]
    for path, expected in cases:
        async with service.http.get(service.base + path) as resp:
            body = await resp.text()
            assert resp.status == expected, (path, resp.status, body)
            assert resp.content_type == "application/json", (path, body)
            assert json.loads(body)["error"], path
    doc = await service.get_json("/api/v1/openapi.json")
    assert {"/sessions/{id}/votes.json", "/oembed"} <= set(doc["paths"])
    # An empty session still has (empty) vote lists.
    empty = await service.get_json(f"/sessions/{sid}/votes.json")
    assert empty["votes"] == []
    assert "W tym posiedzeniu nie było głosowań." in await service.get_text(
        f"/sessions/{sid}/votes"
    )
    status, _, raw = await fetch(service, f"/sessions/{sid}/votes.csv")
    assert status == 200 and len(raw.decode("utf-8-sig").splitlines()) == 1


def test_ics_lines_fold_at_75_octets_without_splitting_a_letter() -> None:
    line = "SUMMARY:" + "ż" * 100
    folded = ics_fold(line)
    parts = folded.split("\r\n")
    assert all(len(p.encode("utf-8")) <= 75 for p in parts)
    assert all(p.startswith(" ") for p in parts[1:])
    assert "".join(p[1:] if i else p for i, p in enumerate(parts)) == line
    assert ics_fold("SHORT:x") == "SHORT:x"


def test_embed_size_keeps_16_by_9_within_the_limits() -> None:
    assert embed_size(None, None) == (640, 360)
    assert embed_size(1000, None) == (640, 360)
    assert embed_size(320, None) == (320, 180)
    assert embed_size(None, 180) == (320, 180)
    assert embed_size(1, 1) == (1, 1)


def test_the_gateway_app_serves_the_publication_routes(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_gateway_app(make_settings())
    paths = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    assert {"/feeds/recordings.atom", "/sessions/{id}/votes.csv", "/oembed"} <= paths
    # The session page names its captions: the public side serves them (not the editing API).
    assert {"/sessions/{id}/captions.vtt", "/sessions/{id}/transcript.txt"} <= paths
    assert "/api/v1/sessions/{id}/transcript/lines/{line_id}" not in paths
