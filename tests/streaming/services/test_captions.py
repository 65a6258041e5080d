"""Captions in the running service: a chamber where someone speaks Polish (espeak-ng, looped by
the simulated camera) is recorded, live captions of it reach the live page's state while the
session runs (and come before recognising an earlier session), the ended session is
transcribed in the background with the agenda-aware prompt (what live captions did not hear,
then all of it), the captions are valid WebVTT within the recording, the search finds
a spoken phrase and jumps to it, staff corrections survive a re-run; a missing model is
reported while everything else keeps working."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
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
    segments_of,
    start_service,
    stop_service,
    wait_for,
)
from speech import record_spoken_session, start_speaking_service, transcribed

from config.settings import parse_settings
from streaming.services.transcription import unheard

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


# What was seen while the session ran: the live page's state with its captions, and the
# live captioner's status.
LIVE_SEEN: dict[str, Any] = {}


async def live_captions_seen(service: Service, sid: int) -> None:
    """Wait (bounded) until the live page's state carries captions of the speech, and keep
    what was seen in LIVE_SEEN."""
    chamber = service.settings.chambers[0].id

    async def captioned() -> dict[str, Any] | None:
        now = await service.get_json(f"/api/v1/chambers/{chamber}/now")
        spoken = " ".join(c["text"] for c in now.get("captions") or []).lower()
        return now if now["state"] == "live" and "uchwał" in spoken else None

    LIVE_SEEN["now"] = await wait_for(captioned, 90, "live captions of the speech", interval=0.5)
    LIVE_SEEN["status"] = await service.status()
    async with service.http.get(
        f"{service.base}/api/v1/sessions/{sid}/transcript", headers=basic(STAFF)
    ) as resp:
        LIVE_SEEN["transcript"] = await resp.json()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def speaking(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[Service, dict[str, Any]]]:
    """A service with the model, and one ended session of about 12 s of Polish speech (or
    more: it runs until live captions were seen)."""
    service = await start_speaking_service(tmp_path_factory.mktemp("captions"))
    try:
        yield (
            service,
            await record_spoken_session(
                service,
                "LXIII Sesja Rady Miasta",
                12,
                lambda sid: live_captions_seen(service, sid),
            ),
        )
    finally:
        await stop_service(service)


async def test_live_captions_are_shown_while_the_session_runs(
    speaking: tuple[Service, dict[str, Any]],
) -> None:
    service, session = speaking
    sid = session["id"]
    now = LIVE_SEEN["now"]
    assert now["session"]["id"] == sid
    captions = now["captions"]
    assert 1 <= len(captions) <= 3, captions
    started = datetime.fromisoformat(session["started_at"])
    for caption in captions:
        assert caption["automatic"] is True and caption["text"].strip(), caption
        assert 0 <= caption["start_seconds"] < caption["end_seconds"], caption
        # Said after the session began, and not in the future.
        said = datetime.fromisoformat(caption["at"])
        assert started <= said <= datetime.now(UTC), (caption, session["started_at"])
    live = [c for c in LIVE_SEEN["status"]["transcription"]["live"] if c["session_id"] == sid]
    assert live and live[0]["windows"] >= 1 and live[0]["state"] in ("captioning", "behind")
    assert live[0]["captioned_seconds"] <= live[0]["recorded_seconds"] + 0.01, live
    # The live lines are the session's transcript meanwhile (search finds them at once).
    assert {c["id"] for c in captions} <= {x["id"] for x in LIVE_SEEN["transcript"]["lines"]}
    # After the session: its captioner has ended; the recognition heard first only what live
    # captions had not (the transcript was whole then), and then the whole recording again.
    after = await transcribed(service, sid)
    progress = after["progress"]
    assert after["lines"] and progress["state"] == "done" and progress["pass"] == "full", after
    assert progress["completed_at"] < progress["finished_at"], progress
    heard = after["heard_live"]
    assert heard and heard[0][0] == 0 and heard[-1][1] <= session["recording"]["duration_seconds"]
    assert progress["done_seconds"] == progress["total_seconds"]
    status = await service.status()
    ended = [c for c in status["transcription"]["live"] if c["session_id"] == sid]
    assert ended and ended[0]["state"] == "ended", ended
    chamber = service.settings.chambers[0].id
    now = await service.get_json(f"/api/v1/chambers/{chamber}/now")
    assert now["state"] == "ended" and now["captions"] is None, now


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
    status = await service.status()
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

    # Adding a line: not for the public, and bad input is refused with what to fix.
    lines_path = f"{service.base}/api/v1/sessions/{sid}/transcript/lines"
    async with service.http.post(lines_path, json={"text": "x"}) as resp:
        assert resp.status == 401
    for body, says in (
        ({"text": "Dziękuję."}, "start_seconds and end_seconds are needed"),
        ({"text": "Dziękuję.", "start_seconds": 2, "end_seconds": 1}, "must end after it starts"),
        ({"text": "", "start_seconds": 1, "end_seconds": 2}, "write what was said"),
        ({"text": "Dziękuję.", "start_seconds": 1, "end_seconds": 9999}, "within the recording"),
    ):
        async with service.http.post(lines_path, json=body, headers=basic(STAFF)) as resp:
            answer = await resp.json()
            assert resp.status == 400 and says in answer["error"], (body, answer)
    assert len((await transcribed(service, sid))["lines"]) == len(before["lines"])

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


async def test_live_captions_come_before_recognising_an_earlier_session(
    speaking: tuple[Service, dict[str, Any]],
) -> None:
    service, first = speaking
    earlier = (await transcribed(service, first["id"]))["progress"]["finished_at"]
    created = await service.post_json(
        "/api/v1/sessions",
        {
            "title": "Sesja nadzwyczajna",
            "scheduled_start": "2030-01-02T09:00:00+00:00",
            "scheduled_end": "2030-01-02T12:00:00+00:00",
            "agenda_text": "1. Otwarcie sesji.\n",
        },
        status=201,
    )
    sid = created["id"]
    await service.post_json(f"/api/v1/sessions/{sid}/start")
    # Staff ask for the earlier recording again while this session runs: it waits its turn.
    async with service.http.post(
        f"{service.base}/api/v1/sessions/{first['id']}/transcript/run", headers=basic(STAFF)
    ) as resp:
        assert resp.status == 202, await resp.text()

    async def recognition() -> dict[str, Any]:
        async with service.http.get(
            f"{service.base}/api/v1/transcription", headers=basic(STAFF)
        ) as resp:
            answer: dict[str, Any] = await resp.json()
            assert resp.status == 200, answer
            return answer

    async def captioning() -> dict[str, Any] | None:
        found = [
            c for c in (await recognition())["live"] if c["session_id"] == sid and c["windows"] >= 2
        ]
        return found[0] if found else None

    await wait_for(captioning, 90, "two live windows of the new session", interval=0.5)
    queued = await recognition()
    progress = next(p for p in queued["sessions"] if p["session_id"] == first["id"])
    assert progress["state"] == "queued" and queued["current_session_id"] is None, queued
    # Once the session ended, both are recognised.
    await service.post_json(f"/api/v1/sessions/{sid}/stop")
    assert (await transcribed(service, first["id"], after=earlier))["lines"]
    assert (await transcribed(service, sid))["progress"]["state"] == "done"


async def test_what_live_captions_did_not_hear_is_what_is_left() -> None:
    assert unheard([], 30.0) == ((0.0, 30.0),)
    assert unheard([(0.0, 12.9), (20.0, 26.0)], 30.0) == ((12.9, 20.0), (26.0, 30.0))
    assert unheard([(0.0, 30.2)], 30.0) == ()
    assert unheard([(2.0, 10.0)], 10.0) == ((0.0, 2.0),)


async def test_a_missing_model_is_reported_and_the_rest_works(tmp_path: Path) -> None:
    missing = tmp_path / "no-model-here"
    text = config_text(tmp_path / "data", free_port()).replace(
        "[monitoring]", f'[transcription]\nmodel_dir = "{missing}"\n\n[monitoring]'
    )
    service = await start_service(parse_settings(text))
    try:

        async def reported() -> dict[str, Any] | None:
            status = await service.status()
            state = status["transcription"]
            return state if state["state"] == "unavailable" else None

        state = await wait_for(reported, 20, "the missing model reported")
        assert str(missing) in state["error"] and "model_dir" in state["error"], state
        # The rest keeps working: a session is recorded and published as before.
        created = await service.begin()
        await wait_for(lambda: segments_of(service, created["id"]), 20, "the first segment")
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
