"""The off-air watch: what the public receives from each chamber's live URL, judged against what
should be on air.

Two kinds of evidence, both taken from the URL the public uses (`watched_url`):

- the public live playlist itself, fetched about once a second (`EdgeWatch`): when its live
  edge (the last segment's media sequence number and its parts) last moved;
- one libvlc player per chamber (`recorder.offair.OffAirMonitor`): whether a real player gets
  pictures, and whether they are black or frozen and the sound silent.

While something should be on air (a live session, or the slate before one), these are alarms,
each with its cause (a stable word, fit for a metric label, and a sentence):

- "playlist_unreachable": the playlist could not be fetched (the error is given), and its edge
  has not been seen to move for `still_after` seconds;
- "edge_still": the playlist has not gained a part for `still_after` seconds (see
  `edge_still_seconds`: 3 s with 0.2 s parts; detected within about 5 s), or, at a session's
  start, no part appeared within START_SECONDS;
- "not_playing": the player gets no pictures although the playlist has moved for
  VLC_START_SECONDS (libvlc needs several seconds to start playing; until then it is
  "starting");
- "black", "frozen", "silent": what the player shows and plays ("frozen" sooner than for a
  source, see `player_frozen_seconds`). A slate is a still picture with silence by design, so
  "frozen" and "silent" are not alarms while one is on air, or may still be in the player.

Alarms are logged when they begin; recoveries when they end, with the cause and how long it
lasted (the last one is kept). Both are in GET /api/v1/status, /metrics and the console.
"""

from __future__ import annotations

import asyncio
import http.client
import logging
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Self

from archive.index import AsyncArchive
from config.settings import Settings
from recorder.lifecycle import TaskSet
from recorder.offair import OffAirMonitor
from streaming.services.control import SLATE, ProgramSelector

log = logging.getLogger(__name__)
CHECK_SECONDS: Final = 1.0
# The playlist is fetched this often, and a fetch gives up after FETCH_TIMEOUT_SECONDS.
EDGE_CHECK_SECONDS: Final = 1.0
FETCH_TIMEOUT_SECONDS: Final = 2.0
MAX_PLAYLIST_BYTES: Final = 1 << 20
# At a session's start the public playlist must show a part within this many seconds.
START_SECONDS: Final = 10.0
# libvlc may take this long to play after the playlist first has parts. Measured here with the
# demo's settings (2 s segments, 0.2 s parts): its first picture about 5.5 s after the first
# part (it waits for complete segments), "playing" then at once (OffAirMonitor.retry_soon;
# 9 to 10 s before, when its outage recovery added 4 s). The rest is margin for a busy
# machine (a run beside Chromium took longer). Until then a player that does not play yet
# is "starting", not an alarm.
VLC_START_SECONDS: Final = 20.0
# libvlc plays complete segments this many behind the public live edge (HOLD-BACK).
PLAYER_LAG_SEGMENTS: Final = 3
SLATE_PROBLEMS: Final = frozenset({"frozen", "silent"})
PROBLEMS: Final = ("not_playing", "black", "frozen", "silent")
# Every cause of an alarm, most telling first (a stalled or unreachable playlist explains a
# player with nothing to play).
CAUSES: Final = ("playlist_unreachable", "edge_still", "not_playing", "black", "frozen", "silent")
USER_AGENT: Final = "obrady-offair"


def watched_url(settings: Settings, chamber: str) -> str:
    """The live URL the monitor plays: the public address, else this machine's viewers' port."""
    base = settings.live.public_url
    if base is None:
        host = settings.server.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        port = settings.live.gateway_port or settings.server.port
        base = f"http://{host}:{port}"
    return f"{base.rstrip('/')}/live/{chamber}/index.m3u8"


