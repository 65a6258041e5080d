"""The gateway's fast path for the hot live routes: the live playlist (plain and blocking
reloads), its parts and segments, answered straight from the event loop.

Each LL-HLS player asks about ten times a second (a blocking playlist reload and the hinted
part, every part). Measured on this machine, aiohttp's work per request (request and response
objects, routing, middlewares, signals, a task woken per held request) took about four fifths
of the gateway's CPU. So each connection's aiohttp protocol (`LiveHandler`, a RequestHandler)
first looks at every request itself: a plain `GET /live/... HTTP/1.1` for the live playlist, a
part or a segment is answered by the fast path; any other request is passed on to aiohttp, alone
and whole, and the next request is looked at once aiohttp has answered it. A request whose
length the fast path cannot tell for sure (a chunked body, an upgrade, `Expect`, anything
malformed) leaves the connection to aiohttp for good. So a browser that also loads the pages,
polls /now and sends beacons on its connections still has its live requests answered fast.

What a request asks for and every refusal are decided by the same functions as the aiohttp
routes (streaming/hls/routes.py), and the answer carries the same headers (tests/streaming/hls/
test_fast.py compares the two byte for byte). Held requests wait in groups, one per
thing awaited (a segment or part for blocking reloads, a part for preload-hinted requests); when
the edge reader sees the live window change, a group that is ready is answered at once, every
member with the same bytes, rendered once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any, NamedTuple

from aiohttp import web
from aiohttp.http import SERVER_SOFTWARE

from config.settings import Settings
from streaming.edge.llhls import ByteCache, EdgeReader, EdgeSnapshot, RenderedPlaylists
from streaming.edge.viewers import ViewerCounter, client_key
from streaming.hls import routes as live
from streaming.http import JsonErrorHandler, json_error

log = logging.getLogger(__name__)

# A request head longer than this, or with more header lines, is left to aiohttp (which
# refuses over-long lines itself).
HEAD_LIMIT = 8190
MAX_HEADERS = 100
# A request body up to this size is gathered before the request is passed to aiohttp (its own
# limit, client_max_size, is 1 MiB); a longer one leaves the connection to aiohttp.
BODY_LIMIT = 1024 * 1024
# Bytes received beyond the request being gathered before reading pauses (pipelining).
READ_LIMIT = 64 * 1024
# When the gateway stops, the requests held are given this long to be answered.
SHUTDOWN_GRACE = 1.0
# Held requests give up on the next tick after their time (one timer per tick, not per request).
TICKS_PER_SECOND = 10
HLS_TYPE = live.HLS_TYPE

_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
# /live/index.m3u8, /live/<chamber>/index.m3u8, /live/<chamber>/p/<part>, /live/<chamber>/s/<seg>
_PATH = re.compile(r"/live/(?:([A-Za-z0-9_.-]+)/)?(index\.m3u8|([ps])/([A-Za-z0-9_.-]+))\Z")
_QUERY = re.compile(r"[A-Za-z0-9_.=&-]*\Z")
# Control characters other than CR and LF (which may only end a line): aiohttp refuses them.
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class LiveRequest(NamedTuple):
    """A request the fast path takes: which route, and what it needs of the headers."""

    route: str  # "playlist", "part" or "segment"
    chamber: str | None  # None: the first chamber (/live/index.m3u8)
    name: str  # the part's or segment's file name
    query: dict[str, str]
    agent: str | None
    forwarded: str | None


def _fields(head: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]] | None:
    """The request line and the (lower-case name, value) of each header of a request head
    (without the blank line), if every line is well formed; None otherwise."""
    lines_ends = head.count(b"\n")
    if (
        not head.isascii()
        or head.count(b"\r\n") != lines_ends
        or head.count(b"\r") != lines_ends
        or _CONTROL.search(head)
    ):
        return None
    lines = head.split(b"\r\n")
    if len(lines) > MAX_HEADERS + 1:
        return None
    fields = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.match(name):
            return None  # also a folded line (leading whitespace)
        fields.append((name.lower(), value.strip(b" \t")))
    return lines[0], fields


def parse_request(head: bytes) -> LiveRequest | None:
    """The request whose head (without the blank line) is given, if it is a plain
    `GET /live/... HTTP/1.1` the fast path answers; None leaves it to aiohttp."""
    if not head.startswith(b"GET /live/"):
        return None
    parsed = _fields(head)
    if parsed is None:
        return None
    line, fields = parsed
    method, _, rest = line.partition(b" ")
    target, _, version = rest.partition(b" ")
    if version != b"HTTP/1.1":
        return None
    agent = forwarded = None
    for name, value in fields:
        if name == b"user-agent":
            if agent is None:
                agent = value.decode()
        elif name == b"x-forwarded-for":
            if forwarded is None:
                forwarded = value.decode()
        elif name == b"connection":
            if value.lower() != b"keep-alive":
                return None
        elif name in (b"content-length", b"transfer-encoding", b"upgrade", b"expect"):
            return None
    path, _, raw_query = target.decode().partition("?")
    match = _PATH.match(path)
    # aiohttp would first resolve "." and ".." path segments: leave those to it.
    if match is None or "/." in path or not _QUERY.match(raw_query):
        return None
    chamber, kind, file = match[1], match[3], match[4] or ""
    if kind is None:
        route = "playlist"
    elif chamber is None:
        return None
    else:
        route = "part" if kind == "p" else "segment"
    query: dict[str, str] = {}
    if raw_query:
        for pair in raw_query.split("&"):
            if pair:
                key, _, text = pair.partition("=")
                query.setdefault(key, text)
    return LiveRequest(route, chamber, file, query, agent, forwarded)


def body_length(head: bytes) -> int | None:
    """How many bytes of body follow a request head (without the blank line), when that is
    certain and at most BODY_LIMIT: no Transfer-Encoding, at most one plain Content-Length, no
    upgrade or Expect, every line well formed. None: only aiohttp may read this connection."""
    parsed = _fields(head)
    if parsed is None:
        return None
    length = None
    for name, value in parsed[1]:
        if name == b"content-length":
            if length is not None or not value.isdigit() or len(value) > 12:
                return None
            length = int(value)
        elif name in (b"transfer-encoding", b"upgrade", b"expect"):
            return None
    if length is not None and length > BODY_LIMIT:
        return None
    return length or 0


_Key = tuple[str, int, int | None]  # ("playlist", msn, part) or ("part", msn, number)
_Form = tuple[str, bool, str]  # a blocking reload's URI prefix, delta update, Cache-Control


@dataclass(eq=False)
class _Held:
    """Requests waiting for the same thing (a group of `groups`, under `key`); answered
    together."""

    key: _Key
    groups: dict[_Key, _Held]
    ready: Callable[[EdgeSnapshot], bool]
    # Each request's connection, and for a blocking reload the form of its playlist.
    members: dict[LiveHandler, _Form] = field(default_factory=dict)

    def leave(self, connection: LiveHandler) -> None:
        """A request no longer waits here; the group goes when its last one does."""
        self.members.pop(connection, None)
        if not self.members and self.groups.get(self.key) is self:
            del self.groups[self.key]


class LiveFast:
    """The gateway process's fast path: answers LiveRequests for every connection."""

    def __init__(
        self,
        settings: Settings,
        edge: EdgeReader,
        playlists: RenderedPlaylists,
        media: ByteCache,
        viewers: ViewerCounter,
        worker: int,
    ) -> None:
        self._settings = settings
        self._chambers = frozenset(c.id for c in settings.chambers)
        self._first = settings.chambers[0].id
        self._edge = edge
        self._playlists = playlists
        self._media = media
        self._viewers = viewers
        self._tail = f"\r\nServer: {SERVER_SOFTWARE}\r\nX-Obrady-Worker: {worker}\r\n\r\n".encode()
        self._date_at = -1
        self._date = b""
        self._held: dict[str, dict[_Key, _Held]] = {}
        # Held requests by the tick they give up on: (connection, its hold, chamber).
        self._due: dict[int, list[tuple[LiveHandler, int, str]]] = {}
        self._ticks: dict[int, asyncio.TimerHandle] = {}
        self.busy: set[LiveHandler] = set()  # connections with a request under way here
        self.closing = False
        self._drained = asyncio.Event()  # set when closing and nothing is under way
        self.answered = 0  # requests the fast path took
        self.passed = 0  # requests passed to aiohttp one by one
        self.left = 0  # connections left to aiohttp for good
        self.loop = asyncio.get_running_loop()
        edge.listen(self._changed)

    async def close(self, grace: float = SHUTDOWN_GRACE) -> None:
        """The server stops: the requests under way get `grace` seconds to be answered (each
        connection closes after its answer); aiohttp then closes whatever is left."""
        self.closing = True
        if self.busy:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace):
                    await self._drained.wait()
        self._held.clear()
        for timer in self._ticks.values():
            timer.cancel()
        self._ticks.clear()
        self._due.clear()

    def done(self, connection: LiveHandler) -> None:
        """A connection's request is answered (or the connection is gone)."""
        self.busy.discard(connection)
        if self.closing and not self.busy:
            self._drained.set()

    # Answers ------------------------------------------------------------------------------------

    def _head(self, status: bytes, headers: bytes, length: int) -> bytes:
        """Status line and headers in aiohttp's order: the response's own, Content-Length,
        Date, Server, then X-Obrady-Worker (the gateway's on_response_prepare)."""
        now = int(time.time())
        if now != self._date_at:
            self._date_at = now
            self._date = formatdate(now, usegmt=True).encode()
        return b"".join(
            (status, headers, b"Content-Length: %d\r\nDate: " % length, self._date, self._tail)
        )

    def _ok(self, cache: str, content_type: str, body: bytes) -> bytes:
        headers = f"Cache-Control: {cache}\r\nContent-Type: {content_type}\r\n".encode()
        return self._head(b"HTTP/1.1 200 OK\r\n", headers, len(body)) + body

    def error(self, exc: web.HTTPException) -> bytes:
        """An aiohttp HTTP error (live.py's refusals) as aiohttp sends it."""
        body = exc.body if isinstance(exc.body, bytes) else b""
        headers = "".join(f"{k}: {v}\r\n" for k, v in exc.headers.items() if k != "Content-Length")
        status = f"HTTP/1.1 {exc.status} {exc.reason}\r\n".encode()
        return self._head(status, headers.encode(), len(body)) + body

    def _playlist(
        self, chamber: str, snap: EdgeSnapshot, prefix: str, skip: bool, cache: str
    ) -> bytes:
        body = self._playlists.get(chamber, snap, prefix, skip)
        return self._ok(cache, HLS_TYPE, body)

    # Requests -----------------------------------------------------------------------------------

    def answer(self, connection: LiveHandler, request: LiveRequest) -> None:
        """Answer a request now, or hold it until the live window has what it asks for."""
        self.answered += 1
        try:
            self._answer(connection, request)
        except web.HTTPException as exc:
            connection.finish(self.error(exc))
        except Exception:
            log.exception("unhandled error on GET /live/ (fast path)")
            connection.finish(self.error(_internal_error()))

    def _answer(self, connection: LiveHandler, request: LiveRequest) -> None:
        chamber = request.chamber or self._first
        if chamber not in self._chambers:
            live.known_chamber(self._settings, chamber)  # raises the 404
        self._viewers.request(chamber, connection.client(request.agent, request.forwarded))
        edge = self._edge
        if request.route == "playlist":
            prefix = "" if request.chamber else f"{chamber}/"
            ask = live.playlist_ask(request.query)
            snap = edge.snapshot(chamber)
            if ask.msn is not None:
                live.check_blocking(ask, snap)
                if snap is None or not ask.ready(snap):
                    key = ("playlist", ask.msn, ask.part)
                    form = (prefix, ask.skip, ask.cache_control)
                    self._hold(connection, chamber, key, ask.ready, snap, form)
                    return
            if snap is None:
                raise live.nothing_live(chamber)
            connection.finish(self._playlist(chamber, snap, prefix, ask.skip, ask.cache_control))
        elif request.route == "part":
            snap = edge.snapshot(chamber)
            msn, number = live.part_ask(snap, request.name)
            assert snap is not None
            if not live.part_ready(snap, msn, number):

                def ready(s: EdgeSnapshot) -> bool:
                    return live.part_ready(s, msn, number)

                self._hold(connection, chamber, ("part", msn, number), ready, snap, None)
                return
            segment, part = live.part_of(snap, msn, number)
            self._send_media([connection], segment.path, part.start, part.end, live.MEDIA_CACHE)
        else:
            segment = live.segment_of(edge.snapshot(chamber), request.name)
            self._send_media([connection], segment.path, 0, segment.end or 0, live.MEDIA_CACHE)

    def _hold(
        self,
        connection: LiveHandler,
        chamber: str,
        key: _Key,
        ready: Callable[[EdgeSnapshot], bool],
        snap: EdgeSnapshot | None,
        form: _Form | None,
    ) -> None:
        groups = self._held.setdefault(chamber, {})
        held = groups.get(key)
        if held is None:
            held = groups[key] = _Held(key, groups, ready)
        held.members[connection] = form or ("", False, "")
        timeout = live.block_seconds(self._settings, snap)
        tick = math.ceil((self.loop.time() + timeout) * TICKS_PER_SECOND)
        due = self._due.get(tick)
        if due is None:
            due = self._due[tick] = []
            self._ticks[tick] = self.loop.call_at(tick / TICKS_PER_SECOND, self._expire, tick)
        due.append((connection, connection.hold(held), chamber))

    def _expire(self, tick: int) -> None:
        """Answer the requests still held whose time is up with a 503."""
        self._ticks.pop(tick, None)
        for connection, hold, chamber in self._due.pop(tick, ()):
            held = connection.holding(hold)
            if held is not None:
                connection.release()
                connection.finish(self.error(self._timed_out(chamber, held.key)))

    @staticmethod
    def _timed_out(chamber: str, key: _Key) -> web.HTTPException:
        if key[0] == "playlist":
            return live.reload_timed_out(chamber, live.PlaylistAsk(key[1], key[2], False))
        assert key[2] is not None
        return live.part_timed_out(key[1], key[2])

    def _changed(self, chamber: str) -> None:
        """The edge reader saw a new window: answer every held group it satisfies."""
        groups = self._held.get(chamber)
        snap = self._edge.snapshot(chamber)
        if not groups or snap is None:
            return
        ready = [(key, held) for key, held in groups.items() if held.ready(snap)]
        # The media first: that is what a player waits for.
        ready.sort(key=lambda item: item[0][0] != "part")
        for key, held in ready:
            del groups[key]
            members = list(held.members.items())
            for connection, _ in members:
                connection.release()
            answered = 0
            try:
                if key[0] == "part":
                    assert key[2] is not None
                    segment, part = live.part_of(snap, key[1], key[2])
                    connections = [c for c, _ in members]
                    answered = len(members)  # by _send_media, now or once read
                    self._send_media(
                        connections, segment.path, part.start, part.end, live.MEDIA_CACHE
                    )
                    continue
                rendered: dict[_Form, bytes] = {}
                for connection, form in members:
                    data = rendered.get(form)
                    if data is None:
                        data = rendered[form] = self._playlist(chamber, snap, *form)
                    connection.finish(data)
                    answered += 1
            except Exception as exc:
                if not isinstance(exc, web.HTTPException):
                    log.exception("unhandled error answering held live requests (fast path)")
                    exc = _internal_error()
                data = self.error(exc)
                for connection, _ in members[answered:]:
                    connection.finish(data)

    def _send_media(
        self, connections: list[LiveHandler], rel: str, start: int, end: int, cache: str
    ) -> None:
        found = self._media.lookup(rel, start, end)
        if isinstance(found, bytes):
            data = self._ok(cache, "video/mp2t", found)
            for connection in connections:
                connection.finish(data)
            return

        def done(future: asyncio.Future[bytes]) -> None:
            exc = None if future.cancelled() else future.exception()
            if future.cancelled() or exc is not None:
                if not isinstance(exc, FileNotFoundError):
                    log.error("reading %s failed: %r", rel, exc)
                    data = self.error(_internal_error())
                else:
                    data = self.error(live.media_gone())
            else:
                data = self._ok(cache, "video/mp2t", future.result())
            for connection in connections:
                connection.finish(data)

        found.add_done_callback(done)


