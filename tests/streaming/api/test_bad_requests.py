"""Every bad request, at every size and encoding limit, gets a 4xx JSON answer that says what to
fix, on both ports (the control port and the viewers' gateway, the viewer beacon included),
whether a handler, the error middleware or aiohttp's own parser refuses it; and nothing stored
changes."""

from __future__ import annotations

import asyncio
import gzip
import importlib.util
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from conftest import OPERATOR, Service, basic
from servers import ROOT

from streaming.api.models import MAX_AGENDA_CHARS
from streaming.app.gateway import GatewaySite, create_gateway_app
from streaming.app.sites import service_runner
from streaming.hls.routes import BEACON_MAX_BYTES
from streaming.http import (
    MAX_BODY_BYTES,
    MAX_FIELD_BYTES,
    MAX_HEADERS,
    MAX_LINE_BYTES,
    parse_json,
)
from streaming.keys import VIEWERS

SESSIONS = "/api/v1/sessions"
BEACON = "/live/sala/viewers"
VIEWER = "player-0123456789"
# aiohttp decodes br only with one of these installed.
BROTLI = any(importlib.util.find_spec(name) for name in ("brotli", "brotlicffi"))


@dataclass
class Port:
    """One of the two ports: its base URL and the app behind it."""

    name: str
    base: str
    app: web.Application


@pytest.fixture
async def gateway(service: Service) -> AsyncIterator[Port]:
    """The viewers' gateway beside the service, served as `obrady gateway` serves it."""
    app = create_gateway_app(service.settings)
    runner = service_runner(app, access_log=None)
    await runner.setup()
    try:
        site = GatewaySite(runner, "127.0.0.1", 0)
        await site.start()
        yield Port("gateway", f"http://127.0.0.1:{site.port}", app)
    finally:
        await runner.cleanup()


@pytest.fixture
def ports(service: Service, gateway: Port) -> list[Port]:
    return [Port("control", service.base, service.app), gateway]


def session_json(**changes: Any) -> dict[str, Any]:
    start = datetime.now(UTC) + timedelta(days=1)
    data = {
        "title": "LVIII Sesja",
        "scheduled_start": start.isoformat(),
        "scheduled_end": (start + timedelta(hours=3)).isoformat(),
        "agenda_text": "1. Otwarcie sesji.\n2. Zamknięcie obrad.\n",
    }
    data.update(changes)
    return data


def with_raw(data: dict[str, Any], key: str, raw: str) -> bytes:
    """data as JSON with the value of key replaced by raw JSON text (or bytes)."""
    marker = "\u2603MARKER\u2603"
    text = json.dumps({**data, key: marker}, ensure_ascii=False)
    return text.replace(json.dumps(marker, ensure_ascii=False), raw).encode()


DEEP = "[" * 100_000 + "]" * 100_000
# (what, the raw value of one field, extra headers, status, words the answer must hold)
BAD_VALUES: list[tuple[str, str, int, tuple[str, ...]]] = [
    ("lone surrogate", '"Sesja \\ud800"', 400, ("unpaired UTF-16 surrogate", "valid Unicode")),
    ("nested 100,000 deep", DEEP, 400, ("more than 32 deep",)),
    ("nested 40 deep", "[" * 40 + "]" * 40, 400, ("more than 32 deep",)),
    ("5,000-digit integer", "1" * 5000, 400, ("more than 100 digits",)),
    ("101-digit integer", "1" * 101, 400, ("more than 100 digits",)),
]


async def sessions(service: Service) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = (await service.get_json(SESSIONS))["sessions"]
    return listed


