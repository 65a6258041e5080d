"""The console shows and reads times on the site's clock (Europe/Warsaw) whatever the zone of
the operator's browser: its session list and its session form agree, across DST changes."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from browser import chromium, sign_in
from conftest import OPERATOR, Service
from playwright.async_api import Page, expect

AGENDA = "1. Otwarcie sesji.\n2. Zamknięcie obrad.\n"


async def _schedule(service: Service, title: str, start: str, end: str) -> dict[str, Any]:
    created: dict[str, Any] = await service.post_json(
        "/api/v1/sessions",
        {"title": title, "scheduled_start": start, "scheduled_end": end, "agenda_text": AGENDA},
        status=201,
    )
    return created


async def _start_of(service: Service, sid: int) -> datetime:
    detail = await service.get_json(f"/api/v1/sessions/{sid}")
    return datetime.fromisoformat(detail["scheduled_start"]).astimezone(UTC)


async def _row_start(page: Page, title: str) -> str:
    row = page.locator("#sessions tr", has_text=title)
    await expect(row).to_have_count(1)
    return await row.locator("td").nth(1).inner_text()


async def test_the_console_uses_the_site_zone_in_a_browser_elsewhere(service: Service) -> None:
    # 17:00 UTC in January is 18:00 in Warsaw (CET) and 12:00 in New York (EST);
    # 16:00 UTC in July is 18:00 in Warsaw (CEST) and 12:00 in New York (EDT).
    winter = await _schedule(
        service, "Sesja zimowa", "2027-01-15T17:00:00+00:00", "2027-01-15T19:00:00+00:00"
    )
    summer = await _schedule(
        service, "Sesja letnia", "2027-07-01T16:00:00+00:00", "2027-07-01T18:00:00+00:00"
    )
    async with chromium() as browser:
        context = await browser.new_context(
            timezone_id="America/New_York", viewport={"width": 1280, "height": 900}
        )
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        assert await page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == (
            "America/New_York"
        )
        await sign_in(page, service.base, *OPERATOR)
        await expect(page.locator("#sessions")).to_be_visible()

        # The list shows the Warsaw time, in winter and in summer.
        assert await _row_start(page, "Sesja zimowa") == "15.01.2027, 18:00:00"
        assert await _row_start(page, "Sesja letnia") == "1.07.2027, 18:00:00"

        # The form shows the same times as the list, and saving it unchanged changes nothing.
        for session, day in ((winter, "2027-01-15"), (summer, "2027-07-01")):
            row = page.locator("#sessions tr", has_text=session["title"])
            await row.get_by_role("button", name="Edytuj").click()
            form = page.locator("#edit-session")
            await expect(form.locator("#s-start")).to_have_value(f"{day}T18:00")
            await expect(form.locator("#s-end")).to_have_value(f"{day}T20:00")
            await form.locator("#save-session").click()
            await expect(page.locator("#messages")).to_contain_text("Zapisano")
            assert await _start_of(service, session["id"]) == datetime.fromisoformat(
                session["scheduled_start"]
            )

        # A time typed into the form is read on the Warsaw clock, on the day of a DST change
        # too (28 March 2027: Warsaw goes to CEST at 02:00; New York is on EDT already).
        await page.locator("#new-session #s-title").fill("Sesja wiosenna")
        await page.locator("#new-session #s-start").fill("2027-03-28T10:00")
        await page.locator("#new-session #s-end").fill("2027-03-28T12:00")
        await page.locator("#new-session #s-agenda").fill(AGENDA)
        await page.locator("#new-session #preview-agenda").click()
        await expect(page.locator("#agenda-preview")).to_contain_text("Otwarcie sesji")
        await page.locator("#new-session #save-session").click()
        await expect(page).to_have_url(re.compile(r"#run/\d+$"))
        sid = int(page.url.rsplit("/", 1)[1])
        assert await _start_of(service, sid) == datetime(2027, 3, 28, 8, 0, tzinfo=UTC)

        # ... and the list shows it as it was typed.
        await page.goto(service.base + "/console#sessions")
        assert await _row_start(page, "Sesja wiosenna") == "28.03.2027, 10:00:00"
        assert errors == [], errors
        await context.close()
