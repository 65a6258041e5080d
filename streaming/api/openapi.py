"""The OpenAPI 3.1 document of /api/v1, generated from the running app's router and the
pydantic models the handlers read, so the document and the validation cannot disagree.

Each handler says what the document should say of it with @operation (its summary, who may
call it, its body and query models, its answer); methods and paths come from the router. The
two public JSON routes outside /api/v1 (their handlers are the pages', streaming/web) are
described in OUTSIDE, keyed by (method, path).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, models_json_schema
from pydantic_core import CoreSchema

from streaming.api.models import DYNAMIC_ENUM, Error
from streaming.keys import SETTINGS

F = TypeVar("F", bound=Callable[..., Any])
REF = "#/components/schemas/{model}"
ATTRIBUTE = "__openapi__"

# Who may call: shown after the summary; None is the public.
ANY_ROLE = "any role"
OPERATORS = "operator or admin"
STAFF = "staff or admin"
ADMIN = "admin"
BY_STATE = "by state"

_ERRORS = {
    "400": "The request is invalid; the error says what to fix.",
    "401": "No or wrong credentials.",
    "403": "The user's role may not do this.",
    "404": "No such session, item or chamber.",
    "409": "Not possible in the session's current state.",
    "410": "The recording is withdrawn (to the public).",
    "415": "The body is not sent as application/json.",
    "429": "Too many wrong passwords, or password checks at once; try again (Retry-After).",
    "501": "Not offered.",
    "503": "Not ready yet; try again (Retry-After).",
}
# Path parameters by name (a route may override its own).
_PATH_PARAMS: dict[str, dict[str, Any]] = {
    "chamber": {"type": "string", DYNAMIC_ENUM: "chambers"},
    "camera": {"type": "string"},
    "name": {"type": "string"},
}
_INTEGER = {"type": "integer", "minimum": 0}


@dataclass(frozen=True)
class Operation:
    """What the document says of one route."""

    summary: str
    who: str | None = None
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    ok: int = 200
    answer: type[BaseModel] | None = None
    # Added to the errors the route's shape implies (e.g. "503"), and their opposite.
    errors: tuple[str, ...] = ()
    no_errors: tuple[str, ...] = ()
    # A body that is not JSON: {media type: schema}; an answer that is not JSON: its media type.
    raw_body: dict[str, Any] | None = None
    media: str = "application/json"
    params: dict[str, dict[str, Any]] = field(default_factory=dict)


def operation(summary: str, who: str | None = None, **details: Any) -> Callable[[F], F]:
    """Describe a handler in the OpenAPI document: its summary, who may call it (None: the
    public), its body= and query= models, ok= status and answer= model."""

    def describe(handler: F) -> F:
        setattr(handler, ATTRIBUTE, Operation(summary, who, **details))
        return handler

    return describe


OUTSIDE: dict[tuple[str, str], Operation] = {
    ("GET", "/sessions/{id}/votes.json"): Operation(
        "A session's nominal votes with totals and per-councillor lists (public even when the "
        "recording is withdrawn; also as votes.csv and a printable page)"
    ),
    ("GET", "/oembed"): Operation(
        "oEmbed 1.0 (video) for a /sessions/{id} or /live/{chamber} page; format=xml answers 501, "
        "and without live.public_url every url answers 404",
        errors=("400", "404", "501"),
        params={
            "url": {"in": "query", "required": True, "schema": {"type": "string"}},
            "format": {"in": "query", "schema": {"type": "string"}},
            "maxwidth": {"in": "query", "schema": {"type": "integer", "minimum": 1}},
            "maxheight": {"in": "query", "schema": {"type": "integer", "minimum": 1}},
        },
    ),
}


class _Schemas(GenerateJsonSchema):
    """pydantic's JSON Schema without a title on every field (the field's name says it)."""

    def field_title_should_be_set(self, schema: CoreSchema) -> bool:  # type: ignore[override]
        return False


def routes_described(app: web.Application) -> Iterator[tuple[str, str, Operation]]:
    """(method, path, operation) of each route of /api/v1 and of OUTSIDE in app's router."""
    for route in app.router.routes():
        if route.method == "HEAD" or route.resource is None:
            continue
        path = route.resource.canonical
        described = getattr(route.handler, ATTRIBUTE, None) or OUTSIDE.get((route.method, path))
        if described is None and path.startswith("/api/v1/"):
            # Not described yet: its docstring at least, so no route goes unlisted.
            doc = (route.handler.__doc__ or path).strip().splitlines()[0]
            described = Operation(doc)
        if described is not None:
            yield route.method, path, described


