"""Helpers for the captions tests: a simulated chamber where someone speaks Polish (espeak-ng),
and waiting for a session's recognition."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import STAFF, Service, basic, wait_for

ROOT = Path(__file__).resolve().parents[1]
MODEL_DIR = ROOT / ".cache" / "whisper-base"
SPOKEN = "Podjęcie uchwały w sprawie zmiany budżetu miasta."


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
    """Wait (bounded) until the session's recognition is done (and finished after `after`);
    its transcript as staff see it."""

    async def done() -> dict[str, Any] | None:
        async with service.http.get(
            f"{service.base}/api/v1/sessions/{sid}/transcript", headers=basic(STAFF)
        ) as resp:
            answer: dict[str, Any] = await resp.json()
            assert resp.status == 200, answer
        progress = answer["progress"]
        assert progress is None or progress["state"] != "failed", progress
        if progress and progress["state"] == "done":
            if after is None or (progress["finished_at"] or "") > after:
                return answer
        return None

    return await wait_for(done, 240, f"the transcript of session {sid}", interval=0.5)
