"""The public pages in Chromium: chapters move the player, ?t= starts it, the votes shown are the
votes recorded, bad addresses get 400/404 pages, English on request, and axe-core finds no
WCAG 2.1 A/AA violation on any of them."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from browser import chromium, run_axe, sign_in
from conftest import ADMIN, Service, config_text, free_port, start_service, stop_service, wait_for
from playwright.async_api import Browser, Page, expect

from config.settings import parse_settings
from streaming.keys import ARCHIVE

pytestmark = pytest.mark.asyncio(loop_scope="module")

AGENDA = """Porządek obrad:
1. Otwarcie sesji.
2. Podjęcie uchwały w sprawie zmiany budżetu miasta na 2027 rok.
3. Wolne wnioski.
"""
COUNCIL = [
    {"name": "Anna Nowak", "caucus": "KO"},
    {"name": "Jan Wiśniewski", "caucus": "PiS"},
    {"name": "Łukasz Żółtowski", "caucus": ""},
]
CHOICES = {"Anna Nowak": "for", "Jan Wiśniewski": "against", "Łukasz Żółtowski": "abstain"}
POLISH = {"for": "za", "against": "przeciw", "abstain": "wstrzymał się", "absent": "nie głosował"}
SUBJECT = "Uchwała nr LXI/812/26 w sprawie zmiany budżetu <2027> & co"


async def recorded_until(service: Service, sid: int, seconds: float) -> None:
    """Wait until the recording is at least `seconds` long (bounded)."""

    async def long_enough() -> bool:
        detail = await service.get_json(f"/api/v1/sessions/{sid}")
        return bool(detail["recording"]["duration_seconds"] >= seconds)

    await wait_for(long_enough, 30, f"{seconds} s of recording")


async def record_session(service: Service) -> dict[str, Any]:
    """A short session: three items about 3 s apart, a break, a nominal vote, stopped."""
    added = await service.post_json("/api/v1/councillors", {"councillors": COUNCIL}, status=201)
    ids = {c["name"]: c["id"] for c in added["councillors"]}
    at = datetime.now(UTC) + timedelta(hours=1)
    created = await service.post_json(
        "/api/v1/sessions",
        {
            "title": "LXI Sesja Rady Miasta",
            "scheduled_start": at.isoformat(),
            "scheduled_end": (at + timedelta(hours=2)).isoformat(),
            "agenda_text": AGENDA,
        },
        status=201,
    )
    sid = created["id"]
    items = [item["id"] for item in created["agenda"]]
    await service.post_json(f"/api/v1/sessions/{sid}/start")
    await recorded_until(service, sid, 1)
    await service.post_json(f"/api/v1/sessions/{sid}/items/{items[0]}/start")
    await recorded_until(service, sid, 4)
    await service.post_json(f"/api/v1/sessions/{sid}/items/{items[1]}/start")
    await recorded_until(service, sid, 7)
    await service.post_json(f"/api/v1/sessions/{sid}/break", {"on": True})
    await recorded_until(service, sid, 9)
    await service.post_json(f"/api/v1/sessions/{sid}/break", {"on": False})
    choices = {str(ids[name]): choice for name, choice in CHOICES.items()}
    await service.post_json(
        f"/api/v1/sessions/{sid}/votes",
        {"subject": SUBJECT, "choices": choices, "item_id": items[1]},
        status=201,
    )
    await recorded_until(service, sid, 10)
    await service.post_json(f"/api/v1/sessions/{sid}/items/{items[2]}/start")
    await recorded_until(service, sid, 13)
    stopped: dict[str, Any] = await service.post_json(f"/api/v1/sessions/{sid}/stop")
    return stopped


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def recorded(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[Service, dict[str, Any]]]:
    """One service for the whole file, with one recorded session (recording costs ~15 s)."""
    data = tmp_path_factory.mktemp("pages") / "data"
    service = await start_service(parse_settings(config_text(data, free_port())))
    try:
        yield service, await record_session(service)
    finally:
        await stop_service(service)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    """One Chromium for the whole file."""
    async with chromium() as launched:
        yield launched


async def new_page(browser: Browser) -> Page:
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(15_000)
    return page


async def wait_for_metadata(page: Page) -> None:
    await page.wait_for_function(
        "() => document.getElementById('player').readyState >= 1", timeout=20_000
    )


async def test_a_chapter_moves_the_player_without_reloading(
    recorded: tuple[Service, dict[str, Any]], browser: Browser
) -> None:
    service, session = recorded
    sid = session["id"]
    page = await new_page(browser)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(f"{service.base}/sessions/{sid}")
    await wait_for_metadata(page)
    links = page.locator("ol.chapters a[data-t]")
    await expect(links).to_have_count(3)
    await page.evaluate("() => { window.notReloaded = true; }")
    item_starts = [m for m in session["markers"] if m["kind"] == "item_start"]
    for index in (1, 2, 0):
        link = links.nth(index)
        start = float(await link.get_attribute("data-t") or "nan")
        # The chapter's start is the item's marker in the recording.
        assert abs(start - item_starts[index]["offset_seconds"]) < 0.01, (start, item_starts)
        await link.click()
        await page.wait_for_function(
            "t => Math.abs(document.getElementById('player').currentTime - t) < 1",
            arg=start,
            timeout=10_000,
        )
        assert parse_qs(urlsplit(page.url).query)["t"] == [str(int(start))]
    assert await page.evaluate("() => window.notReloaded === true")
    # The chapter being played is marked, for the eye and for screen readers.
    await expect(page.locator("ol.chapters li[aria-current]")).to_have_count(1, timeout=10_000)
    # Every item has a clip to download; the embed code is an absolute URL.
    clips = page.locator("ol.chapters a[href$='/clip.mp4']")
    await expect(clips).to_have_count(3)
    embed = await page.locator("#embed-code").input_value()
    assert f'<iframe src="{service.base}/embed/sessions/{sid}"' in embed
    assert await page.locator("#embed-code").get_attribute("readonly") is not None
    # Under load a camera may drop a moment: the page says what the API says.
    continuity = "Nagranie kompletne." if session["recording"]["complete"] else "Przerwy w"
    await expect(page.locator("#continuity")).to_contain_text(continuity)
    track = page.locator("video#player track[kind=chapters]")
    assert await track.get_attribute("src") == f"/sessions/{sid}/chapters.vtt"
    assert errors == [], errors
    await page.close()


async def test_t_starts_the_player_there(
    recorded: tuple[Service, dict[str, Any]], browser: Browser
) -> None:
    service, session = recorded
    page = await new_page(browser)
    await page.goto(f"{service.base}/sessions/{session['id']}?t=5")
    await wait_for_metadata(page)
    await page.wait_for_function(
        "() => Math.abs(document.getElementById('player').currentTime - 5) < 1", timeout=10_000
    )
    # The link to this moment follows the player.
    await expect(page.locator("#moment")).to_have_value(
        re.compile(rf"^{re.escape(service.base)}/sessions/{session['id']}\?t=[456]$")
    )
    await page.close()


async def test_the_votes_shown_are_the_votes_recorded(
    recorded: tuple[Service, dict[str, Any]], browser: Browser
) -> None:
    service, session = recorded
    sid = session["id"]
    [vote] = session["votes"]
    page = await new_page(browser)
    await page.goto(f"{service.base}/sessions/{sid}")
    section = page.locator(f"#vote-{vote['id']}")
    await expect(section.locator("h3")).to_have_text(f"1. {SUBJECT}")
    await expect(section.locator(".totals")).to_have_text(
        "Za: 1, przeciw: 1, wstrzymało się: 1, nie głosowało: 0"
    )
    await section.locator("summary").click()
    rows = await section.locator("tbody tr").evaluate_all(
        "rows => rows.map(r => [r.querySelector('th').textContent,"
        " r.querySelectorAll('td')[0].textContent, r.querySelectorAll('td')[1].textContent])"
    )
    recorded_rows = [[c["name"], c["caucus"], POLISH[c["choice"]]] for c in vote["choices"]]
    assert rows == recorded_rows
    assert {name: choice for name, _, choice in rows} == {
        name: POLISH[c] for name, c in CHOICES.items()
    }
    # The vote's moment moves the player, and the full lists are a link away.
    moment = section.locator("a[data-t]")
    assert float(await moment.get_attribute("data-t") or "nan") == pytest.approx(
        vote["offset_seconds"], abs=0.01
    )
    await expect(page.locator(f"a[href='/sessions/{sid}/votes']")).to_have_count(1)
    await expect(page.locator(f"a[href='/sessions/{sid}/votes.csv']")).to_have_count(1)
    await expect(page.locator(f"a[href='/sessions/{sid}/recording.mp4']")).to_have_count(1)
    # The timeline lists the break and the vote in order.
    events = await page.locator("ol.events li:not(.event-gap)").all_text_contents()
    kinds = [e.split(" ", 1)[1].split(":")[0].split(" ")[0] for e in events]
    assert kinds == ["Punkt", "Punkt", "Przerwa", "Wznowienie", "Głosowanie", "Punkt"], events
    await page.close()


async def test_axe_finds_no_violations(
    recorded: tuple[Service, dict[str, Any]], browser: Browser
) -> None:
    service, session = recorded
    sid = session["id"]
    page = await new_page(browser)
    found: dict[str, list[str]] = {}
    paths = [
        "/",
        "/live/sala",
        f"/sessions/{sid}",
        "/archive",
        "/search?q=bud%C5%BCet",
        f"/sessions/{sid}/votes",
        "/login",
        f"/sessions/{sid}?t=abc",
        "/sessions/999999",
        "/?lang=en",
        f"/sessions/{sid}?lang=en",
    ]
    for path in paths:
        await page.goto(service.base + path)
        if path.startswith("/live"):
            await expect(page.locator("#status")).to_have_attribute("data-state", "ended")
            link = page.locator("#session-link a")
            await expect(link).to_have_attribute("href", f"/sessions/{sid}")
        if path.startswith(f"/sessions/{sid}") and "t=" not in path:
            # Open every councillor list, so the tables are checked too.
            await page.evaluate(
                "() => document.querySelectorAll('details').forEach(d => d.open = true)"
            )
        problems = await run_axe(page)
        if problems:
            found[path] = problems
    assert found == {}, found
    await page.close()


async def test_a_coming_session_says_when_and_links_the_live_page(
    recorded: tuple[Service, dict[str, Any]], browser: Browser
) -> None:
    """Nothing recorded yet: no player and no source that answers 404, but when the session
    starts and a link to its chamber's live page, in Polish and in English; axe finds nothing."""
    service, _ = recorded
    coming = await service.begin(start=False, title="LXIII Sesja – zapowiedziana")
    cid = coming["id"]
    at = datetime.fromisoformat(coming["scheduled_start"]).astimezone(ZoneInfo("Europe/Warsaw"))
    when = at.strftime("%d.%m.%Y %H:%M")
    status, _, html = await status_of(service, f"/sessions/{cid}")
    assert status == 200, html[-500:]
    assert "<video" not in html and "index.m3u8" not in html and 'id="moment"' not in html
    assert f"Posiedzenie zaplanowano na {when};" in html
    assert '<a href="/live/sala">Oglądaj na żywo: Sala obrad</a>' in html
    _, _, english = await status_of(service, f"/sessions/{cid}?lang=en")
    assert '<html lang="en">' in english and "<video" not in english
    assert f"The session is scheduled for {when};" in english
    assert '<a href="/live/sala">Watch live: Sala obrad</a>' in english
    # In a browser: nothing the page asks for fails, and axe finds no violation.
    page = await new_page(browser)
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    found: dict[str, list[str]] = {}
    for path in (f"/sessions/{cid}", f"/sessions/{cid}?lang=en"):
        await page.goto(service.base + path, wait_until="networkidle")
        problems = await run_axe(page)
        if problems:
            found[path] = problems
    assert found == {} and failed == [], (found, failed)
    await page.close()


