"""The gateway's fast path for the hot live routes (streaming/hls/fast.py): it answers byte
for byte as aiohttp's routes do (Date aside), holds blocking requests and answers each group
together when the live window changes, and hands every other request, with its connection, to
aiohttp.

Each test runs one gateway app with two sites: aiohttp's own TCPSite and the GatewaySite with the
fast path in front, and sends both the same raw bytes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from browser import chromium
from conftest import (
    SYNTHETIC_SOURCE,
    config_text,
    free_port,
    start_service,
    stop_service,
    wait_for,
)

from config.settings import Settings, parse_settings
from streaming.app.gateway import GatewaySite, create_gateway_app
from streaming.app.sites import ServiceSite, service_runner
from streaming.edge import llhls
from streaming.edge.llhls import EdgeReader, EdgeSnapshot, LiveSegment, Part, edge_file
from streaming.hls.fast import parse_request
from streaming.http import Connections
from streaming.keys import GATEWAY, VIEWERS

DATE = re.compile(rb"\r\nDate: [^\r]*\r\n")
SEG4 = bytes(range(256)) + bytes(range(44))  # 300 bytes: parts 0-100, 100-300
SEG5 = bytes(reversed(range(256))) * 4  # 1024 bytes: parts 0-200, 200-400, then 400-600
# What the page's player has done so far (as tests/streaming/web/test_player_browser.py reads it).
PLAYBACK = """() => {
  const v = document.getElementById('player');
  const hls = window.obradyHls;
  const parts = performance.getEntriesByType('resource').map(e => e.name);
  return {
    time: v.currentTime,
    paused: v.paused,
    lowLatency: hls ? hls.lowLatencyMode : null,
    parts: parts.filter(n => n.includes('/p/')).length,
    blocking: parts.filter(n => n.includes('_HLS_msn=')).length,
  };
}"""


def _segments(parts5: int, complete5: bool = False) -> tuple[LiveSegment, ...]:
    four = LiveSegment(
        msn=4,
        path="media/x/4.ts",
        camera="main",
        run="main/run-0001",
        started_at="2026-11-26T10:00:00+00:00",
        discontinuity=False,
        parts=[Part(0, 100, 0.2, True), Part(100, 300, 0.2, False)],
        duration=0.4,
        end=300,
    )
    five = LiveSegment(
        msn=5,
        path="media/x/5.ts",
        camera="main",
        run="main/run-0001",
        started_at="2026-11-26T10:00:00.400000+00:00",
        discontinuity=False,
        parts=[Part(200 * i, 200 * (i + 1), 0.2, i == 0) for i in range(parts5)],
        duration=0.2 * parts5 if complete5 else 0.0,
        end=200 * parts5 if complete5 else None,
    )
    return four, five


@dataclass
class Gateway:
    """One gateway app served twice: `plain` (aiohttp only) and `fast` (the GatewaySite)."""

    settings: Settings
    app: web.Application
    site: GatewaySite
    plain: int
    fast: int
    version: int = 1

    def publish(self, parts5: int, complete5: bool = False) -> None:
        """Write a new live window, as the capture process does."""
        self.version += 1
        snap = EdgeSnapshot(self.version, _segments(parts5, complete5), 0, 0.2, 1)
        path = edge_file(self.settings.data_path, "sala")
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(snap.to_json()))
        os.replace(tmp, path)


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    async with open_gateway(tmp_path) as gw:
        yield gw


@contextlib.asynccontextmanager
async def open_gateway(
    tmp_path: Path, connections: int | None = None, **runner: Any
) -> AsyncIterator[Gateway]:
    """A gateway app on two sites, its live window holding segment 4 and two parts of 5; with
    `connections`, each site holds at most that many."""
    settings = parse_settings(config_text(tmp_path / "data", free_port()))
    media = settings.data_path / "media" / "x"
    media.mkdir(parents=True)
    (media / "4.ts").write_bytes(SEG4)
    (media / "5.ts").write_bytes(SEG5)
    (settings.data_path / "live").mkdir()
    app = create_gateway_app(settings)
    app_runner = service_runner(app, access_log=None, **runner)  # as serve_gateway's
    await app_runner.setup()
    try:
        # aiohttp alone, its parser's refusals as JSON, as behind the fast path
        most = None if connections is None else Connections(connections)
        plain = ServiceSite(app_runner, "127.0.0.1", 0, connections=most)
        await plain.start()
        most = None if connections is None else Connections(connections)
        site = GatewaySite(app_runner, "127.0.0.1", 0, connections=most)
        await site.start()
        gw = Gateway(settings, app, site, plain.port, site.port)
        gw.publish(2)
        await asyncio.sleep(0.1)  # the edge reader looks every 20 ms
        yield gw
    finally:
        await app_runner.cleanup()


def request(
    target: str, method: str = "GET", extra: str = "", version: str = "1.1", agent: str = "test/1"
) -> bytes:
    """A request as a browser's would be, give or take the headers."""
    return (
        f"{method} {target} HTTP/{version}\r\nHost: gateway\r\nUser-Agent: {agent}\r\n"
        f"Accept: */*\r\n{extra}\r\n"
    ).encode()


