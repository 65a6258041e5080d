"""A tiny single-threaded guardian process: when obrady dies, however it dies, every ffmpeg it
was running gets exactly one SIGINT, so each finishes the segment it was writing.

Why not PR_SET_PDEATHSIG on ffmpeg itself: measured here, a multi-threaded parent that is
SIGKILLed reparents the child from thread to thread, and each reparenting sends the signal
again; ffmpeg's second SIGINT aborts the trailer and the segment in flight is lost (14 of 20
kills). The guardian learns of obrady's death from end-of-file on its stdin, which happens once.

Protocol on stdin, one line each: "+PID SIGNUM" to watch a process, "-PID" to forget it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys


def main() -> int:
    """Watch pids until stdin closes, then signal each once."""
    # Terminal signals are for obrady, not for us (we also run in our own session).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watched: dict[int, tuple[int, int]] = {}
    for line in sys.stdin:
        command = line.strip()
        if command.startswith("+"):
            pid_text, _, sig_text = command[1:].partition(" ")
            with contextlib.suppress(ValueError, OSError):
                pid = int(pid_text)
                # A pidfd names this very process: never a later one that reuses the pid.
                watched[pid] = (os.pidfd_open(pid), int(sig_text or signal.SIGINT))
        elif command.startswith("-"):
            with contextlib.suppress(ValueError):
                entry = watched.pop(int(command[1:]), None)
                if entry is not None:
                    os.close(entry[0])
    for fd, signum in watched.values():
        with contextlib.suppress(OSError):
            signal.pidfd_send_signal(fd, signum)
        os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