async def post(
    base: str, path: str, data: bytes, headers: dict[str, str] | None = None
) -> tuple[int, str, dict[str, Any]]:
    """POST raw bytes; the status, the content type and the JSON answer."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(base + path, data=io.BytesIO(data), headers=headers or {}) as resp,
    ):
        text = await resp.text()
        assert resp.content_type == "application/json", (resp.status, resp.content_type, text)
        return resp.status, resp.content_type, json.loads(text)


def refused(answer: tuple[int, str, dict[str, Any]], status: int, *words: str) -> None:
    got, _type, body = answer
    assert got == status, (got, body)
    assert set(body) == {"error"}, body
    for word in words:
        assert word in body["error"], (word, body["error"])


def cases(
    template: dict[str, Any], key: str
) -> list[tuple[str, bytes, dict[str, str], int, tuple[str, ...]]]:
    """Each bad body of this suite for one operation: (what, body, headers, status, words)."""
    out: list[tuple[str, bytes, dict[str, str], int, tuple[str, ...]]] = [
        (what, with_raw(template, key, raw), {}, status, words)
        for what, raw, status, words in BAD_VALUES
    ]
    good = json.dumps(template).encode()
    out += [
        ("whole body nested", DEEP.encode(), {}, 400, ("more than 32 deep",)),
        (
            "invalid UTF-8",
            with_raw(template, key, '"Sesja \xff"').replace("\xff".encode(), b"\xff"),
            {},
            400,
            ("not valid UTF-8", "0xff"),
        ),
        (
            "gzip of garbage",
            b"\x1f\x8b this is no gzip stream" + good,
            {"Content-Encoding": "gzip"},
            400,
            ("not valid gzip", "uncompressed"),
        ),
        (
            "over the size limit",
            with_raw(template, key, json.dumps("x" * MAX_BODY_BYTES)),
            {},
            413,
            (f"larger than {MAX_BODY_BYTES} bytes", "1 MiB"),
        ),
        (
            "over the size limit once decompressed",
            gzip.compress(with_raw(template, key, json.dumps(" " * (2 * MAX_BODY_BYTES)))),
            {"Content-Encoding": "gzip"},
            413,
            (f"larger than {MAX_BODY_BYTES} bytes", "decompressed"),
        ),
    ]
    return out


async def test_bad_session_bodies_get_json_400s_and_store_nothing(service: Service) -> None:
    await service.post_json(SESSIONS, session_json(), status=201)
    before = await sessions(service)
    auth = {**basic(OPERATOR), "Content-Type": "application/json"}
    for what, data, headers, status, words in cases(session_json(), "title"):
        answer = await post(service.base, SESSIONS, data, {**auth, **headers})
        try:
            refused(answer, status, *words)
        except AssertionError as exc:
            raise AssertionError(f"{what}: {exc}") from None
        assert await sessions(service) == before, what
    # The same body without its flaw is taken: the refusals above were of the flaw alone.
    await service.post_json(SESSIONS, session_json(title="Sesja \ud83d\ude00"), status=201)
    created = await sessions(service)
    assert len(created) == len(before) + 1


async def test_an_agenda_over_its_length_is_refused_as_too_long(service: Service) -> None:
    before = await sessions(service)
    too_long = "1. Otwarcie.\n" + "x" * (MAX_AGENDA_CHARS - 13 + 1)
    assert len(too_long) == MAX_AGENDA_CHARS + 1
    refusal = await service.post_json(SESSIONS, session_json(agenda_text=too_long), status=400)
    assert refusal["error"].startswith(
        f"agenda_text is longer than {MAX_AGENDA_CHARS} characters"
    ), refusal
    assert "required" not in refusal["error"]
    created = await service.post_json(SESSIONS, session_json(), status=201)
    async with service.http.put(
        f"{service.base}{SESSIONS}/{created['id']}/agenda",
        json={"agenda_text": too_long},
        headers=basic(OPERATOR),
    ) as resp:
        replaced = await resp.json()
        assert resp.status == 400, replaced
    assert replaced["error"].startswith(f"agenda_text is longer than {MAX_AGENDA_CHARS}")
    detail = await service.get_json(f"{SESSIONS}/{created['id']}")
    assert [item["title"] for item in detail["agenda"]] == ["Otwarcie sesji", "Zamknięcie obrad"]
    assert len(await sessions(service)) == len(before) + 1


async def test_bad_viewer_beacons_get_json_400s_on_both_ports(
    service: Service, ports: list[Port]
) -> None:
    for port in ports:
        for what, data, headers, status, words in cases({"id": VIEWER}, "id"):
            sent = gzip.decompress(data) if headers and b"no gzip" not in data else data
            if len(sent) > BEACON_MAX_BYTES:
                # A beacon is short: a longer body is refused as too large before it is read.
                status, words = 413, (f"larger than {BEACON_MAX_BYTES} bytes", "1 KiB")
            answer = await post(
                port.base, BEACON, data, {"Content-Type": "application/json", **headers}
            )
            try:
                refused(answer, status, *words)
            except AssertionError as exc:
                raise AssertionError(f"{port.name}, {what}: {exc}") from None
            assert port.app[VIEWERS].active("sala")[0] == {}, (port.name, what)
        # Only what our player sends (player.js: JSON as application/json) is a beacon: a form
        # or text/plain (what another site's page, or navigator.sendBeacon with a string, can
        # send without asking) is refused, and counts nothing.
        good = json.dumps({"id": VIEWER}).encode()
        for kind in (
            "text/plain;charset=UTF-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/octet-stream",
            "text/json",
            "application/json-patch+json",
        ):
            answer = await post(port.base, BEACON, good, {"Content-Type": kind})
            try:
                refused(answer, 415, "send the beacon as application/json", '{"id": "<8-64')
            except AssertionError as exc:
                raise AssertionError(f"{port.name}, {kind}: {exc}") from None
        # No Content-Type at all (the connection closes after, for raw_request to read it).
        head = f"POST {BEACON} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n"
        head += f"Content-Length: {len(good)}\r\n\r\n"
        status, _, body = await raw_request(port.base, head.encode() + good)
        assert status == 415 and b"application/json" in body, (port.name, status, body)
        assert port.app[VIEWERS].active("sala")[0] == {}, port.name
        # A good beacon counts: the refusals above were of the flaws alone.
        async with (
            aiohttp.ClientSession() as http,
            http.post(port.base + BEACON, json={"id": VIEWER}) as resp,
        ):
            assert resp.status == 204, port.name
        assert list(port.app[VIEWERS].active("sala")[0]) == [VIEWER], port.name
        # So does one compressed.
        padded = gzip.compress(b'{"id": "player-compressed"' + b" " * 900 + b"}")
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                port.base + BEACON,
                data=io.BytesIO(padded),
                headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
                timeout=aiohttp.ClientTimeout(total=10),
            ) as resp,
        ):
            assert resp.status == 204, (port.name, await resp.text())
        assert "player-compressed" in port.app[VIEWERS].active("sala")[0], port.name
        # With its charset named, too.
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                port.base + BEACON,
                data=b'{"id": "player-charset"}',
                headers={"Content-Type": "application/json; charset=utf-8"},
            ) as resp,
        ):
            assert resp.status == 204, (port.name, await resp.text())
        assert "player-charset" in port.app[VIEWERS].active("sala")[0], port.name
    player = (ROOT / "streaming" / "web" / "static" / "player.js").read_text()
    assert 'headers: { "Content-Type": "application/json" }' in player
    assert "JSON.stringify({ id: id })" in player


async def raw_request(base: str, head: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send head as it is; the status, headers and body of the answer."""
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
        await writer.wait_closed()
    top, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = top.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


