"""The order of sacrifice: how much of the machine each kind of work that obrady starts may take
when there is not enough for all of it. The levels are named here, and only here.

Capture (one ffmpeg per camera, and the break and announcement slates, which are recorded as a
camera: recorder/supervisor.py), the live edge (in the service process) and the gateway
processes that serve it keep the service's own priority. Everything else starts lower, so that
under overload the order in which work suffers is fixed:

1. captions lag first: live captions and the recognition of ended recordings (CAPTIONS,
   nice 19, idle I/O); live captions then skip to the newest sound, the rest is heard later;
2. then downloads wait: MP4 exports and the slates an export fills in (EXPORTS, nice 15, the
   lowest best-effort I/O, so a download is late but never starved by captions);
3. then the staff's work slows: pre-flight previews and test recordings (PREFLIGHT), redaction
   slates made for an editor (SLATES), the segment analyser that reports frozen or silent
   sources (ANALYSIS; it skips segments when it falls behind): nice 5;
4. RTMP pushes are live output to other platforms (PUSH, nice 2): they give way only to
   capture and the live edge, and skip segments rather than hold them;
5. capture, the live edge and the pages served by the service and its gateways: nice 0.

How a level is applied to a child process (`spawn`, or `command` + `settle` for code that
spawns by itself):

- its argv is run through `nice -n N` (and `ionice -t -c 3`, or `-c 2 -n 7`, where util-linux's
  `ionice` is installed): the level holds from the first instruction, for every thread the
  child starts, and nothing runs in the child between fork and exec (no preexec_fn, which is
  not safe in a process with threads). nice adds to the caller's own nice value;
- each child leads its own session (`start_new_session`), and Linux's autogroup scheduling
  (kernel.sched_autogroup_enabled, on by default on desktop and many server kernels) gives
  every session one share of the CPU whatever the nice values inside it: a nice-19 ffmpeg in a
  session of its own takes as much as a capture ffmpeg in another. So the child's session is
  given the same level through /proc/<pid>/autogroup. Where obrady runs in a cgroup of its own
  (a systemd service), autogroup does not apply and nice works within the cgroup as it is.

A thread (the transcription worker) lowers itself with `lower_this_thread`: on Linux the nice
value is per thread, and the threads and processes it starts inherit it.

Everything degrades to running at the service's priority, logged once, where a program or a
/proc file is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
import os
import shutil
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

log = logging.getLogger(__name__)

IoClass = Literal["normal", "low", "idle"]

# The kernel lets a process without CAP_SYS_ADMIN change an autogroup's nice value once per
# 100 ms, machine-wide (EAGAIN otherwise): spawns that come together wait their turn.
AUTOGROUP_RETRY_SECONDS = 0.1
AUTOGROUP_TRIES = 30


@dataclass(frozen=True)
class Priority:
    """A level of the order of sacrifice: the nice value added to the service's, and the I/O
    class ("normal": as the service; "low": best-effort, lowest level; "idle": only when no
    one else uses the disk)."""

    name: str
    nice: int
    io: IoClass = "normal"

    def __post_init__(self) -> None:
        if not 0 <= self.nice <= 19:
            raise ValueError(f"{self.name}: nice must be 0 to 19, not {self.nice}")

    @property
    def lowered(self) -> bool:
        """Whether this level is below the service's."""
        return self.nice > 0 or self.io != "normal"

    def command(self, argv: Sequence[str]) -> list[str]:
        """argv run at this level: prefixed with `nice` and `ionice` where they are installed.
        A program that cannot be found is left alone, so that starting it fails as before
        (FileNotFoundError) rather than through nice's exit code."""
        argv = list(argv)
        if not self.lowered or not argv or shutil.which(argv[0]) is None:
            return argv
        prefix: list[str] = []
        nice = _program("nice")
        if self.nice > 0 and nice is not None:
            prefix += [nice, "-n", str(self.nice)]
        ionice = _program("ionice")
        if self.io != "normal" and ionice is not None:
            # -t: run the command even where the I/O class cannot be set.
            io = ["-c", "3"] if self.io == "idle" else ["-c", "2", "-n", "7"]
            prefix += [ionice, "-t", *io]
        return prefix + argv

    def settle(self, pid: int) -> bool:
        """Give the session that the child `pid` leads this level's CPU share (autogroup);
        whether it was set. Blocking (it may wait out the kernel's rate limit): in the event
        loop call `settle_async`."""
        for _ in range(AUTOGROUP_TRIES):
            result = _set_autogroup(pid, self.nice)
            if result is not None:
                return result
            time.sleep(AUTOGROUP_RETRY_SECONDS)
        _warn_once("autogroup-busy", "the autogroup nice value of %d stayed busy; left at 0", pid)
        return False

    async def settle_async(self, pid: int) -> bool:
        """settle() without blocking the event loop."""
        for _ in range(AUTOGROUP_TRIES):
            result = _set_autogroup(pid, self.nice)
            if result is not None:
                return result
            await asyncio.sleep(AUTOGROUP_RETRY_SECONDS)
        _warn_once("autogroup-busy", "the autogroup nice value of %d stayed busy; left at 0", pid)
        return False


