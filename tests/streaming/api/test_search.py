"""GET /api/v1/search and /search on a real service: offsets into a real recording, bad input
answered with 400, and the index following an edit made through the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from conftest import STAFF, Service, basic, wait_for

AGENDA = """1. Otwarcie sesji.
2. Podjęcie uchwały w sprawie zmiany budżetu miasta na 2027 rok.
3. Zamknięcie obrad.
"""


async def _duration(service: Service, sid: int, above: float) -> float | None:
    detail = await service.get_json(f"/api/v1/sessions/{sid}")
    seconds = float(detail["recording"]["duration_seconds"])
    return seconds if seconds > above else None


async def test_results_jump_to_the_item_in_the_recording_and_follow_a_rename(
    service: Service,
) -> None:
    at = datetime.now(UTC) + timedelta(hours=1)
    created = await service.post_json(
        "/api/v1/sessions",
        {
            "title": "LXI Sesja Rady Miasta",
            "scheduled_start": at.isoformat(),
            "scheduled_end": (at + timedelta(hours=1)).isoformat(),
            "agenda_text": AGENDA,
        },
        status=201,
    )
    sid = created["id"]
    agenda = created["agenda"]
    item = agenda[1]["id"]
    await service.post_json(f"/api/v1/sessions/{sid}/start")
    await wait_for(lambda: _duration(service, sid, 1.5), 20, "the first seconds recorded")
    await service.post_json(f"/api/v1/sessions/{sid}/items/{item}/start")
    stopped: dict[str, Any] = await service.post_json(f"/api/v1/sessions/{sid}/stop")
    marker = next(m for m in stopped["markers"] if m["item_id"] == item)
    assert marker["offset_seconds"] is not None and marker["offset_seconds"] > 0

    found = await service.get_json("/api/v1/search?q=" + quote("budzetu miasta"))
    assert found["query"] == "budzetu miasta"
    top = found["results"][0]
    assert top["kind"] == "item" and top["session_id"] == sid
    assert top["title"] == "Podjęcie uchwały w sprawie zmiany budżetu miasta na 2027 rok"
    assert top["session_title"] == "LXI Sesja Rady Miasta"
    assert top["offset_seconds"] == marker["offset_seconds"]
    assert top["url"] == f"/sessions/{sid}?t={int(marker['offset_seconds'])}"
    assert len(top["date"]) == 10
    # An item never taken up has no moment; the link opens the session.
    never = (await service.get_json("/api/v1/search?q=zamknięcie+obrad"))["results"][0]
    assert never["offset_seconds"] is None and never["url"] == f"/sessions/{sid}"

    async with service.http.patch(
        f"{service.base}/api/v1/sessions/{sid}/items/{item}",
        json={"title": "Podjęcie uchwały w sprawie stawek podatku od nieruchomości"},
        headers=basic(STAFF),
    ) as resp:
        assert resp.status == 200, await resp.text()
    renamed = (await service.get_json("/api/v1/search?q=stawki+podatku"))["results"]
    assert renamed[0]["title"].endswith("stawek podatku od nieruchomości")
    assert renamed[0]["offset_seconds"] == marker["offset_seconds"]

    async with service.http.post(
        f"{service.base}/api/v1/sessions/{sid}/publish",
        json={"published": False},
        headers=basic(STAFF),
    ) as resp:
        assert resp.status == 200, await resp.text()
    assert (await service.get_json("/api/v1/search?q=stawki+podatku"))["results"] == []

    html = await service.get_text("/search?q=" + quote("sesja rady"))
    assert '<label for="q">' in html and "LXI Sesja" not in html
    english = await service.get_text("/search?lang=en&q=x")
    assert "Nothing found." in english and '<html lang="en">' in english


async def test_bad_input_is_400_with_what_to_send(service: Service) -> None:
    await service.begin(start=False, title="Sesja w sprawie budżetu")
    bad = [
        ("", "q="),
        ("   ", "q=" + quote("   ")),
        ("missing", ""),
        ("too long", "q=" + "a" * 201),
        ("limit 0", "q=budżet&limit=0"),
        ("limit 101", "q=budżet&limit=101"),
        ("limit text", "q=budżet&limit=ten"),
        ("offset -1", "q=budżet&offset=-1"),
        ("offset huge", "q=budżet&offset=99999999999999"),
    ]
    for what, query in bad:
        answer = await service.get_json("/api/v1/search?" + query, status=400)
        assert answer["error"], what
    assert "q=" in (await service.get_json("/api/v1/search?q=", status=400))["error"]
    for odd in ['"budżet', "budżet*", "NEAR(budżet x)", "-budżet", "(", "🏛️", "a" * 200]:
        answer = await service.get_json("/api/v1/search?q=" + quote(odd))
        assert isinstance(answer["results"], list), odd
    first = await service.get_json("/api/v1/search?q=budzet&limit=1")
    assert [r["title"] for r in first["results"]] == ["Sesja w sprawie budżetu"]
    assert (await service.get_json("/api/v1/search?q=budzet&offset=1"))["results"] == []
    page = await service.get_text("/search?q=", status=200)
    assert 'type="search"' in page
    await service.get_text("/search?q=" + "a" * 201, status=400)
