"""One-shot ffmpeg and ffprobe runs (a probe, a still, a slate, a test recording, a decode).

Each run is bounded: it starts in its own session, both pipes are drained while it runs, it is
killed with SIGKILL (and reaped) when it outlives its timeout or the caller is cancelled, and a
failure raises FfmpegFailed carrying the end of what ffmpeg wrote to stderr (the caller decides
whether to log it). It runs at the caller's level of recorder/priority.py (by default the
service's own: a probe before capture must not wait). The long-lived ffmpeg processes
(capture, push, analysis, pre-flight monitors, exports with their progress) are supervised
elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Sequence

from recorder.priority import CAPTURE, Priority, spawn

log = logging.getLogger(__name__)

# How much of stderr an error keeps (ffmpeg's reason for failing is at the end).
STDERR_TAIL_CHARS = 2000
# After SIGKILL the pipes close at once; this bounds the wait for a stray holder of them.
REAP_SECONDS = 5.0


class FfmpegFailed(Exception):
    """A one-shot ffmpeg/ffprobe exited with an error; `what` it was doing, its exit code and
    the end of its stderr."""

    def __init__(self, what: str, returncode: int | None, stderr_tail: str) -> None:
        self.what = what
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        super().__init__(f"{what} failed ({self.why}): {stderr_tail or '(ffmpeg said nothing)'}")

    @property
    def why(self) -> str:
        """Why it failed, in a few words: "exit 1"."""
        return f"exit {self.returncode}"

    def last_words(self, lines: int = 3) -> str:
        """The last non-empty lines of stderr, joined by " | "."""
        found = [line.strip() for line in self.stderr_tail.splitlines() if line.strip()]
        return " | ".join(found[-lines:]) or "(ffmpeg said nothing)"


class FfmpegTimedOut(FfmpegFailed, TimeoutError):
    """A one-shot ffmpeg/ffprobe outlived its timeout and was killed."""

    def __init__(self, what: str, timeout: float, returncode: int | None, stderr_tail: str) -> None:
        self.timeout = timeout
        super().__init__(what, returncode, stderr_tail)

    @property
    def why(self) -> str:
        return f"took over {self.timeout:g} s; killed"


async def run_ffmpeg(
    argv: Sequence[str],
    *,
    timeout: float,
    what: str,
    stdin: bytes | None = None,
    priority: Priority = CAPTURE,
) -> bytes:
    """Run ffmpeg or ffprobe to completion and return its stdout.

    `what` names the job in errors ("probe the segment"); `stdin` is written to it (else it
    reads nothing); `priority` is its level in the order of sacrifice. Raises FfmpegFailed on
    a non-zero exit, FfmpegTimedOut (also a TimeoutError) after killing it at `timeout`,
    OSError if it cannot be started."""
    proc = await spawn(
        priority,
        argv,
        stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        # Own session: a Ctrl-C to obrady does not reach it; its whole group can be killed.
        # No preexec_fn (e.g. PR_SET_PDEATHSIG): it is not safe in a process with threads, and
        # obrady has several; every one-shot ends by itself or at its timeout.
        start_new_session=True,
    )
    # communicate() feeds stdin and drains both pipes until ffmpeg exits; shielded, so that
    # after a kill it still returns what was written before.
    io = asyncio.ensure_future(proc.communicate(stdin))
    try:
        async with asyncio.timeout(timeout):
            out, err = await asyncio.shield(io)
    except TimeoutError:
        err = await _kill(proc, io)
        raise FfmpegTimedOut(what, timeout, proc.returncode, _tail(err)) from None
    except asyncio.CancelledError:
        await _kill(proc, io)
        raise
    if proc.returncode != 0:
        raise FfmpegFailed(what, proc.returncode, _tail(err))
    return out


def run_ffmpeg_blocking(
    argv: Sequence[str],
    *,
    timeout: float,
    what: str,
    stdin: bytes | None = None,
    priority: Priority = CAPTURE,
) -> bytes:
    """run_ffmpeg for code in a worker thread (one without a running event loop)."""
    return asyncio.run(run_ffmpeg(argv, timeout=timeout, what=what, stdin=stdin, priority=priority))


async def _kill(proc: asyncio.subprocess.Process, io: asyncio.Future[tuple[bytes, bytes]]) -> bytes:
    """SIGKILL the process group, reap the process; what it wrote to stderr."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    err = b""
    try:
        async with asyncio.timeout(REAP_SECONDS):
            _, err = await asyncio.shield(io)
    except TimeoutError:
        io.cancel()
    except Exception:  # the output is lost; the process is still reaped below
        log.debug("reading a killed ffmpeg's output failed", exc_info=True)
    await asyncio.shield(proc.wait())
    return err or b""


def _tail(err: bytes | None) -> str:
    return (err or b"").decode(errors="replace").strip()[-STDERR_TAIL_CHARS:]