def edge_still_seconds(part_target_seconds: float) -> float:
    """How long the public live edge may stand still before it is an alarm.

    The edge gains a part every `part_target_seconds`; at a segment's end the next one waits
    until the finished one is indexed, and a switch to or from a slate begins a new file, each
    a second or so here. Fifteen part targets, at least 3 s (3 s with the default 0.2 s
    parts), and at most 6 s, so that with a fetch a second the alarm comes within 10 s."""
    return min(6.0, max(3.0, 15 * part_target_seconds))


def segments_still_seconds(segment_seconds: float) -> float:
    """The same for a playlist without parts (a cache or proxy that drops LL-HLS): it gains a
    segment every `segment_seconds`, so 1.5 segments, within the same bounds. Segments longer
    than 4 s cannot be watched this way within 10 s; obrady's own playlist always has parts."""
    return min(6.0, max(3.0, 1.5 * segment_seconds))


def player_frozen_seconds(frozen_after_seconds: float, segment_seconds: float) -> float:
    """How long the player's picture may stand still before it counts as frozen.

    libvlc does not play LL-HLS parts: it plays complete segments, the playlist's HOLD-BACK
    (three segments) behind the live edge, so it sees a freeze about 3 × `segment_seconds`
    after the public edge carries it (measured here: 6 s with 2 s segments). For the alarm to
    come within 10 s of the freeze, the player's threshold is what remains of 9 s after that
    lag (3 s with 2 s segments), at most `monitoring.frozen_after_seconds` and at least 2 s.
    The cost: a picture that stands still that long for real (a still wide shot) reads as
    frozen sooner than a source does."""
    return max(2.0, min(frozen_after_seconds, 9.0 - PLAYER_LAG_SEGMENTS * segment_seconds))


@dataclass(frozen=True)
class EdgePosition:
    """Where a live playlist's edge is: its last segment (complete or still growing)."""

    media_sequence: int
    msn: int
    parts: int  # the last segment's parts so far
    complete: bool
    has_parts: bool  # whether the playlist lists parts at all (LL-HLS)
    ended: bool  # #EXT-X-ENDLIST: the stream stopped
    # The camera of the newest complete segment, from obrady's segment names ("s/12-slate.ts");
    # None when the names do not say.
    camera: str | None = None


def parse_edge(text: str) -> EdgePosition | None:
    """The live edge of a media playlist; None when it lists no segment yet. ValueError when the
    text is not an HLS playlist."""
    lines = [line.strip() for line in text.splitlines()]
    if not lines or lines[0] != "#EXTM3U":
        raise ValueError("not an HLS playlist (no #EXTM3U)")
    sequence = 0
    segments = 0
    open_parts = 0
    last_parts = 0
    any_parts = False
    ended = False
    camera: str | None = None
    after_extinf = False
    for line in lines:
        if after_extinf and line and not line.startswith("#"):
            after_extinf = False
            name = line.rsplit("/", 1)[-1].split("?", 1)[0]
            stem, _, camera_part = name.removesuffix(".ts").partition("-")
            camera = camera_part if stem.isdigit() and camera_part else None
            continue
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            sequence = int(line.partition(":")[2])
        elif line.startswith("#EXT-X-PART:"):
            open_parts += 1
            any_parts = True
        elif line.startswith("#EXTINF:"):
            segments += 1
            last_parts, open_parts = open_parts, 0
            after_extinf = True
        elif line == "#EXT-X-ENDLIST":
            ended = True
    if open_parts:
        return EdgePosition(sequence, sequence + segments, open_parts, False, True, ended, camera)
    if segments:
        last = sequence + segments - 1
        return EdgePosition(sequence, last, last_parts, True, any_parts, ended, camera)
    return None


def fetch_playlist(url: str, timeout: float = FETCH_TIMEOUT_SECONDS) -> str:
    """GET the playlist (blocking: run it in a thread) as the monitor's user agent, straight to
    the address (no proxy from the environment), at most MAX_PLAYLIST_BYTES. Raises OSError
    (urllib's errors, HTTP errors included), http.client.HTTPException or ValueError."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    with opener.open(request, timeout=timeout) as response:
        body: bytes = response.read(MAX_PLAYLIST_BYTES + 1)
    if len(body) > MAX_PLAYLIST_BYTES:
        raise ValueError(f"the playlist is larger than {MAX_PLAYLIST_BYTES} bytes")
    return body.decode("utf-8", "replace")


def describe_error(exc: BaseException) -> str:
    """A short sentence for a failed fetch."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    if isinstance(exc, TimeoutError):
        return f"no answer within {FETCH_TIMEOUT_SECONDS:.0f} s"
    return str(exc) or type(exc).__name__


