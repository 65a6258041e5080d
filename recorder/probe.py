"""Asks a camera what it sends (ffprobe, with a timeout of our own: ffmpeg.probe has none)."""

from __future__ import annotations

import json
import logging

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
        "-show_entries", "stream=codec_type,codec_name", "-of", "json", source.url,
    ]  # fmt: skip


async def probe_codecs(source: RtspSource, timeout: float) -> tuple[str, str] | None:
    """The camera's (video, audio) codecs, e.g. ("h264", "pcm_alaw"); "" for a missing stream;
    None if the camera could not be asked; TimeoutError (ffprobe killed) after `timeout`."""
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
    video = [s.get("codec_name", "") for s in streams if s.get("codec_type") == "video"]
    audio = [s.get("codec_name", "") for s in streams if s.get("codec_type") == "audio"]
    return (video[0] if video else "", audio[0] if audio else "")
