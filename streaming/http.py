"""Small HTTP helpers shared by the API and pages: JSON errors and typed app keys."""

from __future__ import annotations

import json
import logging
import sqlite3
from typing import Any

from aiohttp import web
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


def session_id_of(request: web.Request) -> int:
    """The {id} of the path as an int; 404 if it cannot be one."""
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 12:
        raise json_error(web.HTTPNotFound, f"session {raw!r} does not exist")
    return int(raw)


API = "/api/"
JSON = "application/json"


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


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Turn the archive's refusals into JSON 404/409 answers, a request that a pydantic model
    refused (and no handler explained) into a JSON 400, and crashes into a JSON 500."""
    try:
        return await handler(request)  # type: ignore[no-any-return]
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