class EdgeWatch:
    """What the public live playlist has shown of its live edge, fetch by fetch (monotonic
    seconds are passed in, so the judgement can be tested with any clock)."""

    def __init__(
        self, still_after: float, segments_still_after: float, slate_tail: float = 8.0
    ) -> None:
        self.still_after_parts = still_after
        self.still_after_segments = segments_still_after
        self.slate_tail = slate_tail
        # When the newest complete segment was last a slate's.
        self.slate_seen_at: float | None = None
        self.position: EdgePosition | None = None
        self.error: str | None = None
        self.failing_since: float | None = None
        self.checked_at: float | None = None
        # When the edge last gained something, and since when it has been moving without a
        # standstill (None: not moving now).
        self.moved_at: float | None = None
        self.flowing_since: float | None = None
        self._live_position = False

    @property
    def still_after(self) -> float:
        """The standstill allowed for the playlist as it looks now."""
        if self.position is not None and not self.position.has_parts:
            return self.still_after_segments
        return self.still_after_parts

    def saw(self, position: EdgePosition | None, now: float) -> None:
        """A fetch answered with this edge (None: no segment listed)."""
        self.checked_at = now
        self.error = None
        self.failing_since = None
        live = position is not None and not position.ended
        moved = live and (not self._live_position or position != self.position)
        if moved:
            if self.moved_at is None or self.flowing_since is None:
                self.flowing_since = now
            self.moved_at = now
        elif not live:
            self.flowing_since = None
        if position is not None and position.camera == SLATE:
            self.slate_seen_at = now
        self.position = position
        self._live_position = live
        self._stop_flowing_when_still(now)

    def failed(self, error: str, now: float) -> None:
        """A fetch failed."""
        self.checked_at = now
        self.error = error
        if self.failing_since is None:
            self.failing_since = now
        self._stop_flowing_when_still(now)

    def _stop_flowing_when_still(self, now: float) -> None:
        if self.moved_at is not None and now - self.moved_at >= self.still_after:
            self.flowing_since = None

    def shows_slate(self, now: float) -> bool:
        """Whether a player may still be playing a slate: one was the playlist's newest
        complete segment less than `slate_tail` seconds ago (a player plays complete segments,
        a little behind; after a break the slate bridges to the room's return for up to a few
        segments, after ProgramSelector already names the camera)."""
        return self.slate_seen_at is not None and now - self.slate_seen_at < self.slate_tail

    def still_seconds(self, now: float) -> float | None:
        """Seconds since the edge last moved (None: never seen moving)."""
        return None if self.moved_at is None else now - self.moved_at

    def flowing(self, now: float) -> bool:
        """Whether the public edge moves now (reached and not standing still)."""
        still = self.still_seconds(now)
        return (
            self.error is None
            and self._live_position
            and still is not None
            and still < self.still_after
        )

    def report(self, now: float) -> dict[str, Any]:
        """JSON-ready."""
        still = self.still_seconds(now)
        position = self.position
        return {
            "reachable": None if self.checked_at is None else self.error is None,
            "error": self.error,
            "media_sequence": None if position is None else position.media_sequence,
            "msn": None if position is None else position.msn,
            "parts": None if position is None else position.parts,
            "ended": None if position is None else position.ended,
            "camera": None if position is None else position.camera,
            "moving": self.flowing(now),
            "still_seconds": None if still is None else round(still, 1),
            "still_after_seconds": self.still_after,
            "checked_seconds_ago": (
                None if self.checked_at is None else round(now - self.checked_at, 1)
            ),
        }