def _internal_error() -> web.HTTPException:
    # What streaming.api.error_middleware answers for a crash.
    return json_error(web.HTTPInternalServerError, "internal error; see the server log")


class LiveHandler(JsonErrorHandler):
    """aiohttp's protocol for one connection, which looks at each request first: the fast path
    answers it, or aiohttp gets it (alone, and the next one waits until aiohttp has answered),
    or, when its length is not certain, aiohttp gets the connection for good. One request is
    answered at a time, in order. What aiohttp's parser refuses is answered as JSON
    (JsonErrorHandler). The other arguments are aiohttp's Server's for its RequestHandlers."""

    def __init__(self, fast: LiveFast, manager: web.Server, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._fast = fast
        self._buffer = bytearray()
        # "idle", "fast" (a request under way here), "aiohttp" (one request passed to it) or
        # "off" (aiohttp reads the connection itself from now on).
        self._state = "idle"
        self._write_paused = False
        self._read_paused = False
        self._address: str | None = None
        self._client: tuple[str | None, str | None, str] | None = None
        self._held: _Held | None = None
        self._holds = 0  # requests held so far on this connection

    # asyncio.Protocol, through aiohttp's RequestHandler -----------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, (list, tuple)):
            self._address = str(peer[0])

    def connection_lost(self, exc: BaseException | None) -> None:
        self.release()
        self._fast.done(self)
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        super().pause_writing()
        self._write_paused = True

    def resume_writing(self) -> None:
        super().resume_writing()
        self._write_paused = False
        self._serve()

    def data_received(self, data: bytes) -> None:
        if self.refused:  # beyond the port's connections (JsonErrorHandler)
            return
        if self._state == "off" or (self._state == "aiohttp" and not data):
            # b"" is aiohttp resuming its own paused parser (base_protocol.resume_reading),
            # e.g. of a compressed body it decompresses as it is read: held here, the handler
            # would wait for the rest of that body for ever.
            super().data_received(data)
            return
        self._buffer += data
        if self._state == "idle":
            self._serve()
        if len(self._buffer) > READ_LIMIT + BODY_LIMIT and not self._read_paused:
            self._read_paused = True
            if self.transport is not None:
                self.transport.pause_reading()

    def waiting(self) -> bool:
        # A request under way here (held, or being answered) is not waiting for one, though
        # aiohttp's parser, which never saw it, is.
        return self._state in ("idle", "off") and super().waiting()

    def _process_keepalive(self) -> None:
        # aiohttp closes a connection whose parser has waited for a request longer than
        # keepalive_timeout (idle, or a head that never ends); a request held here (a blocking
        # reload or a hinted part, up to three target durations) is under way, not idle.
        if self._state == "fast" and self.transport is not None:
            self._keepalive_handle = self._fast.loop.call_later(
                self._keepalive_timeout, self._process_keepalive
            )
            return
        super()._process_keepalive()

    def log_access(self, request: web.BaseRequest, response: web.StreamResponse, time: Any) -> None:
        # aiohttp calls this once it has sent a response: the next request may be looked at.
        super().log_access(request, response, time)
        if self._state != "aiohttp":
            return
        if response.keep_alive:
            self._state = "idle"
            self._fast.loop.call_soon(self._serve)
        else:
            self._state = "off"  # aiohttp closes the connection

    # Requests -----------------------------------------------------------------------------------

    def _serve(self) -> None:
        """Look at the requests received, one at a time, while each is answered at once."""
        buffer = self._buffer
        while (
            buffer
            and self._state == "idle"
            and not self._write_paused
            and not self._fast.closing
            and self.transport is not None
        ):
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > HEAD_LIMIT or b"\n\n" in buffer or b"\n\r\n" in buffer:
                    self._leave()
                return
            head = bytes(buffer[:end]) if end <= HEAD_LIMIT else b""
            request = parse_request(head)
            if request is not None:
                del buffer[: end + 4]
                self._state = "fast"
                self._next_keepalive_close_time = self._fast.loop.time() + self._keepalive_timeout
                self._fast.busy.add(self)
                self._fast.answer(self, request)
                continue
            length = body_length(head) if head else None
            if length is None:
                self._leave()
                return
            size = end + 4 + length
            if len(buffer) < size:
                return  # the body is on its way
            message = bytes(buffer[:size])
            del buffer[:size]
            self._state = "aiohttp"
            self._fast.passed += 1
            super().data_received(message)
        if self._read_paused and len(buffer) <= READ_LIMIT and self.transport is not None:
            self._read_paused = False
            self.transport.resume_reading()

    def _leave(self) -> None:
        """aiohttp reads this connection from now on, starting with the bytes received."""
        self._state = "off"
        self._fast.left += 1
        data, self._buffer = bytes(self._buffer), bytearray()
        if self._read_paused and self.transport is not None:
            self._read_paused = False
            self.transport.resume_reading()
        super().data_received(data)

    def client(self, agent: str | None, forwarded: str | None) -> str:
        """The viewer key of this connection's client (see streaming.viewers.client_of)."""
        known = self._client
        if known is None or known[0] != agent or known[1] != forwarded:
            known = self._client = (agent, forwarded, client_key(self._address, forwarded, agent))
        return known[2]

    def hold(self, held: _Held) -> int:
        """The request waits in `held`; returns a number naming this hold."""
        self._held = held
        self._holds += 1
        return self._holds

    def holding(self, hold: int) -> _Held | None:
        """Where the request is held, if the hold numbered `hold` still waits."""
        return self._held if hold == self._holds else None

    def release(self) -> None:
        """The request no longer waits (answered, timed out or gone)."""
        if self._held is not None:
            self._held.leave(self)
            self._held = None

    def finish(self, response: bytes) -> None:
        """Send the answer to the request under way, then look at the next one."""
        transport = self.transport
        if self._state != "fast" or transport is None or transport.is_closing():
            return
        transport.write(response)
        self._state = "idle"
        # aiohttp closes a connection idle for its keepalive_timeout: this one is not.
        self._next_keepalive_close_time = self._fast.loop.time() + self._keepalive_timeout
        self._fast.done(self)
        if self._fast.closing:
            transport.close()
        elif self._buffer:
            self._serve()