async def test_axe_finds_no_violations_in_the_console(
    recorded: tuple[Service, dict[str, Any]], browser: Browser
) -> None:
    """Every view of the console, signed in as an admin (who sees them all)."""
    service, session = recorded
    sid = session["id"]
    page = await new_page(browser)
    await sign_in(page, service.base, *ADMIN)
    found: dict[str, list[str]] = {}
    views = {
        "#sessions": "#sessions td",
        "#councillors": "#councillors td",
        f"#run/{sid}": "#run-state",
        f"#after/{sid}": "#markers li",
        "#users": "#users td",
        "#audit": "#audit td",
    }
    for view, ready in views.items():
        await page.goto(f"{service.base}/console{view}")
        await expect(page.locator(ready).first).to_be_visible()
        problems = await run_axe(page)
        if problems:
            found[view] = problems
    assert found == {}, found
    await page.close()


async def test_keyboard_skip_link_and_focus(
    recorded: tuple[Service, dict[str, Any]], browser: Browser
) -> None:
    service, session = recorded
    page = await new_page(browser)
    await page.goto(f"{service.base}/sessions/{session['id']}")
    await page.keyboard.press("Tab")
    skip = page.locator("a.skip")
    await expect(skip).to_be_focused()
    assert await skip.is_visible()
    await page.keyboard.press("Enter")
    assert urlsplit(page.url).fragment == "main"
    # Tabbing on goes through the page's content (not back to the header), to the first
    # chapter, whose focus ring shows.
    for _ in range(20):
        await page.keyboard.press("Tab")
        where = await page.evaluate(
            "() => { const a = document.activeElement; return [document.querySelector('main')"
            ".contains(a), a.tagName, getComputedStyle(a).outlineStyle]; }"
        )
        assert where[0], where
        if where[1] == "A":
            break
    assert where[1] == "A" and where[2] == "solid", where
    await page.close()