@dataclass(frozen=True)
class Verdict:
    """One look at a chamber: what is wrong (cause → sentence), or whether it is starting."""

    causes: dict[str, str]
    starting: bool


def assess(
    *,
    now: float,
    expected_since: float | None,
    slate: bool,
    edge: EdgeWatch,
    player: dict[str, Any],
    silent_after: float | None = None,
    frozen_after: float | None = None,
) -> Verdict:
    """The judgement, from the playlist evidence and the player's status (`OffAirMonitor.status`)
    at monotonic time `now`; `expected_since` is when something became due on air (None: nothing
    is due, so nothing is wrong). `silent_after` and `frozen_after` are the player's own limits:
    with them, silence and stillness that began under a slate count only from when the slate
    may have left the player."""
    if expected_since is None:
        return Verdict({}, False)
    causes: dict[str, str] = {}
    due_for = now - expected_since
    # The edge moved since it became due (a new session's first part, or a slate's).
    moved = edge.moved_at is not None and edge.moved_at >= expected_since
    start_window = due_for < START_SECONDS and not moved
    still_after = edge.still_after
    if not start_window:
        # Judged as of the last finished fetch: one still under way may yet answer (a hung
        # server answers nothing, and the fetch gives up after FETCH_TIMEOUT_SECONDS).
        checked = edge.checked_at if edge.checked_at is not None else now
        still = None if not moved or edge.moved_at is None else checked - edge.moved_at
        overdue = still is None or still >= still_after
        silent_for = now - checked
        if (
            edge.checked_at is not None
            and silent_for > FETCH_TIMEOUT_SECONDS + 2 * EDGE_CHECK_SECONDS
        ):
            causes["playlist_unreachable"] = (
                f"no fetch of the public live playlist has finished for {silent_for:.0f} s"
            )
        elif edge.error is not None and overdue:
            failing = now - max(edge.failing_since or now, expected_since)
            causes["playlist_unreachable"] = (
                f"the public live playlist could not be fetched for {failing:.0f} s: {edge.error}"
            )
        elif not moved:
            causes["edge_still"] = (
                f"the public live playlist has gained no part in the {due_for:.0f} s since the "
                "stream was due on air"
            )
        elif overdue:
            causes["edge_still"] = (
                "the public live playlist has not gained a part for "
                f"{edge.still_seconds(now) or 0.0:.0f} s"
            )
    problems = set(player.get("problems", ()))
    if slate or edge.shows_slate(now):
        problems -= SLATE_PROBLEMS
    elif edge.slate_seen_at is not None:
        # A slate's stillness and silence count only from when it may have left the player:
        # right after a break, "silent for 10 s" must not include the break's own silence.
        since_slate = now - (edge.slate_seen_at + edge.slate_tail)
        for problem, key, after in (
            ("silent", "sound_quiet_seconds", silent_after),
            ("frozen", "picture_unchanged_seconds", frozen_after),
        ):
            quiet = player.get(key)
            if problem in problems and after is not None and quiet is not None:
                if since_slate < after:
                    problems.discard(problem)
                else:
                    player = {**player, key: min(float(quiet), since_slate)}
    player_starting = False
    if "not_playing" in problems or player.get("state") == "starting":
        flowing_for = (
            now - edge.flowing_since
            if edge.flowing_since is not None and edge.flowing(now)
            else None
        )
        if causes or start_window:
            # The playlist explains it, or nothing is due to play yet.
            problems.discard("not_playing")
            player_starting = not causes
        elif flowing_for is not None and flowing_for < VLC_START_SECONDS:
            problems.discard("not_playing")
            player_starting = True
        elif flowing_for is None:
            # The edge is overdue and a fetch is still under way: the playlist's verdict
            # (still or unreachable) comes within FETCH_TIMEOUT_SECONDS and names the cause.
            problems.discard("not_playing")
    if "not_playing" in problems:
        age = player.get("last_frame_age_seconds")
        causes["not_playing"] = (
            "the off-air player receives no picture although the public live playlist moves"
            + ("" if age is None else f" (the last came {age:.0f} s ago)")
        )
    if "black" in problems:
        causes["black"] = "the public picture is black"
    if "frozen" in problems:
        causes["frozen"] = "the public picture has not changed for " + _seconds(
            player.get("picture_unchanged_seconds")
        )
    if "silent" in problems:
        causes["silent"] = "the public stream has been silent for " + _seconds(
            player.get("sound_quiet_seconds")
        )
    ordered: dict[str, str] = {cause: causes[cause] for cause in CAUSES if cause in causes}
    return Verdict(ordered, start_window or player_starting)


