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
        op["security"] = [{"basic": []}, {"login": []}]
    op.update(extra)
    return op


def _param(name: str, kind: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": kind}}


def _body(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """A JSON object request body."""
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return {"required": True, "content": {"application/json": {"schema": schema}}}


_OBJECT = {"type": "object"}
_STR = {"type": "string"}
_INT = {"type": "integer"}
_NUM = {"type": "number"}
_BOOL = {"type": "boolean"}
_TIME = {"type": "string", "format": "date-time"}


def _change(
    summary: str,
    who: str,
    params: list[dict[str, Any]],
    body: dict[str, Any] | None = None,
    ok: str = "200",
    errors: tuple[str, ...] = ("400", "401", "403", "404", "409"),
) -> dict[str, Any]:
    """A state-changing operation: Basic credentials, or the login cookie plus X-CSRF-Token."""
    extra: dict[str, Any] = {"parameters": params}
    if body is not None:
        extra["requestBody"] = body
    return _op(
        f"{summary} ({who})", {ok: _resp("Done", _OBJECT)}, auth=True, errors=errors, **extra
    )


def _read(summary: str, params: list[dict[str, Any]], who: str | None = None) -> dict[str, Any]:
    errors = ("401", "403", "404") if who else ("404",)
    return _op(
        summary + (f" ({who})" if who else ""),
        {"200": _resp("The answer", _OBJECT)},
        auth=who is not None,
        errors=errors,
        parameters=params,
    )


def _console_paths() -> dict[str, Any]:
    """The console's calls: accounts, agenda edits, councillors, votes, pre-flight, editing."""
    sid, chamber = _ID, _param("chamber")
    ops, staff, admin = "operator or admin", "staff or admin", "admin"
    vote_choice = {"enum": ["for", "against", "abstain", "absent"]}
    return {
        "/api/v1/me": {
            "get": _read("Who is signed in, what they may do, the CSRF token", [], "any role")
        },
        "/api/v1/users": {
            "get": _read("Every account", [], admin),
            "post": _change(
                "Create an account",
                admin,
                [],
                _body(
                    {
                        "name": _STR,
                        "role": {"enum": ["operator", "staff", "admin"]},
                        "password": _STR,
                    },
                    ("name", "role", "password"),
                ),
                ok="201",
            ),
        },
        "/api/v1/users/{name}": {
            "patch": _change(
                "Change a role or password, or disable; the user's logins end",
                admin,
                [_param("name")],
                _body({"role": _STR, "password": _STR, "disabled": _BOOL}),
            )
        },
        "/api/v1/audit": {
            "get": _op(
                "The audit log, newest first: who, when, what, before and after (staff or admin)",
                {"200": _resp("Entries", _OBJECT)},
                auth=True,
                errors=("400", "401", "403"),
                parameters=[{"name": "session_id", "in": "query", "schema": _INT}],
            )
        },
        "/api/v1/agenda/preview": {
            "post": _change(
                "Parse a pasted agenda: the tree, or each line it cannot read; stores nothing",
                "any role",
                [],
                _body({"agenda_text": _STR}, ("agenda_text",)),
                errors=("400", "401"),
            )
        },
        "/api/v1/sessions/{id}/agenda": {
            "put": _change(
                "Paste the agenda again (before any item is taken up)",
                ops,
                [sid],
                _body({"agenda_text": _STR}, ("agenda_text",)),
            ),
            "post": _change(
                "Change the agenda item by item (zmiana porządku obrad)",
                ops,
                [sid],
                _body(
                    {
                        "op": {"enum": ["add", "remove", "restore", "move", "rename"]},
                        "item_id": _INT,
                        "title": _STR,
                        "parent_id": _INT,
                        "before_id": _INT,
                        "index": _INT,
                    },
                    ("op",),
                ),
            ),
        },
        "/api/v1/councillors": {
            "get": _op(
                "The councillors of the current term (?all=1 with those taken off the list)",
                {"200": _resp("Councillors", _OBJECT)},
                auth=False,
                errors=(),
                parameters=[{"name": "all", "in": "query", "schema": {"enum": ["1"]}}],
            ),
            "post": _change(
                "Add councillors to the term",
                ops,
                [],
                _body({"name": _STR, "caucus": _STR, "councillors": {"type": "array"}}),
                ok="201",
            ),
        },
        "/api/v1/councillors/{cid}": {
            "patch": _change(
                "Correct a name or caucus, or take off the list",
                ops,
                [_param("cid", "integer")],
                _body({"name": _STR, "caucus": _STR, "active": _BOOL}),
            )
        },
        "/api/v1/sessions/{id}/votes": {
            "post": _change(
                "Record a nominal vote at the announced moment (live: operators; after: staff)",
                "by state",
                [sid],
                _body(
                    {
                        "subject": _STR,
                        "item_id": _INT,
                        "at": _TIME,
                        "source": {"enum": ["console", "csv"]},
                        "choices": {"type": "object", "additionalProperties": vote_choice},
                    },
                    ("subject", "choices"),
                ),
                ok="201",
            )
        },
        "/api/v1/sessions/{id}/votes/csv": {
            "post": _change(
                "Read a voting system's CSV export (text/csv body) for confirmation; stores "
                "nothing",
                "by state",
                [sid],
                {"required": True, "content": {"text/csv": {"schema": _STR}}},
            )
        },
        "/api/v1/sessions/{id}/votes/{vote_id}": {
            "delete": _change(
                "Take back a vote entered by mistake",
                "by state",
                [sid, _param("vote_id", "integer")],
            )
        },
        "/api/v1/chambers/{chamber}/now": {
            "get": _read("What residents see: state, agenda, current item, votes", [chamber])
        },
        "/api/v1/chambers/{chamber}/preflight": {
            "get": _read("Pre-flight: each camera's preview, audio level, disk", [chamber], ops)
        },
        "/api/v1/chambers/{chamber}/cameras/{camera}/preview.jpg": {
            "get": _read(
                "A camera's latest preview picture (JPEG)", [chamber, _param("camera")], ops
            )
        },
        "/api/v1/chambers/{chamber}/test-recordings": {
            "post": _change(
                "Make a short test recording",
                ops,
                [chamber],
                _body({"camera": _STR, "seconds": _INT}, ("camera",)),
                ok="202",
            )
        },
        "/api/v1/chambers/{chamber}/test-recordings/{id}": {
            "get": _read("A test recording's state", [chamber, _param("id")], ops)
        },
        "/api/v1/chambers/{chamber}/test-recordings/{id}.mp4": {
            "get": _read("A finished test recording (MP4)", [chamber, _param("id")], ops)
        },
        "/api/v1/sessions/{id}/markers": {
            "post": _change(
                "Split: a new chapter from a moment of the recording",
                staff,
                [sid],
                _body(
                    {
                        "kind": {"enum": ["item_start"]},
                        "offset_seconds": _NUM,
                        "item_id": _INT,
                        "title": _STR,
                    }
                ),
                ok="201",
            )
        },
        "/api/v1/sessions/{id}/markers/{marker_id}": {
            "patch": _change(
                "Move a marker, or point an item start at another item",
                staff,
                [sid, _param("marker_id", "integer")],
                _body({"offset_seconds": _NUM, "item_id": _INT}),
            ),
            "delete": _change(
                "Merge: remove an item start (its chapter joins the previous one)",
                staff,
                [sid, _param("marker_id", "integer")],
            ),
        },
        "/api/v1/sessions/{id}/items/{item_id}": {
            "patch": _change(
                "Rename an agenda item after the session",
                staff,
                [sid, _param("item_id", "integer")],
                _body({"title": _STR}, ("title",)),
            )
        },
        "/api/v1/sessions/{id}/publish": {
            "post": _change(
                "Publish or withdraw the recording",
                staff,
                [sid],
                _body({"published": _BOOL}, ("published",)),
            )
        },
        "/api/v1/sessions/{id}/redactions": {
            "get": _read("Ranges the public copy skips", [sid], staff),
            "post": _change(
                "Redact a range from the public copy (the original is kept, sealed)",
                staff,
                [sid],
                _body(
                    {"start_seconds": _NUM, "end_seconds": _NUM, "reason": _STR},
                    ("start_seconds", "end_seconds", "reason"),
                ),
                ok="201",
            ),
        },
        "/api/v1/sessions/{id}/redactions/{rid}": {
            "delete": _change("Remove a redaction", staff, [sid, _param("rid", "integer")])
        },
        "/api/v1/sessions/{id}/transcript": {
            "get": _read(
                "The automatic transcript's lines (as corrected by staff) and recognition "
                "progress; captions at /sessions/{id}/captions.vtt, text at "
                "/sessions/{id}/transcript.txt; staff also see hidden lines and who corrected",
                [sid],
            )
        },
        "/api/v1/sessions/{id}/transcript/lines/{line_id}": {
            "patch": _change(
                "Correct a transcript line (an empty text: nothing was said); kept with who "
                "made it, never overwritten by a re-run",
                staff,
                [sid, _param("line_id", "integer")],
                _body(
                    {"text": _STR, "start_seconds": _NUM, "end_seconds": _NUM},
                    ("text",),
                ),
            )
        },
        "/api/v1/sessions/{id}/transcript/lines": {
            "post": _change(
                "Add a line recognition missed; kept with who added it, it replaces the "
                "automatic lines it overlaps and is never overwritten by a re-run",
                staff,
                [sid],
                _body(
                    {"text": _STR, "start_seconds": _NUM, "end_seconds": _NUM},
                    ("text", "start_seconds", "end_seconds"),
                ),
                ok="201",
            )
        },
        "/api/v1/sessions/{id}/transcript/run": {
            "post": _change(
                "Recognise the whole recording again (corrected lines are kept)",
                staff,
                [sid],
                ok="202",
            )
        },
        "/api/v1/transcription": {
            "get": _read(
                "The speech recogniser's state (off, loading, ready, unavailable and why), the "
                "live captioners of running sessions (delay, skipped seconds) and each "
                "session's recognition progress with its estimated finish",
                [],
                "signed in",
            )
        },
        "/api/v1/sessions/{id}/exports": {
            "get": _read(
                "MP4 downloads of the public recording (/sessions/{id}/recording.mp4, "
                "/sessions/{id}/items/{item_id}/clip.mp4, /sessions/{id}/clip.mp4?start=&end=) "
                "and their progress",
                [sid],
            )
        },
        "/api/v1/search": {
            "get": _op(
                "Search published sessions, agenda items, votes and councillors (Polish forms "
                "and text without diacritics match); each result links to its moment",
                {
                    "200": _resp(
                        "{query, results: [{session_id, session_title, date, kind, "
                        "title, offset_seconds, url}]}",
                        _OBJECT,
                    )
                },
                auth=False,
                errors=("400",),
                parameters=[
                    {
                        "name": "q",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 200},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
                    },
                    {
                        "name": "offset",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 0, "default": 0},
                    },
                ],
            )
        },
    }