# --- the levels -------------------------------------------------------------------------------

# Capture, the live edge, the gateways, the service itself: never lowered.
CAPTURE = Priority("capture", 0)
# RTMP pushes: live output, a little below capture and the live edge.
PUSH = Priority("push", 2)
# The staff's work: pre-flight, redaction slates for an editor, segment analysis.
PREFLIGHT = Priority("preflight", 5)
SLATES = Priority("slates", 5)
ANALYSIS = Priority("analysis", 5)
# Downloads: MP4 exports (and the slates they fill in).
EXPORTS = Priority("exports", 15, "low")
# Captions: live captions and the recognition of ended recordings (one worker thread, whose
# nice value transcription.nice sets; 19 by default) and the ffmpeg that decodes their sound.
CAPTIONS = Priority("captions", 19, "idle")

# Most expendable first: the order of sacrifice, as the README tells it.
ORDER = (CAPTIONS, EXPORTS, PREFLIGHT, SLATES, ANALYSIS, PUSH, CAPTURE)


# --- applying them ----------------------------------------------------------------------------


async def spawn(
    priority: Priority, argv: Sequence[str], **kwargs: Any
) -> asyncio.subprocess.Process:
    """asyncio.create_subprocess_exec of argv at this level, in a session of its own (kwargs go
    to create_subprocess_exec: pipes, preexec_fn)."""
    kwargs.setdefault("start_new_session", True)
    proc = await asyncio.create_subprocess_exec(*priority.command(argv), **kwargs)
    if priority.nice > 0 and kwargs["start_new_session"]:
        try:
            await priority.settle_async(proc.pid)
        except BaseException:  # cancelled while waiting its turn: the child is not left behind
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await asyncio.shield(proc.wait())
            raise
    return proc


def lower_this_thread(nice: int) -> None:
    """Add nice to the calling thread's nice value (Linux: per thread; the threads and
    processes it starts afterwards inherit it)."""
    if nice <= 0:
        return
    tid = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + nice))
    except (OSError, AttributeError) as exc:
        _warn_once("thread", "cannot lower a worker thread's priority: %s", exc)


def nice_of(pid: int) -> int:
    """The nice value of a process (or thread id), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[16])  # field 19 of proc(5); fields[0] is field 3


def autogroup_nice_of(pid: int) -> int | None:
    """The nice value of the autogroup the process is in (None without autogroup support)."""
    try:
        with open(f"/proc/{pid}/autogroup", encoding="ascii") as group:
            return int(group.read().split()[-1])
    except (OSError, ValueError, IndexError):
        return None


def _set_autogroup(pid: int, nice: int) -> bool | None:
    """True if set, False if it cannot be (logged once), None to try again shortly."""
    try:
        # Only a session leader's autogroup is its own: the service's must never be lowered.
        if os.getsid(pid) != pid:
            return False
        with open(f"/proc/{pid}/autogroup", "w", encoding="ascii") as group:
            group.write(str(nice))
        return True
    except ProcessLookupError:
        return False  # it ended already
    except FileNotFoundError:
        return False  # no such process, or a kernel without autogroup
    except OSError as exc:
        if exc.errno == errno.EAGAIN:
            return None
        _warn_once("autogroup", "cannot set an autogroup's nice value: %s", exc)
        return False


@functools.cache
def _program(name: str) -> str | None:
    found = shutil.which(name)
    if found is None:
        what = "CPU" if name == "nice" else "I/O"
        log.warning("%s is not installed: background work runs at the service's %s priority",
                    name, what)  # fmt: skip
    return found


_warned: set[str] = set()
_warned_lock = threading.Lock()


def _warn_once(key: str, message: str, *args: object) -> None:
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    log.warning(message, *args)
