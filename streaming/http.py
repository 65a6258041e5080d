"""Small HTTP helpers shared by the API and pages: JSON errors, reading a JSON body within sane
limits, and the limits themselves. Every bad request gets a 4xx JSON answer saying what to fix,
whether a handler, the middleware or aiohttp's own parser refuses it."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sqlite3
from collections import OrderedDict
from itertools import accumulate
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, ContentEncodingError, LineTooLong
from pydantic import ValidationError

from archive.db import Busy, Conflict, NotFound

log = logging.getLogger(__name__)


def json_error(
    status: type[web.HTTPException], message: str, headers: dict[str, str] | None = None
) -> web.HTTPException:
    """An HTTP error whose body is {"error": message}."""
    return status(
        text=json.dumps({"error": message}, ensure_ascii=False),
        content_type="application/json",
        headers=headers,
    )


def is_digits(raw: str) -> bool:
    """Whether raw is one or more ASCII digits: str.isdigit() also takes "²" and "①", which
    int() refuses (a ValueError, once a 500)."""
    return raw.isascii() and raw.isdigit()


def session_id_of(request: web.Request) -> int:
    """The {id} of the path as an int; 404 if it cannot be one."""
    raw = request.match_info["id"]
    if not is_digits(raw) or len(raw) > 12:
        raise json_error(web.HTTPNotFound, f"session {raw!r} does not exist")
    return int(raw)


API = "/api/"
JSON = "application/json"

# The largest request body either port reads (aiohttp's client_max_size; for a compressed body,
# its size once decompressed). The longest agenda, 100,000 characters each escaped as \uXXXX,
# is 600,000 bytes.
MAX_BODY_BYTES = 1024 * 1024
# The longest request line and header line aiohttp's parser accepts, and how many header lines
# (nginx's default buffers are 8 KiB too). The two lengths differ on purpose: aiohttp's refusal
# (LineTooLong) names only the limit it met, and that tells a long URL (414) from a long
# header (431).
MAX_LINE_BYTES = 8192
MAX_FIELD_BYTES = 8190
MAX_HEADERS = 128
# How long a connection may go without a request under way: idle between requests, or still
# sending a request head (a slowloris client dribbles one for ever). aiohttp's own default,
# 3630 s, let 1,500 such connections per port hold every file descriptor obrady had
# (bench/hostile_load.py); a request being answered, or held by the gateway, is never cut.
# Longer than the idle time of nginx's and Varnish's connections to their backend (60 s), so
# that they close an idle connection first and never send a request into one obrady closes.
# A full port does not wait for it: it cuts its oldest waiting connection (Connections).
IDLE_SECONDS = 75
# What aiohttp's RequestHandler takes on both ports (web.AppRunner(..., **HANDLER_LIMITS)).
HANDLER_LIMITS: dict[str, int] = {
    "max_line_size": MAX_LINE_BYTES,
    "max_field_size": MAX_FIELD_BYTES,
    "max_headers": MAX_HEADERS,
    "keepalive_timeout": IDLE_SECONDS,
}
# The deepest nesting of arrays and objects a JSON body may have (ours need three or four):
# Python's json parser recurses once per level, and 100,000 levels would exhaust the stack.
MAX_JSON_DEPTH = 32
# The most digits a JSON integer may have: beyond any id or count here, and still a float.
MAX_JSON_DIGITS = 100

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = [0] * 256
_STEP[ord("[")] = _STEP[ord("{")] = 1
_STEP[ord("]")] = _STEP[ord("}")] = -1
# A \u escape of a UTF-16 surrogate: the only way a JSON text can hold an unpaired one.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class _TooManyDigits(Exception):
    """A JSON integer longer than MAX_JSON_DIGITS (not a ValueError: see parse_json)."""


def _json_depth(raw: bytes) -> int:
    """How deep arrays and objects nest in raw (brackets inside strings do not count), without
    recursing: MAX_JSON_DEPTH when a C-speed count of brackets says it cannot be more, else
    the exact depth (measured: under 50 ms for the worst body of 1 MiB)."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_JSON_DEPTH:
        return MAX_JSON_DEPTH
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKET)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _parse_int(text: str) -> int:
    if len(text) - text.startswith("-") > MAX_JSON_DIGITS:
        raise _TooManyDigits
    return int(text)