async def status_of(service: Service, path: str) -> tuple[int, str, str]:
    async with service.http.get(service.base + path) as resp:
        return resp.status, resp.content_type, await resp.text()


async def test_bad_addresses_get_a_page_saying_what_to_fix(
    recorded: tuple[Service, dict[str, Any]],
) -> None:
    service, session = recorded
    sid = session["id"]
    duration = session["recording"]["duration_seconds"]
    for path in ("/sessions/999999", "/sessions/abc", "/sessions/" + "9" * 20, "/live/kuchnia"):
        status, kind, html = await status_of(service, path)
        assert status == 404 and kind == "text/html", (path, status)
        assert 'role="alert"' in html and '<html lang="pl">' in html
    for t in (str(int(duration) + 5), "99999999", "abc", "-1", "1e3", "5s", "0x10", "%00", "nan"):
        status, kind, html = await status_of(service, f"/sessions/{sid}?t={t}")
        assert status == 400 and kind == "text/html", (t, status, html[-500:])
        assert "?t=90" in html or f"od 0 do {int(duration)}" in html, (t, html[-500:])
    status, _, html = await status_of(service, f"/sessions/{sid}?t={int(duration) + 5}")
    assert f"od 0 do {int(duration)}" in html
    status, _, html = await status_of(service, f"/sessions/{sid}?t={int(duration) + 5}&lang=en")
    assert status == 400 and f"from 0 to {int(duration)}" in html
    for t in ("0", "5", "5.5", str(int(duration))):
        assert (await status_of(service, f"/sessions/{sid}?t={t}"))[0] == 200, t
    for query in ("year=19999", "kind=party", "term=1990-1994", "year=%3Cscript%3E"):
        status, _, html = await status_of(service, "/archive?" + query)
        assert status == 400, query
        assert "<script>" not in html
    # Nothing odd gives a 500.
    for path in (
        "/sessions/0",
        f"/sessions/{sid}?t=",
        f"/sessions/{sid}?t=1&t=2",
        "/archive?year=",
        "/search?q=%22",
        "/live/%3Cb%3E",
    ):
        status, _, _ = await status_of(service, path)
        assert status < 500, (path, status)


