"""bench/_viewers.py's HTTP client, which bench/scale.py measures delivery with: it reads every
byte of every answer, however the answer is cut into reads, and notes when it was complete."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from _viewers import Client  # noqa: E402

BODY = bytes(range(256)) * 1200  # 300 KiB: more than one read


def answer(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n" % (len(body), extra) + body


def chunked(body: bytes) -> bytes:
    out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    for at in range(0, len(body), 70000):
        piece = body[at : at + 70000]
        out += b"%x\r\n%s\r\n" % (len(piece), piece)
    return out + b"0\r\n\r\n"


# What the server sends for each request, in pieces with a pause between them.
SCRIPT: dict[bytes, list[bytes]] = {
    b"/whole": [answer(BODY)],
    b"/head-split": [b"HTTP/1.1 200 OK\r\nContent-", b"Length: 5\r\n\r", b"\nhello"],
    b"/body-split": [answer(BODY)[:100], answer(BODY)[100:150_000], answer(BODY)[150_000:]],
    b"/chunked": [chunked(BODY)[:1000], chunked(BODY)[1000:]],
    b"/empty": [b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"],
    b"/close": [answer(b"bye", b"Connection: close\r\n")],
}


@pytest.fixture
async def server() -> AsyncIterator[int]:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                for piece in SCRIPT[head.split(b" ")[1]]:
                    writer.write(piece)
                    await writer.drain()
                    await asyncio.sleep(0.01)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    srv = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield srv.sockets[0].getsockname()[1]
    finally:
        srv.close()


async def test_every_answer_is_read_whole(server: int) -> None:
    client = Client("127.0.0.1", server, 5)
    try:
        for path, kept in (
            ("/whole", BODY),
            ("/head-split", b"hello"),
            ("/body-split", BODY),
            ("/chunked", BODY),
            ("/empty", b""),
            ("/whole", BODY),  # the same connection throughout
        ):
            began = time.monotonic()
            status, done, body = await client.fetch(path, True)
            assert body == kept and began < done <= time.monotonic()
            assert status == (404 if path == "/empty" else 200)
            # Not kept: only counted, but still read to the end before it counts as done.
            status, done, body = await client.fetch(path, False)
            assert body == b"" and status in (200, 404)
        assert client.connects == 1
        status, _, body = await client.fetch("/close", True)
        assert (status, body) == (200, b"bye")
        assert (await client.fetch("/whole", False))[0] == 200 and client.connects == 2
    finally:
        client.close()
