"""No confused origins: a Basic change with `Origin: null` is refused, and JSON is read only
from a body sent as application/json (text/plain, or no type, can be sent by any page
without the browser's permission). Nothing stored changes."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from conftest import OPERATOR, Service, basic

from archive.index import ArchiveIndex
from streaming.keys import PASSWORD_CHECKS


def session_body() -> dict[str, Any]:
    start = datetime.now(UTC) + timedelta(hours=1)
    return {
        "title": "Sesja",
        "scheduled_start": start.isoformat(),
        "scheduled_end": (start + timedelta(hours=2)).isoformat(),
        "agenda_text": "1. Otwarcie.\n",
    }


async def post(service: Service, headers: dict[str, str], **body: Any) -> tuple[int, Any]:
    async with service.http.post(
        service.base + "/api/v1/sessions", headers={**basic(OPERATOR), **headers}, **body
    ) as resp:
        assert resp.content_type == "application/json"
        return resp.status, await resp.json()


async def test_a_basic_change_with_origin_null_is_refused(service: Service) -> None:
    status, answer = await post(service, {"Origin": "null"}, json=session_body())
    assert status == 403 and "Origin: null" in answer["error"]
    # Wrong credentials from such a page are refused before any password check, the same way.
    async with service.http.post(
        service.base + "/api/v1/sessions",
        json=session_body(),
        headers={**basic(("op", "wrong")), "Origin": "null"},
    ) as resp:
        assert resp.status == 403
    assert (await service.get_json("/api/v1/sessions"))["sessions"] == []
    # Reading with Origin: null is no change, and the same request without it goes through.
    async with service.http.get(
        service.base + "/api/v1/me", headers={**basic(OPERATOR), "Origin": "null"}
    ) as resp:
        assert resp.status == 200
    status, _ = await post(service, {}, json=session_body())
    assert status == 201


async def test_json_is_read_only_when_sent_as_application_json(service: Service) -> None:
    text = json.dumps(session_body())
    for content_type in (
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
    ):
        status, answer = await post(service, {"Content-Type": content_type}, data=text)
        assert status == 415, (content_type, answer)
        assert "Content-Type: application/json" in answer["error"]
        assert content_type in answer["error"]
    # No type at all, as a page's fetch() of a Blob sends it.
    status, answer = await post(
        service, {}, data=aiohttp.BytesPayload(text.encode(), content_type="")
    )
    assert status == 415 and "it had no Content-Type" in answer["error"], answer
    assert (await service.get_json("/api/v1/sessions"))["sessions"] == []
    status, created = await post(
        service, {"Content-Type": "application/json; charset=utf-8"}, data=text
    )
    assert status == 201, created


async def test_a_script_found_right_before_is_not_refused_while_guesses_fill_the_line(
    service: Service,
) -> None:
    # bench/hostile_load.py: while anonymous bogus credentials kept every password-check slot
    # taken, the operator's script got 429 for 29 of its 33 requests.
    async def me(credentials: tuple[str, str], forwarded: str) -> int:
        async with service.http.get(
            service.base + "/api/v1/me",
            headers={**basic(credentials), "X-Forwarded-For": forwarded},
        ) as resp:
            return resp.status

    assert await me(OPERATOR, "192.0.2.1") == 200
    guesses = [
        asyncio.create_task(me((f"nobody{n}", "guess"), f"198.51.100.{n}")) for n in range(30)
    ]
    await asyncio.sleep(0.05)
    assert await me(OPERATOR, "192.0.2.1") == 200
    statuses = await asyncio.gather(*guesses)
    assert set(statuses) == {401, 429} and statuses.count(429) >= 10


async def test_guesses_refused_as_busy_do_not_read_the_archive(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    # bench/hostile_load.py: a bogus Basic request read its account before it was refused.
    await service.get_json("/api/v1/me", headers=basic(OPERATOR))  # remembered from now on
    reads: list[str] = []
    real_get_user = ArchiveIndex.get_user

    def counted(self: ArchiveIndex, name: str) -> Any:
        reads.append(name)
        return real_get_user(self, name)

    monkeypatch.setattr(ArchiveIndex, "get_user", counted)
    checks = service.app[PASSWORD_CHECKS]
    monkeypatch.setattr(checks, "full", lambda: True)  # every check slot taken

    async def me(credentials: tuple[str, str], forwarded: str) -> tuple[int, str | None]:
        async with service.http.get(
            service.base + "/api/v1/me",
            headers={**basic(credentials), "X-Forwarded-For": forwarded},
        ) as resp:
            return resp.status, resp.headers.get("Retry-After")

    assert await me(("nobody", "guess"), "198.51.100.7") == (429, "1")
    assert await me((OPERATOR[0], "wrong"), "198.51.100.8") == (429, "1")
    assert reads == []
    # Credentials found right before still get through, by one read of their account.
    assert (await me(OPERATOR, "192.0.2.1"))[0] == 200
    assert reads == [OPERATOR[0]]
