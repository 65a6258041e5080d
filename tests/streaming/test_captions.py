"""Captions in the running service: a chamber where someone speaks Polish (espeak-ng, looped by
the simulated camera) is recorded, the ended session is transcribed in the background with
the agenda-aware prompt, the captions are valid WebVTT within the recording, the search finds
a spoken phrase and jumps to it, staff corrections survive a re-run; a missing model is
reported while everything else keeps working."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from conftest import (
    STAFF,
    Service,
    basic,
    config_text,
    free_port,
    start_service,
    stop_service,
    wait_for,
)
from speech import record_spoken_session, start_speaking_service, transcribed

from config.settings import parse_settings

pytestmark = pytest.mark.asyncio(loop_scope="module")

VTT_TIME = re.compile(r"^(\d{2,}):(\d{2}):(\d{2})\.(\d{3})$")


def vtt_seconds(stamp: str) -> float:
    found = VTT_TIME.match(stamp)
    assert found, stamp
    h, m, s, ms = (int(x) for x in found.groups())
    return h * 3600 + m * 60 + s + ms / 1000


def parse_vtt(text: str) -> list[tuple[float, float, str]]:
    """The cues of a WebVTT file (checked as such): (start, end, text)."""
    assert text.startswith("WEBVTT"), text[:50]
    cues = []
    for block in text.strip().split("\n\n")[1:]:
        lines = block.splitlines()
        if lines[0].startswith(("NOTE", "STYLE", "REGION")):
            continue
        timing = next((i for i, line in enumerate(lines) if "-->" in line), None)
        assert timing is not None and timing <= 1, block
        start, _, end = lines[timing].partition(" --> ")
        cues.append(
            (vtt_seconds(start.strip()), vtt_seconds(end.split()[0]), " ".join(lines[timing + 1 :]))
        )
    return cues


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def speaking(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[Service, dict[str, Any]]]:
    """A service with the model, and one ended session of about 12 s of Polish speech."""
    service = await start_speaking_service(tmp_path_factory.mktemp("captions"))
    try:
        yield service, await record_spoken_session(service, "LXIII Sesja Rady Miasta", 12)
    finally:
        await stop_service(service)


async def test_a_spoken_session_gets_captions_and_is_searchable(
    speaking: tuple[Service, dict[str, Any]],
) -> None:
    service, session = speaking
    sid = session["id"]
    duration = session["recording"]["duration_seconds"]
    transcript = await transcribed(service, sid)
    assert transcript["automatic"] is True and transcript["lines"], transcript
    assert transcript["progress"]["done_seconds"] == pytest.approx(duration, abs=1.5)

    async with service.http.get(f"{service.base}/sessions/{sid}/captions.vtt") as resp:
        assert resp.status == 200 and resp.content_type == "text/vtt"
        cues = parse_vtt(await resp.text())
    assert cues
    for start, end, _ in cues:
        assert 0 <= start < end <= duration + 0.01, (start, end, duration)
    spoken = " ".join(text for _, _, text in cues).lower()
    # Whisper base on espeak's voice: "podjęcie uchwały ... zmiany" comes out every time, the
    # rest varies between runs ("w sprawie"/"w sprawia", "budżetu miasta"/"budzę tu dosta").
    assert all(word in spoken for word in ("podjęcie", "uchwały", "zmiany")), spoken

    # Searched as a resident would type it (other forms, no Polish letters).
    hits = (await service.get_json("/api/v1/search?q=podjecie%20uchwala%20zmiana"))["results"]
    speech = [h for h in hits if h["kind"] == "speech"]
    assert speech, hits
    first = min(speech, key=lambda h: h["offset_seconds"])
    assert 0 <= first["offset_seconds"] < duration
    assert first["url"] == f"/sessions/{sid}?t={int(first['offset_seconds'])}", first
    # The line the hit jumps to says it.
    line = next(x for x in transcript["lines"] if x["start_seconds"] == first["offset_seconds"])
    assert "zmiany" in line["text"].lower(), line

    page = await service.get_text(f"/sessions/{sid}")
    assert f'data-captions="/sessions/{sid}/captions.vtt"' in page
    assert f'href="/sessions/{sid}/transcript.txt"' in page
    text = await service.get_text(f"/sessions/{sid}/transcript.txt")
    assert "LXIII Sesja Rady Miasta" in text and "podjęcie uchwały" in text.lower()
    status = await service.get_json("/api/v1/status")
    assert status["transcription"]["state"] == "ready", status["transcription"]


async def test_a_staff_correction_survives_a_re_run(
    speaking: tuple[Service, dict[str, Any]],
) -> None:
    service, session = speaking
    sid = session["id"]
    before = await transcribed(service, sid)
    line = before["lines"][0]
    path = f"/api/v1/sessions/{sid}/transcript/lines/{line['id']}"
    corrected = "Przewodnicząca: podjęcie uchwały w sprawie zmiany budżetu miasta."
    async with service.http.patch(
        service.base + path, json={"text": corrected}, headers=basic(STAFF)
    ) as resp:
        answer = await resp.json()
        assert resp.status == 200, answer
    assert answer["corrected"] is True and answer["corrected_by"] == STAFF[0]
    assert answer["automatic_text"] == line["text"]
    # Not for the public to change.
    async with service.http.patch(service.base + path, json={"text": "x"}) as resp:
        assert resp.status == 401
    # Bad input: a clear 400, nothing changed.
    for body in ({"text": 5}, {"text": "x", "start_seconds": "soon"}, [1]):
        async with service.http.patch(service.base + path, json=body, headers=basic(STAFF)) as resp:
            assert resp.status == 400, (body, await resp.text())

    finished = before["progress"]["finished_at"]
    async with service.http.post(
        f"{service.base}/api/v1/sessions/{sid}/transcript/run", headers=basic(STAFF)
    ) as resp:
        assert resp.status == 202, await resp.text()
    after = await transcribed(service, sid, after=finished)
    kept = next(x for x in after["lines"] if x["id"] == line["id"])
    assert kept["text"] == corrected and kept["corrected"] is True
    vtt = await service.get_text(f"/sessions/{sid}/captions.vtt")
    assert corrected in " ".join(vtt.split())  # (long cues are wrapped onto two lines)
    async with service.http.get(
        f"{service.base}/api/v1/audit?session_id={sid}", headers=basic(STAFF)
    ) as resp:
        entries = (await resp.json())["entries"]
    actions = [e["action"] for e in entries if e["user"] == STAFF[0]]
    assert "transcript.correct" in actions and "transcript.run" in actions, entries


async def test_a_missing_model_is_reported_and_the_rest_works(tmp_path: Path) -> None:
    missing = tmp_path / "no-model-here"
    text = config_text(tmp_path / "data", free_port()).replace(
        "[monitoring]", f'[transcription]\nmodel_dir = "{missing}"\n\n[monitoring]'
    )
    service = await start_service(parse_settings(text))
    try:

        async def reported() -> dict[str, Any] | None:
            status = await service.get_json("/api/v1/status")
            state = status["transcription"]
            return state if state["state"] == "unavailable" else None

        state = await wait_for(reported, 20, "the missing model reported")
        assert str(missing) in state["error"] and "model_dir" in state["error"], state
        # The rest keeps working: a session is recorded and published as before.
        created = await service.begin()
        await asyncio.sleep(2)
        stopped = await service.post_json(f"/api/v1/sessions/{created['id']}/stop")
        assert stopped["state"] == "ended"
        await service.get_text(f"/sessions/{created['id']}")
        async with service.http.post(
            f"{service.base}/api/v1/sessions/{created['id']}/transcript/run",
            headers=basic(STAFF),
        ) as resp:
            body = await resp.json()
            assert resp.status == 409 and str(missing) in body["error"], body
        async with service.http.get(
            f"{service.base}/sessions/{created['id']}/captions.vtt"
        ) as resp:
            assert resp.status == 404
    finally:
        await stop_service(service)