def _errors(method: str, path: str, op: Operation) -> list[str]:
    found = set(op.errors)
    if op.body or op.query or op.raw_body:
        found.add("400")
    if op.body:
        found.add("415")
    if op.who:
        found |= {"401", "403", "429"}
        if method != "GET":
            found.add("409")
    if "{" in path:
        found.add("404")
    return sorted(found - set(op.no_errors))


def _resp(description: str, schema: dict[str, Any] | None, media: str) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description}
    if schema is not None:
        answer["content"] = {media: {"schema": schema}}
    return answer


def _ref(model: type[BaseModel]) -> dict[str, Any]:
    return {"$ref": REF.format(model=model.__name__)}


def _parameters(path: str, op: Operation, schemas: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for name in re.findall(r"{(\w+)", path):
        override = op.params.get(name, {})
        schema = override.get("schema") or _PATH_PARAMS.get(name, _INTEGER)
        found.append({"name": name, "in": "path", "required": True, "schema": schema})
    if op.query is not None:
        query = schemas[op.query.__name__]
        required = set(query.get("required", ()))
        for name, schema in query["properties"].items():
            described = {"name": name, "in": "query", "required": name in required}
            if "description" in schema:
                described["description"] = schema["description"]
            described["schema"] = {k: v for k, v in schema.items() if k != "description"}
            found.append(described)
    for name, extra in op.params.items():
        if extra.get("in") == "query":
            found.append({"name": name, **extra})
    return found


def _operation(method: str, path: str, op: Operation, schemas: dict[str, Any]) -> dict[str, Any]:
    summary = op.summary + (f" ({op.who})" if op.who else "")
    if op.answer is not None:
        ok_schema: dict[str, Any] | None = _ref(op.answer)
    else:
        ok_schema = {"type": "object"} if op.media.endswith("json") else None
    responses: dict[str, Any] = {
        str(op.ok): _resp("The answer" if method == "GET" else "Done", ok_schema, op.media)
    }
    for code in _errors(method, path, op):
        responses[code] = _resp(_ERRORS[code], _ref(Error), "application/json")
    described: dict[str, Any] = {"summary": summary, "responses": responses}
    if op.who:
        described["security"] = [{"basic": []}, {"login": []}]
    parameters = _parameters(path, op, schemas)
    if parameters:
        described["parameters"] = parameters
    if op.body is not None:
        described["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(op.body)}},
        }
    elif op.raw_body is not None:
        described["requestBody"] = {
            "required": True,
            "content": {media: {"schema": schema} for media, schema in op.raw_body.items()},
        }
    return described


def _settle(node: Any, enums: dict[str, list[str]]) -> Any:
    """The generated schemas made final: dynamic enums filled from the configuration, and the
    null default of a field that may be left out (but not sent as null) left out."""
    if isinstance(node, list):
        return [_settle(item, enums) for item in node]
    if not isinstance(node, dict):
        return node
    settled = {key: _settle(value, enums) for key, value in node.items()}
    name = settled.pop(DYNAMIC_ENUM, None)
    if name is not None:
        settled["enum"] = enums[name]
    if "default" in settled and settled["default"] is None and not _nullable(settled):
        del settled["default"]
    return settled


def _nullable(schema: dict[str, Any]) -> bool:
    kinds = schema.get("type")
    if kinds == "null" or (isinstance(kinds, list) and "null" in kinds):
        return True
    return any(option.get("type") == "null" for option in schema.get("anyOf", ()))


def openapi_document(app: web.Application) -> dict[str, Any]:
    """The API description served at /api/v1/openapi.json."""
    described = sorted(routes_described(app), key=lambda found: (found[1], found[0]))
    models: dict[str, type[BaseModel]] = {"Error": Error}
    for _, _, op in described:
        for model in (op.body, op.query, op.answer):
            if model is not None:
                models[model.__name__] = model
    _, top = models_json_schema(
        [(model, "validation") for model in models.values()],
        ref_template=REF,
        schema_generator=_Schemas,
    )
    enums = {"chambers": [chamber.id for chamber in app[SETTINGS].chambers]}
    schemas: dict[str, Any] = _settle(top.get("$defs", {}), enums)
    paths: dict[str, dict[str, Any]] = {}
    for method, path, op in described:
        paths.setdefault(path, {})[method.lower()] = _operation(method, path, op, schemas)
    paths = _settle(paths, enums)
    for _, _, op in described:
        if op.query is not None:
            del schemas[op.query.__name__]  # shown as parameters
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
        "paths": paths,
        "components": {
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic"},
                # A signed-in browser: the login cookie, plus X-CSRF-Token on every change.
                "login": {"type": "apiKey", "in": "cookie", "name": "obrady_login"},
            },
            "schemas": schemas,
        },
    }
