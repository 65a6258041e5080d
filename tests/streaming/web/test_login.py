"""Signing in cannot be turned against the service: `next` only ever leads to a path on this
site (Chromium follows it), the pre-login token is the server's, and HTTP Basic is throttled,
logged and bounded exactly as the form is."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp
import pytest
from aiohttp import web
from browser import chromium
from conftest import (
    ADMIN,
    OPERATOR,
    STAFF,
    Service,
    basic,
    free_port,
    start_service,
    stop_service,
    wait_for,
)

from config.settings import Settings
from streaming.app.gateway import create_gateway_app

# Each as a raw query string value (what a link would carry) and as the form field's value.
HOSTILE_NEXT = [
    "/%09/evil.example/phish",
    "/%0A/evil.example/phish",
    "/%0D/evil.example/phish",
    "/%0D%0A/evil.example/phish",
    "%09//evil.example/phish",
    "//evil.example/phish",
    "/\\evil.example/phish",
    "/%5Cevil.example/phish",
    "/%5C%5Cevil.example/phish",
    "\\\\evil.example/phish",
    "%2F%2Fevil.example/phish",
    "/%2F/evil.example/phish",
    "https://evil.example/phish",
    "https:evil.example/phish",
    "https:/evil.example/phish",
    "javascript:alert(1)",
    "/%20/evil.example",
    "/%E3%80%80/evil.example",
    "///evil.example/phish",
]


def same_site_path(location: str) -> bool:
    """What a browser would stay on this site with: one leading slash, then no second slash or
    backslash, and nothing a browser drops or rewrites (control characters, spaces)."""
    return (
        location.startswith("/")
        and location[1:2] not in ("/", "\\")
        and all(0x21 <= ord(c) < 0x7F and c != "\\" for c in location)
    )


async def prelogin(http: aiohttp.ClientSession, base: str, query: str = "") -> tuple[str, str]:
    """The login page's form token and the `next` it will post."""
    async with http.get(base + "/login" + query) as resp:
        assert resp.status == 200
        html = await resp.text()
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    target = re.search(r'name="next" value="([^"]*)"', html)
    assert token and target, html
    return token.group(1), target.group(1)


async def post_login(
    http: aiohttp.ClientSession,
    base: str,
    creds: tuple[str, str],
    next_path: str | None = None,
) -> aiohttp.ClientResponse:
    """Sign in with the form as a browser does (the page first); the answer, not followed."""
    token, _ = await prelogin(http, base)
    data = {"name": creds[0], "password": creds[1], "csrf_token": token}
    if next_path is not None:
        data["next"] = next_path
    async with http.post(base + "/login", data=data, allow_redirects=False) as resp:
        await resp.read()
        return resp


def cookie_client() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True), timeout=aiohttp.ClientTimeout(total=30)
    )


async def test_next_only_ever_leads_to_a_path_on_this_site(service: Service) -> None:
    async with cookie_client() as http:
        for raw in HOSTILE_NEXT:
            # The page keeps only a same-site path in its form ...
            _, target = await prelogin(http, service.base, "?next=" + raw)
            assert target == "/console", (raw, target)
            # ... and a form posted with it, raw or decoded, is redirected there only.
            for value in {raw, unquote(raw)}:
                resp = await post_login(http, service.base, OPERATOR, value)
                assert resp.status == 303, (value, resp.status)
                location = resp.headers["Location"]
                assert same_site_path(location) and location == "/console", (value, location)
        # A real path of this site is kept, query and all; non-ASCII comes back encoded.
        resp = await post_login(http, service.base, OPERATOR, "/sessions/7?lang=en#votes")
        assert resp.headers["Location"] == "/sessions/7?lang=en#votes"
        resp = await post_login(http, service.base, OPERATOR, "/search?q=budżet")
        assert resp.headers["Location"] == "/search?q=bud%C5%BCet"


async def test_chromium_signing_in_from_a_hostile_link_stays_on_this_site(
    service: Service,
) -> None:
    host = urlsplit(service.base).netloc
    async with chromium() as browser:
        for raw in ("/%09/evil.example/phish", "/%0A/evil.example/phish", "/%0D/evil.example/x"):
            page = await browser.new_page()
            try:
                await page.goto(f"{service.base}/login?next={raw}")
                await page.get_by_label("Nazwa użytkownika").fill(OPERATOR[0])
                await page.get_by_label("Hasło").fill(OPERATOR[1])
                async with page.expect_navigation():
                    await page.get_by_role("button", name="Zaloguj").click()
                await page.wait_for_load_state()
                where = urlsplit(page.url)
                assert where.netloc == host and where.path == "/console", (raw, page.url)
            finally:
                await page.close()


