"""The console's server side: sign-in with cookies and CSRF, roles per action, audit, votes."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from conftest import ADMIN, OPERATOR, STAFF, Service, basic, wait_for

AGENDA = """Porządek obrad:
1. Otwarcie sesji.
2. Podjęcie uchwał w sprawie:
  a) zmiany budżetu miasta na 2027 rok;
  b) nadania nazwy rondu;
3. Wolne wnioski.
4. Zamknięcie obrad.
"""


def session_body(**extra: Any) -> dict[str, Any]:
    start = datetime.now(UTC) + timedelta(hours=1)
    return {
        "title": "LIX Sesja Rady Miasta",
        "scheduled_start": start.isoformat(),
        "scheduled_end": (start + timedelta(hours=3)).isoformat(),
        "agenda_text": AGENDA,
        **extra,
    }


async def call(
    service: Service,
    method: str,
    path: str,
    body: Any = None,
    auth: tuple[str, str] | None = OPERATOR,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One request with Basic credentials; the status and the JSON (or text) answer."""
    async with service.http.request(
        method, service.base + path, json=body, headers={**basic(auth), **(headers or {})}
    ) as resp:
        data = await resp.json() if resp.content_type == "application/json" else await resp.text()
        return resp.status, data


class Browser:
    """A cookie-keeping client, as a browser signed in to the console is."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.http = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            timeout=aiohttp.ClientTimeout(total=30),
        )
        self.csrf = ""

    async def sign_in(self, creds: tuple[str, str], expect: int = 303) -> aiohttp.ClientResponse:
        async with self.http.get(self.service.base + "/login") as resp:
            html = await resp.text()
        match = re.search(r'name="csrf_token" value="([^"]+)"', html)
        assert match, html
        async with self.http.post(
            self.service.base + "/login",
            data={"name": creds[0], "password": creds[1], "csrf_token": match.group(1)},
            allow_redirects=False,
        ) as resp:
            assert resp.status == expect, (resp.status, await resp.text())
            if expect == 303:
                me = await self.get("/api/v1/me")
                self.csrf = me["csrf_token"]
            return resp

    async def get(self, path: str) -> Any:
        async with self.http.get(self.service.base + path) as resp:
            assert resp.status == 200, (resp.status, await resp.text())
            return await resp.json()

    async def send(
        self, method: str, path: str, body: Any = None, csrf: str | None = None
    ) -> tuple[int, Any]:
        token = self.csrf if csrf is None else csrf
        headers = {"X-CSRF-Token": token} if token else {}
        async with self.http.request(
            method, self.service.base + path, json=body, headers=headers
        ) as resp:
            ok_json = resp.content_type == "application/json"
            return resp.status, await resp.json() if ok_json else await resp.text()

    async def close(self) -> None:
        await self.http.close()


@pytest.fixture
async def browser(service: Service) -> AsyncIterator[Browser]:
    b = Browser(service)
    try:
        yield b
    finally:
        await b.close()


async def test_sign_in_sets_a_strict_http_only_cookie_and_the_console_needs_it(
    service: Service, browser: Browser
) -> None:
    async with browser.http.get(service.base + "/console", allow_redirects=False) as resp:
        assert resp.status == 303
        assert resp.headers["Location"].startswith("/login?next=/console")
    resp = await browser.sign_in(OPERATOR)
    assert resp.headers["Location"] == "/console"
    cookie = resp.headers.getall("Set-Cookie")
    login = next(c for c in cookie if c.startswith("obrady_login="))
    assert "HttpOnly" in login and "SameSite=Strict" in login and "Path=/" in login
    assert "Secure" not in login  # plain HTTP here; "auto" sets it behind HTTPS
    async with browser.http.get(service.base + "/console") as page:
        html = await page.text()
        assert page.status == 200
        assert page.headers["Cache-Control"] == "private, no-store"
    assert f'<meta name="csrf-token" content="{browser.csrf}">' in html
    assert 'lang="pl"' in html and "Konsola operatora" in html
    # English on request, remembered for the next pages.
    async with browser.http.get(service.base + "/console?lang=en") as page:
        html = await page.text()
    assert 'lang="en"' in html and "Operator console" in html and '"lang": "en"' in html
    async with browser.http.get(service.base + "/login") as page:
        assert "Sign in" in await page.text()
    async with browser.http.get(service.base + "/live") as page:
        assert 'lang="en"' in await page.text() and "X-Frame-Options" not in page.headers
    me = await browser.get("/api/v1/me")
    assert me["name"] == "op" and me["role"] == "operator"
    assert "session.run" in me["may"] and "record.publish" not in me["may"]


async def test_behind_https_the_cookie_is_secure(service: Service) -> None:
    async with service.http.get(service.base + "/login") as resp:
        html = await resp.text()
        pre = resp.cookies["obrady_prelogin"].value
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert token
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        async with http.post(
            service.base + "/login",
            data={"name": OPERATOR[0], "password": OPERATOR[1], "csrf_token": token.group(1)},
            headers={"X-Forwarded-Proto": "https", "Cookie": f"obrady_prelogin={pre}"},
            allow_redirects=False,
        ) as resp:
            assert resp.status == 303
            login = next(
                c for c in resp.headers.getall("Set-Cookie") if c.startswith("obrady_login=")
            )
            assert "Secure" in login


async def test_changes_by_cookie_need_the_csrf_token(service: Service, browser: Browser) -> None:
    await browser.sign_in(OPERATOR)
    status, answer = await browser.send("POST", "/api/v1/sessions", session_body(), csrf="")
    assert status == 403 and "CSRF" in answer["error"]
    status, answer = await browser.send(
        "POST", "/api/v1/sessions", session_body(), csrf="not-the-token"
    )
    assert status == 403
    assert (await service.get_json("/api/v1/sessions"))["sessions"] == []
    status, created = await browser.send("POST", "/api/v1/sessions", session_body())
    assert status == 201, created
    # Reading needs no token.
    assert (await browser.get(f"/api/v1/sessions/{created['id']}"))["title"]
    # A form post without the token (sign out) changes nothing either.
    async with browser.http.post(service.base + "/logout", data={}, allow_redirects=False) as resp:
        assert resp.status == 403
    assert (await browser.get("/api/v1/me"))["name"] == "op"
    async with browser.http.post(
        service.base + "/logout", data={"csrf_token": browser.csrf}, allow_redirects=False
    ) as resp:
        assert resp.status == 303
    async with browser.http.get(service.base + "/api/v1/me") as resp:
        assert resp.status == 401


async def test_sign_in_refuses_wrong_passwords_forged_forms_and_foreign_redirects(
    service: Service, browser: Browser
) -> None:
    resp = await browser.sign_in(("op", "wrong"), expect=401)
    assert resp.status == 401
    # A form posted from elsewhere has no matching pre-login cookie.
    async with aiohttp.ClientSession() as other:
        async with other.post(
            service.base + "/login",
            data={"name": OPERATOR[0], "password": OPERATOR[1], "csrf_token": "forged"},
            allow_redirects=False,
        ) as resp:
            assert resp.status == 403
            assert "obrady_login" not in resp.cookies
    async with browser.http.get(service.base + "/login?next=//evil.example/x") as resp:
        html = await resp.text()
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert token and 'name="next" value="/console"' in html
    async with browser.http.post(
        service.base + "/login",
        data={
            "name": OPERATOR[0],
            "password": OPERATOR[1],
            "csrf_token": token.group(1),
            "next": "https://evil.example/",
        },
        allow_redirects=False,
    ) as resp:
        assert resp.status == 303 and resp.headers["Location"] == "/console"


async def test_repeated_wrong_passwords_make_the_name_wait(service: Service) -> None:
    limit = service.settings.console.max_failed_logins
    b = Browser(service)
    try:
        for _ in range(limit):
            await b.sign_in(("op", "wrong"), expect=401)
        # Now even the right password waits, with a message saying so.
        await b.sign_in(OPERATOR, expect=429)
        # Another user is not affected.
        await b.sign_in(STAFF, expect=303)
    finally:
        await b.close()


async def test_basic_changes_from_another_site_are_refused(service: Service) -> None:
    status, answer = await call(
        service,
        "POST",
        "/api/v1/sessions",
        session_body(),
        headers={"Origin": "http://evil.example"},
    )
    assert status == 403, answer
    status, _ = await call(
        service,
        "POST",
        "/api/v1/sessions",
        session_body(),
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    assert status == 403
    assert (await service.get_json("/api/v1/sessions"))["sessions"] == []


async def _prepared(service: Service) -> tuple[int, dict[str, Any]]:
    """A live session, with councillors, for the role checks."""
    await call(
        service,
        "POST",
        "/api/v1/councillors",
        {"councillors": [{"name": "Anna Nowak", "caucus": "KO"}, {"name": "Jan Wiśniewski"}]},
    )
    created = await service.begin(title="Sesja do sprawdzania ról")
    return created["id"], created


def record(detail: dict[str, Any]) -> dict[str, Any]:
    """What an action could change in a session (the recording itself grows by the second)."""
    return {k: v for k, v in detail.items() if k != "recording"}


# Every operator and admin action of this module, with a body that would succeed.
def operator_actions(sid: int, item: int, cid: int) -> list[tuple[str, str, Any]]:
    return [
        ("POST", "/api/v1/sessions", session_body()),
        ("PATCH", f"/api/v1/sessions/{sid}", {"title": "Nowy tytuł"}),
        ("POST", f"/api/v1/sessions/{sid}/agenda", {"op": "add", "title": "Nowy punkt"}),
        ("POST", f"/api/v1/sessions/{sid}/items/{item}/start", None),
        ("POST", f"/api/v1/sessions/{sid}/break", {"on": True}),
        ("POST", f"/api/v1/sessions/{sid}/closed", {"on": True}),
        ("POST", "/api/v1/chambers/sala/program", {"camera": "main"}),
        ("POST", "/api/v1/councillors", {"name": "Ewa Zielińska"}),
        ("PATCH", f"/api/v1/councillors/{cid}", {"caucus": "PiS"}),
        (
            "POST",
            f"/api/v1/sessions/{sid}/votes",
            {"subject": "Przyjęcie porządku", "choices": {}},
        ),
        ("POST", f"/api/v1/sessions/{sid}/votes/csv", None),
        ("POST", f"/api/v1/sessions/{sid}/stop", None),
    ]


ADMIN_ACTIONS = [
    ("GET", "/api/v1/users", None),
    ("POST", "/api/v1/users", {"name": "nowy", "role": "operator", "password": "długie-hasło"}),
    ("PATCH", "/api/v1/users/op", {"role": "staff"}),
]


async def test_each_operator_action_is_refused_to_staff_and_to_anonymous_and_changes_nothing(
    service: Service,
) -> None:
    sid, created = await _prepared(service)
    item = created["agenda"][0]["id"]
    cid = (await service.get_json("/api/v1/councillors"))["councillors"][0]["id"]
    before = record(await service.get_json(f"/api/v1/sessions/{sid}"))
    councillors = await service.get_json("/api/v1/councillors")
    for method, path, body in operator_actions(sid, item, cid):
        for who, expected in ((STAFF, 403), (None, 401)):
            status, answer = await call(service, method, path, body, auth=who)
            assert status == expected, (method, path, who, status, answer)
    for method, path, body in ADMIN_ACTIONS:
        for who, expected in ((STAFF, 403), (OPERATOR, 403), (None, 401)):
            status, answer = await call(service, method, path, body, auth=who)
            assert status == expected, (method, path, who, status, answer)
    after = record(await service.get_json(f"/api/v1/sessions/{sid}"))
    assert after == before
    assert await service.get_json("/api/v1/councillors") == councillors
    assert len((await service.get_json("/api/v1/sessions"))["sessions"]) == 1
    # The same actions through a signed-in staff browser are refused as well.
    b = Browser(service)
    try:
        await b.sign_in(STAFF)
        for method, path, body in operator_actions(sid, item, cid):
            status, _ = await b.send(method, path, body)
            assert status == 403, (method, path, status)
    finally:
        await b.close()
    assert record(await service.get_json(f"/api/v1/sessions/{sid}")) == before
    # The audit log is for staff and admins, not operators.
    assert (await call(service, "GET", "/api/v1/audit", auth=OPERATOR))[0] == 403
    assert (await call(service, "GET", "/api/v1/audit", auth=None))[0] == 401
    await service.post_json(f"/api/v1/sessions/{sid}/stop")


async def test_admin_manages_users_and_a_changed_user_signs_in_again(
    service: Service, browser: Browser
) -> None:
    status, made = await call(
        service,
        "POST",
        "/api/v1/users",
        {"name": "marta", "role": "operator", "password": "hasło-marty-1"},
        auth=ADMIN,
    )
    assert status == 201 and made == {"name": "marta", "role": "operator", "disabled": False}
    status, answer = await call(
        service, "POST", "/api/v1/users", {"name": "x", "role": "boss", "password": "123"}, ADMIN
    )
    assert status == 400 and "role must be one of" in answer["error"]
    await browser.sign_in(("marta", "hasło-marty-1"))
    status, _ = await call(service, "PATCH", "/api/v1/users/marta", {"disabled": True}, ADMIN)
    assert status == 200
    async with browser.http.get(service.base + "/api/v1/me") as resp:
        assert resp.status == 401  # the login ended with the change
    await browser.sign_in(("marta", "hasło-marty-1"), expect=401)
    status, answer = await call(service, "PATCH", "/api/v1/users/boss", {"role": "staff"}, ADMIN)
    assert status == 409
    log = (await call(service, "GET", "/api/v1/audit", auth=ADMIN))[1]["entries"]
    edit = next(e for e in log if e["action"] == "users.edit")
    assert edit["user"] == "boss" and edit["target"] == "user marta"
    assert edit["before"]["disabled"] is False and edit["after"]["disabled"] is True
    assert all("password_hash" not in str(e) for e in log)


async def test_agenda_preview_shows_the_tree_or_each_bad_line(service: Service) -> None:
    status, ok = await call(service, "POST", "/api/v1/agenda/preview", {"agenda_text": AGENDA})
    assert status == 200 and ok["ok"] is True
    assert [i["number"] for i in ok["items"]] == ["1", "2", "3", "4"]
    assert [i["title"] for i in ok["items"][1]["items"]] == [
        "zmiany budżetu miasta na 2027 rok",
        "nadania nazwy rondu",
    ]
    status, bad = await call(
        service,
        "POST",
        "/api/v1/agenda/preview",
        {"agenda_text": "1. Otwarcie.\n2. Budżet.\nb) coś tam\n3. Zamknięcie."},
    )
    assert status == 200 and bad["ok"] is False
    assert [line["line"] for line in bad["lines"]] == [3]
    assert (await call(service, "POST", "/api/v1/agenda/preview", {"agenda_text": AGENDA}, None))[
        0
    ] == 401


async def test_agenda_changes_during_a_session_renumber_and_are_audited(service: Service) -> None:
    created = await service.post_json("/api/v1/sessions", session_body(), status=201)
    sid = created["id"]
    await service.post_json(f"/api/v1/sessions/{sid}/start")
    first = created["agenda"][0]["id"]
    wolne = created["agenda"][2]["id"]
    await service.post_json(f"/api/v1/sessions/{sid}/items/{first}/start")
    status, detail = await call(
        service,
        "POST",
        f"/api/v1/sessions/{sid}/agenda",
        {"op": "add", "title": "Informacja Prezydenta Miasta", "before_id": wolne},
    )
    assert status == 200, detail
    titles = [(i["number"], i["title"], i["added"]) for i in detail["agenda"]]
    assert titles == [
        ("1", "Otwarcie sesji", False),
        ("2", "Podjęcie uchwał w sprawie", False),
        ("3", "Informacja Prezydenta Miasta", True),
        ("4", "Wolne wnioski", False),
        ("5", "Zamknięcie obrad", False),
    ]
    rondo = detail["agenda"][1]["items"][1]["id"]
    status, detail = await call(
        service,
        "POST",
        f"/api/v1/sessions/{sid}/agenda",
        {"op": "move", "item_id": rondo, "index": 0},
    )
    assert status == 200
    sub = [(i["number"], i["title"]) for i in detail["agenda"][1]["items"]]
    assert sub == [("2.1", "nadania nazwy rondu"), ("2.2", "zmiany budżetu miasta na 2027 rok")]
    status, detail = await call(
        service, "POST", f"/api/v1/sessions/{sid}/agenda", {"op": "remove", "item_id": wolne}
    )
    assert status == 200
    removed = next(i for i in detail["agenda"] if i["id"] == wolne)
    assert removed["removed"] is True and removed["number"] == ""
    assert detail["agenda"][-1]["number"] == "4"
    # An item already taken up stays on the agenda.
    status, answer = await call(
        service, "POST", f"/api/v1/sessions/{sid}/agenda", {"op": "remove", "item_id": first}
    )
    assert status == 409 and "taken up" in answer["error"]
    for bad in (
        {"op": "explode"},
        {"op": "move", "item_id": rondo, "index": 7},
        {"op": "add", "title": ""},
        {"op": "remove", "item_id": 999999},
    ):
        status, answer = await call(service, "POST", f"/api/v1/sessions/{sid}/agenda", bad)
        assert status in (400, 404, 409), (bad, status, answer)
    unchanged = await service.get_json(f"/api/v1/sessions/{sid}")
    assert unchanged["agenda"] == detail["agenda"]
    # Extending a live session is allowed; moving it to another chamber is not.
    later = (datetime.now(UTC) + timedelta(hours=9)).isoformat()
    status, _ = await call(service, "PATCH", f"/api/v1/sessions/{sid}", {"scheduled_end": later})
    assert status == 200
    status, answer = await call(service, "PATCH", f"/api/v1/sessions/{sid}", {"kind": "committee"})
    assert status == 409 and "kind" in answer["error"]
    await service.post_json(f"/api/v1/sessions/{sid}/stop")
    log = (await call(service, "GET", f"/api/v1/audit?session_id={sid}", auth=STAFF))[1]
    actions = [e["action"] for e in reversed(log["entries"])]
    assert actions == [
        "session.create",
        "session.start",
        "item.start",
        "agenda.add",
        "agenda.move",
        "agenda.remove",
        "session.edit",
        "session.stop",
    ]
    add = next(e for e in log["entries"] if e["action"] == "agenda.add")
    assert add["user"] == "op" and len(add["before"]) == 4 and len(add["after"]) == 5
    move = next(e for e in log["entries"] if e["action"] == "agenda.move")
    assert move["before"][1]["items"][0]["title"].startswith("zmiany")
    assert move["after"][1]["items"][0]["title"] == "nadania nazwy rondu"


COUNCIL = [
    {"name": "Anna Nowak", "caucus": "KO"},
    {"name": "Jan Wiśniewski", "caucus": "PiS"},
    {"name": "Łukasz Żółtowski", "caucus": "PiS"},
    {"name": "Maria Kowalczyk", "caucus": ""},
]


async def test_a_nominal_vote_is_recorded_shown_live_and_placed_in_the_recording(
    service: Service,
) -> None:
    status, added = await call(service, "POST", "/api/v1/councillors", {"councillors": COUNCIL})
    assert status == 201 and len(added["councillors"]) == 4
    ids = {c["name"]: c["id"] for c in added["councillors"]}
    status, answer = await call(service, "POST", "/api/v1/councillors", {"name": "Anna Nowak"})
    assert status == 409
    created = await service.post_json("/api/v1/sessions", session_body(), status=201)
    sid = created["id"]
    item = created["agenda"][1]["items"][0]["id"]
    status, answer = await call(
        service, "POST", f"/api/v1/sessions/{sid}/votes", {"subject": "x", "choices": {}}
    )
    assert status == 409 and "not started" in answer["error"]
    await service.post_json(f"/api/v1/sessions/{sid}/start")
    await service.post_json(f"/api/v1/sessions/{sid}/items/{item}/start")
    choices = {
        str(ids["Anna Nowak"]): "for",
        str(ids["Jan Wiśniewski"]): "against",
        str(ids["Łukasz Żółtowski"]): "abstain",
        str(ids["Maria Kowalczyk"]): "absent",
    }
    bad_bodies = [
        {"subject": "", "choices": choices},
        {"subject": "Uchwała", "choices": {**choices, str(ids["Anna Nowak"]): "maybe"}},
        {"subject": "Uchwała", "choices": {str(ids["Anna Nowak"]): "for"}},
        {"subject": "Uchwała", "choices": {**choices, "999999": "for"}},
        {"subject": "Uchwała", "choices": choices, "at": "2001-01-01T00:00:00+00:00"},
        {"subject": "Uchwała", "choices": choices, "item_id": 999999},
    ]
    for bad in bad_bodies:
        status, answer = await call(service, "POST", f"/api/v1/sessions/{sid}/votes", bad)
        assert status == 400, (bad, answer)
        assert answer["error"]
    assert (await service.get_json(f"/api/v1/sessions/{sid}"))["votes"] == []
    status, vote = await call(
        service,
        "POST",
        f"/api/v1/sessions/{sid}/votes",
        {"subject": "Uchwała nr LIX/700/26 w sprawie zmiany budżetu", "choices": choices},
    )
    assert status == 201, vote
    assert vote["totals"] == {"for": 1, "against": 1, "abstain": 1, "absent": 1}
    assert vote["item_id"] == item
    by_name = {c["name"]: (c["choice"], c["caucus"]) for c in vote["choices"]}
    assert by_name["Łukasz Żółtowski"] == ("abstain", "PiS")
    now = await service.get_json("/api/v1/chambers/sala/now")
    assert now["state"] == "live" and now["current_item_id"] == item
    assert now["votes"][0]["subject"].startswith("Uchwała nr LIX/700/26")
    # A councillor's later correction does not change the recorded list.
    await call(service, "PATCH", f"/api/v1/councillors/{ids['Anna Nowak']}", {"caucus": "Lewica"})
    detail = await service.get_json(f"/api/v1/sessions/{sid}")
    assert {c["name"]: c["caucus"] for c in detail["votes"][0]["choices"]}["Anna Nowak"] == "KO"

    async def recorded() -> bool:
        detail = await service.get_json(f"/api/v1/sessions/{sid}")
        return bool((detail["recording"] or {}).get("duration_seconds"))

    # Stopped once some of the session is recorded (on a busy machine the first segment can
    # come after the calls above, and a recording with no media places nothing).
    await wait_for(recorded, 30, "the first recorded segment")
    stopped = await service.post_json(f"/api/v1/sessions/{sid}/stop")
    # In the finished recording the vote is a moment between its item's start and the end.
    item_start = next(m for m in stopped["markers"] if m["item_id"] == item)["offset_seconds"]
    placed = stopped["votes"][0]["offset_seconds"]
    assert item_start <= placed <= stopped["recording"]["duration_seconds"], (item_start, placed)
    # After the session, a vote is staff's to correct, not the operator's.
    status, _ = await call(service, "DELETE", f"/api/v1/sessions/{sid}/votes/{vote['id']}")
    assert status == 403
    status, _ = await call(
        service, "DELETE", f"/api/v1/sessions/{sid}/votes/{vote['id']}", auth=STAFF
    )
    assert status == 200
    log = (await call(service, "GET", f"/api/v1/audit?session_id={sid}", auth=STAFF))[1]
    deleted = next(e for e in log["entries"] if e["action"] == "vote.delete")
    assert deleted["user"] == "clerk" and deleted["before"]["totals"]["for"] == 1


async def test_a_voting_system_export_is_read_for_confirmation(service: Service) -> None:
    await call(service, "POST", "/api/v1/councillors", {"councillors": COUNCIL})
    created = await service.begin(title="Sesja z głosowaniem z pliku")
    sid = created["id"]
    csv = (
        "Lp.;Nazwisko i imię;Głos\n"
        "1;Nowak Anna;ZA\n"
        "2;Wiśniewski Jan;PRZECIW\n"
        "3;Żółtowski Łukasz;WSTRZYMAŁ SIĘ\n"
    ).encode("cp1250")
    async with service.http.post(
        service.base + f"/api/v1/sessions/{sid}/votes/csv",
        data=csv,
        headers={**basic(OPERATOR), "Content-Type": "text/csv"},
    ) as resp:
        read = await resp.json()
        assert resp.status == 200, read
    assert [(c["name"], c["choice"]) for c in read["choices"]] == [
        ("Anna Nowak", "for"),
        ("Jan Wiśniewski", "against"),
        ("Łukasz Żółtowski", "abstain"),
    ]
    assert [m["name"] for m in read["missing"]] == ["Maria Kowalczyk"]
    async with service.http.post(
        service.base + f"/api/v1/sessions/{sid}/votes/csv",
        data="Nowak Anna;ZA\nKtoś Obcy;ZA\nWiśniewski Jan;może\n".encode(),
        headers={**basic(OPERATOR), "Content-Type": "text/csv"},
    ) as resp:
        bad = await resp.json()
        assert resp.status == 400
    assert [line["line"] for line in bad["lines"]] == [2, 3]
    assert (await service.get_json(f"/api/v1/sessions/{sid}"))["votes"] == []
    await service.post_json(f"/api/v1/sessions/{sid}/stop")


async def test_the_live_state_follows_break_and_closed_part(service: Service) -> None:
    async def state(expected: str) -> str:
        # The answer is kept for half a second: ask until it reflects the change.
        answer: dict[str, Any] = {}
        for _ in range(30):
            answer = await service.get_json("/api/v1/chambers/sala/now")
            if answer["state"] == expected:
                break
            await asyncio.sleep(0.1)
        return str(answer["state"])

    assert await state("idle") == "idle"
    created = await service.post_json("/api/v1/sessions", session_body(), status=201)
    sid = created["id"]
    assert await state("before") == "before"
    now = await service.get_json("/api/v1/chambers/sala/now")
    assert now["session"]["id"] == sid and now["agenda"][0]["title"] == "Otwarcie sesji"
    await service.post_json(f"/api/v1/sessions/{sid}/start")
    for body, path, expected in (
        ({"on": True}, "break", "break"),
        ({"on": False}, "break", "live"),
        ({"on": True}, "closed", "closed"),
        ({"on": False}, "closed", "live"),
    ):
        await service.post_json(f"/api/v1/sessions/{sid}/{path}", body)
        assert await state(expected) == expected
    await service.post_json(f"/api/v1/sessions/{sid}/stop")
    assert await state("ended") == "ended"
    status, answer = await call(service, "GET", "/api/v1/chambers/nowhere/now")
    assert status == 404 and "not configured" in answer["error"]
