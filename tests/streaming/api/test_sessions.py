"""The operator API refuses bad input with a clear message and changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from conftest import STAFF, Service, basic, wait_for

from recorder.supervisor import Recorder
from streaming.keys import RECORDER

AGENDA = "1. Otwarcie sesji.\n2. Zamknięcie obrad.\n"


def body(**changes: Any) -> dict[str, Any]:
    start = datetime.now(UTC) + timedelta(days=1)
    data = {
        "title": "LVIII Sesja",
        "scheduled_start": start.isoformat(),
        "scheduled_end": (start + timedelta(hours=3)).isoformat(),
        "agenda_text": AGENDA,
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


async def count(service: Service) -> int:
    return len((await service.get_json("/api/v1/sessions"))["sessions"])


async def test_bad_requests_are_refused_and_change_nothing(service: Service) -> None:
    existing = await service.post_json("/api/v1/sessions", body(), status=201)
    sid = existing["id"]
    assert (await service.get_json(f"/api/v1/sessions/{sid}"))["agenda"][0][
        "title"
    ] == "Otwarcie sesji"
    before = await count(service)

    no_auth = await service.post_json("/api/v1/sessions", body(), auth=None, status=401)
    assert "credentials" in no_auth["error"]
    wrong = await service.post_json("/api/v1/sessions", body(), auth=("op", "nope"), status=401)
    assert "wrong user name or password" in wrong["error"]
    staff = await service.post_json("/api/v1/sessions", body(), auth=STAFF, status=403)
    assert "role staff" in staff["error"]
    for action in ("start", "stop"):
        await service.post_json(f"/api/v1/sessions/{sid}/{action}", auth=None, status=401)
        await service.post_json(f"/api/v1/sessions/{sid}/{action}", auth=STAFF, status=403)

    end_first = await service.post_json(
        "/api/v1/sessions", body(scheduled_end=(datetime.now(UTC)).isoformat()), status=400
    )
    assert "must be after scheduled_start" in end_first["error"]
    naive = await service.post_json(
        "/api/v1/sessions", body(scheduled_start="2027-01-28T10:00:00"), status=400
    )
    assert "UTC offset" in naive["error"]
    garbage_time = await service.post_json(
        "/api/v1/sessions", body(scheduled_start="jutro"), status=400
    )
    assert "ISO 8601" in garbage_time["error"]
    not_agenda = await service.post_json(
        "/api/v1/sessions", body(agenda_text="Ala ma kota, a kot ma Alę."), status=400
    )
    assert "not an agenda" in not_agenda["error"]
    assert not_agenda["lines"] or "1." in not_agenda["error"]
    skipped = await service.post_json(
        "/api/v1/sessions",
        body(agenda_text="1. Otwarcie.\n2. Budżet.\n5. Zamknięcie.\n"),
        status=400,
    )
    assert [line["line"] for line in skipped["lines"]] == [3]
    missing = await service.post_json("/api/v1/sessions", body(title=None), status=400)
    assert "title is required" in missing["error"]
    unknown = await service.post_json("/api/v1/sessions", body(titel="x"), status=400)
    assert "titel" in unknown["error"]
    bad_chamber = await service.post_json("/api/v1/sessions", body(chamber="kuchnia"), status=400)
    assert "kuchnia" in bad_chamber["error"] and "sala" in bad_chamber["error"]
    async with service.http.post(
        service.base + "/api/v1/sessions",
        data="{not json",
        headers=basic(("op", "operator-password")),
    ) as resp:
        assert resp.status == 400
        assert "JSON object" in (await resp.json())["error"]

    assert await count(service) == before
    assert (await service.get_json(f"/api/v1/sessions/{sid}"))["state"] == "scheduled"


async def test_unknown_things_are_404_with_json_errors(service: Service) -> None:
    missing = await service.get_json("/api/v1/sessions/4242", status=404)
    assert missing["error"] == "session 4242 does not exist"
    await service.get_json("/api/v1/sessions/abc", status=404)
    await service.post_json("/api/v1/sessions/4242/start", status=404)
    await service.get_text("/sessions/4242/index.m3u8", status=404)
    await service.get_text("/sessions/4242/chapters.vtt", status=404)
    await service.get_text("/live/kuchnia/index.m3u8", status=404)
    nothing_yet = await service.get_text("/live/index.m3u8", status=404)
    assert "nothing has been transmitted" in nothing_yet
    created = await service.post_json("/api/v1/sessions", body(), status=201)
    sid = created["id"]
    await service.get_text(f"/sessions/{sid}/media/main/run-0001/../../x", status=404)
    # A file outside the public program is staff-only, whether it exists or not.
    missing_media = f"/sessions/{sid}/media/main/run-0001/seg-000001.ts"
    await service.get_text(missing_media, status=401)
    await service.get_text(missing_media, status=404, auth=STAFF)
    item = await service.post_json(f"/api/v1/sessions/{sid}/items/99999/start", status=409)
    assert "not live" in item["error"]
    brk = await service.post_json(f"/api/v1/sessions/{sid}/break", {"on": "yes"}, status=400)
    assert '"on": true' in brk["error"]


async def test_markers_need_a_live_session_and_a_break_to_end(service: Service) -> None:
    created = await service.post_json("/api/v1/sessions", body(), status=201)
    sid = created["id"]
    await service.post_json(f"/api/v1/sessions/{sid}/start")
    other = await service.post_json("/api/v1/sessions", body(title="Inna"), status=201)
    wrong_item = other["agenda"][0]["id"]
    refused = await service.post_json(
        f"/api/v1/sessions/{sid}/items/{wrong_item}/start", status=404
    )
    assert f"not in session {sid}" in refused["error"]
    not_in_break = await service.post_json(
        f"/api/v1/sessions/{sid}/break", {"on": False}, status=409
    )
    assert "not in a break" in not_in_break["error"]
    await service.post_json(f"/api/v1/sessions/{sid}/break", {"on": True})
    twice = await service.post_json(f"/api/v1/sessions/{sid}/break", {"on": True}, status=409)
    assert "already in a break" in twice["error"]
    recorder: Recorder = service.app[RECORDER]
    assert recorder.is_recording(sid)
    await service.post_json(f"/api/v1/sessions/{sid}/stop")
    late = await service.post_json(f"/api/v1/sessions/{sid}/break", {"on": False}, status=409)
    assert "has ended" in late["error"]


async def test_openapi_describes_every_api_route(service: Service) -> None:
    doc = await service.get_json("/api/v1/openapi.json")
    assert doc["openapi"].startswith("3.")
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    for route in service.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if path and path.startswith("/api/v1/") and route.method != "HEAD":
            assert (path, route.method.lower()) in documented, path


async def test_pages_render(service: Service) -> None:
    created = await service.post_json("/api/v1/sessions", body(), status=201)
    home = await service.get_text("/")
    assert 'lang="pl"' in home and "LVIII Sesja" in home
    live = await service.get_text("/live")
    assert "/live/sala/index.m3u8" in live
    # A coming session's page says when and links the live page: nothing to play yet.
    page = await service.get_text(f"/sessions/{created['id']}")
    assert 'href="/live/sala"' in page and "index.m3u8" not in page
    # Once it starts, its page plays its recording.
    await service.post_json(f"/api/v1/sessions/{created['id']}/start")
    page = await service.get_text(f"/sessions/{created['id']}")
    assert f"/sessions/{created['id']}/index.m3u8" in page
    await service.get_text("/static/player.js")


async def test_metrics_and_status_show_a_running_capture(service: Service) -> None:
    created = await service.post_json("/api/v1/sessions", body(), status=201)
    sid = created["id"]
    await service.post_json(f"/api/v1/sessions/{sid}/start")

    async def recorded() -> dict[str, Any] | None:
        status = await service.status()
        [capture] = status["captures"]
        return status if capture["segments"] >= 2 else None

    status = await wait_for(recorded, 20, "two segments")
    assert status["captures"][0]["state"] == "recording"
    assert status["disk"]["free_bytes"] > 0 and status["disk"]["level"] == "ok"
    assert status["disk"]["recording_bytes_per_second"] > 0
    text = await service.get_text("/metrics")
    labels = f'{{camera="main",chamber="sala",session="{sid}"}}'
    assert f"obrady_capture_up{labels} 1.0\n" in text
    segments = next(
        line
        for line in text.splitlines()
        if line.startswith(f"obrady_capture_segments_total{labels}")
    )
    assert float(segments.split()[-1]) >= 2
    assert 'obrady_sessions{state="live"} 1' in text
    assert "obrady_disk_free_bytes " in text and "# TYPE obrady_capture_up gauge" in text
    await service.post_json(f"/api/v1/sessions/{sid}/stop")
    after = await service.get_text("/metrics")
    assert f"obrady_capture_up{labels}" not in after
