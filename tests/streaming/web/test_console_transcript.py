"""Live captions on the residents' live page and their delay in the console, while a session
runs; and the console's transcript view in Chromium: staff correct a line beside the video and the
change is kept with who made it (after a reload, and after a re-run); a line's time moves the
player; recognition's progress and estimated finish are shown, in the sessions list too, and
refreshed while it runs; a missing model is said plainly; axe-core finds no WCAG 2.1 A/AA
violation in either view.

The service, speaking chamber and recognition are set up as in test_captions.py, with the
helpers of tests/speech.py."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from browser import chromium, run_axe, sign_in
from conftest import (
    STAFF,
    Service,
    basic,
    config_text,
    free_port,
    start_service,
    stop_service,
    wait_for,
)
from playwright.async_api import Browser, Page, expect
from speech import record_spoken_session, start_speaking_service, transcribed

from config.settings import parse_settings
from streaming.keys import ARCHIVE

# Recording and recognising the speech takes a while on a busy two-core machine.
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(360)]

ROOT = Path(__file__).resolve().parents[3]
TITLE = "LXIV Sesja Rady Miasta"
# Makes the page's fetch() say, while window.__running is set, that the session's recognition
# is running: 42 %, to finish at `finish`. window.__asked counts the transcript's refreshes.
RUNNING = """({sid, finish}) => {
    window.__running = true;
    window.__asked = 0;
    const real = window.fetch.bind(window);
    const running = p => ({...p, state: 'running', fraction: 0.42, estimated_finish: finish});
    window.fetch = async (url, options) => {
        const response = await real(url, options);
        const faking = window.__running;
        const path = new URL(url, location.href).pathname;
        const transcript = path === `/api/v1/sessions/${sid}/transcript`;
        if (transcript) window.__asked += 1;
        let body;
        if (faking && transcript) {
            body = await response.json();
            body.progress = running(body.progress);
        } else if (faking && path === '/api/v1/transcription') {
            body = await response.json();
            body.sessions = body.sessions.map(p => p.session_id === sid ? running(p) : p);
        } else {
            return response;
        }
        const headers = response.headers;
        return new Response(JSON.stringify(body), {status: response.status, headers});
    };
}"""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    """One Chromium for the whole file."""
    async with chromium() as launched:
        yield launched


# What a resident's live page showed while the session ran (see watch_live_page).
LIVE_PAGE: dict[str, Any] = {}


async def watch_live_page(browser: Browser, base: str, sid: int) -> None:
    """Open the live page as a resident and wait (bounded) for its live captions of the
    speech, and the console's sessions list as staff; keep what they showed in LIVE_PAGE."""
    staff, staff_errors = await staff_page(browser, base)
    try:
        await staff.goto(f"{base}/console#sessions")
        cell = staff.locator(f'td.transcription[data-session="{sid}"]')
        await expect(cell).to_contain_text("napisy na żywo: opóźnienie", timeout=60_000)
        LIVE_PAGE["console"] = await cell.text_content()
        LIVE_PAGE["console_errors"] = staff_errors
    finally:
        await staff.close()
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        await page.goto(f"{base}/live")
        box = page.locator("#live-captions")
        await page.wait_for_function(
            """() => {
                const box = document.getElementById('live-captions');
                return !box.hidden && /uchwał/i.test(box.textContent);
            }""",
            timeout=90_000,
        )
        LIVE_PAGE["label"] = await box.locator("h2").text_content()
        LIVE_PAGE["lines"] = await box.locator(".caption-lines").inner_text()
        # Beside a playing picture (which may start after the first captions arrive).
        await page.wait_for_function(
            "document.getElementById('player').currentTime > 0", timeout=30_000
        )
        LIVE_PAGE["played"] = await page.evaluate("document.getElementById('player').currentTime")
        LIVE_PAGE["axe"] = await run_axe(page)
        LIVE_PAGE["errors"] = errors
    finally:
        await page.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def spoken(
    tmp_path_factory: pytest.TempPathFactory, browser: Browser
) -> AsyncIterator[tuple[Service, dict[str, Any]]]:
    """A service with the model, and one ended session of about 10 s of Polish speech (more:
    it runs until the live page showed captions), its recognition done."""
    service = await start_speaking_service(tmp_path_factory.mktemp("console-transcript"))
    try:
        stopped = await record_spoken_session(
            service, TITLE, 10, lambda sid: watch_live_page(browser, service.base, sid)
        )
        transcript = await transcribed(service, stopped["id"])
        assert transcript["lines"], transcript
        yield service, stopped
    finally:
        await stop_service(service)


