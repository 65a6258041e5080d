"""The off-air watch's judgement on its own: the live edge read from real playlists (rendered by
the live edge's own renderer), and the verdict at chosen moments (monotonic seconds passed in)."""

from __future__ import annotations

from typing import Any

import pytest

from streaming.services.offair import (
    START_SECONDS,
    VLC_START_SECONDS,
    EdgePosition,
    EdgeWatch,
    assess,
    edge_still_seconds,
    parse_edge,
    player_frozen_seconds,
    segments_still_seconds,
)

LL = """#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:2
#EXT-X-PART-INF:PART-TARGET=0.200
#EXT-X-MEDIA-SEQUENCE:7
#EXT-X-PROGRAM-DATE-TIME:2026-12-07T08:00:00.000Z
#EXT-X-PART:DURATION=0.20000,URI="p/7.0.ts",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.20000,URI="p/7.1.ts"
#EXTINF:2.00000,
s/7-cam.ts
#EXT-X-PROGRAM-DATE-TIME:2026-12-07T08:00:02.000Z
#EXT-X-PART:DURATION=0.20000,URI="p/8.0.ts",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.20000,URI="p/8.1.ts"
#EXT-X-PART:DURATION=0.20000,URI="p/8.2.ts"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="p/8.3.ts"
"""

PLAIN = """#EXTM3U
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:3
#EXTINF:2.0,
a.ts
#EXTINF:2.0,
b.ts
#EXT-X-ENDLIST
"""

STILL = edge_still_seconds(0.2)


def test_the_edge_is_the_last_segment_and_its_parts() -> None:
    assert parse_edge(LL) == EdgePosition(7, 8, 3, False, True, False, "cam")
    assert parse_edge(PLAIN) == EdgePosition(3, 4, 0, True, False, True)
    assert parse_edge("#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:0\n") is None
    with pytest.raises(ValueError):
        parse_edge('{"error": "nothing has been transmitted"}')


def test_the_standstill_allowed_keeps_detection_under_ten_seconds() -> None:
    assert edge_still_seconds(0.2) == 3.0
    assert edge_still_seconds(1.0) == 6.0
    assert segments_still_seconds(2.0) == 3.0
    assert segments_still_seconds(30.0) == 6.0
    # A fetch a second (and one that hangs gives up after 2 s): alarm within 10 s.
    assert edge_still_seconds(1.0) + 1 + 2 < 10


def test_the_player_judges_a_freeze_soon_enough_for_its_lag() -> None:
    # libvlc plays three 2 s segments behind the edge: 3 s of still picture, alarm by ~9 s.
    assert player_frozen_seconds(6.0, 2.0) == 3.0
    assert player_frozen_seconds(6.0, 1.0) == 6.0
    assert player_frozen_seconds(6.0, 6.0) == 2.0
    assert player_frozen_seconds(2.5, 1.0) == 2.5


def at(msn: int, parts: int) -> EdgePosition:
    return EdgePosition(0, msn, parts, False, True, False)


PLAYING: dict[str, Any] = {"state": "playing", "problems": []}
NOT_PLAYING: dict[str, Any] = {
    "state": "not_playing",
    "problems": ["not_playing"],
    "last_frame_age_seconds": None,
}


def moving_edge(start: float, until: float) -> EdgeWatch:
    edge = EdgeWatch(STILL, segments_still_seconds(2))
    t, parts = start, 0
    while t <= until:
        edge.saw(at(0, parts), t)
        parts += 1
        t += 1.0
    return edge


def test_a_healthy_start_is_starting_then_playing() -> None:
    edge = EdgeWatch(STILL, 3.0)
    edge.failed("HTTP 404 Not Found", 0.5)  # nothing transmitted yet
    verdict = assess(now=1, expected_since=0, slate=False, edge=edge, player=NOT_PLAYING)
    assert verdict.causes == {} and verdict.starting
    edge = moving_edge(1.0, 15.0)
    # The player still buffers 14 s after the first part: starting, not an alarm.
    verdict = assess(now=15, expected_since=0, slate=False, edge=edge, player=NOT_PLAYING)
    assert verdict.causes == {} and verdict.starting
    verdict = assess(now=15, expected_since=0, slate=False, edge=edge, player=PLAYING)
    assert verdict.causes == {} and not verdict.starting
    # A player that never plays a moving stream is an alarm once its allowance is over.
    edge = moving_edge(1.0, 1.0 + VLC_START_SECONDS + 1)
    verdict = assess(
        now=1.0 + VLC_START_SECONDS + 1,
        expected_since=0,
        slate=False,
        edge=edge,
        player=NOT_PLAYING,
    )
    assert list(verdict.causes) == ["not_playing"]