def _seconds(value: Any) -> str:
    return "some seconds" if value is None else f"{float(value):.0f} s"


@dataclass
class Alarm:
    """One cause of an alarm while it lasts."""

    cause: str
    message: str
    began: datetime
    began_at: float  # monotonic

    def report(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"cause": self.cause, "message": self.message, "since": self.began.isoformat()}


class _Chamber:
    """One chamber's evidence and its alarms' history."""

    def __init__(self, monitor: OffAirMonitor, edge: EdgeWatch) -> None:
        self.monitor = monitor
        self.edge = edge
        self.expected_since: float | None = None
        self.alarms: dict[str, Alarm] = {}
        self.last_recovery: dict[str, Any] | None = None
        self.alarms_total: Counter[str] = Counter()
        self.recoveries_total: Counter[str] = Counter()
        self.report: dict[str, Any] | None = None


class OffAirWatch:
    """Keeps every chamber's monitor and playlist fetches running and the latest verdict at
    hand, while `async with watch:` lasts."""

    def __init__(
        self,
        settings: Settings,
        archive: AsyncArchive,
        program: ProgramSelector,
        clock: Callable[[], datetime],
    ) -> None:
        self._archive = archive
        self._program = program
        self._clock = clock
        monitoring = settings.monitoring
        still_after = edge_still_seconds(settings.live.part_target_seconds)
        segments_still_after = segments_still_seconds(settings.recording.segment_seconds)
        # The player plays the slate for its lag (PLAYER_LAG_SEGMENTS) after the playlist's
        # newest complete segment stopped being the slate's, and a little more.
        slate_tail = (PLAYER_LAG_SEGMENTS + 1) * settings.recording.segment_seconds
        self._silent_after = monitoring.silent_after_seconds
        self._frozen_after = player_frozen_seconds(
            monitoring.frozen_after_seconds, settings.recording.segment_seconds
        )
        self._chambers = {
            chamber.id: _Chamber(
                OffAirMonitor(
                    watched_url(settings, chamber.id),
                    frozen_after_seconds=self._frozen_after,
                    silent_below_db=monitoring.silent_below_db,
                    silent_after_seconds=monitoring.silent_after_seconds,
                    user_agent=USER_AGENT,
                ),
                EdgeWatch(still_after, segments_still_after, slate_tail),
            )
            for chamber in settings.chambers
        }
        self.monitors = {chamber: c.monitor for chamber, c in self._chambers.items()}
        self._tasks = TaskSet("off-air watch")

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def start(self) -> None:
        """Start the monitors, the playlist fetches and the judging loop."""
        for chamber, state in self._chambers.items():
            self._tasks.spawn(state.monitor.run(), name=f"offair-{chamber}")
            self._tasks.spawn(self._fetch_forever(state), name=f"offair-edge-{chamber}")
        self._tasks.spawn(self._judge_forever(), name="offair-watch")

    async def close(self) -> None:
        """Stop the monitors (libvlc released) and the loops."""
        for state in self._chambers.values():
            await state.monitor.stop()
        await self._tasks.close()

    def reports(self) -> list[dict[str, Any]]:
        """Each chamber's latest verdict, JSON-ready."""
        return [
            state.report or {"chamber": chamber, **state.monitor.status()}
            for chamber, state in self._chambers.items()
        ]

    async def _fetch_forever(self, state: _Chamber) -> None:
        url = state.monitor.url
        while True:
            began = time.monotonic()
            try:
                text = await asyncio.to_thread(fetch_playlist, url)
                position = parse_edge(text)
            except (OSError, ValueError, http.client.HTTPException) as exc:
                state.edge.failed(describe_error(exc), time.monotonic())
            else:
                flowing = state.edge.flowing(time.monotonic())
                state.edge.saw(position, time.monotonic())
                if not flowing and state.edge.flowing(time.monotonic()):
                    # The stream (re)appeared: the player need not wait out its back-off.
                    state.monitor.retry_soon()
            await asyncio.sleep(max(0.0, EDGE_CHECK_SECONDS - (time.monotonic() - began)))

    async def _judge_forever(self) -> None:
        while True:
            try:
                await self.judge()
            except Exception:
                log.exception("off-air watch failed; trying again")
            await asyncio.sleep(CHECK_SECONDS)

    async def judge(self) -> None:
        """Bring every chamber's verdict up to date; log alarms as they begin and end."""
        for chamber, state in self._chambers.items():
            live = await self._archive.call(self._archive.index.live_session, chamber)
            announcing = self._program.is_announcing(chamber)
            expected = live is not None or announcing
            slate = announcing or self._program.camera(chamber) == SLATE
            now = time.monotonic()
            if not expected:
                state.expected_since = None
            elif state.expected_since is None:
                # From the session's start when it began just now (this loop looks once a
                # second), not from a start long ago (obrady restarted during a session).
                age = 0.0
                if live is not None and live.started_at is not None:
                    age = (self._clock() - live.started_at).total_seconds()
                state.expected_since = now - min(max(age, 0.0), 2 * CHECK_SECONDS)
            player = state.monitor.status()
            verdict = assess(
                now=now,
                expected_since=state.expected_since,
                slate=slate,
                edge=state.edge,
                player=player,
                silent_after=self._silent_after,
                frozen_after=self._frozen_after,
            )
            self._update_alarms(chamber, state, verdict.causes, now)
            causes = list(state.alarms)
            shown = dict(player)
            if verdict.starting and not causes:
                shown["state"] = "starting"
            state.report = {
                "chamber": chamber,
                **shown,
                "player": player["state"],
                "expected": expected,
                # The program's slate, or one a player may still be playing.
                "slate": slate or state.edge.shows_slate(now),
                "alarm": bool(causes),
                "alarm_problems": causes,
                "alarms": [alarm.report() for alarm in state.alarms.values()],
                "last_recovery": state.last_recovery,
                "alarms_total": {cause: state.alarms_total[cause] for cause in CAUSES},
                "recoveries_total": {cause: state.recoveries_total[cause] for cause in CAUSES},
                "edge": state.edge.report(now),
            }

    def _update_alarms(
        self, chamber: str, state: _Chamber, causes: dict[str, str], now: float
    ) -> None:
        wall = self._clock()
        url = state.monitor.url
        for cause, message in causes.items():
            alarm = state.alarms.get(cause)
            if alarm is not None:
                alarm.message = message
                continue
            state.alarms[cause] = Alarm(cause, message, wall, now)
            state.alarms_total[cause] += 1
            log.error("OFF AIR: chamber %s: %s: %s (%s)", chamber, cause, message, url)
        for cause in [c for c in state.alarms if c not in causes]:
            alarm = state.alarms.pop(cause)
            lasted = now - alarm.began_at
            state.recoveries_total[cause] += 1
            state.last_recovery = {
                "cause": cause,
                "message": alarm.message,
                "began": alarm.began.isoformat(),
                "ended": wall.isoformat(),
                "duration_seconds": round(lasted, 1),
            }
            log.warning(
                "chamber %s: recovered from %s after %.0f s (it was: %s) (%s)",
                chamber,
                cause,
                lasted,
                alarm.message,
                url,
            )
