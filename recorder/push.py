"""Pushes a chamber's program to external platforms over RTMP(S): one ffmpeg per destination,
fed the finished program segments (no re-encoding), restarted with back-off when the
destination drops. Capture never waits for it: segments are queued and, if a destination
falls behind, skipped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Self
from urllib.parse import urlsplit, urlunsplit

from config.settings import PushDestination
from recorder.lifecycle import TaskSet
from recorder.priority import PUSH, spawn

log = logging.getLogger(__name__)

QUEUE_LIMIT = 16
WRITE_TIMEOUT_SECONDS = 10.0
IDLE_SECONDS = 20.0
BACKOFF_INITIAL_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 15.0


def push_argv(url: str) -> list[str]:
    """ffmpeg argv: MPEG-TS program segments on stdin, copied into FLV for an RTMP server;
    progress reports on stdout (the bytes it has sent to the platform so far)."""
    return [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "warning",
        "-progress", "pipe:1", "-stats_period", "0.5",
        "-f", "mpegts", "-i", "pipe:0",
        "-map", "0:v:0", "-map", "0:a:0?", "-c", "copy",
        # FLV wants AAC without ADTS headers.
        "-bsf:a", "aac_adtstoasc",
        "-f", "flv", url,
    ]  # fmt: skip


def redact(url: str) -> str:
    """The URL without its secrets, for logs and status: the stream key (the last part of the
    path, trailing slashes or not), the query string and any password in the user info."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}:…@{host}" if ":" in user else f"…@{host}"
    head, _, _ = parts.path.rstrip("/").rpartition("/")
    return urlunsplit((parts.scheme, netloc, f"{head}/…", "", ""))


@dataclass
class PushStatus:
    """How pushing to one destination is going."""

    chamber_id: str
    name: str
    url: str
    # "pushing" only once ffmpeg reports bytes sent to the platform, which it does after the
    # RTMP handshake and publish succeeded; until then a started push is "connecting".
    state: Literal["idle", "connecting", "pushing", "reconnecting"] = "idle"
    bytes_sent: int = 0
    restarts: int = 0
    segments_sent: int = 0
    skipped: int = 0
    # What is wrong now: cleared once the platform takes the stream again (the log keeps it).
    last_error: str | None = None
    stderr_tail: deque[str] = field(default_factory=lambda: deque(maxlen=10))


class ProgramPusher:
    """Feeds one destination; a new ffmpeg run starts at each discontinuity of the program."""

    def __init__(self, chamber_id: str, destination: PushDestination) -> None:
        self._url = destination.url
        self.status = PushStatus(chamber_id, destination.name, redact(destination.url))
        self._queue: asyncio.Queue[tuple[int, Path]] = asyncio.Queue(QUEUE_LIMIT)
        self._proc: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[None] | None = None
        self._progress: asyncio.Task[None] | None = None
        self._run_id: int | None = None
        self._backoff = BACKOFF_INITIAL_SECONDS
        self._retry_at = 0.0
        self._tasks = TaskSet(f"push {self.status.name}")
        self._readers = TaskSet(f"push {self.status.name}: ffmpeg output")

    async def __aenter__(self) -> Self:
        self._tasks.spawn(self.run(), name=f"push-{self.status.name}")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._tasks.close()  # run() ends the stream cleanly on its way out
        await self._readers.close()

    def submit(self, run_id: int, path: Path) -> None:
        """Queue a finished program segment; never blocks."""
        try:
            self._queue.put_nowait((run_id, path))
        except asyncio.QueueFull:
            self.status.skipped += 1

    async def run(self) -> None:
        """Send queued segments until cancelled."""
        try:
            while True:
                try:
                    async with asyncio.timeout(IDLE_SECONDS):
                        run_id, path = await self._queue.get()
                except TimeoutError:
                    await self._finish()  # the session ended: end the stream cleanly
                    self.status.state = "idle"
                    continue
                await self._send(run_id, path)
        finally:
            await self._finish()

    async def _send(self, run_id: int, path: Path) -> None:
        if time.monotonic() < self._retry_at:
            self.status.skipped += 1  # waiting out the back-off after a failure
            return
        if run_id != self._run_id:
            await self._finish()  # a new ffmpeg run: new timestamps, new stream
        try:
            data = await asyncio.to_thread(path.read_bytes)
            if self._proc is None or self._proc.returncode is not None:
                await self._start()
            assert self._proc is not None and self._proc.stdin is not None
            self._proc.stdin.write(data)
            async with asyncio.timeout(WRITE_TIMEOUT_SECONDS):
                await self._proc.stdin.drain()
        except (OSError, TimeoutError, ConnectionError) as exc:
            await self._failed(f"{type(exc).__name__}: {exc}")
            return
        self._run_id = run_id
        self.status.segments_sent += 1
        if self._proc is not None and self._proc.returncode is None:
            if self.status.state != "pushing":
                self.status.state = "connecting"

    async def _start(self) -> None:
        # Live output, but after capture and the live edge (recorder/priority.py): a push that
        # cannot keep up skips segments.
        self._proc = await spawn(
            PUSH,
            push_argv(self._url),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        self._drain = self._readers.spawn(
            self._read_stderr(self._proc), name=f"push-{self.status.name}-stderr"
        )
        self._progress = self._readers.spawn(
            self._read_progress(self._proc), name=f"push-{self.status.name}-progress"
        )

    async def _read_progress(self, proc: asyncio.subprocess.Process) -> None:
        """The evidence that the platform takes the stream: ffmpeg's count of bytes written to
        it grows (a refused or unreachable platform never gets past the connection)."""
        assert proc.stdout is not None
        sent = 0
        async for raw in proc.stdout:
            key, _, value = raw.decode("ascii", "replace").strip().partition("=")
            if key != "total_size" or not value.isdigit():
                continue
            if int(value) > sent and proc is self._proc:
                sent = int(value)
                self.status.bytes_sent = sent
                if self.status.state != "pushing":
                    log.info(
                        "push %s (%s): the platform takes the stream%s",
                        self.status.name,
                        self.status.url,
                        f" again (after: {self.status.last_error})"
                        if self.status.last_error
                        else "",
                    )
                self.status.state = "pushing"
                self.status.last_error = None  # what went wrong is over; the log keeps it
                self._backoff = BACKOFF_INITIAL_SECONDS

    async def _read_stderr(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        async for raw in proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip().replace(self._url, self.status.url)
            if line:
                self.status.stderr_tail.append(line)
        code = await proc.wait()
        if proc is self._proc and code not in (0, 255):
            await self._failed(f"ffmpeg exited with {code}")

    async def _failed(self, reason: str) -> None:
        last = self.status.stderr_tail[-1] if self.status.stderr_tail else ""
        self.status.last_error = f"{reason}: {last}" if last else reason
        self.status.state = "reconnecting"
        self.status.restarts += 1
        log.warning(
            "push %s (%s): %s; retrying in %.1f s",
            self.status.name,
            self.status.url,
            self.status.last_error,
            self._backoff,
        )
        self._retry_at = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, BACKOFF_MAX_SECONDS)
        proc, self._proc = self._proc, None
        self._run_id = None
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()

    async def _finish(self) -> None:
        proc, self._proc = self._proc, None
        self._run_id = None
        if proc is not None and proc.returncode is None and proc.stdin is not None:
            proc.stdin.close()  # end of input: ffmpeg finishes the stream and exits
            try:
                async with asyncio.timeout(10):
                    await proc.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        for task in (self._drain, self._progress):
            if task is not None:
                await self._readers.cancel(task)  # our own cancellation is not swallowed
        self._drain = self._progress = None
