"""Shared fixtures: a real obrady service on its own port and folder, with real ffmpeg."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import web
from argon2 import PasswordHasher

from archive.index import ArchiveIndex
from config.settings import Settings, parse_settings
from recorder.audiohub import AudioHub
from streaming.app.service import create_app
from streaming.app.sites import ServiceSite, service_runner
from streaming.keys import ARCHIVE

T = TypeVar("T")

OPERATOR = ("op", "operator-password")
STAFF = ("clerk", "staff-password")
ADMIN = ("boss", "admin-password")


def basic(creds: tuple[str, str] | None) -> dict[str, str]:
    """Authorization header for HTTP Basic credentials (none for None)."""
    return {} if creds is None else {"Authorization": aiohttp.encode_basic_auth(*creds)}


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_for(
    probe: Callable[[], Awaitable[T | None]], timeout: float, what: str, interval: float = 0.1
) -> T:
    """Poll probe until it returns something truthy; fail with `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


async def hub_receiving(hub: AudioHub, timeout: float = 10, what: str = "the hub's sound") -> None:
    """Wait until a chamber-sound hub (recorder/audiohub.py) receives its source's sound."""

    async def receiving() -> bool:
        return hub.status.source_state == "receiving"

    await wait_for(receiving, timeout, what)


SYNTHETIC_SOURCE = """kind = "synthetic"
width = 320
height = 180
fps = 10
label = "test"
"""


def rtsp_source(url: str) -> str:
    """The [chambers.source] body for a camera at url (H.264 copied, audio to AAC)."""
    return f'kind = "rtsp"\nurl = "{url}"\ntimeout_seconds = 3\n'


def config_text(
    data_dir: Path, port: int, source: str = SYNTHETIC_SOURCE, **recording: float
) -> str:
    """A small, cheap configuration: one chamber (synthetic 320x180 by default), 1 s segments."""
    rec = {
        "segment_seconds": 1,
        "preroll_seconds": 0,
        "overrun_limit_minutes": 10,
        "stall_timeout_seconds": 10,
        "stop_timeout_seconds": 10,
    }
    rec.update(recording)
    rec_lines = "\n".join(f"{k} = {v}" for k, v in rec.items())
    return f"""
[server]
host = "127.0.0.1"
port = {port}
data_dir = "{data_dir}"

[recording]
{rec_lines}

[live]
playlist_segments = 6
announce_minutes = 0

[monitoring]
offair = false

[[chambers]]
id = "sala"
name = "Sala obrad"
[chambers.source]
{source}"""


async def sign_in(base: str, creds: tuple[str, str]) -> dict[str, str]:
    """The headers of a browser signed in at base/login: the login cookie and its CSRF token.
    (Basic credentials would cost an argon2 check on every request.)"""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(base + "/login") as resp:
            token = re.search(r'name="csrf_token" value="([^"]+)"', await resp.text())
        assert token
        form = {"name": creds[0], "password": creds[1], "csrf_token": token.group(1)}
        async with http.post(base + "/login", data=form, allow_redirects=False) as resp:
            assert resp.status == 303, await resp.text()
            cookie = resp.cookies["obrady_login"].value
        async with http.get(base + "/api/v1/me") as resp:
            csrf = (await resp.json())["csrf_token"]
    return {"Cookie": f"obrady_login={cookie}", "X-CSRF-Token": csrf}


@dataclass
class Service:
    """A running obrady instance for one test."""

    app: web.Application
    runner: web.AppRunner
    base: str
    http: aiohttp.ClientSession
    settings: Settings

    login: dict[str, str] | None = None

    async def get_json(
        self, path: str, status: int = 200, headers: dict[str, str] | None = None
    ) -> Any:
        async with self.http.get(self.base + path, headers=headers) as resp:
            body = await resp.json()
            assert resp.status == status, (resp.status, body)
            return body

    async def signed_in(self) -> dict[str, str]:
        """The headers of a browser signed in as ADMIN (signed in at the first call, which
        writes a login to the archive: call it before a test locks the database)."""
        if self.login is None:
            self.login = await sign_in(self.base, ADMIN)
        return self.login

    async def status(self) -> Any:
        """GET /api/v1/status with its details, as a signed-in user reads it (anonymous
        callers get only the public facts)."""
        return await self.get_json("/api/v1/status", headers=await self.signed_in())

    async def post_json(
        self,
        path: str,
        body: Any = None,
        *,
        auth: tuple[str, str] | None = OPERATOR,
        status: int = 200,
    ) -> Any:
        async with self.http.post(self.base + path, json=body, headers=basic(auth)) as resp:
            data = await resp.json()
            assert resp.status == status, (resp.status, data)
            return data

    async def begin(self, *, start: bool = True, title: str = "Sesja") -> dict[str, Any]:
        """Schedule a session an hour ahead and (by default) start it now; returns it."""
        at = datetime.now(UTC) + timedelta(hours=1)
        created: dict[str, Any] = await self.post_json(
            "/api/v1/sessions",
            {
                "title": title,
                "scheduled_start": at.isoformat(),
                "scheduled_end": (at + timedelta(hours=1)).isoformat(),
                "agenda_text": "1. Otwarcie.\n2. Zamknięcie.\n",
            },
            status=201,
        )
        if start:
            await self.post_json(f"/api/v1/sessions/{created['id']}/start")
        return created

    async def get_text(
        self, path: str, status: int | None = 200, auth: tuple[str, str] | None = None
    ) -> str:
        """GET a text body; status None accepts any status."""
        async with self.http.get(self.base + path, headers=basic(auth)) as resp:
            text = await resp.text()
            assert status is None or resp.status == status, (resp.status, text)
            return text


async def segments_of(service: Service, sid: int) -> int:
    """How many segments the session's recording has so far."""
    detail = await service.get_json(f"/api/v1/sessions/{sid}")
    return sum(run["segments"] for run in detail["recording"]["runs"])


SHORT_AGENDA = "1. Otwarcie sesji.\n2. Budżet miasta.\n3. Zamknięcie obrad.\n"


async def record_two_items(
    service: Service, *, title: str = "Sesja Rady Miasta", stop: bool = True
) -> dict[str, Any]:
    """A short real recording of SHORT_AGENDA: item 1 after 2 segments, item 2 after 4, 7
    segments in all; stopped (the stop's answer) or still live (the created session)."""
    at = datetime.now(UTC) + timedelta(hours=1)
    created: dict[str, Any] = await service.post_json(
        "/api/v1/sessions",
        {
            "title": title,
            "scheduled_start": at.isoformat(),
            "scheduled_end": (at + timedelta(hours=1)).isoformat(),
            "agenda_text": SHORT_AGENDA,
        },
        status=201,
    )
    sid = created["id"]
    await service.post_json(f"/api/v1/sessions/{sid}/start")
    items = [item["id"] for item in created["agenda"]]

    async def at_least(count: int) -> bool:
        return await segments_of(service, sid) >= count

    await wait_for(lambda: at_least(2), 20, "two segments")
    await service.post_json(f"/api/v1/sessions/{sid}/items/{items[0]}/start")
    await wait_for(lambda: at_least(4), 20, "four segments")
    await service.post_json(f"/api/v1/sessions/{sid}/items/{items[1]}/start")
    await wait_for(lambda: at_least(7), 20, "seven segments")
    if stop:
        stopped: dict[str, Any] = await service.post_json(f"/api/v1/sessions/{sid}/stop")
        return stopped
    return created


# The test accounts' passwords are argon2id hashes made with the smallest cost (the service
# verifies a hash with the parameters written in it, as it does every stored hash), made once
# per run: at argon2-cffi's default cost each of the suite's many requests with Basic
# credentials, and each service's three accounts, cost about 0.1 s of CPU.
_TEST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
_TEST_HASHES: dict[str, str] = {}


def cheap_hash(password: str) -> str:
    """A cheap but real argon2id hash of password (the same one for the whole run)."""
    if password not in _TEST_HASHES:
        _TEST_HASHES[password] = _TEST_HASHER.hash(password)
    return _TEST_HASHES[password]


async def start_service(settings: Settings, **app_kwargs: Any) -> Service:
    """Start obrady (archive, recorder, scheduler, gateway) on the configured port."""
    index = ArchiveIndex(settings.data_path / "obrady.sqlite3")
    for (name, password), role in ((OPERATOR, "operator"), (STAFF, "staff"), (ADMIN, "admin")):
        if index.get_user(name) is None:
            index.add_user(name, role, cheap_hash(password))  # type: ignore[arg-type]
    index.close()
    app = create_app(settings, **app_kwargs)
    runner = service_runner(app)  # as `obrady serve` runs it
    await runner.setup()
    site = ServiceSite(runner, settings.server.host, settings.server.port)
    await site.start()
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
    base = f"http://{settings.server.host}:{settings.server.port}"
    assert app[ARCHIVE] is not None
    return Service(app, runner, base, http, settings)


async def stop_service(service: Service) -> None:
    """Stop the service and everything it started."""
    await service.http.close()
    await service.runner.cleanup()


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Build test settings in this test's own folder and port."""

    def make(
        source: str = SYNTHETIC_SOURCE, *, public: bool = False, **recording: float
    ) -> Settings:
        settings = parse_settings(config_text(tmp_path / "data", free_port(), source, **recording))
        if not public:
            return settings
        # live.public_url is the service's own address, as residents would reach it.
        own = f"http://{settings.server.host}:{settings.server.port}"
        live = settings.live.model_copy(update={"public_url": own})
        return settings.model_copy(update={"live": live})

    return make


@pytest.fixture
async def service(make_settings: Callable[..., Settings]) -> AsyncIterator[Service]:
    """A running obrady with one synthetic chamber."""
    svc = await start_service(make_settings())
    try:
        yield svc
    finally:
        await stop_service(svc)


@pytest.fixture
async def watched(make_settings: Callable[..., Settings]) -> AsyncIterator[Service]:
    """A service whose off-air watch is on, its viewers on their own port. The capture's stall
    timeout is long, so a camera stopped by a test is not restarted behind its back."""
    settings = make_settings(SYNTHETIC_SOURCE, segment_seconds=2, stall_timeout_seconds=60)
    live = settings.live.model_copy(update={"gateway_port": free_port()})
    monitoring = settings.monitoring.model_copy(update={"offair": True})
    service = await start_service(
        settings.model_copy(update={"live": live, "monitoring": monitoring})
    )
    try:
        yield service
    finally:
        await stop_service(service)


def hold_searches(monkeypatch: pytest.MonkeyPatch, release: threading.Event) -> threading.Event:
    """From now on every archive search waits in its reader thread until `release` is set (at
    most 10 s); the event returned is set once one is held."""
    entered = threading.Event()
    real_find = ArchiveIndex.find

    def held_find(self: ArchiveIndex, *args: Any, **kwargs: Any) -> Any:
        entered.set()
        release.wait(10)
        return real_find(self, *args, **kwargs)

    monkeypatch.setattr(ArchiveIndex, "find", held_find)
    return entered
