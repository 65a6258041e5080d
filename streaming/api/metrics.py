"""Prometheus metrics at /metrics: captures, disk and sessions, in the text exposition format."""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from streaming.hls.viewers import live_viewers
from streaming.keys import ANALYZER, ARCHIVE, CLOCK, DISK, OFFAIR, PUSHERS, RECORDER, SETTINGS
from streaming.services.offair import PROBLEMS

routes = web.RouteTableDef()


def _labels(**labels: str) -> str:
    if not labels:
        return ""
    inner = ",".join(
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in labels.items()
    )
    return "{" + inner + "}"


def _family(
    name: str, kind: str, help_text: str, samples: Iterable[tuple[dict[str, str], float]]
) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    lines += [f"{name}{_labels(**labels)} {value:g}" for labels, value in samples]
    return lines


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """Current figures for monitoring."""
    recorder = request.app[RECORDER]
    disk = request.app[DISK].snapshot()
    now = request.app[CLOCK]()
    archive = request.app[ARCHIVE]
    sessions = await archive.call(archive.index.active_sessions)
    captures = recorder.statuses()

    def labels(chamber: str, session: int, camera: str = "main") -> dict[str, str]:
        return {"chamber": chamber, "session": str(session), "camera": camera}

    lines: list[str] = []
    lines += _family(
        "obrady_capture_up",
        "gauge",
        "1 while the capture's ffmpeg records.",
        [
            (
                labels(c.chamber_id, c.session_id, c.camera_id),
                1.0 if c.state == "recording" else 0.0,
            )
            for c in captures
        ],
    )
    lines += _family(
        "obrady_capture_restarts_total",
        "counter",
        "ffmpeg restarts of the capture.",
        [(labels(c.chamber_id, c.session_id, c.camera_id), c.restarts) for c in captures],
    )
    lines += _family(
        "obrady_capture_segments_total",
        "counter",
        "Segments recorded.",
        [(labels(c.chamber_id, c.session_id, c.camera_id), c.segments) for c in captures],
    )
    lines += _family(
        "obrady_capture_bitrate_bits_per_second",
        "gauge",
        "Bit rate of the last recorded segment.",
        [
            (labels(c.chamber_id, c.session_id, c.camera_id), c.bytes_per_second * 8)
            for c in captures
        ],
    )
    lines += _family(
        "obrady_capture_last_segment_age_seconds",
        "gauge",
        "Seconds since the capture's last segment was finished.",
        [
            (
                labels(c.chamber_id, c.session_id, c.camera_id),
                (now - c.last_segment_at).total_seconds(),
            )
            for c in captures
            if c.last_segment_at is not None
        ],
    )
    lines += _family(
        "obrady_capture_fps",
        "gauge",
        "Frames per second received from the source over the last seconds.",
        [
            (labels(c.chamber_id, c.session_id, c.camera_id), c.fps)
            for c in captures
            if c.fps is not None
        ],
    )
    pushes = request.app[PUSHERS]
    lines += _family(
        "obrady_push_up",
        "gauge",
        "1 while the program is being pushed to the destination.",
        [
            (
                {"chamber": p.status.chamber_id, "destination": p.status.name},
                1.0 if p.status.state == "pushing" else 0.0,
            )
            for p in pushes
        ],
    )
    lines += _family(
        "obrady_push_restarts_total",
        "counter",
        "Reconnections to the destination.",
        [
            ({"chamber": p.status.chamber_id, "destination": p.status.name}, p.status.restarts)
            for p in pushes
        ],
    )
    analyzer = request.app[ANALYZER]
    healths = [
        (c, h) for c in captures if (h := analyzer.health((c.session_id, c.camera_id))) is not None
    ]
    lines += _family(
        "obrady_source_frozen_seconds",
        "gauge",
        "Seconds the source's picture has not changed.",
        [(labels(c.chamber_id, c.session_id, c.camera_id), h.frozen_seconds) for c, h in healths],
    )
    lines += _family(
        "obrady_source_silent_seconds",
        "gauge",
        "Seconds the source's audio has stayed below the silence level.",
        [(labels(c.chamber_id, c.session_id, c.camera_id), h.silent_seconds) for c, h in healths],
    )
    lines += _family(
        "obrady_source_audio_peak_db",
        "gauge",
        "Audio peak of the last analysed segment.",
        [
            (labels(c.chamber_id, c.session_id, c.camera_id), h.audio_max_db)
            for c, h in healths
            if h.audio_max_db is not None
        ],
    )
    lines += _family(
        "obrady_capture_blocked",
        "gauge",
        "1 while capture is held (disk full).",
        [({}, 1.0 if recorder.blocked else 0.0)],
    )
    lines += _family(
        "obrady_disk_free_bytes",
        "gauge",
        "Free space in the data directory.",
        [({}, disk.free_bytes)],
    )
    lines += _family(
        "obrady_disk_total_bytes",
        "gauge",
        "Size of the data directory's disk.",
        [({}, disk.total_bytes)],
    )
    if disk.hours_left is not None:
        lines += _family(
            "obrady_disk_recording_hours_left",
            "gauge",
            "Hours of recording the free space holds at the current rate.",
            [({}, disk.hours_left)],
        )
    viewers = live_viewers(request.app, [c.id for c in request.app[SETTINGS].chambers])
    lines += _family(
        "obrady_live_viewers",
        "gauge",
        "Players of the chamber's live stream now (each player counted once, not per request).",
        [({"chamber": chamber}, count) for chamber, count in viewers.items()],
    )
    if OFFAIR in request.app:
        reports = request.app[OFFAIR].reports()
        lines += _family(
            "obrady_offair_alarm",
            "gauge",
            "1 while the public live stream, watched as a viewer would, is not as it should be.",
            [({"chamber": r["chamber"]}, 1.0 if r.get("alarm") else 0.0) for r in reports],
        )
        lines += _family(
            "obrady_offair_problem",
            "gauge",
            "1 while the off-air monitor sees the problem (whether or not it is an alarm).",
            [
                ({"chamber": r["chamber"], "problem": p}, 1.0 if p in r["problems"] else 0.0)
                for r in reports
                for p in PROBLEMS
            ],
        )
    states = {"scheduled": 0, "live": 0}
    for session in sessions:
        states[session.state] = states.get(session.state, 0) + 1
    lines += _family(
        "obrady_sessions",
        "gauge",
        "Sessions by state (scheduled, live).",
        [({"state": k}, v) for k, v in sorted(states.items())],
    )
    return web.Response(
        text="\n".join(lines) + "\n",
        content_type="text/plain",
        headers={"Cache-Control": "no-store"},
    )