def test_no_part_within_the_start_window_is_an_alarm() -> None:
    edge = EdgeWatch(STILL, 3.0)
    for t in range(int(START_SECONDS) + 2):
        edge.failed("HTTP 404 Not Found", float(t))
    verdict = assess(now=START_SECONDS - 1, expected_since=0, slate=False, edge=edge, player={})
    assert verdict.causes == {} and verdict.starting
    verdict = assess(now=START_SECONDS + 1, expected_since=0, slate=False, edge=edge, player={})
    assert list(verdict.causes) == ["playlist_unreachable"]
    assert "HTTP 404" in verdict.causes["playlist_unreachable"]
    # Reachable, but an old ended playlist: no part since the stream was due.
    edge = EdgeWatch(STILL, 3.0)
    ended = EdgePosition(0, 5, 0, True, True, True)
    for t in range(int(START_SECONDS) + 2):
        edge.saw(ended, float(t))
    verdict = assess(now=START_SECONDS + 1, expected_since=0, slate=False, edge=edge, player={})
    assert list(verdict.causes) == ["edge_still"]


def test_a_still_edge_is_an_alarm_whatever_the_player_says() -> None:
    edge = moving_edge(0.0, 30.0)
    for t in (31.0, 32.0):
        edge.saw(at(0, 30), t)  # no new part since 30 s
    verdict = assess(now=32.0, expected_since=0, slate=False, edge=edge, player=PLAYING)
    assert verdict.causes == {}
    edge.saw(at(0, 30), 34.0)
    verdict = assess(now=34.0, expected_since=0, slate=False, edge=edge, player=PLAYING)
    assert list(verdict.causes) == ["edge_still"]
    assert "has not gained a part for 4 s" in verdict.causes["edge_still"]
    # The player's stall is explained by the playlist: only the playlist's cause.
    verdict = assess(now=34.0, expected_since=0, slate=False, edge=edge, player=NOT_PLAYING)
    assert list(verdict.causes) == ["edge_still"]
    # It moves again: no alarm, and the player gets its start allowance again.
    edge.saw(at(0, 31), 35.0)
    verdict = assess(now=35.0, expected_since=0, slate=False, edge=edge, player=NOT_PLAYING)
    assert verdict.causes == {} and verdict.starting


def test_one_failed_fetch_is_not_yet_unreachable() -> None:
    edge = moving_edge(0.0, 30.0)
    edge.failed("timed out", 31.0)
    verdict = assess(now=31.0, expected_since=0, slate=False, edge=edge, player=PLAYING)
    assert verdict.causes == {}
    edge.failed("timed out", 34.0)
    verdict = assess(now=34.0, expected_since=0, slate=False, edge=edge, player=PLAYING)
    assert list(verdict.causes) == ["playlist_unreachable"]


def test_frozen_and_silent_are_alarms_except_on_a_slate() -> None:
    edge = moving_edge(0.0, 30.0)
    player = {
        "state": "frozen",
        "problems": ["frozen", "silent"],
        "picture_unchanged_seconds": 6.2,
        "sound_quiet_seconds": 7.0,
    }
    verdict = assess(now=30.0, expected_since=0, slate=False, edge=edge, player=player)
    assert verdict.causes == {
        "frozen": "the public picture has not changed for 6 s",
        "silent": "the public stream has been silent for 7 s",
    }
    verdict = assess(now=30.0, expected_since=0, slate=True, edge=edge, player=player)
    assert verdict.causes == {}
    black = {"state": "black", "problems": ["black"]}
    verdict = assess(now=30.0, expected_since=0, slate=True, edge=edge, player=black)
    assert list(verdict.causes) == ["black"]