async def test_a_prelogin_token_chosen_by_the_client_is_refused(service: Service) -> None:
    chosen = "chosen-by-the-attacker"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        async with http.post(
            service.base + "/login",
            data={"name": OPERATOR[0], "password": OPERATOR[1], "csrf_token": chosen},
            headers={"Cookie": f"obrady_prelogin={chosen}"},
            allow_redirects=False,
        ) as resp:
            assert resp.status == 403
            assert not any(
                c.startswith("obrady_login=") for c in resp.headers.getall("Set-Cookie", [])
            )
            # The page that answers hands out a token of the server's, not the one sent.
            html = await resp.text()
        given = re.search(r'name="csrf_token" value="([^"]+)"', html)
        assert given and given.group(1) != chosen
        # That token, as cookie and field, is accepted.
        async with http.post(
            service.base + "/login",
            data={"name": OPERATOR[0], "password": OPERATOR[1], "csrf_token": given.group(1)},
            headers={"Cookie": f"obrady_prelogin={given.group(1)}"},
            allow_redirects=False,
        ) as resp:
            assert resp.status == 303


async def basic_status(
    service: Service, creds: tuple[str, str], headers: dict[str, str] | None = None
) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
    async with service.http.get(
        service.base + "/api/v1/me", headers={**basic(creds), **(headers or {})}
    ) as resp:
        body = await resp.json() if resp.content_type == "application/json" else None
        return resp.status, body, resp.headers


def failures_logged(caplog: pytest.LogCaptureFixture, how: str, name: str) -> int:
    return sum(
        1
        for r in caplog.records
        if r.levelno == logging.WARNING
        and r.getMessage().startswith(f"failed sign-in ({how})")
        and f"for {name!r}" in r.getMessage()
    )


async def test_basic_wrong_passwords_are_counted_with_the_forms_and_logged(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="streaming.auth.access")
    limit = service.settings.console.max_failed_logins
    by_form = limit // 2
    async with cookie_client() as http:
        for _ in range(by_form):
            assert (await post_login(http, service.base, ("op", "wrong"))).status == 401
        for _ in range(limit - by_form):
            status, body, _ = await basic_status(service, ("op", "wrong"))
            assert status == 401 and body["error"] == "wrong user name or password"
        assert failures_logged(caplog, "form", "op") == by_form
        assert failures_logged(caplog, "HTTP Basic", "op") == limit - by_form
        # Now even the right password waits, by Basic and by the form, and is told how long.
        status, body, headers = await basic_status(service, OPERATOR)
        assert status == 429 and "too many wrong passwords" in body["error"]
        assert 0 < int(headers["Retry-After"]) <= 15 * 60
        resp = await post_login(http, service.base, OPERATOR)
        assert resp.status == 429 and 0 < int(resp.headers["Retry-After"]) <= 15 * 60
    # Another account is not affected.
    assert (await basic_status(service, STAFF))[0] == 200


@pytest.fixture
async def tight(make_settings: Callable[..., Settings]) -> AsyncIterator[Service]:
    """A service with small limits: 3 failures per name, 5 per address, 1 check at once."""
    settings = make_settings()
    console = settings.console.model_copy(
        update={
            "max_failed_logins": 3,
            "max_failed_logins_per_address": 5,
            "password_checks_at_once": 1,
        }
    )
    svc = await start_service(settings.model_copy(update={"console": console}))
    try:
        yield svc
    finally:
        await stop_service(svc)


async def test_basic_guesses_at_many_names_from_one_address_make_the_address_wait(
    tight: Service, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="streaming.auth.access")
    # Behind the proxy: the address it added to X-Forwarded-For is the client's.
    proxy = {"X-Forwarded-For": "198.51.100.7"}
    for n in range(5):
        assert (await basic_status(tight, (f"guess{n}", "x"), proxy))[0] == 401
    assert sum("from 198.51.100.7" in r.getMessage() for r in caplog.records) == 5
    status, body, headers = await basic_status(tight, OPERATOR, proxy)
    assert status == 429 and int(headers["Retry-After"]) > 0, body
    # The form from that address waits too.
    async with cookie_client() as http:
        token, _ = await prelogin(http, tight.base)
        async with http.post(
            tight.base + "/login",
            data={"name": ADMIN[0], "password": ADMIN[1], "csrf_token": token},
            headers=proxy,
            allow_redirects=False,
        ) as resp:
            assert resp.status == 429 and "Retry-After" in resp.headers
    # A made-up address on the left of the proxy's is the client's own word: not taken.
    spoofed = {"X-Forwarded-For": "203.0.113.5, 198.51.100.7"}
    assert (await basic_status(tight, OPERATOR, spoofed))[0] == 429
    # Another client is not affected; the names guessed at were not at their limit.
    assert (await basic_status(tight, OPERATOR, {"X-Forwarded-For": "192.0.2.44"}))[0] == 200


