"""Reading requests into pydantic models: a clear 400 {"error": ...} naming the field and what
to fix for anything the model refuses, and for a body that is not a JSON object (or is JSON
beyond the limits of streaming.http.parse_json)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import ErrorDetails

from streaming.http import json_error, read_json

M = TypeVar("M", bound=BaseModel)
# What validation may look at besides the data: the configured chambers, a chamber's cameras.
Context = dict[str, Any]

NOT_AN_OBJECT = "the body must be a JSON object"


class Request(BaseModel):
    """A request body or query string. Subclasses say, in words, what each field must be:
    `hints` maps a field to the whole message when that field is wrong, `usage` is the one
    message for any mistake (for bodies of one field), `explain` may override both."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)

    hints: ClassVar[dict[str, str]] = {}
    usage: ClassVar[str | None] = None
    # The message for a body that is not a JSON object (or not JSON at all).
    not_an_object: ClassVar[str] = NOT_AN_OBJECT
    # Said after "unknown field(s): a, b; " (default: the allowed fields).
    unknown_hint: ClassVar[str | None] = None

    @classmethod
    def unknown_fields(cls, errors: list[ErrorDetails]) -> str | None:
        """The fields sent that the model does not know, and what may be sent; None if none."""
        unknown = [str(e["loc"][-1]) for e in errors if e["type"] == "extra_forbidden" and e["loc"]]
        if not unknown:
            return None
        allowed = cls.unknown_hint or "allowed: " + ", ".join(sorted(cls.model_fields))
        return f"unknown field(s): {', '.join(sorted(unknown))}; {allowed}"

    @classmethod
    def explain(cls, errors: list[ErrorDetails], data: Any, context: Context) -> str:
        """One message for the first mistake in errors (pydantic's, in field order)."""
        if cls.usage is not None:
            return cls.usage
        unknown = cls.unknown_fields(errors)
        if unknown:
            return unknown
        first = errors[0]
        if not first["loc"] and first["type"] in ("model_type", "model_attributes_type"):
            return cls.not_an_object
        return describe(first, cls.hints)


def field_of(error: ErrorDetails) -> str:
    """The dotted place of a mistake: "title", "councillors.2.name"."""
    return ".".join(str(part) for part in error["loc"])


def describe(error: ErrorDetails, hints: Mapping[str, str]) -> str:
    """A mistake in words: our own validators' words (they name the field already), a text
    over its length, the field's hint if there is one, else pydantic's with the field named."""
    field = field_of(error)
    top = str(error["loc"][0]) if error["loc"] else ""
    if error["type"] == "obrady":
        return error["msg"]
    if error["type"] == "string_too_long" and field:
        # Not the field's hint, which may say "... is required" of a text that is there.
        limit = (error.get("ctx") or {}).get("max_length")
        return f"{field} is longer than {limit} characters: shorten it"
    if top in hints:
        return hints[top]
    if not field:
        return error["msg"]
    if error["type"] == "missing":
        return f"{field} is required"
    return f"{field}: {error['msg']}"


def explain(model: type[BaseModel], exc: ValidationError, data: Any, context: Context) -> str:
    """A model's refusal in words: its own `explain` if it has one."""
    errors = exc.errors(include_url=False)
    own = getattr(model, "explain", None)
    if own is not None:
        return str(own(errors, data, context))
    return describe(errors[0], {})


def validate(model: type[M], data: Any, context: Context | None = None) -> M:
    """data as model; 400 with the model's words otherwise."""
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise json_error(web.HTTPBadRequest, explain(model, exc, data, context or {})) from None


async def read_body(request: web.Request, model: type[M], context: Context | None = None) -> M:
    """The JSON body as model; 400 for a body that is not a JSON object (or not JSON at all,
    or JSON that parse_json refuses, in its own words), 415 for one not sent as
    application/json, 400 for one that the model refuses."""
    try:
        data = await read_json(request)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        message = getattr(model, "not_an_object", NOT_AN_OBJECT)
        raise json_error(web.HTTPBadRequest, message)
    # A page of another site can send text/plain (or no type) without asking the browser's
    # permission first; application/json it cannot. Never act on JSON sent as anything else.
    if request.content_type != "application/json":
        given = request.headers.get("Content-Type")
        raise json_error(
            web.HTTPUnsupportedMediaType,
            "send the body as JSON with Content-Type: application/json"
            + (f" (not {given[:100]!r})" if given else " (it had no Content-Type)"),
        )
    return validate(model, data, context)


def read_query(request: web.Request, model: type[M]) -> M:
    """The query string as model (the first value of each name); 400 if the model refuses."""
    return validate(model, {key: request.query[key] for key in request.query})