def _lone_surrogate(value: Any, where: str = "") -> str | None:
    """The place of the first string (or key) in value holding an unpaired surrogate."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return where or "the body"
        return None
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        place = f"{where}.{key}" if where else str(key)
        found = _lone_surrogate(key, f"a key in {where or 'the body'}") or _lone_surrogate(
            item, place
        )
        if found:
            return found
    return None


def parse_json(raw: bytes) -> Any:
    """raw (a request body) as JSON, read as UTF-8 whatever charset it claims (RFC 8259).
    A 400 saying what to fix for text that is not UTF-8, nesting deeper than MAX_JSON_DEPTH,
    an integer longer than MAX_JSON_DIGITS, or a string with an unpaired UTF-16 surrogate (no
    database or answer could hold it); a plain ValueError for anything else that is not JSON,
    for the caller to phrase."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise json_error(
            web.HTTPBadRequest,
            f"the body is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}): "
            "send JSON encoded as UTF-8",
        ) from None
    if _json_depth(raw) > MAX_JSON_DEPTH:
        raise json_error(
            web.HTTPBadRequest,
            f"the body nests arrays and objects more than {MAX_JSON_DEPTH} deep: "
            "send the flat JSON object the operation describes",
        )
    try:
        data = json.loads(text, parse_int=_parse_int)
    except _TooManyDigits:
        raise json_error(
            web.HTTPBadRequest,
            f"the body has a whole number of more than {MAX_JSON_DIGITS} digits: "
            "no field takes one that long",
        ) from None
    if _SURROGATE_ESCAPE.search(raw):
        place = _lone_surrogate(data)
        if place is not None:
            raise json_error(
                web.HTTPBadRequest,
                f"{place} holds an unpaired UTF-16 surrogate (a \\uD800-\\uDFFF escape "
                "without its pair): send valid Unicode text",
            )
    return data


async def read_json(request: web.Request, limit: int | None = None) -> Any:
    """The request's body as JSON (parse_json); an empty body is a ValueError too. With limit,
    a JSON 413 for a body over limit bytes, read no further (client_max_size otherwise)."""
    if limit is None:
        return parse_json(await request.read())
    if (request.content_length or 0) > limit:
        raise too_large(limit, "the most this operation reads")
    body = bytearray()
    while chunk := await request.content.readany():
        body += chunk
        if len(body) > limit:
            raise too_large(limit, "the most this operation reads")
    return parse_json(bytes(body))


def _busy(message: str, retry_after: int) -> web.HTTPException:
    return json_error(
        web.HTTPServiceUnavailable, message, headers={"Retry-After": str(retry_after)}
    )


def _router_error(request: web.Request, exc: web.HTTPException) -> str:
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        return f"{request.method} is not allowed here; allowed: {allowed}"
    if isinstance(exc, web.HTTPNotFound):
        return f"nothing at {request.path}"
    return exc.reason


def _payload_error(request: web.Request, exc: web.RequestPayloadError) -> str:
    cause = exc.__cause__
    if isinstance(cause, ContentEncodingError):
        coding = request.headers.get("Content-Encoding", "")
        return (
            f"the body is not valid {coding} (Content-Encoding): "
            "send it uncompressed, or compressed whole"
        )
    reason = cause.message if isinstance(cause, BadHttpMessage) else str(exc)
    return f"the body could not be read ({reason[:200]}): send it again, whole"