async def test_the_live_page_shows_automatic_captions(
    spoken: tuple[Service, dict[str, Any]],
) -> None:
    assert LIVE_PAGE["label"].startswith("Napisy na żywo – automatyczne"), LIVE_PAGE
    assert "uchwał" in LIVE_PAGE["lines"].lower() and len(LIVE_PAGE["lines"].splitlines()) <= 2
    # Shown beside a playing picture, not instead of it.
    assert LIVE_PAGE["played"] > 0, LIVE_PAGE
    assert LIVE_PAGE["axe"] == [] and LIVE_PAGE["errors"] == [], LIVE_PAGE
    # Staff see in the console how far behind live captions are.
    assert re.fullmatch(r"napisy na żywo: opóźnienie \d+ s", LIVE_PAGE["console"]), LIVE_PAGE
    assert LIVE_PAGE["console_errors"] == [], LIVE_PAGE


async def staff_page(browser: Browser, base: str) -> tuple[Page, list[str]]:
    """A page signed in as staff, and the script errors it meets."""
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await sign_in(page, base, *STAFF)
    return page, errors


async def staff_transcript(service: Service, sid: int) -> dict[str, Any]:
    async with service.http.get(
        f"{service.base}/api/v1/sessions/{sid}/transcript", headers=basic(STAFF)
    ) as resp:
        body: dict[str, Any] = await resp.json()
        assert resp.status == 200, body
        return body


async def test_staff_correct_a_line_beside_the_video(
    spoken: tuple[Service, dict[str, Any]], browser: Browser
) -> None:
    service, session = spoken
    sid = session["id"]
    lines = (await staff_transcript(service, sid))["lines"]
    page, errors = await staff_page(browser, service.base)

    # The sessions list: the ended session's recognition is done, and its transcript a link.
    await page.goto(f"{service.base}/console#sessions")
    await expect(page.locator(f'td.transcription[data-session="{sid}"]')).to_have_text("gotowe")
    assert await run_axe(page) == []
    await page.get_by_role("link", name=f"Transkrypcja: {TITLE}").click()
    await expect(page).to_have_url(re.compile(rf"#transcript/{sid}$"))
    await expect(page.locator("#transcript-head h2")).to_have_text(f"Transkrypcja: {TITLE}")
    await expect(page.locator("#transcript-progress")).to_have_text("Transkrypcja: gotowe")
    await expect(page.locator("#transcript-lines > li")).to_have_count(len(lines))
    assert await run_axe(page) == []

    # A line's time moves the player there (and plays it; the line is marked while it does).
    await page.wait_for_function(
        "document.getElementById('transcript-player').readyState >= 1", timeout=30_000
    )
    line = lines[-1]
    start = line["start_seconds"]
    await page.locator(f"#tp-{line['id']}").click()
    await page.wait_for_function(
        """start => {
            const v = document.getElementById('transcript-player');
            return v.currentTime >= start - 0.1 && v.currentTime < start + 3;
        }""",
        arg=start,
        timeout=10_000,
    )
    await expect(page.locator(f'li[data-line="{line["id"]}"]')).to_have_class(
        re.compile(r"\bplaying\b"), timeout=10_000
    )
    await page.evaluate("document.getElementById('transcript-player').pause()")

    # Correct the line and save it with the button.
    first = "Przewodnicząca: podjęcie uchwały w sprawie zmiany budżetu miasta."
    item = page.locator(f'li[data-line="{line["id"]}"]')
    await item.get_by_label(re.compile(r"^Tekst wiersza \d")).fill(first)
    await page.locator(f"#ts-{line['id']}").click()
    await expect(page.locator("#messages")).to_have_text("Zapisano.")
    await expect(item).to_contain_text("poprawione przez clerk")
    if line["text"] != first:
        await expect(item.locator(".automatic-note")).to_contain_text(line["text"])

    # And again from the keyboard alone: Tab from the field reaches its Save button.
    second = "Przewodnicząca: podjęcie uchwały w sprawie zmiany budżetu miasta na 2027 rok."
    field = page.locator(f"#tl-{line['id']}")
    await field.fill(second)
    await page.evaluate("document.getElementById('messages').textContent = ''")
    await field.press("Tab")
    await expect(page.locator(f"#ts-{line['id']}")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.locator("#messages")).to_have_text("Zapisano.")

    # Kept: after a reload, and in the API with who made it.
    await page.reload()
    await expect(page.locator(f"#tl-{line['id']}")).to_have_value(second)
    await expect(page.locator(f'li[data-line="{line["id"]}"]')).to_contain_text(
        "poprawione przez clerk"
    )
    kept = next(x for x in (await staff_transcript(service, sid))["lines"] if x["id"] == line["id"])
    assert kept["text"] == second and kept["corrected"] is True, kept
    assert kept["corrected_by"] == STAFF[0] and kept["automatic_text"] == line["text"], kept
    assert kept["corrected_at"], kept
    assert await run_axe(page) == []
    assert errors == [], errors
    await page.close()