def _publication_paths() -> dict[str, Any]:
    """The public JSON of streaming.publication: vote lists and oEmbed (outside /api/v1)."""
    query = [
        {"name": "url", "in": "query", "required": True, "schema": _STR},
        {"name": "format", "in": "query", "schema": {"enum": ["json"]}},
        {"name": "maxwidth", "in": "query", "schema": {**_INT, "minimum": 1}},
        {"name": "maxheight", "in": "query", "schema": {**_INT, "minimum": 1}},
    ]
    return {
        "/sessions/{id}/votes.json": {
            "get": _read(
                "A session's nominal votes with totals and per-councillor lists (public even "
                "when the recording is withdrawn; also as votes.csv and a printable page)",
                [_ID],
            )
        },
        "/oembed": {
            "get": _op(
                "oEmbed 1.0 (video) for a /sessions/{id} or /live/{chamber} page; format=xml "
                "answers 501",
                {"200": _resp("The oEmbed answer", _OBJECT)},
                auth=False,
                errors=("400", "404"),
                parameters=query,
            )
        },
    }


def openapi_document() -> dict[str, Any]:
    """The API description served at /api/v1/openapi.json."""
    control_errors = ("401", "403", "404", "409")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "obrady API",
            "version": "1",
            "description": "Council sessions: schedule, record, mark agenda items and breaks, "
            "record votes, correct and publish the record. Reading sessions is public; changes "
            "need HTTP Basic credentials, or the console's login cookie with the X-CSRF-Token "
            "header. Each change says which roles may make it.",
        },
        "paths": {
            **_console_paths(),
            **_publication_paths(),
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
                    "A session with its agenda, markers, votes and recording",
                    {"200": _resp("The session", _SESSION)},
                    auth=False,
                    errors=("404",),
                    parameters=[_ID],
                ),
                "patch": _change(
                    "Change title, kind, chamber or window (a live session may be extended)",
                    "operator or admin",
                    [_ID],
                    _body(
                        {
                            "title": _STR,
                            "kind": {"enum": ["session", "committee"]},
                            "chamber": _STR,
                            "scheduled_start": _TIME,
                            "scheduled_end": _TIME,
                        }
                    ),
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
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic"},
                # A signed-in browser: the login cookie, plus X-CSRF-Token on every change.
                "login": {"type": "apiKey", "in": "cookie", "name": "obrady_login"},
            },
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
