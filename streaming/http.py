"""Small HTTP helpers shared by the API and pages: JSON errors and typed app keys."""

from __future__ import annotations

import json

from aiohttp import web


def json_error(
    status: type[web.HTTPException], message: str, headers: dict[str, str] | None = None
) -> web.HTTPException:
    """An HTTP error whose body is {"error": message}."""
    return status(
        text=json.dumps({"error": message}, ensure_ascii=False),
        content_type="application/json",
        headers=headers,
    )