class Client:
    """One raw connection: send bytes, read whole responses (Date replaced by "Date: -")."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Client:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    def send(self, raw: bytes) -> None:
        self.writer.write(raw)

    async def response(self, head_only: bool = False, timeout: float = 5) -> bytes:
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), timeout)
        body = b""
        if head_only:
            pass
        elif b"\r\nTransfer-Encoding: chunked\r\n" in head:
            while True:
                size = int(await asyncio.wait_for(self.reader.readline(), timeout), 16)
                chunk = await asyncio.wait_for(self.reader.readexactly(size + 2), timeout)
                body += chunk[:-2]
                if size == 0:
                    break
        else:
            match = re.search(rb"\r\nContent-Length: (\d+)\r\n", head)
            length = int(match[1]) if match else 0
            body = await asyncio.wait_for(self.reader.readexactly(length), timeout)
        return DATE.sub(b"\r\nDate: -\r\n", head) + body

    async def quiet(self, seconds: float) -> bool:
        """Whether nothing at all arrives for this many seconds (the request is held)."""
        try:
            await asyncio.wait_for(self.reader.read(1), seconds)
        except TimeoutError:
            return True
        return False

    async def closed(self, timeout: float = 5) -> bool:
        return await asyncio.wait_for(self.reader.read(1), timeout) == b""

    def close(self) -> None:
        self.writer.close()


async def both(gw: Gateway, raw: bytes, head_only: bool = False) -> tuple[bytes, bytes]:
    """The answers of the plain and the fast site to the same request (sent at once)."""

    async def one(port: int) -> bytes:
        client = await Client.open(port)
        try:
            client.send(raw)
            return await client.response(head_only)
        finally:
            client.close()

    plain, fast = await asyncio.gather(one(gw.plain), one(gw.fast))
    return plain, fast


FAST = [
    "/live/sala/index.m3u8",
    "/live/index.m3u8",
    "/live/sala/index.m3u8?_HLS_skip=YES",
    "/live/index.m3u8?_HLS_skip=v2&other=1",
    "/live/sala/index.m3u8?_HLS_msn=5&_HLS_part=1",
    "/live/sala/index.m3u8?_HLS_msn=4&_HLS_skip=YES",
    "/live/sala/index.m3u8?_HLS_msn=5&_HLS_part=0&_HLS_msn=9",
    "/live/sala/p/5.0.ts",
    "/live/sala/p/4.1.ts",
    "/live/sala/s/4-main.ts",
    # Refusals.
    "/live/kuchnia/index.m3u8",
    "/live/kuchnia/p/5.0.ts",
    "/live/sala/index.m3u8?_HLS_msn=-1",
    "/live/sala/index.m3u8?_HLS_msn=abc",
    "/live/sala/index.m3u8?_HLS_msn=",
    "/live/sala/index.m3u8?_HLS_msn=1234567890123",
    "/live/sala/index.m3u8?_HLS_msn=99",
    "/live/sala/index.m3u8?_HLS_part=1",
    "/live/sala/index.m3u8?_HLS_msn=5&_HLS_part=1001",
    "/live/sala/index.m3u8?_HLS_skip=NO",
    "/live/sala/p/x.ts",
    "/live/sala/p/1.0.ts",
    "/live/sala/p/9.0.ts",
    "/live/sala/s/5-main.ts",
    "/live/sala/s/4-other.ts",
    "/live/sala/s/nope.ts",
]


@pytest.mark.parametrize("target", FAST)
async def test_the_fast_path_answers_as_aiohttp_does(gateway: Gateway, target: str) -> None:
    before = gateway.site.fast.answered
    plain, fast = await both(gateway, request(target))
    assert fast == plain
    assert gateway.site.fast.answered == before + 1  # and it was the fast path that did


async def test_the_date_is_written_as_aiohttp_writes_it(gateway: Gateway) -> None:
    dates = []
    for port in (gateway.plain, gateway.fast):
        client = await Client.open(port)
        client.send(request("/live/sala/index.m3u8"))
        head = await asyncio.wait_for(client.reader.readuntil(b"\r\n\r\n"), 5)
        client.close()
        match = re.search(rb"\r\nDate: ([^\r]*)\r\n", head)
        assert match is not None
        dates.append(match[1].decode())
    for date in dates:
        assert re.fullmatch(r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT", date)
    plain, fast = (parsedate_to_datetime(d) for d in dates)
    assert abs((fast - plain).total_seconds()) <= 1


# Requests for aiohttp: passed on one by one ("passed"), or with the connection for good
# ("left") when their length is not certain.
OTHERS = [
    (request("/live/sala/index.m3u8", "HEAD"), "passed"),
    (request("/live/sala/index.m3u8", version="1.0"), "passed"),
    (request("/live/sala/index.m3u8", extra="Connection: close\r\n"), "passed"),
    (request("/live/s%61la/index.m3u8"), "passed"),
    (request("/live/./sala/index.m3u8"), "passed"),
    (request("/live//index.m3u8"), "passed"),
    (request("/live/sala/index.m3u8?_HLS_skip=%59ES"), "passed"),
    (request("/live/sala/viewers"), "passed"),
    (request("/live/sala/p/5.0.ts", "POST", "Content-Length: 2\r\n") + b"{}", "passed"),
    (request("/live/sala/viewers", "POST", "Content-Length: 4\r\n") + b"{}{}", "passed"),
    (request("/static/nothing-here.css"), "passed"),
    (request("/", "BREW"), "passed"),
    (b"GET /live/sala/index.m3u8 HTTP/1.1\r\nHost: gateway\r\n\r\n", "fast"),
    (request("/live/sala/p/5.0.ts", extra="Transfer-Encoding: chunked\r\n") + b"0\r\n\r\n", "left"),
    (request("/live/sala/index.m3u8", extra="X-Long: " + "a" * 9000 + "\r\n"), "left"),
    (request("/live/sala/index.m3u8", extra="Content-Length: 1\r\nContent-Length: 1\r\n"), "left"),
    (request("/live/sala/index.m3u8", extra="Content-Length: +1\r\n") + b"x", "left"),
    (request("/live/sala/index.m3u8", extra="Expect: 100-continue\r\n"), "left"),
    (request("/live/sala/index.m3u8", extra="Upgrade: websocket\r\n"), "left"),
    (b"GET /live/sala/index.m3u8 HTTP/1.1\nHost: gateway\n\n", "left"),
]


@pytest.mark.parametrize(("raw", "how"), OTHERS, ids=range(len(OTHERS)))
async def test_other_requests_are_answered_by_aiohttp(
    gateway: Gateway, raw: bytes, how: str
) -> None:
    fast = gateway.site.fast
    before = (fast.answered, fast.passed, fast.left)
    plain, answer = await both(gateway, raw, head_only=raw.startswith(b"HEAD"))
    assert answer == plain
    counts = {
        "fast": (before[0] + 1, before[1], before[2]),
        "passed": (before[0], before[1] + 1, before[2]),
        "left": (before[0], before[1], before[2] + 1),
    }
    assert (fast.answered, fast.passed, fast.left) == counts[how]


async def test_after_aiohttps_answer_the_connection_is_the_fast_paths_again(
    gateway: Gateway,
) -> None:
    # A browser's connection: the page, a beacon, the player's requests, the page's polling.
    client = await Client.open(gateway.fast)
    try:
        for raw in (
            request("/static/nothing-here.css"),
            request("/live/sala/index.m3u8"),
            request(
                "/live/sala/viewers",
                "POST",
                "Content-Type: application/json\r\nContent-Length: 21\r\n",
            )
            + b'{"id": "viewer-0001"}',
            request("/live/sala/p/5.0.ts"),
            request("/live/sala/index.m3u8", "HEAD"),
            request("/live/sala/index.m3u8?_HLS_msn=5&_HLS_part=1&_HLS_skip=YES"),
        ):
            client.send(raw)
            answer = await client.response(head_only=raw.startswith(b"HEAD"))
            assert answer.split(b"\r\n")[0] in (
                b"HTTP/1.1 200 OK",
                b"HTTP/1.1 204 No Content",
                b"HTTP/1.1 404 Not Found",
            ), answer
        fast = gateway.site.fast
        assert (fast.answered, fast.passed, fast.left) == (3, 3, 0)
        assert gateway.app[VIEWERS].count("sala") == 1
    finally:
        client.close()


def test_what_the_fast_path_takes() -> None:
    taken = parse_request(
        b"GET /live/sala/index.m3u8?_HLS_msn=1&_HLS_part=2&_HLS_skip=YES HTTP/1.1\r\n"
        b"Host: x\r\nUser-Agent: a b\r\nUser-Agent: c\r\nConnection: Keep-Alive\r\n"
        b"X-Forwarded-For: 10.0.0.1, 10.0.0.2"
    )
    assert taken is not None
    assert (taken.route, taken.chamber, taken.query) == (
        "playlist",
        "sala",
        {"_HLS_msn": "1", "_HLS_part": "2", "_HLS_skip": "YES"},
    )
    assert (taken.agent, taken.forwarded) == ("a b", "10.0.0.1, 10.0.0.2")
    part = parse_request(b"GET /live/sala/p/7.3.ts HTTP/1.1")
    assert part is not None and (part.route, part.name) == ("part", "7.3.ts")
    default = parse_request(b"GET /live/index.m3u8 HTTP/1.1")
    assert default is not None and default.chamber is None
    for head in (
        b"GET /live/index.m3u8 HTTP/1.1\r\nHost: a\nb",  # a bare LF
        b"GET /live/index.m3u8 HTTP/1.1\r\nHost: a\rb",  # a bare CR
        b"GET /live/index.m3u8 HTTP/1.1\r\nHost: a\x00",
        b"GET /live/index.m3u8 HTTP/1.1\r\n Host: a",  # a folded line
        b"GET /live/index.m3u8 HTTP/1.1\r\nHost : a",
        b"GET /live/index.m3u8 HTTP/1.1\r\nUser-Agent: \xc5\xbc",
        b"GET /live/index.m3u8 HTTP/1.1\r\nUpgrade: websocket",
        b"GET /live/index.m3u8 HTTP/1.1\r\nExpect: 100-continue",
        b"GET /live/index.m3u8 HTTP/1.1\r\nConnection: keep-alive, Upgrade",
        b"GET  /live/index.m3u8 HTTP/1.1",
        b"GET /live/index.m3u8 HTTP/1.1 x",
        b"GET http://gateway/live/index.m3u8 HTTP/1.1",
        b"GET /live/sala/index.m3u8#x HTTP/1.1",
        b"GET /live/sala/index.m3u8?a;b HTTP/1.1",
        b"GET /live/sala/index.m3u8/ HTTP/1.1",
        b"GET /live/sala/../sala/index.m3u8 HTTP/1.1",
        b"GET /live/p/1.0.ts HTTP/1.1",
        b"GET /live/sala/q/1.0.ts HTTP/1.1",
        b"GET /live/sala/{x}/index.m3u8 HTTP/1.1",
        b"GET /livestream/index.m3u8 HTTP/1.1",
        b"get /live/index.m3u8 HTTP/1.1",
        b"GET /live/index.m3u8 HTTP/1.1" + b"\r\nA: b" * 101,
    ):
        assert parse_request(head) is None, head


async def test_held_requests_are_answered_together_when_the_part_appears(
    gateway: Gateway,
) -> None:
    reload = request("/live/sala/index.m3u8?_HLS_msn=5&_HLS_part=2&_HLS_skip=YES")
    part = request("/live/sala/p/5.2.ts")
    clients = []
    for port in (gateway.plain, gateway.fast, gateway.fast, gateway.fast):
        for raw in (reload, part):
            client = await Client.open(port)
            client.send(raw)
            clients.append(client)
    try:
        fast = gateway.site.fast

        async def all_held() -> bool:  # the three fast-path players' reloads and parts
            groups = fast._held.get("sala", {}).values()
            return sum(len(group.members) for group in groups) == 6

        await wait_for(all_held, 5, "the fast path to hold its six requests")
        for client in clients:
            assert await client.quiet(0.02)  # held
        began = time.monotonic()
        gateway.publish(3)
        answers = [await client.response() for client in clients]
        assert time.monotonic() - began < 1
    finally:
        for client in clients:
            client.close()
    playlist, media = answers[0], answers[1]
    assert playlist.startswith(b"HTTP/1.1 200 OK\r\nCache-Control: public, max-age=6\r\n")
    assert b'#EXT-X-PART:DURATION=0.20000,URI="p/5.2.ts"' in playlist
    assert b'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="p/5.3.ts"' in playlist
    assert media.endswith(SEG5[400:600])
    assert answers[2::2] == [playlist] * 3 and answers[3::2] == [media] * 3
    assert not any(gateway.site.fast._held["sala"].values())


async def test_a_held_request_is_bounded_as_aiohttps_is(gateway: Gateway) -> None:
    # The target duration is 1 s: a blocking request waits 3 s at most, then a 503.
    raws = [request("/live/sala/index.m3u8?_HLS_msn=6"), request("/live/sala/p/6.0.ts")]
    began = time.monotonic()
    answers = await asyncio.gather(*(both(gateway, raw) for raw in raws))
    assert 2.9 < time.monotonic() - began < 4.5
    for plain, fast in answers:
        assert fast == plain and fast.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert not gateway.site.fast._held["sala"]


async def test_pipelined_requests_keep_their_order(
    gateway: Gateway,
) -> None:
    client = await Client.open(gateway.fast)
    try:
        client.send(
            request("/live/sala/p/5.2.ts")
            + request("/live/sala/index.m3u8")
            + request("/live/sala/index.m3u8", "HEAD")
            + request("/live/sala/p/5.0.ts")
            + request("/live/sala/index.m3u8", extra="Transfer-Encoding: chunked\r\n")
            + b"0\r\n\r\n"
            + request("/live/sala/p/4.0.ts")
        )
        assert await client.quiet(0.3)  # the first one is held, so are the others
        gateway.publish(3)
        first = await client.response()
        listing = await client.response()
        head = await client.response(head_only=True)
        part = await client.response()
        chunked = await client.response(head_only=True)  # a chunked playlist: its head
        assert first.endswith(SEG5[400:600])
        assert b'URI="p/5.2.ts"' in listing
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n")
        assert part.endswith(SEG5[0:200])
        assert chunked.startswith(b"HTTP/1.1 200 OK\r\n")
        fast = gateway.site.fast
        assert (fast.answered, fast.passed, fast.left) == (3, 1, 1)
    finally:
        client.close()


async def test_a_player_gone_while_held_leaves_nothing_behind(gateway: Gateway) -> None:
    clients = [await Client.open(gateway.fast) for _ in range(3)]
    for client in clients:
        client.send(request("/live/sala/p/5.2.ts"))
    fast = gateway.site.fast

    async def held(count: int) -> bool:
        groups = fast._held.get("sala", {})
        if count == 0:
            return groups == {} and fast.busy == set()
        group = groups.get(("part", 5, 2))
        return group is not None and len(group.members) == count

    await wait_for(lambda: held(3), 5, "three players held for part 5.2")
    for client in clients:
        client.close()
    await wait_for(lambda: held(0), 5, "nothing held once the players are gone")
    gateway.publish(3)  # nobody to answer
    await asyncio.sleep(0.2)


async def test_a_segment_cut_short_answers_its_held_parts_with_404(gateway: Gateway) -> None:
    raws = [request("/live/sala/p/5.3.ts")]
    pending = asyncio.gather(*(both(gateway, raw) for raw in raws))
    await asyncio.sleep(0.3)
    gateway.publish(3, complete5=True)  # ended with three parts: there is no 5.3
    [(plain, fast)] = await pending
    assert fast == plain and fast.startswith(b"HTTP/1.1 404 Not Found\r\n")
    assert b"segment 5 has no part 3" in fast


async def test_viewers_are_counted_once_per_player(gateway: Gateway) -> None:
    for agent in ("vlc/A", "vlc/A", "web/B", "obrady-offair/1"):
        client = await Client.open(gateway.fast)
        client.send(request("/live/sala/p/5.0.ts", agent=agent))
        await client.response()
        client.send(request("/live/sala/index.m3u8", agent=agent))
        await client.response()
        client.close()
    # Players, not requests or connections; obrady's own off-air monitor is no viewer.
    assert gateway.app[VIEWERS].count("sala") == 2
    client = await Client.open(gateway.fast)
    for forwarded in ("10.0.0.1", "10.0.0.2, 127.0.0.1", "10.0.0.1"):
        client.send(request("/live/sala/index.m3u8", extra=f"X-Forwarded-For: {forwarded}\r\n"))
        await client.response()
    client.close()
    # Behind a proxy on this machine, the address it forwarded.
    assert gateway.app[VIEWERS].count("sala") == 4


async def test_a_user_agent_that_is_not_utf8_is_still_a_viewer(gateway: Gateway) -> None:
    raw = b"GET /live/sala/index.m3u8 HTTP/1.1\r\nHost: x\r\nUser-Agent: \xff\xfe\r\n\r\n"
    plain, fast = await both(gateway, raw)
    assert fast == plain and fast.startswith(b"HTTP/1.1 200 OK\r\n")
    assert gateway.app[VIEWERS].count("sala") == 1


async def test_idle_connections_are_closed_busy_ones_not(tmp_path: Path) -> None:
    async with open_gateway(tmp_path, keepalive_timeout=0.5) as gateway:
        idle = await Client.open(gateway.fast)
        busy = await Client.open(gateway.fast)
        try:
            began = time.monotonic()
            while time.monotonic() - began < 1.5:  # fast requests only, for 3 keep-alives
                busy.send(request("/live/sala/index.m3u8"))
                assert (await busy.response()).startswith(b"HTTP/1.1 200 OK\r\n")
                await asyncio.sleep(0.1)
            assert idle.reader.at_eof() and not busy.reader.at_eof()
            assert await busy.closed(timeout=2)
        finally:
            idle.close()
            busy.close()


async def _dribble(client: Client, seconds: float) -> bool:
    """Send a request head a byte at a time, never ending it; whether the server closed the
    connection within `seconds`."""
    client.send(b"GET /live/sala/index.m3u8 HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    deadline = time.monotonic() + seconds
    with contextlib.suppress(ConnectionError):
        while time.monotonic() < deadline:
            if not await client.quiet(0.1):
                return True
            client.send(b"a")
    return client.reader.at_eof()


async def test_a_head_that_never_ends_is_cut_a_held_request_is_not(tmp_path: Path) -> None:
    # A slow-header client (slowloris) kept a connection, and a file descriptor, for aiohttp's
    # default keep-alive of 3630 s: 1,500 of them took every file obrady serve could open,
    # and capture with them (bench/hostile_load.py).
    async with open_gateway(tmp_path, keepalive_timeout=0.5) as gateway:
        slow = [await Client.open(gateway.plain), await Client.open(gateway.fast)]
        held = await Client.open(gateway.fast)
        try:
            held.send(request("/live/sala/p/5.2.ts"))
            began = time.monotonic()
            cut = await asyncio.gather(*(_dribble(client, 3) for client in slow))
            assert cut == [True, True] and time.monotonic() - began < 2.5
            # Held three times the idle time: still under way, and answered.
            assert await held.quiet(1.0 - (time.monotonic() - began))
            gateway.publish(3)
            assert (await held.response()).endswith(SEG5[400:600])
        finally:
            for client in (*slow, held):
                client.close()


async def test_a_full_port_makes_room_by_cutting_a_waiting_connection(tmp_path: Path) -> None:
    async with open_gateway(tmp_path, connections=3) as gateway:
        for port in (gateway.plain, gateway.fast):
            slow = [await Client.open(port) for _ in range(3)]
            for client in slow:
                client.send(b"GET /live/sala/index.m3u8 HTTP/1.1\r\nX-Slow: ")
            await asyncio.sleep(0.1)
            newcomer = await Client.open(port)
            try:
                # The oldest connection still sending its head makes room for the newcomer.
                newcomer.send(request("/live/sala/index.m3u8"))
                assert (await newcomer.response()).startswith(b"HTTP/1.1 200 OK\r\n")
                assert await slow[0].closed(timeout=2)
                assert await slow[1].quiet(0.2) and await slow[2].quiet(0.01)
            finally:
                for client in (*slow, newcomer):
                    client.close()
        await asyncio.sleep(0.1)
        # Every connection with a request under way (held): no room, a JSON 503 at once.
        held = [await Client.open(gateway.fast) for _ in range(3)]
        for client in held:
            client.send(request("/live/sala/p/5.2.ts"))
        try:
            assert await held[2].quiet(0.2)
            refused = await Client.open(gateway.fast)
            answer = await refused.response()
            assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
            assert b"\r\nRetry-After: 1\r\n" in answer and b"\r\nConnection: close\r\n" in answer
            assert "3 connections at once" in json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]
            assert await refused.closed(timeout=1)
            refused.close()
            gateway.publish(3)
            for client in held:
                assert (await client.response()).endswith(SEG5[400:600])
        finally:
            for client in held:
                client.close()


async def test_stopping_lets_held_requests_be_answered_first(gateway: Gateway) -> None:
    held = await Client.open(gateway.fast)
    held.send(request("/live/sala/p/5.2.ts"))
    try:
        assert await held.quiet(0.2)
        stopping = asyncio.create_task(gateway.site.stop())
        await asyncio.sleep(0.1)
        gateway.publish(3)
        assert (await held.response()).endswith(SEG5[400:600])
        assert await held.closed(timeout=0.5)
        await stopping
    finally:
        held.close()


async def test_hls_js_plays_the_gateways_live_url_through_the_fast_path(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(SYNTHETIC_SOURCE)
    port = free_port()
    live = settings.live.model_copy(update={"gateway_port": port})
    service = await start_service(settings.model_copy(update={"live": live}))
    gw = f"http://127.0.0.1:{port}"
    try:
        await service.begin()

        async def has_parts() -> bool:
            try:
                async with aiohttp.ClientSession() as http:
                    async with http.get(gw + "/live/sala/index.m3u8") as resp:
                        return resp.status == 200 and (await resp.text()).count("#EXT-X-PART:") >= 3
            except aiohttp.ClientError:
                return False

        await wait_for(has_parts, 30, "a live playlist with parts on the gateway")
        async with chromium() as browser:
            page = await browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            # The gateway's own live page: its hls.js asks the gateway for everything.
            await page.goto(gw + "/live/sala", wait_until="load", timeout=30_000)

            async def advancing() -> dict[str, Any] | None:
                state: dict[str, Any] = await page.evaluate(PLAYBACK)
                return state if state["time"] > 3 and not state["paused"] else None

            first = await wait_for(advancing, 40, "hls.js to play the gateway's live URL")
            began = time.monotonic()
            await page.wait_for_timeout(4000)
            later: dict[str, Any] = await page.evaluate(PLAYBACK)
            elapsed = time.monotonic() - began
            assert errors == [] and later["lowLatency"] is True
            assert later["time"] - first["time"] > 0.8 * elapsed, (first, later)
            assert later["parts"] > first["parts"] > 0 and later["blocking"] > 0, later
            await page.close()
        assert service.app[GATEWAY].restarts == 0
    finally:
        await stop_service(service)


async def test_the_edge_reader_wakes_when_the_window_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With a poll only every 30 s, only inotify can have the change seen within seconds.
    monkeypatch.setattr(llhls, "TAIL_SECONDS", 30.0)
    live_dir = tmp_path / "live"
    live_dir.mkdir()
    reader = EdgeReader(tmp_path, ["sala"])
    changes: list[str] = []
    reader.listen(changes.append)
    task = asyncio.create_task(reader.run())
    try:
        await asyncio.sleep(0.2)
        for version in (1, 2):
            snap = EdgeSnapshot(version, _segments(version), 0, 0.2, 1)
            path = edge_file(tmp_path, "sala")
            path.with_suffix(".tmp").write_text(json.dumps(snap.to_json()))
            os.replace(path.with_suffix(".tmp"), path)
            await wait_for(lambda n=version: _async(len(changes) == n), 5, f"change {version}")
            current = reader.snapshot("sala")
            assert current is not None and current.version == version
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _async(value: bool) -> bool:
    return value
