"""The OpenAPI 3.1 document of /api/v1, kept beside the handlers it describes."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}
_SESSION = {"$ref": "#/components/schemas/Session"}


def _resp(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"description": description}
    if schema is not None:
        body["content"] = {"application/json": {"schema": schema}}
    return body


_ERRORS = {
    "400": _resp("The request is invalid; the error says what to fix.", _ERROR),
    "401": _resp("No or wrong credentials.", _ERROR),
    "403": _resp("The user's role may not do this.", _ERROR),
    "404": _resp("No such session or item.", _ERROR),
    "409": _resp("Not possible in the session's current state.", _ERROR),
}
_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}


def _one_field(name: str, kind: str) -> dict[str, Any]:
    """A JSON request body that is an object with one required field."""
    schema = {"type": "object", "required": [name], "properties": {name: {"type": kind}}}
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _op(
    summary: str, ok: dict[str, Any], *, auth: bool, errors: tuple[str, ...], **extra: Any
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {**ok, **{c: _ERRORS[c] for c in errors}},
    }
    if auth:
        op["security"] = [{"basic": []}]
    op.update(extra)
    return op


def openapi_document() -> dict[str, Any]:
    """The API description served at /api/v1/openapi.json."""
    control_errors = ("401", "403", "404", "409")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "obrady API",
            "version": "1",
            "description": "Council sessions: schedule, record, mark agenda items and breaks. "
            "Reading is public; changes need HTTP Basic credentials of an operator or admin.",
        },
        "paths": {
            "/api/v1/sessions": {
                "get": _op(
                    "List sessions, newest first",
                    {
                        "200": _resp(
                            "Sessions",
                            {
                                "type": "object",
                                "properties": {"sessions": {"type": "array", "items": _SESSION}},
                            },
                        )
                    },
                    auth=False,
                    errors=(),
                ),
                "post": _op(
                    "Schedule a session with its agenda pasted as text",
                    {"201": _resp("The new session", _SESSION)},
                    auth=True,
                    errors=("400", "401", "403"),
                    requestBody={
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": [
                                        "title",
                                        "scheduled_start",
                                        "scheduled_end",
                                        "agenda_text",
                                    ],
                                    "additionalProperties": False,
                                    "properties": {
                                        "title": {"type": "string", "maxLength": 300},
                                        "scheduled_start": {
                                            "type": "string",
                                            "format": "date-time",
                                        },
                                        "scheduled_end": {"type": "string", "format": "date-time"},
                                        "agenda_text": {"type": "string"},
                                        "kind": {"enum": ["session", "committee"]},
                                        "chamber": {"type": "string"},
                                    },
                                }
                            }
                        },
                    },
                ),
            },
            "/api/v1/sessions/{id}": {
                "get": _op(
                    "A session with its agenda, markers and recording",
                    {"200": _resp("The session", _SESSION)},
                    auth=False,
                    errors=("404",),
                    parameters=[_ID],
                ),
            },
            "/api/v1/sessions/{id}/start": {
                "post": _op(
                    "Start recording now",
                    {"200": _resp("The session", _SESSION)},
                    auth=True,
                    errors=control_errors,
                    parameters=[_ID],
                ),
            },
            "/api/v1/sessions/{id}/stop": {
                "post": _op(
                    "Stop for good (never restarted by the scheduler)",
                    {"200": _resp("The session", _SESSION)},
                    auth=True,
                    errors=control_errors,
                    parameters=[_ID],
                ),
            },
            "/api/v1/sessions/{id}/items/{item_id}/start": {
                "post": _op(
                    "Mark that an agenda item starts now",
                    {"200": _resp("The session", _SESSION)},
                    auth=True,
                    errors=control_errors,
                    parameters=[
                        _ID,
                        {
                            "name": "item_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer"},
                        },
                    ],
                ),
            },
            "/api/v1/sessions/{id}/break": {
                "post": _op(
                    "Start or end a break",
                    {"200": _resp("The session", _SESSION)},
                    auth=True,
                    errors=("400", *control_errors),
                    parameters=[_ID],
                    requestBody=_one_field("on", "boolean"),
                ),
            },
            "/api/v1/sessions/{id}/closed": {
                "post": _op(
                    "Close the session to the public (wyłączenie jawności) or reopen it: the "
                    "public sees a slate; the cameras keep recording for the sealed archive",
                    {"200": _resp("The session", _SESSION)},
                    auth=True,
                    errors=("400", "401", "403", "404", "409"),
                    parameters=[_ID],
                    requestBody=_one_field("on", "boolean"),
                ),
            },
            "/api/v1/chambers": {
                "get": _op(
                    "Chambers, their cameras and program cameras",
                    {"200": _resp("Chambers", {"type": "object"})},
                    auth=False,
                    errors=(),
                ),
            },
            "/api/v1/chambers/{chamber}/program": {
                "post": _op(
                    "Switch the chamber's program camera (live stream and session recording)",
                    {"200": _resp("The new program camera", {"type": "object"})},
                    auth=True,
                    errors=("400", "401", "403", "404"),
                    parameters=[
                        {
                            "name": "chamber",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    requestBody=_one_field("camera", "string"),
                ),
            },
            "/api/v1/status": {
                "get": _op(
                    "Captures running now and their health",
                    {"200": _resp("Captures", {"type": "object"})},
                    auth=False,
                    errors=(),
                ),
            },
            "/api/v1/openapi.json": {
                "get": _op(
                    "This document",
                    {"200": _resp("OpenAPI 3.1", {"type": "object"})},
                    auth=False,
                    errors=(),
                ),
            },
        },
        "components": {
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}},
                },
                "AgendaItem": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer"},
                        "number": {"type": "string", "examples": ["4.1"]},
                        "title": {"type": "string"},
                        "items": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/AgendaItem"},
                        },
                    },
                },
                "Marker": {
                    "type": "object",
                    "properties": {
                        "kind": {"enum": ["item_start", "break_start", "break_end"]},
                        "at": {"type": "string", "format": "date-time"},
                        "offset_seconds": {"type": ["number", "null"]},
                        "item_id": {"type": ["integer", "null"]},
                    },
                },
                "Session": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer"},
                        "chamber": {"type": "string"},
                        "title": {"type": "string"},
                        "kind": {"enum": ["session", "committee"]},
                        "state": {"enum": ["scheduled", "live", "ended"]},
                        "scheduled_start": {"type": "string", "format": "date-time"},
                        "scheduled_end": {"type": "string", "format": "date-time"},
                        "started_at": {"type": ["string", "null"], "format": "date-time"},
                        "ended_at": {"type": ["string", "null"], "format": "date-time"},
                        "stopped_by": {"type": ["string", "null"]},
                        "agenda": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/AgendaItem"},
                        },
                        "markers": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Marker"},
                        },
                        "recording": {"type": "object"},
                    },
                },
            },
        },
    }
