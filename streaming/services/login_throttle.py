"""Slows repeated wrong passwords for one name: past the limit within 15 minutes, it must wait."""

from __future__ import annotations

import time
from collections import deque
from typing import Any


class LoginThrottle:
    """Counts failed sign-ins per user name; too many within the window must wait."""

    WINDOW_SECONDS = 15 * 60

    def __init__(self, limit: int, clock: Any = time.monotonic) -> None:
        self._limit = limit
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, name: str) -> deque[float]:
        now = self._clock()
        failures = self._failures.setdefault(name.lower(), deque())
        while failures and now - failures[0] > self.WINDOW_SECONDS:
            failures.popleft()
        return failures

    def wait_seconds(self, name: str) -> float:
        """How long this name must wait before another try (0 = may try now)."""
        failures = self._recent(name)
        if len(failures) < self._limit:
            return 0.0
        return max(0.0, self.WINDOW_SECONDS - (self._clock() - failures[0]))

    def failed(self, name: str) -> None:
        """Count a wrong password for this name."""
        self._recent(name).append(self._clock())
        if len(self._failures) > 10_000:  # bounded memory against a flood of invented names
            self._failures.pop(next(iter(self._failures)))

    def succeeded(self, name: str) -> None:
        """Forget the failures of a name that signed in."""
        self._failures.pop(name.lower(), None)
