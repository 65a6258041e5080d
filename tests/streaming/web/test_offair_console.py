"""The console's session view says what the public receives: starting, on air, an off-air
alarm with its cause and since when, and the last recovery (real service, real stall, Chromium)."""

from __future__ import annotations

import os
import signal

from browser import chromium, run_axe, sign_in
from conftest import (
    OPERATOR,
    Service,
)
from playwright.async_api import expect

from streaming.keys import RECORDER


async def test_the_console_shows_an_offair_alarm_and_its_recovery(watched: Service) -> None:
    created = await watched.begin()
    async with chromium() as browser:
        page = await browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await sign_in(page, watched.base, *OPERATOR)
        await page.goto(f"{watched.base}/console#run/{created['id']}")
        box = page.locator("#offair")
        await expect(box.locator("h3")).to_have_text("Odbiór transmisji publicznej")
        await expect(page.locator("#offair-state")).to_have_text(
            "Transmisja publiczna jest na antenie.", timeout=30_000
        )

        [camera] = [s for s in watched.app[RECORDER].statuses() if s.camera_id != "slate"]
        assert camera.pid is not None
        os.kill(camera.pid, signal.SIGSTOP)
        try:
            alarm = page.locator("#offair-alarm")
            await expect(alarm).to_contain_text("POZA ANTENĄ", timeout=12_000)
            cause = alarm.locator('li[data-cause="edge_still"]')
            await expect(cause).to_contain_text("transmisja stoi")
            await expect(cause).to_contain_text("od ")
            assert (await cause.get_attribute("title") or "").startswith(
                "the public live playlist has not gained a part"
            )
            # The run view of a live session, alarm included, passes axe.
            assert await run_axe(page) == []
        finally:
            os.kill(camera.pid, signal.SIGCONT)
        recovery = page.locator("#offair-recovery")
        await expect(recovery).to_contain_text("Ostatni powrót na antenę: transmisja stoi")
        await expect(page.locator("#offair-alarm")).to_have_count(0)
        assert errors == []