def test_nothing_is_wrong_when_nothing_is_due() -> None:
    edge = EdgeWatch(STILL, 3.0)
    edge.failed("HTTP 404 Not Found", 100.0)
    verdict = assess(now=100.0, expected_since=None, slate=False, edge=edge, player=NOT_PLAYING)
    assert verdict.causes == {} and not verdict.starting


def test_a_slate_is_excused_while_a_player_may_still_play_it() -> None:
    edge = EdgeWatch(STILL, 3.0, slate_tail=6.0)
    slate = parse_edge(LL.replace("s/7-cam.ts", "s/7-slate.ts"))
    assert slate is not None and slate.camera == "slate"
    edge.saw(slate, 0.0)
    silent = {"state": "silent", "problems": ["silent"], "sound_quiet_seconds": 8}
    for t in (1.0, 2.0, 3.0, 4.0, 5.0):
        edge.saw(EdgePosition(0, int(t), 0, False, True, False, "cam"), t)
    # The program is the room again, but the slate was on the edge 5 s ago.
    verdict = assess(now=5.0, expected_since=-60, slate=False, edge=edge, player=silent)
    assert verdict.causes == {}
    edge.saw(EdgePosition(0, 6, 0, False, True, False, "cam"), 6.0)
    verdict = assess(now=6.0, expected_since=-60, slate=False, edge=edge, player=silent)
    assert list(verdict.causes) == ["silent"]


def test_while_a_fetch_hangs_the_playlist_names_the_cause() -> None:
    edge = moving_edge(0.0, 30.0)
    # The next fetches hang (no answer yet): at 33.5 s the edge is overdue, but the last
    # finished fetch (30 s) saw it move: no verdict yet, not even the player's stall.
    verdict = assess(now=33.5, expected_since=0, slate=False, edge=edge, player=NOT_PLAYING)
    assert verdict.causes == {}
    edge.failed("no answer within 2 s", 33.6)
    verdict = assess(now=33.7, expected_since=0, slate=False, edge=edge, player=NOT_PLAYING)
    assert list(verdict.causes) == ["playlist_unreachable"]
    assert verdict.causes["playlist_unreachable"].endswith("no answer within 2 s")
    # Nothing finishes any more (the fetching itself stuck): still an alarm.
    verdict = assess(now=40.0, expected_since=0, slate=False, edge=edge, player=PLAYING)
    assert verdict.causes["playlist_unreachable"].startswith("no fetch of the public live")


def test_silence_and_stillness_under_a_slate_count_only_once_it_may_have_left_the_player() -> None:
    """After a break, the player's silence began under the slate (silent by design): it is an
    alarm only once it lasts `silent_after` past the slate's tail, and says how long since."""
    edge = moving_edge(0, 60)
    edge.slate_seen_at = 10.0  # the slate was the newest segment until 10 s; its tail is 8 s
    quiet = {
        "state": "playing",
        "problems": ["silent", "frozen"],
        "sound_quiet_seconds": 14.0,
        "picture_unchanged_seconds": 14.0,
    }
    limits = {"silent_after": 6.0, "frozen_after": 4.0}
    # 3 s after the tail: neither is an alarm yet (the player's 14 s began under the slate).
    verdict = assess(now=21.0, expected_since=0, slate=False, edge=edge, player=quiet, **limits)
    assert verdict.causes == {}
    # 5 s after: frozen for more than its 4 s, silent not yet for its 6 s.
    verdict = assess(now=23.0, expected_since=0, slate=False, edge=edge, player=quiet, **limits)
    assert list(verdict.causes) == ["frozen"]
    assert verdict.causes["frozen"] == "the public picture has not changed for 5 s"
    # 7 s after: both, each for as long as the room has been on air in the player.
    verdict = assess(now=25.0, expected_since=0, slate=False, edge=edge, player=quiet, **limits)
    assert verdict.causes["silent"] == "the public stream has been silent for 7 s"
    # Without a slate before, the player's own count stands.
    edge.slate_seen_at = None
    verdict = assess(now=21.0, expected_since=0, slate=False, edge=edge, player=quiet, **limits)
    assert verdict.causes["silent"] == "the public stream has been silent for 14 s"
