"""Debian's Chromium driven by Playwright, headless, as the tests' web player."""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

from playwright.async_api import Browser, Page, Route, async_playwright, expect

# bench/glass.py holds the one list of how Chromium runs here (headless as root, no network).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from glass import CHROMIUM, CHROMIUM_ARGS  # noqa: E402


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """A fresh headless Chromium, closed afterwards whatever happens."""
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, timeout=30_000
        )
        try:
            yield browser
        finally:
            await browser.close()


GLASS_PAGE = Path(__file__).resolve().parents[1] / "bench" / "glass.html"


async def open_glass_page(browser: Browser, origin: str, src: str, mode: str = "ll") -> Page:
    """bench/glass.html on the service's origin: plays src with hls.js (the live page's settings
    in "ll" mode) and reads the clock code of every frame it shows (window.glass)."""
    page = await browser.new_page(viewport={"width": 1280, "height": 720})
    html = GLASS_PAGE.read_text()

    async def fulfil(route: Route) -> None:
        await route.fulfill(body=html, content_type="text/html; charset=utf-8")

    await page.route(origin + "/bench/glass.html*", fulfil)
    await page.goto(f"{origin}/bench/glass.html?{urlencode({'src': src, 'mode': mode})}")
    return page


async def sign_in(page: Page, base: str, name: str, password: str) -> None:
    """Open the console, which asks to sign in first, and sign in."""
    await page.goto(base + "/console")
    await expect(page).to_have_url(re.compile(r"/login\?next="))
    await page.get_by_label("Nazwa użytkownika").fill(name)
    await page.get_by_label("Hasło").fill(password)
    await page.get_by_role("button", name="Zaloguj").click()
    await expect(page).to_have_url(re.compile(r"/console"))