async def test_what_aiohttps_parser_refuses_is_json_on_both_ports(
    service: Service, ports: list[Port]
) -> None:
    before = await sessions(service)
    long_query = b"?q=" + b"a" * (MAX_LINE_BYTES + 100)
    long_header = b"X-Long: " + b"a" * (MAX_FIELD_BYTES + 100) + b"\r\n"
    many_headers = b"".join(b"X-H%d: a\r\n" % i for i in range(MAX_HEADERS + 10))
    for port in ports:
        for what, head, status, words in [
            (
                "long URL",
                b"GET /api/v1/sessions" + long_query + b" HTTP/1.1\r\nHost: a\r\n\r\n",
                414,
                (f"request line is longer than {MAX_LINE_BYTES} bytes", "shorter URL"),
            ),
            (
                "long live playlist URL",
                b"GET /live/sala/index.m3u8" + long_query + b" HTTP/1.1\r\nHost: a\r\n\r\n",
                414,
                (f"request line is longer than {MAX_LINE_BYTES} bytes",),
            ),
            (
                "long header",
                b"POST " + BEACON.encode() + b" HTTP/1.1\r\nHost: a\r\n" + long_header + b"\r\n",
                431,
                (f"header line is longer than {MAX_FIELD_BYTES} bytes", "shorter headers"),
            ),
            (
                "too many headers",
                b"GET /api/v1/sessions HTTP/1.1\r\nHost: a\r\n" + many_headers + b"\r\n",
                431,
                (f"more than {MAX_HEADERS} header lines",),
            ),
            (
                "not HTTP",
                b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
                400,
                ("not a valid HTTP",),
            ),
            (
                "a Content-Encoding this server cannot decode",
                b"POST " + BEACON.encode() + b" HTTP/1.1\r\nHost: a\r\n"
                b"Content-Type: application/json\r\nContent-Encoding: br\r\n"
                b"Content-Length: 5\r\n\r\nabcde",
                *(
                    (400, ("not valid br",))
                    if BROTLI
                    else (415, ("Content-Encoding is not one this server reads", "gzip"))
                ),
            ),
        ]:
            status_got, headers, body = await raw_request(port.base, head)
            where = f"{port.name}, {what}"
            assert status_got == status, (where, status_got, body)
            assert headers["content-type"].startswith("application/json"), (where, headers)
            error = json.loads(body)["error"]
            for word in words:
                assert word in error, (where, word, error)
            assert len(body) < 500, (where, body)  # the refused request is not echoed back
    assert await sessions(service) == before


