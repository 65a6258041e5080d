"""GET /api/v1/status: anyone learns only the public facts (the service is up, its version, each
chamber's public state and the session on air); the captures, errors, disk, pushes and the
rest need a signed-in user of a role that sees the console."""

from __future__ import annotations

import json
from importlib.metadata import version
from typing import Any

from conftest import ADMIN, OPERATOR, STAFF, Service, basic, wait_for

from streaming.api.models import DetailStatus, PublicStatus

STATUS = "/api/v1/status"
PUBLIC = {"service", "version", "chambers"}
CHAMBER = {"id", "name", "state", "session"}
DETAILS = {
    "captures",
    "backup",
    "transcription",
    "disk",
    "capture_blocked",
    "index",
    "media_checks",
    "viewers",
    "search",
    "offair",
    "pushes",
}


async def anonymous(service: Service, headers: dict[str, str] | None = None) -> Any:
    async with service.http.get(service.base + STATUS, headers=headers) as resp:
        body = await resp.json()
        assert resp.status == 200, body
        assert resp.headers["Cache-Control"] == "no-store"
        return body


def public_only(body: dict[str, Any]) -> dict[str, Any]:
    """body, after checking that it holds the public facts and nothing else."""
    assert set(body) == PUBLIC, body
    PublicStatus.model_validate(body)  # as the OpenAPI document describes it
    assert body["service"] == "up" and body["version"] == version("obrady")
    for chamber in body["chambers"]:
        assert set(chamber) == CHAMBER, chamber
        assert chamber["session"] is None or set(chamber["session"]) == {"id", "title"}
    return body


async def test_anonymous_status_is_public_facts_and_signed_in_status_the_details(
    service: Service,
) -> None:
    idle = public_only(await anonymous(service))
    assert idle["chambers"] == [
        {"id": "sala", "name": "Sala obrad", "state": "off_air", "session": None}
    ]
    # A scheduled session is not on air yet.
    created = await service.begin(start=False, title="LVIII Sesja Rady Miasta")
    assert public_only(await anonymous(service))["chambers"][0]["state"] == "off_air"

    await service.post_json(f"/api/v1/sessions/{created['id']}/start")
    on_air = {"id": created["id"], "title": "LVIII Sesja Rady Miasta"}

    async def state(expected: str) -> dict[str, Any] | None:
        [chamber] = public_only(await anonymous(service))["chambers"]
        return chamber if chamber["state"] == expected else None

    live = await wait_for(lambda: state("live"), 5, "the chamber live in the public status")
    assert live["session"] == on_air

    # Signed in, by Basic or the console's login, with each role: the public facts and the
    # details, among them what the public must not see (the capture's pid, errors, disk).
    async def capturing() -> dict[str, Any] | None:
        body: dict[str, Any] = await service.status()
        return body if body["captures"] else None

    detail = await wait_for(capturing, 20, "a capture in the signed-in status")
    assert set(detail) == PUBLIC | DETAILS, set(detail) ^ (PUBLIC | DETAILS)
    DetailStatus.model_validate(detail)
    assert detail["chambers"][0]["state"] == "live"
    assert {"pid", "last_error", "source"} <= set(detail["captures"][0])
    assert detail["disk"]["free_bytes"] > 0
    for creds in (OPERATOR, STAFF):
        async with service.http.get(service.base + STATUS, headers=basic(creds)) as resp:
            assert resp.status == 200 and resp.headers["Cache-Control"] == "private, no-store"
            assert set(await resp.json()) == PUBLIC | DETAILS, creds

    # Anonymous again: the same public facts, none of the details, whatever it sends.
    anyone = public_only(await anonymous(service))
    text = json.dumps(anyone)
    for secret in ("captures", "pid", "last_error", "disk", "rtsp", "lavfi", "/"):
        assert secret not in text, (secret, text)
    public_only(await anonymous(service, {"Cookie": "obrady_login=not-a-login"}))

    # Wrong credentials are refused, not taken for an anonymous caller.
    wrong = basic((ADMIN[0], "wrong"))
    async with service.http.get(service.base + STATUS, headers=wrong) as resp:
        assert resp.status == 401 and "wrong user name or password" in (await resp.json())["error"]

    # A break and a closed part are public facts too (the public sees a slate meanwhile).
    await service.post_json(f"/api/v1/sessions/{created['id']}/break", {"on": True})
    assert (await wait_for(lambda: state("break"), 5, "the break"))["session"] == on_air
    await service.post_json(f"/api/v1/sessions/{created['id']}/break", {"on": False})
    await service.post_json(f"/api/v1/sessions/{created['id']}/closed", {"on": True})
    assert (await wait_for(lambda: state("closed"), 5, "the closed part"))["session"] == on_air
    await service.post_json(f"/api/v1/sessions/{created['id']}/closed", {"on": False})

    await service.post_json(f"/api/v1/sessions/{created['id']}/stop")
    off = await wait_for(lambda: state("off_air"), 5, "off air after the stop")
    assert off["session"] is None
