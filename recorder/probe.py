"""Asks a camera what it sends (ffprobe, with a timeout of our own: ffmpeg.probe has none)."""

from __future__ import annotations

import json
import logging
from typing import NamedTuple

from config.settings import RtspSource
from recorder.oneshot import FfmpegFailed, FfmpegTimedOut, run_ffmpeg

log = logging.getLogger(__name__)


def probe_argv(source: RtspSource) -> list[str]:
    """ffprobe argv listing the camera's streams as JSON."""
    return [
        # The same short probing as capture: the answer is needed before recording starts.
        "ffprobe", "-v", "error", "-analyzeduration", "500000", "-probesize", "500000",
        "-rtsp_transport", source.transport,
        "-timeout", str(int(source.timeout_seconds * 1_000_000)),
        "-show_entries", "stream=codec_type,codec_name,has_b_frames", "-of", "json", source.url,
    ]  # fmt: skip


class Codecs(NamedTuple):
    """What a camera sends: codec names ("" for a missing stream), and whether its video has
    B-frames (frames sent in another order than they are shown)."""

    video: str
    audio: str
    b_frames: bool = False


async def probe_codecs(source: RtspSource, timeout: float) -> Codecs | None:
    """The camera's codecs, e.g. ("h264", "pcm_alaw", False); None if the camera could not be
    asked; TimeoutError (ffprobe killed) after `timeout`."""
    try:
        out = await run_ffmpeg(probe_argv(source), timeout=timeout, what="probe the camera")
    except FfmpegTimedOut:
        raise
    except FfmpegFailed as exc:
        log.warning("could not probe %s: %s", source.url, exc.stderr_tail)
        return None
    try:
        streams = json.loads(out).get("streams", [])
    except json.JSONDecodeError:
        return None
    video = [s for s in streams if s.get("codec_type") == "video"]
    audio = [s.get("codec_name", "") for s in streams if s.get("codec_type") == "audio"]
    b_frames = bool(video) and int(video[0].get("has_b_frames") or 0) > 0
    name = video[0].get("codec_name", "") if video else ""
    return Codecs(name, audio[0] if audio else "", b_frames)