async def test_numbers_in_paths_and_queries_are_refused_not_crashed_on(
    service: Service, ports: list[Port]
) -> None:
    # "²" is a digit to str.isdigit() but not to int(); 5,000 digits are past int()'s limit.
    created = await service.post_json(SESSIONS, session_json(), status=201)
    before = await sessions(service)
    for port in ports:
        for number in ("%C2%B2", "1" * 5000):
            for path, status, json_answer in [
                (f"/api/v1/sessions/{number}", 404, True),
                (f"/sessions/{number}", 404, False),
                (f"/archive?page={number}", 400, False),
                (f"/live/sala/index.m3u8?_HLS_msn={number}", 400, True),
                (
                    f"/oembed?url={service.base}/sessions/{created['id']}&maxwidth={number}",
                    400,
                    True,
                ),
            ]:
                async with aiohttp.ClientSession() as http, http.get(port.base + path) as resp:
                    where = (port.name, path[:60])
                    assert resp.status == status, (*where, resp.status, await resp.text())
                    if json_answer:
                        assert resp.content_type == "application/json", where
                        assert (await resp.json())["error"], where
    assert await sessions(service) == before


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"a": "\\ud83d\\ude00"}', {"a": "\U0001f600"}),  # a surrogate pair is one character
        (b'{"a": "\\\\ud800"}', {"a": "\\ud800"}),  # an escaped backslash, then text
        (b'["' + b"[" * 100 + b'"]', ["[" * 100]),  # brackets in a string do not nest
        (b'["\\"' + b"[" * 100 + b'"]', ['"' + "[" * 100]),
        (b"[" * 32 + b"]" * 32, json.loads("[" * 32 + "]" * 32)),
        (b"-" + b"9" * 100, -int("9" * 100)),
    ],
)
def test_json_within_the_limits_is_read_as_sent(raw: bytes, expected: Any) -> None:
    assert parse_json(raw) == expected


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b'{"\\udfff": 1}', "a key in the body holds an unpaired UTF-16 surrogate"),
        (b'{"a": [{"b": ["\\ud800"]}]}', "a.0.b.0 holds an unpaired UTF-16 surrogate"),
        (b"[" * 33 + b"]" * 33, "more than 32 deep"),
        (b"[" * 33, "more than 32 deep"),
        (b"-" + b"9" * 101, "more than 100 digits"),
    ],
)
def test_json_beyond_the_limits_is_a_400_that_says_so(raw: bytes, words: str) -> None:
    with pytest.raises(web.HTTPBadRequest) as refused_with:
        parse_json(raw)
    assert refused_with.value.content_type == "application/json"
    assert words in json.loads(refused_with.value.text or "")["error"]


async def test_the_gateway_reads_a_compressed_body_whole(service: Service) -> None:
    # aiohttp decompresses a body as it is read, pausing and resuming its parser; the fast path
    # in front of it once held the resumption, and the handler waited for ever. The gateway
    # has no route of its own that reads a long body: this test adds one.
    app = create_gateway_app(service.settings)

    async def length(request: web.Request) -> web.Response:
        size = 0
        while chunk := await request.content.readany():  # past client_max_size: a test route
            size += len(chunk)
        return web.json_response({"bytes": size})

    app.router.add_post("/test/length", length)
    runner = service_runner(app, access_log=None)
    await runner.setup()
    try:
        site = GatewaySite(runner, "127.0.0.1", 0)
        await site.start()
        body = gzip.compress(b" " * 4_000_000)
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
            http.post(
                f"http://127.0.0.1:{site.port}/test/length",
                data=io.BytesIO(body),
                headers={"Content-Encoding": "gzip"},
            ) as resp,
        ):
            assert resp.status == 200
            assert await resp.json() == {"bytes": 4_000_000}
        assert site.fast.passed == 1  # the fast path passed it on, as it does every POST
    finally:
        await runner.cleanup()
