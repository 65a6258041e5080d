"""Debian's Chromium driven by Playwright, headless, as the tests' web player."""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
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


# make test fetches axe-core from the npm registry into the cache (never served to the public).
AXE = Path(__file__).resolve().parents[1] / ".cache/npm/node_modules/axe-core/axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


async def run_axe(page: Page) -> list[str]:
    """axe-core's WCAG 2.0/2.1 A and AA violations on the page, one line each."""
    if not AXE.is_file():
        pytest.fail(
            f"axe-core is missing ({AXE}): run `make test` (it fetches axe-core with npm), "
            "or install npm and run `make .cache/npm/node_modules/axe-core/axe.min.js`"
        )
    await page.add_script_tag(path=str(AXE))
    result = await page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_TAGS
    )
    return [
        f"{v['id']}: {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
    ]