async def test_home_archive_and_english(recorded: tuple[Service, dict[str, Any]]) -> None:
    service, session = recorded
    sid = session["id"]
    scheduled = await service.begin(start=False, title="LXII Sesja – planowana")
    _, _, home = await status_of(service, "/")
    assert '<link rel="alternate" type="application/atom+xml"' in home
    recent = home.split('id="h-recent"')[1]
    upcoming = home.split('id="h-next"')[1].split('id="h-recent"')[0]
    assert f'href="/sessions/{sid}"' in recent and f'href="/sessions/{scheduled["id"]}"' in upcoming
    assert 'href="/live/sala"' in home and 'href="/archive"' in home
    assert 'class="skip" href="#main"' in home and 'role="search"' in home
    _, _, archive = await status_of(service, "/archive?kind=session&term=2024-2029")
    assert f'href="/sessions/{sid}"' in archive and 'id="f-year"' in archive
    # Earlier terms with councillors on record can be chosen too.
    archive_store = service.app[ARCHIVE]
    await archive_store.call(archive_store.index.add_councillor, "2018-2024", "Adam Dawny", "")
    _, _, terms = await status_of(service, "/archive")
    assert '<option value="2018-2024">' in terms and '<option value="2024-2029">' in terms
    status, _, earlier = await status_of(service, "/archive?term=2018-2024")
    assert status == 200 and f'href="/sessions/{sid}"' not in earlier
    _, _, none = await status_of(service, "/archive?kind=committee")
    assert f'href="/sessions/{sid}"' not in none and "Znaleziono posiedzeń: 0." in none

    _, _, english = await status_of(service, f"/sessions/{sid}?t=5&lang=en")
    assert '<html lang="en">' in english and "Continuity of the recording" in english
    if session["recording"]["complete"]:
        assert "The recording is complete." in english
    assert "How each councillor voted" in english and "abstained" in english
    # The language switch keeps the other parameters.
    switch = re.search(r'<a href="([^"]+)" lang="pl" hreflang="pl"', english)
    assert switch and switch[1] == f"/sessions/{sid}?t=5&amp;lang=pl", switch
    _, _, archive_en = await status_of(service, "/archive?lang=en&kind=session")
    assert "Archive of sessions" in archive_en and 'name="lang" value="en"' in archive_en
    back = re.search(r'<a href="([^"]+)" lang="pl"', archive_en)
    assert back and back[1] == "/archive?kind=session&amp;lang=pl"
    _, _, live_en = await status_of(service, "/live/sala?lang=en")
    assert "Live: Sala obrad" in live_en