async def test_progress_is_shown_and_a_re_run_keeps_the_correction(
    spoken: tuple[Service, dict[str, Any]], browser: Browser
) -> None:
    service, session = spoken
    sid = session["id"]
    before = await staff_transcript(service, sid)
    line = before["lines"][0]
    corrected = "Radna Anna Nowak: podjęcie uchwały w sprawie zmiany budżetu miasta."
    async with service.http.patch(
        f"{service.base}/api/v1/sessions/{sid}/transcript/lines/{line['id']}",
        json={"text": corrected},
        headers=basic(STAFF),
    ) as resp:
        assert resp.status == 200, await resp.text()
    page, errors = await staff_page(browser, service.base)

    # While recognition runs (made to seem so here: the real one is over in seconds), the
    # state, percent and estimated finish are shown, and refreshed every 2 s. (The page's own
    # fetch() alters the answers while window.__running is set.)
    finish = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
    await page.evaluate(RUNNING, {"sid": sid, "finish": finish})
    await page.goto(f"{service.base}/console#sessions")
    cell = page.locator(f'td.transcription[data-session="{sid}"]')
    await expect(cell).to_contain_text("rozpoznawanie w toku, 42 %, przewidywany koniec")
    await page.goto(f"{service.base}/console#transcript/{sid}")
    status = page.locator("#transcript-progress")
    await expect(status).to_contain_text("rozpoznawanie w toku, 42 %, przewidywany koniec")
    await expect(page.locator("#transcript-bar")).to_have_js_property("value", 42)
    await expect(page.locator("#transcript-run")).to_be_disabled()
    seen = await page.evaluate("window.__asked")
    await page.wait_for_function("seen => window.__asked >= seen + 2", arg=seen, timeout=15_000)
    # Recognition over: the next refresh shows it, and the refreshing stops.
    await page.evaluate("window.__running = false")
    await expect(status).to_have_text("Transkrypcja: gotowe", timeout=10_000)
    await expect(page.locator("#transcript-bar")).to_be_hidden()
    seen = await page.evaluate("window.__asked")
    await asyncio.sleep(4.5)
    assert await page.evaluate("window.__asked") == seen
    await expect(page.locator(f"#tl-{line['id']}")).to_have_value(corrected)

    # A re-run from the view: queued at once, recognised again, the correction kept.
    await page.evaluate(
        """() => {
            const status = document.getElementById('transcript-progress');
            window.__shown = [];
            new MutationObserver(() => window.__shown.push(status.textContent))
                .observe(status, {childList: true, characterData: true, subtree: true});
        }"""
    )
    await page.locator("#transcript-run").click()
    await expect(page.locator("#messages")).to_have_text("Zlecono ponowne rozpoznanie.")
    after = await transcribed(service, sid, after=before["progress"]["finished_at"])
    await expect(status).to_have_text("Transkrypcja: gotowe", timeout=15_000)
    shown = await page.evaluate("window.__shown")
    assert any("w kolejce" in s for s in shown), shown
    await expect(page.locator(f"#tl-{line['id']}")).to_have_value(corrected)
    await expect(page.locator(f'li[data-line="{line["id"]}"]')).to_contain_text(
        "poprawione przez clerk"
    )
    kept = next(x for x in after["lines"] if x["id"] == line["id"])
    assert kept["text"] == corrected and kept["corrected_by"] == STAFF[0], kept
    assert errors == [], errors
    await page.close()


