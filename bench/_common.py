"""What the benchmarks share: free ports, bounded polling and plain HTTP (standard library only,
so that the load and the measurement stay out of obrady's own code)."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Callable
from typing import Any


class BenchError(RuntimeError):
    """Something the benchmark needs did not happen; the message says what."""


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def until(probe: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll probe until it returns something truthy; BenchError naming `what` after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(interval)
    raise BenchError(f"no {what} within {timeout:g} s")


def http(
    method: str, url: str, body: Any = None, auth: tuple[str, str] | None = None
) -> tuple[int, bytes]:
    """One request with a 10 s timeout: (status, body); status 0 when nothing answered."""
    headers = {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if auth is not None:
        headers["Authorization"] = "Basic " + b64encode(":".join(auth).encode()).decode()
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


def read_status(base: str, auth: tuple[str, str]) -> dict[str, Any]:
    """GET /api/v1/status with its details, as a signed-in user (anonymous callers get only the
    public facts: service, version, chambers); {} when it does not answer 200."""
    code, body = http("GET", base + "/api/v1/status", auth=auth)
    return json.loads(body) if code == 200 else {}  # type: ignore[no-any-return]
