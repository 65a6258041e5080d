"""The console's run view, in Chromium, shows each agenda item's number once, as the agenda
pasted from a BIP page with its numbers doubled by the page's HTML list is read."""

from __future__ import annotations

from browser import chromium, shown, sign_in
from conftest import OPERATOR, Service
from playwright.async_api import expect

# Copied from a BIP page: its <ol> renders each number in front of the notice's own.
AGENDA = """Porządek obrad:
1. 1. Otwarcie sesji.
2. 2. Stwierdzenie quorum.
3. 3. Podjęcie uchwał w sprawie:
a) a) zmiany budżetu miasta na 2024 rok;
b) b) nadania nazwy rondu położonemu u zbiegu ulic Słowackiego i Wojska Polskiego.
4. 4. Zamknięcie sesji.
"""

SHOWN = [
    "1. Otwarcie sesji",
    "2. Stwierdzenie quorum",
    "3. Podjęcie uchwał w sprawie",
    "3.1. zmiany budżetu miasta na 2024 rok",
    "3.2. nadania nazwy rondu położonemu u zbiegu ulic Słowackiego i Wojska Polskiego",
    "4. Zamknięcie sesji",
]


async def test_the_run_view_shows_each_item_number_once(service: Service) -> None:
    created = await service.post_json(
        "/api/v1/sessions",
        {
            "title": "LXXXII Sesja Rady Miasta Piotrkowa Trybunalskiego",
            "scheduled_start": "2030-01-24T08:00:00+00:00",
            "scheduled_end": "2030-01-24T12:00:00+00:00",
            "agenda_text": AGENDA,
        },
        status=201,
    )
    sid = created["id"]
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await sign_in(page, service.base, *OPERATOR)
        await page.goto(f"{service.base}/console#run/{sid}")
        await expect(page.locator("#run-agenda li")).to_have_count(6)

        assert await shown(page, "#run-agenda li") == SHOWN

        # The preview of a pasted agenda, before a session is saved, shows them once too.
        await page.get_by_role("link", name="Posiedzenia").click()
        await page.locator("#s-agenda").fill(AGENDA)
        await page.locator("#preview-agenda").click()
        await expect(page.locator("#agenda-preview li")).to_have_count(6)
        assert await shown(page, "#agenda-preview li") == SHOWN
        assert errors == []