async def test_staff_set_a_lines_times_and_add_a_missed_line(
    spoken: tuple[Service, dict[str, Any]], browser: Browser
) -> None:
    service, session = spoken
    sid = session["id"]
    duration = session["recording"]["duration_seconds"]
    line = (await staff_transcript(service, sid))["lines"][0]
    page, errors = await staff_page(browser, service.base)
    await page.goto(f"{service.base}/console#transcript/{sid}")
    item = page.locator(f'li[data-line="{line["id"]}"]')
    await expect(item).to_be_visible()

    # The line's times, in its "Czas" part: typed, and kept with the text by Save.
    start = round(line["start_seconds"] + 0.2, 1)
    end = round(min(line["end_seconds"], duration) - 0.1, 1)
    assert end > start, line
    await item.locator("summary").click()
    await item.get_by_label("Początek (s)").fill(str(start))
    await item.get_by_label("Koniec (s)").fill(str(end))
    await page.evaluate("document.getElementById('messages').textContent = ''")
    await page.locator(f"#ts-{line['id']}").click()
    await expect(page.locator("#messages")).to_have_text("Zapisano.")
    kept = next(x for x in (await staff_transcript(service, sid))["lines"] if x["id"] == line["id"])
    assert (kept["start_seconds"], kept["end_seconds"]) == (start, end), kept
    assert kept["corrected"] is True and kept["text"] == line["text"], kept

    # A time past the recording's end is refused with what to fix; nothing changes. (Saved,
    # the line was drawn again with its times folded.)
    await item.locator("summary").click()
    await item.get_by_label("Koniec (s)").fill(str(round(duration + 60, 1)))
    await page.locator(f"#ts-{line['id']}").click()
    await expect(page.locator("#messages")).to_contain_text("within the recording")
    again = next(
        x for x in (await staff_transcript(service, sid))["lines"] if x["id"] == line["id"]
    )
    assert (again["start_seconds"], again["end_seconds"]) == (start, end), again

    # A line recognition missed, added at the end of the recording.
    await page.locator("#add-start").fill(str(round(duration - 1.0, 1)))
    await page.locator("#add-end").fill(str(round(duration - 0.2, 1)))
    await page.locator("#add-text").fill("Dziękuję, zamykam posiedzenie.")
    await page.locator("#add-submit").click()
    await expect(page.locator("#messages")).to_have_text("Dodano wiersz.")
    lines = (await staff_transcript(service, sid))["lines"]
    found = [x for x in lines if x["text"] == "Dziękuję, zamykam posiedzenie."]
    assert found and found[0]["corrected_by"] == STAFF[0], lines
    await expect(page.locator(f"#tl-{found[0]['id']}")).to_have_value(found[0]["text"])
    added = page.locator(f'li[data-line="{found[0]["id"]}"]')
    await expect(added).to_contain_text("poprawione przez clerk")
    async with service.http.get(
        f"{service.base}/api/v1/audit?session_id={sid}", headers=basic(STAFF)
    ) as resp:
        entries = (await resp.json())["entries"]
    assert any(e["action"] == "transcript.add" for e in entries), entries
    # An empty line cannot be added: said, and nothing added.
    await page.locator("#add-text").fill("   ")
    await page.locator("#add-submit").click()
    await expect(page.locator("#messages")).to_contain_text("write what was said")
    assert len((await staff_transcript(service, sid))["lines"]) == len(lines)
    assert await run_axe(page) == []
    assert errors == [], errors
    await page.close()