async def test_the_archive_is_listed_fifty_to_a_page(
    recorded: tuple[Service, dict[str, Any]],
) -> None:
    """(Last in the file: it adds scheduled sessions the other tests would see.)"""
    service, session = recorded
    first = datetime.now(UTC) + timedelta(days=30)
    for n in range(60):
        at = first + timedelta(days=n)
        await service.post_json(
            "/api/v1/sessions",
            {
                "title": f"Posiedzenie Komisji nr {n}",
                "kind": "committee",
                "scheduled_start": at.isoformat(),
                "scheduled_end": (at + timedelta(hours=2)).isoformat(),
                "agenda_text": "1. Otwarcie.\n",
            },
            status=201,
        )
    status, _, page_1 = await status_of(service, "/archive?kind=committee")
    assert status == 200 and "Znaleziono posiedzeń: 60." in page_1
    assert page_1.count('<li><a href="/sessions/') == 50 and "Strona 1 z 2" in page_1
    assert 'href="/archive?kind=committee&amp;page=2" rel="next"' in page_1
    assert 'rel="prev"' not in page_1
    _, _, page_2 = await status_of(service, "/archive?kind=committee&page=2")
    assert page_2.count('<li><a href="/sessions/') == 10 and "Strona 2 z 2" in page_2
    assert 'href="/archive?kind=committee&amp;page=1" rel="prev"' in page_2
    listed = re.findall(r'<li><a href="/sessions/(\d+)"', page_1 + page_2)
    assert len(set(listed)) == 60
    # Everything (the recorded session too) fits on two pages; no pager below 51.
    _, _, sessions_only = await status_of(service, "/archive?kind=session")
    assert f'href="/sessions/{session["id"]}"' in sessions_only and "Strona" not in sessions_only
    for raw in ("3", "0", "-1", "x", "1.5", "9" * 30):
        status, kind, html = await status_of(service, f"/archive?kind=committee&page={raw}")
        assert (status, kind) == (400, "text/html") and "od 1 do 2" in html, (raw, status)
