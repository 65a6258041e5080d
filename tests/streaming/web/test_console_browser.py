"""A whole session run through the console in Chromium, watched on the residents' live page."""

from __future__ import annotations

import re

from browser import chromium, sign_in
from conftest import OPERATOR, STAFF, Service, basic
from playwright.async_api import expect

AGENDA = """Proponowany porządek obrad:
1. Otwarcie sesji i stwierdzenie prawomocności obrad.
2. Przyjęcie protokołu z poprzedniej sesji.
3. Podjęcie uchwał w sprawie:
  1) zmiany budżetu miasta na 2027 rok;
  2) nadania nazwy rondu położonemu w rejonie ulic
     Zielonej i Długiej;
4. Zamknięcie obrad.
"""

COUNCILLORS = "Anna Nowak; KO\nJan Wiśniewski; PiS\nŁukasz Żółtowski; PiS\n"


async def test_a_whole_session_through_the_console(service: Service) -> None:
    base = service.base
    async with chromium() as browser:
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("dialog", lambda dialog: dialog.accept())
        await sign_in(page, base, *OPERATOR)

        # The councillors of the term.
        await page.get_by_role("link", name="Radni").click()
        await page.locator("#c-bulk").fill(COUNCILLORS)
        await page.locator("#add-councillors-button").click()
        await expect(page.locator("#councillors")).to_contain_text("Łukasz Żółtowski")

        # A new session with its agenda pasted, previewed, then saved.
        await page.get_by_role("link", name="Posiedzenia").click()
        await page.locator("#s-title").fill("LX Sesja Rady Miasta Piotrkowa Trybunalskiego")
        await page.locator("#s-agenda").fill(AGENDA)
        await page.locator("#save-session").click()
        await expect(page.locator("#messages")).to_contain_text("podgląd")
        await page.locator("#preview-agenda").click()
        preview = page.locator("#agenda-preview")
        await expect(preview).to_contain_text("3.2. nadania nazwy rondu położonemu w rejonie")
        await expect(preview).to_contain_text("Zielonej i Długiej")
        await page.locator("#save-session").click()
        await expect(page).to_have_url(re.compile(r"#run/\d+"))
        sid = int(page.url.rsplit("/", 1)[1])
        await expect(page.locator("#run-state")).to_have_text("zaplanowane")

        # Residents watch the live page meanwhile.
        live = await context.new_page()
        await live.goto(base + "/live/sala")
        await expect(live.locator("#status")).to_contain_text("jeszcze się nie rozpoczęło")

        await page.locator("#start").click()
        await expect(page.locator("#run-state")).to_have_text("na żywo", timeout=15_000)
        await expect(live.locator("#status")).to_contain_text("Na żywo – LX Sesja")

        await page.locator("#next-item").click()
        current = page.locator("#run-agenda li.current > .item-title")
        await expect(current).to_have_text(re.compile(r"^1\. Otwarcie sesji"))
        # The keyboard: N for the next item.
        # (Take the focus off any button first: a click to do that could press one.)
        await page.evaluate("document.activeElement && document.activeElement.blur()")
        await page.keyboard.press("n")
        await expect(current).to_have_text(re.compile(r"^2\. Przyjęcie protokołu"))
        await expect(live.locator("#agenda li.current")).to_contain_text("2. Przyjęcie protokołu")
        # The live page's player plays the picture (hls.js): its time moves on by itself.
        playing = """() => {
            const v = document.getElementById('player');
            if (!v || v.paused || v.readyState < 3) return false;
            window.__t0 = window.__t0 ?? v.currentTime;
            return v.currentTime > window.__t0 + 1;
        }"""
        # (It was opened before anything was transmitted: it must have kept trying.)
        await live.wait_for_function(playing, timeout=20_000, polling=200)

        # A second operator's browser (or a reload) shows the same state.
        await page.reload()
        await expect(current).to_have_text(re.compile(r"^2\. Przyjęcie protokołu"))

        # Break on and off.
        await page.locator("#break").click()
        await expect(page.locator("#run-state")).to_have_text("przerwa")
        await expect(live.locator("#status")).to_contain_text("Przerwa w obradach")
        await page.locator("#break").click()
        await expect(page.locator("#run-state")).to_have_text("na żywo")
        await expect(live.locator("#status")).to_contain_text("Na żywo")

        # Jump to 3.1 and vote on it.
        await page.get_by_role("button", name=re.compile(r"Rozpocznij punkt: 3\.1\.")).click()
        await expect(current).to_have_text(re.compile(r"^3\.1\. zmiany budżetu"))
        await page.locator("#vote-subject").fill("Uchwała nr LX/801/26 w sprawie zmiany budżetu")
        await expect(page.locator("#vote-form tr[data-councillor]")).to_have_count(3)
        await page.locator("#all-for").click()
        row = page.locator("#vote-form tr[data-councillor]", has_text="Jan Wiśniewski")
        await row.get_by_label("przeciw").check()
        await page.locator("#save-vote").click()
        await expect(page.locator("#vote-list")).to_contain_text("za: 2, przeciw: 1")
        vote = live.locator("#votes section").first
        await expect(vote).to_contain_text("Uchwała nr LX/801/26")
        await expect(vote).to_contain_text("Za: 2, przeciw: 1, wstrzymało się: 0")
        await vote.locator("summary").click()
        await expect(vote).to_contain_text("Jan Wiśniewski (PiS): przeciw")

        await page.locator("#stop").click()
        await expect(page.locator("#run-state")).to_have_text("zakończone", timeout=15_000)
        await expect(live.locator("#status")).to_contain_text("Posiedzenie zakończone")
        assert errors == [], errors
        await context.close()

    # The archive has what running the session produced.
    detail = await service.get_json(f"/api/v1/sessions/{sid}")
    assert detail["state"] == "ended"
    kinds = [m["kind"] for m in detail["markers"]]
    assert kinds == [
        "item_start",
        "item_start",
        "break_start",
        "break_end",
        "item_start",
    ], detail["markers"]
    vtt = await service.get_text(f"/sessions/{sid}/chapters.vtt")
    titles = [line for line in vtt.splitlines() if re.match(r"^\d", line) and "-->" not in line]
    assert titles == [
        "1. Otwarcie sesji i stwierdzenie prawomocności obrad",
        "2. Przyjęcie protokołu z poprzedniej sesji",
        "3.1. zmiany budżetu miasta na 2027 rok",
    ]
    [vote_json] = detail["votes"]
    assert vote_json["totals"] == {"for": 2, "against": 1, "abstain": 0, "absent": 0}
    chapter_3_1 = next(m for m in detail["markers"] if m["item_id"] == vote_json["item_id"])
    assert chapter_3_1["offset_seconds"] <= vote_json["offset_seconds"]
    assert vote_json["offset_seconds"] <= detail["recording"]["duration_seconds"]
    async with service.http.get(
        f"{service.base}/api/v1/audit?session_id={sid}", headers=basic(STAFF)
    ) as resp:
        log = (await resp.json())["entries"]
    actions = [e["action"] for e in reversed(log)]
    assert actions == [
        "session.create",
        "session.start",
        "item.start",
        "item.start",
        "break.on",
        "break.off",
        "item.start",
        "vote.record",
        "session.stop",
    ]
    assert {e["user"] for e in log} == {"op"}
    assert all(e["address"] for e in log)
