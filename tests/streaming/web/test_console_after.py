"""After the session, in Chromium: staff correct chapters, withdraw and publish, and redact."""

from __future__ import annotations

import asyncio
import re

from browser import chromium, shown, sign_in
from conftest import STAFF, Service, basic, wait_for
from playwright.async_api import expect


async def recorded(service: Service) -> dict[str, object]:
    """A session of about eight seconds with two agenda items started, then stopped."""
    created = await service.begin(title="LXI Sesja Rady Miasta")
    sid = created["id"]

    async def segments() -> int:
        detail = await service.get_json(f"/api/v1/sessions/{sid}")
        return sum(run["segments"] for run in detail["recording"]["runs"])

    await wait_for(segments, 20, "the first segment")
    first, second = (item["id"] for item in created["agenda"])
    await service.post_json(f"/api/v1/sessions/{sid}/items/{first}/start")
    await asyncio.sleep(3)
    await service.post_json(f"/api/v1/sessions/{sid}/items/{second}/start")
    await asyncio.sleep(3)
    stopped: dict[str, object] = await service.post_json(f"/api/v1/sessions/{sid}/stop")
    return stopped


async def test_staff_correct_the_record_in_the_console(service: Service) -> None:
    stopped = await recorded(service)
    sid = stopped["id"]
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await sign_in(page, service.base, *STAFF)
        await page.goto(f"{service.base}/console#after/{sid}")
        await expect(page.locator("#after h2")).to_have_text("LXI Sesja Rady Miasta")
        await expect(page.locator("#timeline .tick-item_start")).to_have_count(2)
        # The original recording plays in the console's player (staff may see it).
        await page.wait_for_function(
            "document.getElementById('after-player').readyState >= 1", timeout=20_000
        )

        # Rename the first chapter's item.
        first = page.locator("#markers li").nth(0)
        await first.get_by_role("textbox").fill("Otwarcie sesji i stwierdzenie quorum")
        await first.get_by_role("button", name="Zmień nazwę").click()
        await expect(page.locator("#markers li").nth(0)).to_contain_text(
            "1. Otwarcie sesji i stwierdzenie quorum"
        )
        # The list draws no number of its own in front of the item's ("1. 1. Otwarcie").
        labels = await shown(page, "#markers li")
        assert labels[0].startswith("1. Otwarcie sesji i stwierdzenie quorum – "), labels
        # Merge the second chapter into the first.
        await (
            page.locator("#markers li")
            .nth(1)
            .get_by_role("button", name="Połącz z poprzednim")
            .click()
        )
        await expect(page.locator("#timeline .tick-item_start")).to_have_count(1)
        vtt = await service.get_text(f"/sessions/{sid}/chapters.vtt")
        assert "1. Otwarcie sesji i stwierdzenie quorum" in vtt and "2. " not in vtt

        # Withdraw, then publish again.
        await page.locator("#publish-toggle").click()
        await expect(page.locator("#published")).to_contain_text("Wycofane")
        await service.get_text(f"/sessions/{sid}/index.m3u8", status=410)
        await page.locator("#publish-toggle").click()
        await expect(page.locator("#published")).to_contain_text("Opublikowane")
        await service.get_text(f"/sessions/{sid}/index.m3u8", status=200)

        # Redact one second of personal data from the public copy.
        await page.locator("#r-from").fill("2")
        await page.locator("#r-to").fill("3")
        await page.locator("#r-reason").fill("Adres prywatny mieszkańca")
        await page.get_by_role("button", name="Dodaj").click()
        await expect(page.locator("#redactions")).to_contain_text("Adres prywatny mieszkańca")
        await expect(page.locator("#timeline .redacted")).to_have_count(1)
        assert errors == [], errors
        await page.close()

    async with service.http.get(
        f"{service.base}/api/v1/sessions/{sid}/redactions", headers=basic(STAFF)
    ) as resp:
        [redaction] = (await resp.json())["redactions"]
    assert (redaction["start_seconds"], redaction["end_seconds"]) == (2, 3)
    public = await service.get_text(f"/sessions/{sid}/index.m3u8")
    assert "#EXT-X-DISCONTINUITY" in public and "/redacted/" in public
    async with service.http.get(
        f"{service.base}/api/v1/audit?session_id={sid}", headers=basic(STAFF)
    ) as resp:
        log = (await resp.json())["entries"]
    ours = [e["action"] for e in reversed(log) if e["user"] == "clerk"]
    assert ours == [
        "item.rename",
        "marker.merge",
        "session.withdraw",
        "session.publish",
        "redaction.add",
    ]
    assert re.match(r"\d{4}-", log[0]["at"])