def too_large(limit: int, what: str = "the most this server reads") -> web.HTTPException:
    """A JSON 413 for a body over limit bytes (a compressed body counts as decompressed)."""
    size = f"{limit / 2**20:g} MiB" if limit >= 2**20 else f"{limit / 2**10:g} KiB"
    message = (
        f"the body is larger than {limit} bytes ({size}), {what} "
        "(a compressed body counts as decompressed): send less"
    )
    return web.HTTPRequestEntityTooLarge(
        limit,
        text=json.dumps({"error": message}, ensure_ascii=False),
        content_type=JSON,
    )


def parser_refusal(exc: BadHttpMessage) -> tuple[int, str]:
    """The status and words for a request aiohttp's parser refused (before any middleware):
    414, 431, 415 or 400, never the request's own bytes at length."""
    if isinstance(exc, LineTooLong):
        if str(exc.args[1]) == str(MAX_FIELD_BYTES):
            return 431, (
                f"a header line is longer than {MAX_FIELD_BYTES} bytes: "
                "send shorter headers (fewer or smaller cookies)"
            )
        return 414, f"the request line is longer than {exc.args[1]} bytes: send a shorter URL"
    if isinstance(exc, ContentEncodingError):
        # Before the body: a coding aiohttp cannot decode here (br, zstd without their
        # packages). A body that is not what its coding says is refused later (400).
        return 415, (
            "the body's Content-Encoding is not one this server reads: "
            "send it uncompressed, or as gzip or deflate"
        )
    if exc.message == "Too many headers received":
        return 431, f"more than {MAX_HEADERS} header lines: send fewer headers"
    reason = f" ({exc.message[:200]})" if exc.message else ""
    return 400, f"this is not a valid HTTP/1.1 request{reason}"


class Connections:
    """The connections a port holds, oldest first, and its most. When it is full, a new
    connection takes the place of the oldest one that is waiting for a request (idle, or still
    sending a head: what a slow-header flood holds); a connection with a request under way (a
    viewer's held reload, a download) is never cut. With none to take, the new connection is
    answered with a JSON 503 and closed, before anything of it is read. So a flood of
    connections can take neither the file descriptors nor the memory the process needs, nor
    keep out a client with a request to make."""

    # How many of the oldest connections are looked at for one that waits (the busy ones go
    # to the back of the line), so that a full port costs little per new connection.
    SCAN = 64

    def __init__(self, most: int) -> None:
        self.most = most
        self.held: OrderedDict[JsonErrorHandler, None] = OrderedDict()
        self.refused = 0
        self.evicted = 0

    @property
    def open(self) -> int:
        """Connections held now."""
        return len(self.held)

    def admit(self, handler: JsonErrorHandler) -> bool:
        """Whether handler's connection may stay (it is then held), taking the place of a
        waiting one if the port is full."""
        held = self.held
        if len(held) >= self.most:
            for _ in range(min(len(held), self.SCAN)):
                old, _ = held.popitem(last=False)
                if old.waiting():
                    self.evicted += 1
                    old.force_close()
                    break
                held[old] = None  # busy: to the back of the line
            else:
                self.refused += 1
                return False
        held[handler] = None
        return True

    def leave(self, handler: JsonErrorHandler) -> None:
        """handler's connection is gone."""
        self.held.pop(handler, None)


def refusal_bytes(status: int, reason: str, message: str, retry_after: int | None = None) -> bytes:
    """A whole HTTP/1.1 answer with a JSON error that closes the connection."""
    body = json.dumps({"error": message}, ensure_ascii=False).encode()
    retry = f"Retry-After: {retry_after}\r\n" if retry_after is not None else ""
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {JSON}; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n{retry}Connection: close\r\n\r\n"
    ).encode() + body


