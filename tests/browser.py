"""Debian's Chromium driven by Playwright, headless, as the tests' web player."""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.async_api import Browser, CDPSession, Page, Route, async_playwright, expect

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


async def shown(page: Page, selector: str) -> list[str]:
    """What each element matching selector shows, as Chromium's accessibility tree has it:
    the marker its list draws in front of it ("1. "), if any, then its text."""
    cdp = await page.context.new_cdp_session(page)
    try:
        await cdp.send("Accessibility.enable")
        document = await cdp.send("DOM.getDocument", {"depth": 0})
        found = await cdp.send(
            "DOM.querySelectorAll", {"nodeId": document["root"]["nodeId"], "selector": selector}
        )
        texts = []
        for node_id in found["nodeIds"]:
            tree = await cdp.send(
                "Accessibility.getPartialAXTree", {"nodeId": node_id, "fetchRelatives": False}
            )
            texts.append("".join([await _text(cdp, node) for node in tree["nodes"][:1]]))
        return texts
    finally:
        await cdp.detach()


async def _text(cdp: CDPSession, node: dict[str, Any]) -> str:
    """The text of an accessibility node's list marker and text runs, in order, stopping at a
    nested list or a button (they are not the item's label)."""
    role = node.get("role", {}).get("value")
    if role in ("StaticText", "ListMarker"):
        return str(node.get("name", {}).get("value", ""))
    if role in ("list", "button"):
        return ""
    children = await cdp.send("Accessibility.getChildAXNodes", {"id": node["nodeId"]})
    return "".join([await _text(cdp, child) for child in children["nodes"]])
