"""Prometheus metrics at /metrics: captures, disk, sessions and the off-air watch.

Every scrape builds a fresh registry with one collector that reads the app's state as it is
collected; prometheus_client writes (and escapes) the text exposition format.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from archive.records import Session
from recorder.audiohub import RATE
from recorder.supervisor import CaptureStatus
from streaming.api.search import search_status
from streaming.hls.viewers import live_viewers
from streaming.keys import (
    ANALYZER,
    ARCHIVE,
    CLOCK,
    DISK,
    INDEXER,
    OFFAIR,
    PUSHERS,
    RECORDER,
    SETTINGS,
)
from streaming.services.backup import backup_status
from streaming.services.offair import CAUSES, PROBLEMS

routes = web.RouteTableDef()

CAPTURE = ("chamber", "session", "camera")
PUSH = ("chamber", "destination")
SOUND = ("chamber", "session")


def _capture(c: CaptureStatus) -> tuple[str, str, str]:
    return (c.chamber_id, str(c.session_id), c.camera_id)


def _family(
    name: str,
    kind: str,
    help_text: str,
    labels: Sequence[str],
    samples: Iterable[tuple[Sequence[str], float]],
) -> Metric:
    family = (CounterMetricFamily if kind == "counter" else GaugeMetricFamily)(
        name, help_text, labels=labels
    )
    for values, value in samples:
        family.add_metric(values, value)
    return family


class _AppCollector(Collector):
    """The service's figures, read from the app when the registry is collected."""

    def __init__(self, app: web.Application, sessions: Sequence[Session]) -> None:
        self._app = app
        self._sessions = sessions

    def collect(self) -> Iterator[Metric]:
        app = self._app
        recorder = app[RECORDER]
        disk = app[DISK].snapshot()
        now = app[CLOCK]()
        captures = recorder.statuses()
        yield _family(
            "obrady_capture_up",
            "gauge",
            "1 while the capture's ffmpeg records.",
            CAPTURE,
            [(_capture(c), 1.0 if c.state == "recording" else 0.0) for c in captures],
        )
        yield _family(
            "obrady_capture_restarts_total",
            "counter",
            "ffmpeg restarts of the capture.",
            CAPTURE,
            [(_capture(c), c.restarts) for c in captures],
        )
        yield _family(
            "obrady_capture_segments_total",
            "counter",
            "Segments recorded.",
            CAPTURE,
            [(_capture(c), c.segments) for c in captures],
        )
        yield _family(
            "obrady_capture_bitrate_bits_per_second",
            "gauge",
            "Bit rate of the last recorded segment.",
            CAPTURE,
            [(_capture(c), c.bytes_per_second * 8) for c in captures],
        )
        yield _family(
            "obrady_capture_last_segment_age_seconds",
            "gauge",
            "Seconds since the capture's last segment was finished.",
            CAPTURE,
            [
                (_capture(c), (now - c.last_segment_at).total_seconds())
                for c in captures
                if c.last_segment_at is not None
            ],
        )
        yield _family(
            "obrady_capture_fps",
            "gauge",
            "Frames per second received from the source over the last seconds.",
            CAPTURE,
            [(_capture(c), c.fps) for c in captures if c.fps is not None],
        )
        yield _family(
            "obrady_capture_frames_dropped_total",
            "counter",
            "Frames a re-encode dropped because it fell behind real time.",
            CAPTURE,
            [(_capture(c), c.frames_dropped) for c in captures],
        )
        hubs = recorder.hubs()
        yield _family(
            "obrady_chamber_sound_silent_seconds_total",
            "counter",
            "Seconds of silence a chamber's shared sound sent because its source had none.",
            SOUND,
            [((h.chamber, str(sid)), h.status.samples_silent / RATE) for sid, h in hubs],
        )
        yield _family(
            "obrady_chamber_sound_receiving",
            "gauge",
            "1 while a chamber's shared sound receives sound from its source.",
            SOUND,
            [
                ((h.chamber, str(sid)), float(h.status.source_state == "receiving"))
                for sid, h in hubs
            ],
        )
        index = app[INDEXER].status()
        yield _family(
            "obrady_index_backlog",
            "gauge",
            "Archive writes queued behind capture (runs, segments).",
            (),
            [((), index["backlog"])],
        )
        yield _family(
            "obrady_index_behind_seconds",
            "gauge",
            "Age of the oldest archive write still queued.",
            (),
            [((), index["behind_seconds"])],
        )
        yield _family(
            "obrady_index_retries_total",
            "counter",
            "Archive writes tried again because the database was busy or unwell.",
            (),
            [((), index["retries"])],
        )
        yield _family(
            "obrady_index_dropped_total",
            "counter",
            "Archive writes given up (the media stay on disk).",
            (),
            [((), index["dropped"])],
        )
        pushes = app[PUSHERS]
        yield _family(
            "obrady_push_up",
            "gauge",
            "1 while the program is being pushed to the destination.",
            PUSH,
            [
                (
                    (p.status.chamber_id, p.status.name),
                    1.0 if p.status.state == "pushing" else 0.0,
                )
                for p in pushes
            ],
        )
        yield _family(
            "obrady_push_restarts_total",
            "counter",
            "Reconnections to the destination.",
            PUSH,
            [((p.status.chamber_id, p.status.name), p.status.restarts) for p in pushes],
        )
        analyzer = app[ANALYZER]
        healths = [
            (c, h)
            for c in captures
            if (h := analyzer.health((c.session_id, c.camera_id))) is not None
        ]
        yield _family(
            "obrady_source_frozen_seconds",
            "gauge",
            "Seconds the source's picture has not changed.",
            CAPTURE,
            [(_capture(c), h.frozen_seconds) for c, h in healths],
        )
        yield _family(
            "obrady_source_silent_seconds",
            "gauge",
            "Seconds the source's audio has stayed below the silence level.",
            CAPTURE,
            [(_capture(c), h.silent_seconds) for c, h in healths],
        )
        yield _family(
            "obrady_source_audio_peak_db",
            "gauge",
            "Audio peak of the last analysed segment.",
            CAPTURE,
            [(_capture(c), h.audio_max_db) for c, h in healths if h.audio_max_db is not None],
        )
        yield _family(
            "obrady_capture_blocked",
            "gauge",
            "1 while capture is held (disk full).",
            (),
            [((), 1.0 if recorder.blocked else 0.0)],
        )
        yield _family(
            "obrady_disk_free_bytes",
            "gauge",
            "Free space in the data directory.",
            (),
            [((), disk.free_bytes)],
        )
        yield _family(
            "obrady_disk_total_bytes",
            "gauge",
            "Size of the data directory's disk.",
            (),
            [((), disk.total_bytes)],
        )
        if disk.hours_left is not None:
            yield _family(
                "obrady_disk_recording_hours_left",
                "gauge",
                "Hours of recording the free space holds at the current rate.",
                (),
                [((), disk.hours_left)],
            )
        backups = backup_status(app[SETTINGS], now)
        if backups["age_seconds"] is not None:
            yield _family(
                "obrady_backup_age_seconds",
                "gauge",
                "Seconds since the last good backup finished (none before the first).",
                (),
                [((), float(backups["age_seconds"]))],
            )
        yield _family(
            "obrady_backup_failing",
            "gauge",
            "1 when the last backup failed, or none has been made.",
            (),
            [((), 1.0 if backups["last_failure"] or backups["last_good_at"] is None else 0.0)],
        )
        viewers = live_viewers(app, [c.id for c in app[SETTINGS].chambers])
        yield _family(
            "obrady_live_viewers",
            "gauge",
            "Players of the chamber's live stream now (each player counted once, not per request).",
            ("chamber",),
            [((chamber,), count) for chamber, count in viewers.items()],
        )
        if OFFAIR in app:
            reports = app[OFFAIR].reports()
            yield _family(
                "obrady_offair_alarm",
                "gauge",
                "1 while the public live stream, watched as a viewer would, is off air for "
                "this cause (see GET /api/v1/status offair for the sentence and since when).",
                ("chamber", "cause"),
                [
                    ((r["chamber"], cause), 1.0 if cause in r.get("alarm_problems", ()) else 0.0)
                    for r in reports
                    for cause in CAUSES
                ],
            )
            yield _family(
                "obrady_offair_alarms",
                "counter",
                "Off-air alarms raised since obrady started, by cause.",
                ("chamber", "cause"),
                [
                    ((r["chamber"], cause), float(r.get("alarms_total", {}).get(cause, 0)))
                    for r in reports
                    for cause in CAUSES
                ],
            )
            yield _family(
                "obrady_offair_recoveries",
                "counter",
                "Off-air alarms that ended since obrady started, by cause.",
                ("chamber", "cause"),
                [
                    ((r["chamber"], cause), float(r.get("recoveries_total", {}).get(cause, 0)))
                    for r in reports
                    for cause in CAUSES
                ],
            )
            yield _family(
                "obrady_offair_last_recovery_duration_seconds",
                "gauge",
                "How long the chamber's last off-air alarm lasted, labelled with its cause.",
                ("chamber", "cause"),
                [
                    ((r["chamber"], back["cause"]), back["duration_seconds"])
                    for r in reports
                    if (back := r.get("last_recovery"))
                ],
            )
            yield _family(
                "obrady_offair_edge_still_seconds",
                "gauge",
                "Seconds since the public live playlist last gained a part.",
                ("chamber",),
                [
                    ((r["chamber"],), r["edge"]["still_seconds"])
                    for r in reports
                    if r.get("edge", {}).get("still_seconds") is not None
                ],
            )
            yield _family(
                "obrady_offair_problem",
                "gauge",
                "1 while the off-air player sees the problem (whether or not it is an alarm).",
                ("chamber", "problem"),
                [
                    ((r["chamber"], p), 1.0 if p in r["problems"] else 0.0)
                    for r in reports
                    for p in PROBLEMS
                ],
            )
        search = search_status(app[ARCHIVE])
        yield _family(
            "obrady_search_dictionaries_loaded",
            "gauge",
            "1 once the search's dictionaries (lemmatiser, stemmer) are loaded.",
            (),
            [((), 1.0 if search["dictionaries_loaded"] else 0.0)],
        )
        if search["dictionaries_load_seconds"] is not None:
            yield _family(
                "obrady_search_dictionaries_load_seconds",
                "gauge",
                "How long loading the search's dictionaries took.",
                (),
                [((), search["dictionaries_load_seconds"])],
            )
        yield _family(
            "obrady_search_running",
            "gauge",
            "Searches running now.",
            (),
            [((), search["running"])],
        )
        yield _family(
            "obrady_search_waiting",
            "gauge",
            "Searches waiting for a free search slot.",
            (),
            [((), search["waiting"])],
        )
        states = {"scheduled": 0, "live": 0}
        for session in self._sessions:
            states[session.state] = states.get(session.state, 0) + 1
        yield _family(
            "obrady_sessions",
            "gauge",
            "Sessions by state (scheduled, live).",
            ("state",),
            [((k,), v) for k, v in sorted(states.items())],
        )


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """Current figures for monitoring."""
    archive = request.app[ARCHIVE]
    sessions = await archive.call(archive.index.active_sessions)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_AppCollector(request.app, sessions))
    return web.Response(
        body=generate_latest(registry),
        headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"},
    )
