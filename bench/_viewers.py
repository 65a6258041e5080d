"""Simulated Low-Latency HLS viewers for bench/scale.py: the code of one load process.

Each viewer behaves like hls.js in low-latency mode: it loads the live playlist once, then, for
every part, asks at the same time for the blocking playlist reload of the preload-hinted part
(`_HLS_msn`/`_HLS_part` with `_HLS_skip=YES`) on one connection and for the hinted part itself
on a second one (both are held by the server until the part exists). A part that the reload
lists and the viewer has not fetched (it fell behind) is fetched as well. For every part the
viewer notes when its body was complete, in `time.monotonic()` (CLOCK_MONOTONIC, one clock for
every process on Linux), so that the parent can subtract the moment the part became available.

The HTTP client is a minimal HTTP/1.1 one (asyncio.Protocol, keep-alive, one request at a time
per connection) rather than aiohttp's: it costs a fraction of the CPU per request, so that more
of this machine's two cores go to the server being measured and less to the load.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import resource
import time
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, cast

# Part numbers stay far below this (the gateway refuses _HLS_part > 1000).
KEY_PARTS = 4096
PART_LINE = re.compile(rb'#EXT-X-PART:[^\n]*URI="p/(\d+)\.(\d+)\.ts"')
HINT_LINE = re.compile(rb'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="p/(\d+)\.(\d+)\.ts"')
LAG_INTERVAL = 0.05  # how often the event loop's own delay is sampled
RETRY_SECONDS = 0.5  # a viewer that met an error starts again from the playlist after this


def part_key(msn: int, number: int) -> int:
    """One integer naming part `number` of segment `msn`."""
    return msn * KEY_PARTS + number


class RequestError(Exception):
    """A request that failed: "<what>: <how>", e.g. "part: HTTP 404", "reload: timeout"."""


Result = tuple[int, float, bytes]  # status, time.monotonic() when complete, body (if kept)


# Every connection of a load process reads into this one buffer (asyncio.BufferedProtocol): each
# read is dealt with before the next, and a part's bytes need not be copied out of it.
_READ_BUFFER = bytearray(256 * 1024)
_READ_VIEW = memoryview(_READ_BUFFER)


class _Http(asyncio.BufferedProtocol):
    """One keep-alive HTTP/1.1 connection carrying one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.received = 0
        self._waiter: asyncio.Future[Result] | None = None
        self._keep = False
        self._head = bytearray()
        self._in_body = False
        self._status = 0
        self._left = 0
        self._chunked = False
        self._close_after = False
        self._body = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionResetError("connection closed by the server"))

    def request(self, raw: bytes, keep: bool, waiter: asyncio.Future[Result]) -> None:
        """Send a request; waiter gets the result."""
        assert self.transport is not None
        self._waiter = waiter
        self._keep = keep
        self._head.clear()
        self._body = bytearray()
        self._in_body = False
        self._chunked = False
        self._close_after = False
        self.transport.write(raw)

    def abort(self) -> None:
        """Drop the connection (a request timed out: its answer may still come)."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def get_buffer(self, sizehint: int) -> memoryview:
        return _READ_VIEW

    def buffer_updated(self, nbytes: int) -> None:
        """nbytes more of the answer are in _READ_BUFFER: every byte is looked at, and a part's
        body is only counted, not copied (a playlist's is kept, for its hint)."""
        self.received += nbytes
        if self._waiter is None:
            return
        buf: bytes | bytearray = _READ_BUFFER
        size = nbytes
        start = 0
        if not self._in_body:
            joined = bool(self._head)  # the head came in more than one read
            if joined:
                self._head += _READ_BUFFER[:nbytes]
                buf, size = self._head, len(self._head)
            end = buf.find(b"\r\n\r\n", 0, size)
            if end < 0:
                if not joined:
                    self._head += _READ_BUFFER[:nbytes]
                return
            self._parse_head(bytes(buf[:end]))
            self._in_body = True
            start = end + 4
            if joined:
                buf = bytes(buf[start:size])
                size, start = len(buf), 0
                self._head.clear()
            if not self._chunked and self._left == 0:
                self._complete()
                return
        if self._chunked:
            self._head += buf[start:size]
            self._chunks()
            return
        got = size - start
        if got >= self._left:
            if self._keep:
                self._body += buf[start : start + self._left]
            self._left = 0
            self._complete()
        else:
            if self._keep:
                self._body += buf[start:size]
            self._left -= got

    def _parse_head(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        self._status = int(lines[0][9:12])
        self._left = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                self._left = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                self._chunked = True
            elif name == b"connection" and b"close" in value.lower():
                self._close_after = True

    def _chunks(self) -> None:
        buf = self._head
        while True:
            line_end = buf.find(b"\r\n")
            if line_end < 0:
                return
            size = int(bytes(buf[:line_end]).split(b";")[0], 16)
            if size == 0:
                if len(buf) < line_end + 4:
                    return
                buf.clear()
                self._complete()
                return
            if len(buf) < line_end + 2 + size + 2:
                return
            if self._keep:
                self._body += buf[line_end + 2 : line_end + 2 + size]
            del buf[: line_end + 2 + size + 2]

    def _complete(self) -> None:
        done = time.monotonic()
        waiter, self._waiter = self._waiter, None
        if self._close_after:
            self.abort()
        if waiter is not None and not waiter.done():
            waiter.set_result((self._status, done, bytes(self._body)))


class Client:
    """A viewer's connection to the server: reconnects when the previous one was dropped."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self._host = host
        self._port = port
        self._timeout = timeout
        self._proto: _Http | None = None
        self._loop = asyncio.get_running_loop()
        self._host_header = f"Host: {host}:{port}\r\n".encode()
        self._pending: set[asyncio.Task[None]] = set()
        self.connects = 0

    def fetch(self, path: str, keep: bool) -> asyncio.Future[Result]:
        """GET path; the future holds (status, completion time, body if keep) or an error
        (TimeoutError after the timeout, ConnectionError)."""
        waiter: asyncio.Future[Result] = self._loop.create_future()
        raw = b"GET " + path.encode() + b" HTTP/1.1\r\n" + self._host_header + b"\r\n"
        handle = self._loop.call_later(self._timeout, self._expire, waiter)
        waiter.add_done_callback(lambda _f: handle.cancel())
        proto = self._proto
        if proto is not None and not proto.closed:
            proto.request(raw, keep, waiter)
        else:
            task = self._loop.create_task(self._connect_then(raw, keep, waiter))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
        return waiter

    async def _connect_then(self, raw: bytes, keep: bool, waiter: asyncio.Future[Result]) -> None:
        try:
            _, proto = await self._loop.create_connection(_Http, self._host, self._port)
        except OSError as exc:
            if not waiter.done():
                waiter.set_exception(ConnectionError(f"connect: {exc}"))
            return
        self.connects += 1
        self._proto = proto
        if waiter.done():  # timed out while connecting
            proto.abort()
            return
        proto.request(raw, keep, waiter)

    def _expire(self, waiter: asyncio.Future[Result]) -> None:
        if not waiter.done():
            waiter.set_exception(TimeoutError(f"no answer within {self._timeout:g} s"))
            self.close()

    def close(self) -> None:
        """Drop the connection."""
        if self._proto is not None:
            self._proto.abort()
            self._proto = None
        for task in list(self._pending):
            task.cancel()


@dataclass
class Viewer:
    """One simulated player."""

    index: int
    start_at: float
    active: bool = True
    clients: list[Client] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


class Load:
    """The viewers of one load process and what they measured since the last flush."""

    def __init__(self, host: str, port: int, playlist: str, timeout: float) -> None:
        self.host = host
        self.port = port
        self.playlist = playlist  # e.g. /live/sala-obrad/index.m3u8
        self.prefix = playlist.rsplit("/", 1)[0] + "/"
        self.timeout = timeout
        self.viewers: list[Viewer] = []
        self.keys = array("q")
        self.times = array("d")
        self.requests: Counter[int] = Counter()  # completed requests per 100 ms bin
        self.errors: list[tuple[float, str]] = []
        self.lags = array("d")
        self.connects = 0
        self.stopping = False

    # Commands from the parent ------------------------------------------------------------------

    def target(self, count: int, ramp: float) -> None:
        """Run `count` viewers: new ones start evenly spread over `ramp` seconds."""
        running = [v for v in self.viewers if v.active]
        now = time.monotonic()
        if count > len(running):
            new = count - len(running)
            for i in range(new):
                viewer = Viewer(len(self.viewers), now + ramp * i / new)
                viewer.task = asyncio.get_running_loop().create_task(self._run(viewer))
                self.viewers.append(viewer)
        else:
            for viewer in running[count:]:
                self._stop(viewer)

    def flush(self) -> dict[str, Any]:
        """What was measured since the last flush (and forget it)."""
        out = {
            "keys": self.keys.tobytes(),
            "times": self.times.tobytes(),
            "requests": dict(self.requests),
            "errors": self.errors,
            "lags": self.lags.tobytes(),
            "viewers": sum(1 for v in self.viewers if v.active),
            "connects": sum(c.connects for v in self.viewers for c in v.clients),
        }
        self.keys = array("q")
        self.times = array("d")
        self.requests = Counter()
        self.errors = []
        self.lags = array("d")
        return out

    async def stop_all(self) -> None:
        """Stop every viewer and wait (bounded) until they have."""
        self.stopping = True
        tasks = [v.task for v in self.viewers if v.task is not None]
        for viewer in self.viewers:
            self._stop(viewer)
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    def _stop(self, viewer: Viewer) -> None:
        viewer.active = False
        for client in viewer.clients:
            client.close()
        if viewer.task is not None:
            viewer.task.cancel()

    # A viewer -----------------------------------------------------------------------------------

    def _error(self, kind: str) -> None:
        self.errors.append((time.monotonic(), kind))

    def _count(self, done: float) -> None:
        self.requests[int(done * 10)] += 1

    def _part(self, msn: int, number: int, done: float) -> None:
        self.keys.append(part_key(msn, number))
        self.times.append(done)

    async def _get(self, client: Client, path: str, keep: bool, what: str) -> Result:
        return await self._check(client.fetch(path, keep), what)

    async def _check(self, waiter: asyncio.Future[Result], what: str) -> Result:
        try:
            result = await waiter
        except TimeoutError:
            raise RequestError(f"{what}: timeout") from None
        except (ConnectionError, OSError) as exc:
            raise RequestError(f"{what}: {type(exc).__name__}") from None
        self._count(result[1])
        if result[0] != 200:
            raise RequestError(f"{what}: HTTP {result[0]}")
        return result

    async def _run(self, viewer: Viewer) -> None:
        delay = viewer.start_at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        playlist = Client(self.host, self.port, self.timeout)
        parts = Client(self.host, self.port, self.timeout)
        viewer.clients = [playlist, parts]
        try:
            while viewer.active and not self.stopping:
                try:
                    await self._watch(playlist, parts)
                except RequestError as exc:
                    self._error(str(exc))
                # Both connections may have a request in flight: start afresh.
                playlist.close()
                parts.close()
                await asyncio.sleep(RETRY_SECONDS)
        finally:
            playlist.close()
            parts.close()

    async def _watch(self, playlist: Client, parts: Client) -> None:
        _, _, body = await self._get(playlist, self.playlist, True, "playlist")
        hint = HINT_LINE.search(body)
        if hint is None:
            raise RequestError("playlist: no preload hint")
        msn, number = int(hint[1]), int(hint[2])
        while True:
            part_waiter = parts.fetch(f"{self.prefix}p/{msn}.{number}.ts", False)
            reload_waiter = playlist.fetch(
                f"{self.playlist}?_HLS_msn={msn}&_HLS_part={number}&_HLS_skip=YES", True
            )
            try:
                _, done, _ = await self._check(part_waiter, "hinted part")
            except BaseException:
                # The other request is abandoned with its connection; its error is not news.
                reload_waiter.add_done_callback(_ignore)
                raise
            self._part(msn, number, done)
            _, _, body = await self._check(reload_waiter, "blocking reload")
            hint = HINT_LINE.search(body)
            if hint is None:
                raise RequestError("blocking reload: no preload hint")
            next_msn, next_number = int(hint[1]), int(hint[2])
            # Usually the hint is the very next part (the same segment's, or the next segment's
            # first when this part ended its segment): then nothing was missed, and the
            # playlist need not be parsed.
            if not (
                (next_msn, next_number) == (msn, number + 1)
                or (
                    (next_msn, next_number) == (msn + 1, 0)
                    and f'p/{msn}.{number + 1}.ts"'.encode() not in body
                )
            ):
                after = part_key(msn, number)
                for m, n in PART_LINE.findall(body):
                    if part_key(int(m), int(n)) > after:
                        path = f"{self.prefix}p/{int(m)}.{int(n)}.ts"
                        _, done, _ = await self._get(parts, path, False, "missed part")
                        self._part(int(m), int(n), done)
            msn, number = next_msn, next_number

    async def sample_lag(self) -> None:
        """Note how late the event loop runs a timer: this process's own queueing delay."""
        while not self.stopping:
            due = time.monotonic() + LAG_INTERVAL
            await asyncio.sleep(LAG_INTERVAL)
            self.lags.append(time.monotonic() - due)


def _ignore(future: asyncio.Future[Result]) -> None:
    if not future.cancelled():
        future.exception()


async def _serve(conn: Connection, load: Load) -> None:
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[Any] = asyncio.Queue()

    def receive() -> None:
        try:
            commands.put_nowait(conn.recv())
        except (EOFError, OSError):  # the parent is gone: stop
            loop.remove_reader(conn.fileno())
            commands.put_nowait(("stop",))

    loop.add_reader(conn.fileno(), receive)
    # uvloop makes a watched descriptor non-blocking; the pipe's send() expects it blocking
    # (a large flush would fail half-way with EAGAIN).
    os.set_blocking(conn.fileno(), True)
    lag = loop.create_task(load.sample_lag())
    try:
        while True:
            command = await commands.get()
            if command[0] == "target":
                load.target(int(command[1]), float(command[2]))
            elif command[0] == "flush":
                conn.send(load.flush())
            elif command[0] == "stop":
                await load.stop_all()
                with contextlib.suppress(OSError):
                    conn.send(load.flush())
                return
    finally:
        loop.remove_reader(conn.fileno())
        lag.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await lag


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop's event loop where installed: it reads each socket into one buffer of its own
    where asyncio's allocates a fresh 256 KiB for every read (measured: the load processes'
    CPU per request halved), leaving more of the two cores to the server measured."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def worker_main(conn: Connection, host: str, port: int, playlist: str, timeout: float) -> None:
    """A load process: runs viewers as the parent's commands on conn say, until "stop"."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    load = Load(host, port, playlist, timeout)
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(_serve(conn, load))
    except (KeyboardInterrupt, EOFError, BrokenPipeError):
        pass
    finally:
        conn.close()