async def test_a_long_transcript_is_shown_a_page_at_a_time(
    spoken: tuple[Service, dict[str, Any]], browser: Browser
) -> None:
    service, _ = spoken
    created = await service.begin(start=False, title="Sesja z długą transkrypcją")
    sid = created["id"]
    archive = service.app[ARCHIVE]
    for number in range(450):
        await archive.call(
            archive.index.add_line,
            sid,
            number * 2.0,
            number * 2.0 + 1.5,
            f"Wiersz {number + 1}.",
            "clerk",
        )
    page, errors = await staff_page(browser, service.base)
    await page.goto(f"{service.base}/console#transcript/{sid}")
    items = page.locator("#transcript-lines > li")
    info = page.locator("#transcript-page")
    await expect(info).to_have_text("Wiersze 1–200 z 450")
    await expect(items).to_have_count(200)
    await expect(page.locator("#transcript-previous")).to_be_disabled()
    await page.locator("#transcript-next").click()
    await expect(info).to_have_text("Wiersze 201–400 z 450")
    await expect(items.first.locator("textarea")).to_have_value("Wiersz 201.")
    await page.locator("#transcript-next").click()
    await expect(info).to_have_text("Wiersze 401–450 z 450")
    await expect(items).to_have_count(50)
    await expect(page.locator("#transcript-next")).to_be_disabled()
    assert await run_axe(page) == []
    assert errors == [], errors
    await page.close()


async def test_a_missing_model_is_said_plainly(browser: Browser, tmp_path: Path) -> None:
    missing = tmp_path / "no-model-here"
    text = config_text(tmp_path / "data", free_port()).replace(
        "[monitoring]", f'[transcription]\nmodel_dir = "{missing}"\n\n[monitoring]'
    )
    service = await start_service(parse_settings(text))
    try:

        async def reported() -> bool:
            status = await service.status()
            return bool(status["transcription"]["state"] == "unavailable")

        await wait_for(reported, 20, "the missing model reported")
        created = await service.begin(start=False, title="Sesja bez napisów")
        sid = created["id"]
        page, errors = await staff_page(browser, service.base)
        await page.goto(f"{service.base}/console#sessions")
        note = page.locator("#model-state")
        await expect(note).to_contain_text("Rozpoznawanie mowy niedostępne:")
        await expect(note).to_contain_text(str(missing))
        assert await run_axe(page) == []

        await page.goto(f"{service.base}/console#transcript/{sid}")
        note = page.locator("#transcript-model-state")
        await expect(note).to_contain_text("Rozpoznawanie mowy niedostępne:")
        await expect(note).to_contain_text(str(missing))
        await expect(page.locator("#transcript-progress")).to_have_text(
            "Transkrypcja: jeszcze nie rozpoznano"
        )
        await expect(page.locator("#transcript-run")).to_be_disabled()
        await expect(page.locator("#transcript-empty")).to_be_visible()
        assert await run_axe(page) == []
        assert errors == [], errors
        await page.close()
    finally:
        await stop_service(service)