async def test_bogus_basic_credentials_cannot_run_more_argon2_checks_than_the_bound(
    tight: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """20 requests at once with made-up credentials: 1 check runs, 4 wait, 15 get 429."""
    import streaming.auth.access as access

    real = access.verify_password
    lock, release = threading.Lock(), threading.Event()
    seen = {"running": 0, "most": 0, "calls": 0}

    def counted(stored: str, password: str) -> bool:
        with lock:
            seen["running"] += 1
            seen["calls"] += 1
            seen["most"] = max(seen["most"], seen["running"])
        try:
            release.wait(20)  # held until every excess request has had its answer
            return real(stored, password)
        finally:
            with lock:
                seen["running"] -= 1

    monkeypatch.setattr(access, "verify_password", counted)
    answers: list[tuple[int, str | None]] = []

    async def one(n: int) -> None:
        # Each from its own address and for its own name: no throttle, only the bound.
        headers = {**basic((f"nobody{n}", "x")), "X-Forwarded-For": f"192.0.2.{n + 1}"}
        async with tight.http.get(tight.base + "/api/v1/me", headers=headers) as resp:
            body = await resp.json()
            assert "error" in body
            answers.append((resp.status, resp.headers.get("Retry-After")))

    tasks = [asyncio.create_task(one(n)) for n in range(20)]
    try:

        async def excess_answered() -> bool:
            return len(answers) >= 15

        await wait_for(excess_answered, 20, "the 15 excess requests' answers")
        assert sorted(answers[:15]) == [(429, "1")] * 15
        # The form meanwhile says so in words (Polish first), with Retry-After too.
        async with cookie_client() as http:
            token, _ = await prelogin(http, tight.base)
            form = {"name": OPERATOR[0], "password": OPERATOR[1], "csrf_token": token}
            async with http.post(tight.base + "/login", data=form) as resp:
                assert resp.status == 429 and resp.headers["Retry-After"] == "1"
                assert "Zbyt wiele logowań naraz" in await resp.text()
    finally:
        release.set()
        await asyncio.gather(*tasks)
    assert sorted(s for s, _ in answers) == [401] * 5 + [429] * 15
    assert seen == {"running": 0, "most": 1, "calls": 5}


async def test_the_gateway_throttles_basic_credentials_for_withdrawn_recordings_too(
    tight: Service,
) -> None:
    """A gateway process takes Basic credentials for a withdrawn recording: wrong ones are
    throttled there as on the control port (each gateway process counts its own)."""
    created = await tight.post_json(
        "/api/v1/sessions",
        {
            "title": "Sesja wycofana",
            "scheduled_start": "2030-01-01T10:00:00+00:00",
            "scheduled_end": "2030-01-01T12:00:00+00:00",
            "agenda_text": "1. Otwarcie.\n",
        },
        status=201,
    )
    sid = created["id"]
    await tight.post_json(f"/api/v1/sessions/{sid}/publish", {"published": False}, auth=STAFF)
    app = create_gateway_app(tight.settings)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    url = f"http://127.0.0.1:{port}/sessions/{sid}/index.m3u8"
    try:

        async def get(creds: tuple[str, str] | None) -> tuple[int, str | None]:
            async with tight.http.get(url, headers=basic(creds)) as resp:
                await resp.read()
                return resp.status, resp.headers.get("Retry-After")

        assert (await get(None))[0] == 410
        # No recording yet: a signed-in staff member gets 404, past the withdrawal.
        assert (await get(STAFF))[0] == 404
        for _ in range(tight.settings.console.max_failed_logins):
            assert (await get((STAFF[0], "wrong")))[0] == 401
        status, retry = await get(STAFF)
        assert status == 429 and retry is not None and int(retry) > 0
    finally:
        await runner.cleanup()
