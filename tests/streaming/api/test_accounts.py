"""Accounts: a password change is audited as such, saying only that it changed."""

from __future__ import annotations

from typing import Any

from conftest import ADMIN, Service, basic


async def send(service: Service, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async with service.http.request(
        method, service.base + path, json=body, headers=basic(ADMIN)
    ) as resp:
        return resp.status, await resp.json()


async def test_a_password_change_is_audited_as_such_without_hashes(service: Service) -> None:
    status, _ = await send(
        service,
        "POST",
        "/api/v1/users",
        {"name": "marta", "role": "operator", "password": "hasło-marty-1"},
    )
    assert status == 201
    status, _ = await send(service, "PATCH", "/api/v1/users/marta", {"password": "hasło-marty-2"})
    assert status == 200
    entries = (await send(service, "GET", "/api/v1/audit"))[1]["entries"]
    change = entries[0]
    assert change["action"] == "users.password" and change["target"] == "user marta"
    assert change["user"] == ADMIN[0]
    assert change["after"] == "password changed" and change["before"] != change["after"]
    # Only the password changed: no entry poses the unchanged account as before and after.
    assert entries[1]["action"] == "users.add"
    # A role and a password at once: two entries, each with its own before and after.
    status, _ = await send(
        service, "PATCH", "/api/v1/users/marta", {"role": "staff", "password": "hasło-marty-3"}
    )
    assert status == 200
    entries = (await send(service, "GET", "/api/v1/audit"))[1]["entries"]
    assert {e["action"] for e in entries[:2]} == {"users.password", "users.edit"}
    edit = next(e for e in entries[:2] if e["action"] == "users.edit")
    assert edit["before"]["role"] == "operator" and edit["after"]["role"] == "staff"
    assert "$argon2" not in str(entries) and "hasło-marty-3" not in str(entries)
    # The new password works, the old does not.
    async with service.http.get(
        service.base + "/api/v1/me", headers=basic(("marta", "hasło-marty-3"))
    ) as r:
        assert r.status == 200
    async with service.http.get(
        service.base + "/api/v1/me", headers=basic(("marta", "hasło-marty-2"))
    ) as r:
        assert r.status == 401
