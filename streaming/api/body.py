"""Reading JSON request bodies: a clear 400 for anything that is not a JSON object."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from aiohttp import web

from streaming.http import json_error


def parse_time(body: dict[str, Any], key: str) -> datetime:
    """An ISO 8601 time with a UTC offset from the request body; 400 otherwise."""
    value = body.get(key)
    if not isinstance(value, str):
        raise json_error(
            web.HTTPBadRequest,
            f"{key} is required: an ISO 8601 time such as 2027-01-28T10:00:00+01:00",
        )
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise json_error(
            web.HTTPBadRequest,
            f"{key} {value!r} is not an ISO 8601 time such as 2027-01-28T10:00:00+01:00",
        ) from None
    if at.tzinfo is None:
        raise json_error(
            web.HTTPBadRequest, f"{key} {value!r} has no UTC offset: add one, e.g. +01:00 or Z"
        )
    return at


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object; 400 otherwise."""
    try:
        body = await request.json(loads=json.loads)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise json_error(web.HTTPBadRequest, "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise json_error(web.HTTPBadRequest, "the body must be a JSON object")
    return body
