"""Helpers for the captions tests: a simulated chamber where someone speaks Polish (espeak-ng),
and waiting for a session's recognition."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import STAFF, Service, basic, config_text, free_port, start_service, wait_for

from config.settings import parse_settings
from recorder.whisper_model import assemble_model

ROOT = Path(__file__).resolve().parents[1]
MODEL_DIR = ROOT / ".cache" / "whisper-base"
SPOKEN = "Podjęcie uchwały w sprawie zmiany budżetu miasta."
AGENDA = "1. Otwarcie sesji.\n2. Podjęcie uchwały w sprawie zmiany budżetu miasta na 2027 rok.\n"


def speech_file(folder: Path) -> Path:
    """SPOKEN by espeak-ng, then 2 s of silence (the camera loops it)."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed (apt-get install espeak-ng; make test does)")
    raw, padded = folder / "raw.wav", folder / "speech.wav"
    subprocess.run(
        ["espeak-ng", "-v", "pl", "-s", "150", "-w", str(raw), SPOKEN],
        check=True,
        capture_output=True,
        timeout=60,
    )
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(raw),
         "-af", "apad=pad_dur=2", "-ac", "1", "-ar", "48000", str(padded)],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return padded


def speaking_source(sound: Path) -> str:
    """A small simulated camera whose sound is the file, looped."""
    return f'kind = "synthetic"\nwidth = 320\nheight = 180\nfps = 10\nsound_file = "{sound}"\n'


async def transcribed(service: Service, sid: int, after: str | None = None) -> dict[str, Any]:
    """Wait (bounded) until the session's recognition is done (and finished after `after`),
    the whole recording heard (after live captions, the rest is recognised first and then the
    whole); its transcript as staff see it."""

    async def done() -> dict[str, Any] | None:
        async with service.http.get(
            f"{service.base}/api/v1/sessions/{sid}/transcript", headers=basic(STAFF)
        ) as resp:
            answer: dict[str, Any] = await resp.json()
            assert resp.status == 200, answer
        progress = answer["progress"]
        assert progress is None or progress["state"] != "failed", progress
        if progress and progress["state"] == "done" and progress["pass"] == "full":
            if after is None or (progress["finished_at"] or "") > after:
                return answer
        return None

    return await wait_for(done, 240, f"the transcript of session {sid}", interval=0.5)


async def start_speaking_service(folder: Path) -> Service:
    """A service with the Whisper model whose simulated chamber speaks SPOKEN in a loop."""
    model = assemble_model(MODEL_DIR)
    text = config_text(folder / "data", free_port(), speaking_source(speech_file(folder)))
    text = text.replace(
        "[monitoring]",
        f'[transcription]\nmodel_dir = "{model}"\ncpu_threads = 2\n'
        # Live captions in short windows, so that a short test session gets some.
        "live_window_seconds = 6\nlive_max_lag_seconds = 60\n\n[monitoring]",
    )
    return await start_service(parse_settings(text))


async def record_spoken_session(
    service: Service,
    title: str,
    seconds: float,
    while_live: Callable[[int], Awaitable[None]] | None = None,
) -> dict[str, Any]:
    """A session with AGENDA, its second item (the one spoken about) taken up at the start,
    recorded for `seconds` (then while `while_live(session id)` runs) and stopped; the stop's
    answer."""
    created = await service.post_json(
        "/api/v1/sessions",
        {
            "title": title,
            "scheduled_start": "2030-01-01T09:00:00+00:00",
            "scheduled_end": "2030-01-01T12:00:00+00:00",
            "agenda_text": AGENDA,
        },
        status=201,
    )
    sid = created["id"]
    await service.post_json(f"/api/v1/sessions/{sid}/start")
    await service.post_json(f"/api/v1/sessions/{sid}/items/{created['agenda'][1]['id']}/start")

    async def long_enough() -> bool:
        detail = await service.get_json(f"/api/v1/sessions/{sid}")
        return bool(detail["recording"]["duration_seconds"] >= seconds)

    await wait_for(long_enough, seconds + 45, f"{seconds:g} s of recording")
    if while_live is not None:
        await while_live(sid)
    stopped: dict[str, Any] = await service.post_json(f"/api/v1/sessions/{sid}/stop")
    return stopped
