"""Redaction slates: still pictures with silence, encoded to match each covered segment, written
under data/redacted/."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import uuid
from pathlib import Path
from typing import Any

from archive.index import Segment, Session
from archive.publish import slate_name
from config.settings import Settings
from recorder.ffmpeg import RedactionSlate, redaction_slate_argv, segment_probe_argv
from recorder.oneshot import FfmpegFailed, run_ffmpeg
from recorder.priority import SLATES, Priority

log = logging.getLogger(__name__)

# Making one slate takes well under a second; a stuck ffmpeg must not hold the request forever.
FFMPEG_TIMEOUT_SECONDS = 60.0


X264_PROFILES = {
    "Constrained Baseline": "baseline",
    "Baseline": "baseline",
    "Main": "main",
    "High": "high",
}


def slate_for(probe: dict[str, Any], duration: float) -> RedactionSlate:
    """A slate as long as a segment, in the format ffprobe found in one segment of its run."""
    streams = probe.get("streams", [])
    video: dict[str, Any] = next((s for s in streams if s.get("codec_type") == "video"), {})
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    rate = str(video.get("r_frame_rate") or "25")
    if rate in ("0/0", "0"):
        rate = "25"
    return RedactionSlate(
        duration=duration,
        width=int(video.get("width") or 1280),
        height=int(video.get("height") or 720),
        frame_rate=rate,
        profile=X264_PROFILES.get(str(video.get("profile"))),
        audio_rate=None if audio is None else int(audio.get("sample_rate") or 48000),
        audio_channels=1 if audio is not None and audio.get("channels") == 1 else 2,
    )


class SlateFailed(Exception):
    """ffmpeg or ffprobe could not make a slate; the message says what and why."""


async def _run(argv: list[str], what: str, priority: Priority) -> bytes:
    """Run ffmpeg/ffprobe to completion (bounded); stdout, or SlateFailed naming what failed."""
    try:
        return await run_ffmpeg(argv, timeout=FFMPEG_TIMEOUT_SECONDS, what=what, priority=priority)
    except FfmpegFailed as exc:
        tail = exc.stderr_tail[-500:]
        log.error("%s failed (%s): %s; argv %s", what, exc.why, tail, argv)
        raise SlateFailed(f"could not {what} ({exc.why}): {tail}; nothing was redacted") from None


async def make_slates(
    settings: Settings, session: Session, segments: list[Segment], *, priority: Priority = SLATES
) -> int:
    """Make the slates that replace these segments, where missing; returns how many were made.
    The recorded segments are only read (by ffprobe).

    They are made one after another at `priority` (recorder/priority.py): an editor's
    redaction at SLATES; an export, or captions, that fill in a missing one at their own
    level. None of them is on the live path: the break and closed-part slates that the live
    stream shows are recorded like a camera (recorder/supervisor.py), at capture's level."""
    media = settings.paths.session_media(session.chamber, session.id)
    root = settings.paths.redactions(session.id)
    probes: dict[tuple[str, str], dict[str, Any]] = {}
    made = 0
    for segment in segments:
        target = root / segment.camera / segment.run_dir / slate_name(segment.duration)
        if await asyncio.to_thread(target.exists):
            continue
        key = (segment.camera, segment.run_dir)
        if key not in probes:
            probe = segment_probe_argv(media / segment.rel_path)
            out = await _run(probe, "probe the segment", priority)
            probes[key] = json.loads(out or b"{}")
        await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
        # Written beside its final name and renamed: a slate the playlist names is whole.
        partial = target.with_name(f".{target.stem}-{uuid.uuid4().hex[:12]}.part")
        try:
            argv = redaction_slate_argv(slate_for(probes[key], segment.duration), partial)
            await _run(argv, "make the redaction slate", priority)
            await asyncio.to_thread(os.replace, partial, target)
        finally:
            await asyncio.to_thread(_discard, partial)
        made += 1
    return made


def _discard(path: Path) -> None:
    """Remove a partial slate of ours (never a recording)."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