class JsonErrorHandler(web.RequestHandler):
    """aiohttp's protocol for one connection (the roots' sites make it), whose own answers, a
    request its parser refuses (400, 414, 431) and the last-resort 500, are JSON like every
    other error, and whose refusals of bad clients are not logged as server errors. With
    `connections`, a connection beyond the port's most is refused (503) at once."""

    def __init__(
        self, manager: web.Server, *, connections: Connections | None = None, **kwargs: Any
    ) -> None:
        super().__init__(manager, **kwargs)
        self._connections = connections
        self.refused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        count = self._connections
        if count is not None and not count.admit(self):
            # Never handed to aiohttp: nothing is read, no task started.
            self.refused = True
            message = (
                f"this server holds {count.most} connections at once, each with a request "
                "under way: try again in a moment"
            )
            if isinstance(transport, asyncio.WriteTransport):
                transport.write(refusal_bytes(503, "Service Unavailable", message, 1))
            transport.close()
            return
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._connections is not None:
            self._connections.leave(self)
        if self.refused:
            return
        super().connection_lost(exc)

    def waiting(self) -> bool:
        """Whether this connection waits for a request (idle, or a head not yet whole), as
        aiohttp's own keep-alive check sees it: none is under way."""
        waiter = self._waiter
        return waiter is not None and not waiter.done() and self.transport is not None

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        super().data_received(data)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if isinstance(exc, BadHttpMessage):
            log.debug("refused a request from %s: %s", request.remote, exc)
            status, text = parser_refusal(exc)
        else:
            self.log_exception("Error handling request from %s", request.remote, exc_info=exc)
            status, text = 500, "internal error; see the server log"
        if request.writer.output_size > 0:
            raise ConnectionError("the answer has begun: no error can follow it")
        response = web.Response(
            status=status,
            text=json.dumps({"error": text}, ensure_ascii=False),
            content_type=JSON,
        )
        response.force_close()
        return response


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Turn the archive's refusals into JSON 404/409 answers, a request that a pydantic model
    refused (and no handler explained) into a JSON 400, a body too large or that cannot be
    decoded into a JSON 413 or 400 (on every path), and crashes into a JSON 500."""
    try:
        return await handler(request)  # type: ignore[no-any-return]
    except web.HTTPRequestEntityTooLarge as exc:
        if exc.content_type == JSON:
            raise
        raise too_large(request.client_max_size) from None
    except web.RequestPayloadError as exc:
        refusal = json_error(web.HTTPBadRequest, _payload_error(request, exc))
        # The rest of the body cannot be read either: the connection closes after this answer,
        # and the body counts as read (aiohttp would otherwise read on after the answer, meet
        # the same error, and log it as unhandled).
        refusal.force_close()
        request.content.feed_eof()
        raise refusal from None
    except web.HTTPException as exc:
        if request.path.startswith(API) and exc.status >= 400 and exc.content_type != JSON:
            # The router's own 404 and 405: in the API, every error is JSON too.
            exc.text = json.dumps({"error": _router_error(request, exc)}, ensure_ascii=False)
            exc.content_type = JSON
        raise
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise json_error(
            web.HTTPBadRequest, f"{where}: {first['msg']}" if where else first["msg"]
        ) from None
    except NotFound as exc:
        raise json_error(web.HTTPNotFound, str(exc)) from None
    except Conflict as exc:
        payload: dict[str, Any] = {"error": str(exc)}
        if exc.live_session_id is not None:
            payload["live_session_id"] = exc.live_session_id
        raise web.HTTPConflict(
            text=json.dumps(payload, ensure_ascii=False), content_type="application/json"
        ) from None
    except Busy as exc:
        raise _busy(str(exc), exc.retry_after) from None
    except sqlite3.OperationalError as exc:
        # A database locked by another program (a backup, an sqlite3 shell) past the wait.
        log.warning("archive unavailable on %s %s: %s", request.method, request.path, exc)
        raise _busy(
            f"the archive is busy ({exc}); nothing was lost: try again in a few seconds", 5
        ) from None
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        raise json_error(
            web.HTTPInternalServerError, "internal error; see the server log"
        ) from None
