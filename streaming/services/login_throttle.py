"""What makes sign-in hard to use against the service: repeated wrong passwords slow down, per
user name and per client address (past either limit within 15 minutes, the next try must wait);
the password checks running at once are bounded, so anonymous requests cannot make the process
hold more than a fixed amount of argon2 memory; pre-login tokens are the server's own."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

# Bounded memory against a flood of invented names or addresses.
_MAX_TRACKED = 10_000


class _Window:
    """Failure times per key within the window, the oldest keys forgotten beyond _MAX_TRACKED."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float]) -> None:
        self.limit = limit
        self._window = window
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        now = self._clock()
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        while failures and now - failures[0] > self._window:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    def wait_seconds(self, key: str) -> float:
        failures = self._recent(key)
        if len(failures) < self.limit:
            return 0.0
        return max(0.0, self._window - (self._clock() - failures[-self.limit]))

    def failed(self, key: str) -> None:
        self._recent(key)
        self._failures.setdefault(key, deque(maxlen=self.limit)).append(self._clock())
        if len(self._failures) > _MAX_TRACKED:
            self._failures.pop(next(iter(self._failures)))

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)


class LoginThrottle:
    """Counts failed sign-ins (form and HTTP Basic alike) per user name and per client address;
    too many of either within the window must wait."""

    WINDOW_SECONDS = 15 * 60

    def __init__(
        self, limit: int, address_limit: int | None = None, clock: Any = time.monotonic
    ) -> None:
        self._names = _Window(limit, self.WINDOW_SECONDS, clock)
        self._addresses = _Window(address_limit or limit * 3, self.WINDOW_SECONDS, clock)

    def wait_seconds(self, name: str, address: str) -> float:
        """How long a try for this name from this address must wait (0 = may try now)."""
        return max(self._names.wait_seconds(name.lower()), self._addresses.wait_seconds(address))

    def failed(self, name: str, address: str) -> None:
        """Count a wrong password for this name from this address."""
        self._names.failed(name.lower())
        self._addresses.failed(address)

    def succeeded(self, name: str) -> None:
        """Forget the failures of a name that signed in. The address's stay: an account of
        one's own must not reset the count of guesses at the others."""
        self._names.forget(name.lower())


class ChecksBusy(Exception):
    """Too many password checks are running or waiting: try again in a second."""


class PasswordChecks:
    """Runs password checks in threads, at most `running` at once and `waiting` more in line;
    beyond that, ChecksBusy at once. A check's slot is free only when its thread has finished,
    even if the request that started it was cancelled meanwhile.

    It also remembers the last REMEMBERED credentials it found right (a keyed hash of name and
    password, never the password, beside the stored hash they matched), so that a script
    signing in with HTTP Basic on every request does not queue behind anonymous guesses for a
    slot (bench/hostile_load.py: an operator's script got 429 for 29 requests in 33 while
    bogus credentials flooded the port). A changed password has a new stored hash, which the
    remembered one no longer matches."""

    REMEMBERED = 256

    def __init__(self, running: int, waiting: int) -> None:
        self._slots = asyncio.Semaphore(running)
        self._capacity = running + waiting
        self._inside = 0
        self._key = secrets.token_bytes(32)
        self._right: OrderedDict[bytes, str] = OrderedDict()

    def _credentials(self, name: str, password: str) -> bytes:
        text = f"{len(name)}:{name}:{password}".encode("utf-8", "surrogatepass")
        return hmac.new(self._key, text, hashlib.sha256).digest()

    def known(self, name: str, password: str, stored: str) -> bool:
        """Whether these credentials were found right against this very stored hash."""
        key = self._credentials(name, password)
        right = self._right.get(key)
        if right is None or not hmac.compare_digest(right, stored):
            return False
        self._right.move_to_end(key)
        return True

    def full(self) -> bool:
        """Whether a new check would be refused now (ChecksBusy)."""
        return self._inside >= self._capacity

    def may_know(self, name: str, password: str) -> bool:
        """Whether these credentials were found right before, against whatever hash: worth
        reading the account to see if `known` holds."""
        return self._credentials(name, password) in self._right

    def remember(self, name: str, password: str, stored: str) -> None:
        """These credentials were just found right against stored."""
        key = self._credentials(name, password)
        self._right[key] = stored
        self._right.move_to_end(key)
        while len(self._right) > self.REMEMBERED:
            self._right.popitem(last=False)

    async def run(self, check: Callable[..., T], *args: Any) -> T:
        """check(*args) in a thread once a slot is free; ChecksBusy if the line is full."""
        if self._inside >= self._capacity:
            raise ChecksBusy
        self._inside += 1
        try:
            await self._slots.acquire()
        except BaseException:
            self._inside -= 1
            raise
        try:
            future = asyncio.get_running_loop().run_in_executor(None, check, *args)
        except BaseException:
            self._release(None)
            raise
        future.add_done_callback(self._release)
        return await asyncio.shield(future)

    def _release(self, _: object) -> None:
        self._inside -= 1
        self._slots.release()


class PreloginTokens:
    """The login form's anti-forgery tokens: random, stamped and signed with this process's
    key, so a token a client made up, or one older than MAX_AGE_SECONDS, is not valid. Nothing
    is stored per token: a flood of login pages costs no memory."""

    MAX_AGE_SECONDS = 3600

    def __init__(self, key: bytes | None = None, clock: Callable[[], float] = time.time) -> None:
        self._key = key or secrets.token_bytes(32)
        self._clock = clock

    def _mac(self, body: str) -> str:
        return hmac.new(self._key, body.encode("ascii"), hashlib.sha256).hexdigest()

    def issue(self) -> str:
        """A new token."""
        body = f"{secrets.token_urlsafe(24)}.{int(self._clock())}"
        return f"{body}.{self._mac(body)}"

    def valid(self, token: str | None) -> bool:
        """Whether this process issued the token within the last MAX_AGE_SECONDS."""
        if not token or len(token) > 200 or not token.isascii():
            return False
        body, _, mac = token.rpartition(".")
        stamp = body.rpartition(".")[2]
        if not stamp.isdigit() or not hmac.compare_digest(mac, self._mac(body)):
            return False
        return 0 <= self._clock() - int(stamp) <= self.MAX_AGE_SECONDS
