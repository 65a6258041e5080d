"""The request bodies and query strings of /api/v1 as pydantic models.

Each handler reads its body with streaming.api.body.read_body(request, Model); the OpenAPI
document (streaming.api.openapi) is generated from these same models, so what the document
allows and what the server accepts cannot drift apart. A model says in `hints` (per field) or
`usage` (for the whole body) the words of a 400, so the errors keep naming the field and what
to fix.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    RootModel,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from archive.accounts import ROLES
from archive.council import CHOICES
from recorder.preflight import DEFAULT_TEST_SECONDS, MAX_TEST_SECONDS, MIN_TEST_SECONDS
from streaming.api.body import NOT_AN_OBJECT, Context, Request, describe, field_of

MAX_TITLE = 300
MAX_AGENDA_CHARS = 100_000
MAX_NAME = 120
MAX_SUBJECT = 500
MAX_PASSWORD = 1000
MIN_PASSWORD = 8
MAX_QUERY_CHARS = 200
TIME_EXAMPLE = "2027-01-28T10:00:00+01:00"

# Python's whitespace (str.split, str.strip), spelled out: JSON Schema (ECMA), Python's re and
# the Rust regex of pydantic-core each mean something slightly different by \s.
_SPACE = r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# A text with at least one character that is not whitespace.
NONBLANK = f"[^{_SPACE}]"
# A text that does not start or end with whitespace (and is not empty).
TRIMMED = f"^[^{_SPACE}]([\\s\\S]*[^{_SPACE}])?$"
# The marker that says: fill this schema's enum from the running service's configuration.
DYNAMIC_ENUM = "x-obrady-enum"


def fail(message: str) -> PydanticCustomError:
    """A refusal in our own words (the message names its field)."""
    return PydanticCustomError("obrady", "{message}", {"message": message})


def squash(value: str) -> str:
    """Runs of whitespace as one space, none at the ends."""
    return " ".join(value.split())


def _aware_time(value: Any, info: ValidationInfo) -> datetime:
    key = info.field_name
    if not isinstance(value, str):
        raise fail(f"{key} is required: an ISO 8601 time such as {TIME_EXAMPLE}")
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise fail(f"{key} {value!r} is not an ISO 8601 time such as {TIME_EXAMPLE}") from None
    if at.tzinfo is None:
        raise fail(f"{key} {value!r} has no UTC offset: add one, e.g. +01:00 or Z")
    return at


# An ISO 8601 time with a UTC offset (RFC 3339 date-time).
AwareTime = Annotated[
    datetime,
    BeforeValidator(_aware_time),
    WithJsonSchema({"type": "string", "format": "date-time", "examples": [TIME_EXAMPLE]}),
]
# A title: not blank, at most MAX_TITLE characters; whitespace runs become one space.
Title = Annotated[
    str, StringConstraints(max_length=MAX_TITLE, pattern=NONBLANK), AfterValidator(squash)
]


def _whole(value: Any) -> Any:
    # 10.0 is a whole number too (as JSON Schema's "integer" says).
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# An id (or a place): a whole number that fits the archive's 64-bit integers.
Id = Annotated[int, Field(ge=-(2**63), le=2**63 - 1), BeforeValidator(_whole)]
Kind = Literal["session", "committee"]
AgendaText = Annotated[
    str,
    Field(
        max_length=MAX_AGENDA_CHARS,
        description="The agenda pasted from the session notice, one item a line "
        "('1. Otwarcie sesji.')",
        examples=["1. Otwarcie sesji.\n2. Budżet miasta.\n3. Zamknięcie obrad.\n"],
    ),
]
Chamber = Annotated[str, Field(json_schema_extra={DYNAMIC_ENUM: "chambers"})]


def absent() -> Any:
    """The default of a field that may be left out but not sent as null: handlers read only the
    fields that were sent (model_fields_set); the document leaves such defaults out."""
    return Field(default=None)


def _chamber(value: str, info: ValidationInfo) -> str:
    known = (info.context or {}).get("chambers", ())
    if value not in known:
        raise fail(f"chamber {value!r} is not configured; known: {', '.join(known)}")
    return value


class Edit(Request):
    """A change of one or more fields: an empty body is refused, saying what may be sent
    (`unknown_hint`, else the fields), and the schema says so (minProperties)."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    @model_validator(mode="before")
    @classmethod
    def _not_empty(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data:
            fields = ", ".join(sorted(cls.model_fields))
            raise fail(cls.unknown_hint or f"send one or more of: {fields}")
        return data


# --- sessions ---------------------------------------------------------------------------------

_TITLE_HINT = f"title is required: a non-empty text of at most {MAX_TITLE} characters"
_AGENDA_HINT = (
    "agenda_text is required: the agenda pasted from the session notice, one item a line "
    "('1. Otwarcie sesji.')"
)
_KIND_HINT = "kind must be 'session' or 'committee'"


def _time_hint(key: str) -> str:
    return f"{key} is required: an ISO 8601 time such as {TIME_EXAMPLE}"


class SessionCreate(Request):
    """A session to schedule, with its agenda pasted as text (scheduled_end after
    scheduled_start; chamber: one of the configured chambers, the first by default)."""

    hints: ClassVar[dict[str, str]] = {
        "title": _TITLE_HINT,
        "agenda_text": _AGENDA_HINT,
        "kind": _KIND_HINT,
        "scheduled_start": _time_hint("scheduled_start"),
        "scheduled_end": _time_hint("scheduled_end"),
    }

    title: Title
    scheduled_start: AwareTime
    scheduled_end: AwareTime
    agenda_text: AgendaText
    kind: Kind = "session"
    chamber: Chamber = absent()

    _chamber = field_validator("chamber")(_chamber)

    @model_validator(mode="after")
    def _end_after_start(self) -> SessionCreate:
        if self.scheduled_end <= self.scheduled_start:
            raise fail(
                f"scheduled_end ({self.scheduled_end.isoformat()}) must be after "
                f"scheduled_start ({self.scheduled_start.isoformat()})"
            )
        return self


class SessionEdit(Edit):
    """Changes to a session: one or more of its fields."""

    hints: ClassVar[dict[str, str]] = SessionCreate.hints

    title: Title = absent()
    scheduled_start: AwareTime = absent()
    scheduled_end: AwareTime = absent()
    kind: Kind = absent()
    chamber: Chamber = absent()

    _chamber = field_validator("chamber")(_chamber)


class AgendaPreview(Request):
    """A pasted agenda to parse (nothing is stored)."""

    model_config = ConfigDict(extra="ignore")
    usage: ClassVar[str | None] = (
        f'send {{"agenda_text": "..."}}: the pasted agenda, at most {MAX_AGENDA_CHARS} characters'
    )

    agenda_text: AgendaText


class AgendaReplace(Request):
    """The agenda pasted again."""

    hints: ClassVar[dict[str, str]] = {"agenda_text": _AGENDA_HINT}

    agenda_text: AgendaText


class _AgendaOp(Request):
    @classmethod
    def explain_op(cls, errors: list[ErrorDetails], op: str) -> str:
        unknown = cls.unknown_fields(errors)
        if unknown:
            return unknown
        first = errors[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        if field == "item_id":
            return f'"{op}" needs "item_id": the item\'s id'
        if field in ("parent_id", "before_id"):
            return f'"{field}" must be an item id or null'
        if field == "index":
            return '"move" needs "index": the new place among its siblings'
        if field == "title":
            return _TITLE_HINT
        return describe(first, cls.hints)


class AddItem(_AgendaOp):
    """A new item: at the end of the agenda, or of parent_id's items, or before before_id."""

    op: Literal["add"]
    title: Title
    parent_id: Id | None = None
    before_id: Id | None = None


class RemoveItem(_AgendaOp):
    """An item taken off the agenda, or put back."""

    op: Literal["remove", "restore"]
    item_id: Id


class MoveItem(_AgendaOp):
    """An item moved to its place among its siblings (from 0)."""

    op: Literal["move"]
    item_id: Id
    index: Id


class RenameItem(_AgendaOp):
    """An item renamed."""

    op: Literal["rename"]
    item_id: Id
    title: Title


_OPS = "add, remove, restore, move, rename"


class AgendaChange(RootModel[AddItem | RemoveItem | MoveItem | RenameItem]):
    """One change of the agenda (zmiana porządku obrad), by "op"."""

    root: Annotated[AddItem | RemoveItem | MoveItem | RenameItem, Field(discriminator="op")]

    not_an_object: ClassVar[str] = "the body must be a JSON object"

    @classmethod
    def explain(cls, errors: list[ErrorDetails], data: Any, context: Context) -> str:
        first = errors[0]
        if first["type"] in ("union_tag_invalid", "union_tag_not_found"):
            return f'"op" must be one of: {_OPS}'
        if not first["loc"] and first["type"] in ("model_type", "model_attributes_type"):
            return cls.not_an_object
        op = str(first["loc"][0])
        ops: dict[str, type[_AgendaOp]] = {"add": AddItem, "move": MoveItem, "rename": RenameItem}
        model = ops.get(op, RemoveItem)
        inner: list[ErrorDetails] = [
            {**e, "loc": e["loc"][1:]} for e in errors if e["loc"] and e["loc"][0] == op
        ]
        return model.explain_op(inner or errors, op)


class Switch(Request):
    """A break or a closed part switched on or off."""

    on: bool


class BreakSwitch(Switch):
    usage: ClassVar[str | None] = 'send {"on": true} to start a break, {"on": false} to end it'


class ClosedSwitch(Switch):
    usage: ClassVar[str | None] = (
        'send {"on": true} to close the session, {"on": false} to reopen it'
    )


class ProgramSwitch(Request):
    """The chamber's new program camera."""

    usage: ClassVar[str | None] = 'send {"camera": "<camera id>"}'

    camera: str


# --- councillors and votes --------------------------------------------------------------------

_NAME = Annotated[str, StringConstraints(max_length=MAX_NAME, pattern=NONBLANK)]
_CAUCUS = Annotated[str, StringConstraints(max_length=MAX_NAME)]
_ADD_USAGE = (
    'send {"name": "Jan Kowalski", "caucus": "Klub Radnych X"} or '
    '{"councillors": [ ... up to 200 of those ... ]}'
)


class NewCouncillor(Request):
    """A councillor to add (caucus optional)."""

    name: _NAME
    caucus: _CAUCUS | None = None

    def cleaned(self) -> tuple[str, str]:
        """Name and caucus with whitespace runs as one space."""
        return squash(self.name), squash(self.caucus or "")

    @classmethod
    def explain_entry(cls, errors: list[ErrorDetails], n: int) -> str:
        first = errors[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        if first["type"] in ("extra_forbidden", "model_type", "model_attributes_type") or not (
            field
        ):
            return f'councillor {n}: send only "name" and "caucus" (optional)'
        if field == "name":
            return f"councillor {n}: name must be a non-empty text of at most {MAX_NAME} characters"
        return f"councillor {n}: caucus must be a text of at most {MAX_NAME} characters"


class NewCouncillors(Request):
    """Several councillors to add at once."""

    model_config = ConfigDict(extra="ignore")

    councillors: Annotated[list[NewCouncillor], Field(min_length=1, max_length=200)]


class CouncillorsAdd(RootModel[NewCouncillors | NewCouncillor]):
    """One councillor, or a list of up to 200."""

    root: Annotated[NewCouncillors | NewCouncillor, Field(union_mode="left_to_right")]

    not_an_object: ClassVar[str] = _ADD_USAGE

    def entries(self) -> list[NewCouncillor]:
        """The councillors to add."""
        found = self.root
        return found.councillors if isinstance(found, NewCouncillors) else [found]

    @classmethod
    def explain(cls, errors: list[ErrorDetails], data: Any, context: Context) -> str:
        if isinstance(data, dict) and "councillors" in data:
            branch = [e for e in errors if e["loc"][:1] == ("NewCouncillors",)]
            first = branch[0] if branch else errors[0]
            loc = first["loc"][1:]
            if len(loc) >= 2 and isinstance(loc[1], int):
                n = loc[1] + 1
                inner: list[ErrorDetails] = [
                    {**e, "loc": e["loc"][3:]} for e in branch if e["loc"][1:3] == loc[:2]
                ]
                return NewCouncillor.explain_entry(inner, n)
            return _ADD_USAGE
        inner = [{**e, "loc": e["loc"][1:]} for e in errors if e["loc"][:1] == ("NewCouncillor",)]
        return NewCouncillor.explain_entry(inner or errors, 1)


class CouncillorEdit(Edit):
    """A councillor's name or caucus corrected, or taken off the list (active false)."""

    hints: ClassVar[dict[str, str]] = {
        "name": f"name must be a non-empty text of at most {MAX_NAME} characters",
        "caucus": f"caucus must be a text of at most {MAX_NAME} characters",
        "active": '"active" must be true or false',
    }
    unknown_hint: ClassVar[str | None] = 'send one or more of "name", "caucus", "active"'

    name: _NAME = absent()
    caucus: _CAUCUS | None = absent()
    active: bool = absent()


class CouncillorsQuery(Request):
    """?all=1 also lists those taken off."""

    model_config = ConfigDict(extra="ignore")

    all: str = Field(default="", description="1: also those taken off the list")


VoteChoice = Literal["for", "against", "abstain", "absent"]
assert set(CHOICES) == set(VoteChoice.__args__)  # type: ignore[attr-defined]
CouncillorKey = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,12}$")]


class VoteRecord(Request):
    """A nominal vote: its subject, every councillor's choice, its item and moment."""

    hints: ClassVar[dict[str, str]] = {
        "subject": f"subject must be a non-empty text of at most {MAX_SUBJECT} characters",
        "source": 'source must be "console" or "csv"',
        "at": _time_hint("at"),
        "item_id": "item_id must be an agenda item of the session (or null for none)",
        "choices": 'send "choices": {"<councillor id>": "for" | "against" | "abstain" | '
        '"absent", ...} with every councillor of the term',
    }

    subject: Annotated[str, StringConstraints(max_length=MAX_SUBJECT, pattern=NONBLANK)]
    item_id: Id | None = Field(default=None, description="Default: the current item")
    at: AwareTime = absent()
    source: Literal["console", "csv"] = "console"
    choices: Annotated[dict[CouncillorKey, VoteChoice], Field(min_length=1)]

    @classmethod
    def explain(cls, errors: list[ErrorDetails], data: Any, context: Context) -> str:
        first = errors[0]
        loc = first["loc"]
        if len(loc) >= 2 and loc[0] == "choices" and first["type"] != "extra_forbidden":
            if loc[-1] == "[key]":
                return f"councillor {loc[1]!r} is not on the list of this term"
            choice = data["choices"][loc[1]]
            return f"councillor {loc[1]!r}: {choice!r} is not one of {', '.join(CHOICES)}"
        return super().explain(errors, data, context)


# --- editing after the session ----------------------------------------------------------------

_SECONDS = "must be a number of seconds from the recording's start"
_ITEM = "must be an agenda item's id (a number)"
Seconds = float


class MarkerMove(Request):
    """A marker moved to a moment of the recording and/or pointed at another item."""

    hints: ClassVar[dict[str, str]] = {
        "offset_seconds": f"offset_seconds {_SECONDS}",
        "item_id": f"item_id {_ITEM}",
    }
    unknown_hint: ClassVar[str | None] = 'send {"offset_seconds": x} and/or {"item_id": n}'
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {
                    "required": ["offset_seconds"],
                    "properties": {"offset_seconds": {"type": "number"}},
                },
                {"required": ["item_id"], "properties": {"item_id": {"type": "integer"}}},
            ]
        }
    )

    offset_seconds: Seconds | None = None
    item_id: Id | None = None

    @model_validator(mode="after")
    def _something(self) -> MarkerMove:
        if self.offset_seconds is None and self.item_id is None:
            raise fail(
                'send {"offset_seconds": x} to move the marker, {"item_id": n} to re-point an '
                "item start, or both"
            )
        return self


_SPLIT_HINTS = {
    "kind": 'only "kind": "item_start" markers can be added after the session (a new chapter)',
    "offset_seconds": f"offset_seconds {_SECONDS}",
    "item_id": f"item_id {_ITEM}",
    "parent_id": f"parent_id {_ITEM}",
    "title": f"title must be a non-empty text of at most {MAX_TITLE} characters: the new "
    "agenda item's title",
}
_SPLIT_UNKNOWN = (
    'send {"kind": "item_start", "offset_seconds": x, "item_id": n} or with "title" instead'
)
_EITHER = (
    'send either "item_id" (an item of the agenda) or "title" (a new item added at the end of '
    "the agenda) for the chapter that starts there"
)


class SplitAtItem(Request):
    """A new chapter for an item of the agenda."""

    hints: ClassVar[dict[str, str]] = _SPLIT_HINTS
    unknown_hint: ClassVar[str | None] = _SPLIT_UNKNOWN

    kind: Literal["item_start"] = "item_start"
    offset_seconds: Seconds
    item_id: Id
    title: None = None
    parent_id: None = None


class SplitWithTitle(Request):
    """A new chapter for a new item: at the end of the agenda, or of parent_id's items."""

    hints: ClassVar[dict[str, str]] = _SPLIT_HINTS
    unknown_hint: ClassVar[str | None] = _SPLIT_UNKNOWN

    kind: Literal["item_start"] = "item_start"
    offset_seconds: Seconds
    item_id: None = None
    title: Title
    parent_id: Id | None = None


class ChapterSplit(RootModel[SplitAtItem | SplitWithTitle]):
    """A new chapter from a moment of the recording: with item_id (an item of the agenda) or
    title (a new item at the end of the agenda, or of parent_id's items)."""

    root: SplitAtItem | SplitWithTitle

    @classmethod
    def explain(cls, errors: list[ErrorDetails], data: Any, context: Context) -> str:
        if not isinstance(data, dict):
            return NOT_AN_OBJECT
        item, title = data.get("item_id"), data.get("title")
        if (item is None) == (title is None):
            return _EITHER
        if title is None and data.get("parent_id") is not None:
            return '"parent_id" places a new item: send it with "title"'
        branch = "SplitAtItem" if title is None else "SplitWithTitle"
        model = SplitAtItem if title is None else SplitWithTitle
        inner: list[ErrorDetails] = [
            {**e, "loc": e["loc"][1:]} for e in errors if e["loc"][:1] == (branch,)
        ]
        return model.explain(inner or errors, data, context)


class ItemRename(Request):
    """An agenda item's corrected title."""

    hints: ClassVar[dict[str, str]] = {"title": 'send {"title": "..."}: the corrected title'}
    unknown_hint: ClassVar[str | None] = 'send {"title": "..."}'

    title: Title


class Publish(Request):
    """Publish (true) or withdraw (false) the recording."""

    usage: ClassVar[str | None] = (
        'send {"published": true} to publish the recording, {"published": false} to withdraw it'
    )

    published: bool


class RedactionAdd(Request):
    """A range of the public copy to redact, and why."""

    hints: ClassVar[dict[str, str]] = {
        "start_seconds": f"start_seconds {_SECONDS}",
        "end_seconds": f"end_seconds {_SECONDS}",
        "reason": "reason is required: why this range is redacted (e.g. personal data)",
    }
    unknown_hint: ClassVar[str | None] = (
        'send {"start_seconds": a, "end_seconds": b, "reason": "..."}'
    )

    start_seconds: Seconds
    end_seconds: Seconds
    reason: Annotated[str, StringConstraints(pattern=NONBLANK)]

    @model_validator(mode="after")
    def _in_order(self) -> RedactionAdd:
        if self.start_seconds >= self.end_seconds:
            raise fail(
                f"start_seconds ({self.start_seconds:g}) must be before end_seconds "
                f"({self.end_seconds:g})"
            )
        return self


# --- transcripts ------------------------------------------------------------------------------


# A line's start: not before the recording's.
LineStart = Annotated[float, Field(ge=0)]


class _LineBody(Request):
    model_config = ConfigDict(extra="ignore")

    @classmethod
    def explain(cls, errors: list[ErrorDetails], data: Any, context: Context) -> str:
        first = errors[0]
        field = field_of(first)
        value = data.get(field) if isinstance(data, dict) else None
        if first["type"] == "greater_than_equal":
            return f"a line cannot start before the recording ({value:.3f} s)"
        if field in ("start_seconds", "end_seconds") and first["type"] != "missing":
            return f"{field} must be a number of seconds, not {value!r}"
        return super().explain(errors, data, context)

    @model_validator(mode="after")
    def _in_order(self) -> _LineBody:
        start, end = getattr(self, "start_seconds", None), getattr(self, "end_seconds", None)
        if start is not None and end is not None and end <= start:
            raise fail(f"a line must end after it starts (start {start:.3f} s, end {end:.3f} s)")
        return self


class LineCorrect(_LineBody):
    """A transcript line corrected: its text (empty: nothing was said there) and times."""

    not_an_object: ClassVar[str] = 'send {"text": "the corrected line"} (a string)'
    hints: ClassVar[dict[str, str]] = {"text": 'send {"text": "the corrected line"} (a string)'}

    text: str
    start_seconds: LineStart | None = None
    end_seconds: Seconds | None = None


_LINE_EXAMPLE = '{"start_seconds": 12.5, "end_seconds": 15.0, "text": "the line"}'


class LineAdd(_LineBody):
    """A line recognition missed."""

    not_an_object: ClassVar[str] = f"send {_LINE_EXAMPLE} (text a string)"
    hints: ClassVar[dict[str, str]] = {
        "text": f"send {_LINE_EXAMPLE} (text a string)",
        "start_seconds": f"start_seconds and end_seconds are needed: {_LINE_EXAMPLE}",
        "end_seconds": f"start_seconds and end_seconds are needed: {_LINE_EXAMPLE}",
    }

    text: str = Field(
        description="What was said: at least one printable character that is not a space"
    )
    start_seconds: LineStart
    end_seconds: Seconds


# --- accounts and the audit log ---------------------------------------------------------------

_PASSWORD = Annotated[str, StringConstraints(min_length=MIN_PASSWORD, max_length=MAX_PASSWORD)]
Role = Literal["operator", "staff", "admin"]
assert tuple(Role.__args__) == ROLES  # type: ignore[attr-defined]
_ACCOUNT_HINTS = {
    "name": "name must be 1 to 64 characters, no outer spaces",
    "role": f"role must be one of: {', '.join(ROLES)}",
    "password": f"password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters",
    "disabled": '"disabled" must be true or false',
}


class UserAdd(Request):
    """A new account."""

    hints: ClassVar[dict[str, str]] = _ACCOUNT_HINTS
    unknown_hint: ClassVar[str | None] = 'send only "name", "role" and "password"'

    name: Annotated[str, StringConstraints(max_length=64, pattern=TRIMMED)]
    role: Role
    password: _PASSWORD


class UserEdit(Edit):
    """An account's new role or password, or disabled."""

    hints: ClassVar[dict[str, str]] = _ACCOUNT_HINTS
    unknown_hint: ClassVar[str | None] = 'send one or more of "role", "password", "disabled"'

    role: Role = absent()
    password: _PASSWORD = absent()
    disabled: bool = absent()


class AuditQuery(Request):
    """?session_id=N: one session's entries."""

    model_config = ConfigDict(extra="ignore")
    hints: ClassVar[dict[str, str]] = {"session_id": "session_id must be a session's number"}

    session_id: Annotated[
        str,
        StringConstraints(pattern=r"^[0-9]{1,12}$"),
        WithJsonSchema({"type": "integer", "minimum": 0, "maximum": 10**12 - 1}),
    ] = absent()


# --- pre-flight -------------------------------------------------------------------------------


class TestRecordingStart(Request):
    """A short test recording of one camera."""

    __test__ = False  # not a pytest class
    not_an_object: ClassVar[str] = (
        'the body must be a JSON object such as {"camera": "main", "seconds": 10}'
    )
    unknown_hint: ClassVar[str | None] = "give camera, seconds"

    camera: str
    seconds: Annotated[
        int, Field(ge=MIN_TEST_SECONDS, le=MAX_TEST_SECONDS), BeforeValidator(_whole)
    ] = DEFAULT_TEST_SECONDS

    @classmethod
    def explain(cls, errors: list[ErrorDetails], data: Any, context: Context) -> str:
        unknown = [str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden"]
        if unknown:
            return f"unknown field(s) {', '.join(sorted(unknown))}: give camera, seconds"
        first = errors[0]
        if field_of(first) == "camera":
            return f"camera is required: one of {', '.join(context.get('cameras', ()))}"
        if field_of(first) == "seconds":
            return (
                f"seconds must be a whole number from {MIN_TEST_SECONDS} to {MAX_TEST_SECONDS} "
                f"(default {DEFAULT_TEST_SECONDS}), got {data.get('seconds')!r}"
            )
        return super().explain(errors, data, context)


# --- search -----------------------------------------------------------------------------------


def _query_int(low: int, high: int) -> Any:
    """A whole-number query parameter within [low, high]."""
    return Annotated[
        str,
        StringConstraints(pattern=r"^[0-9]{1,9}$"),
        AfterValidator(lambda raw: raw if low <= int(raw) <= high else _out_of(low, high, raw)),
        WithJsonSchema({"type": "integer", "minimum": low, "maximum": high}),
    ]


def _out_of(low: int, high: int, raw: str) -> str:
    raise fail(f"must be a whole number from {low} to {high}, not {raw!r}")


class SearchQuery(Request):
    """?q=words&limit=&offset=."""

    model_config = ConfigDict(extra="ignore")

    q: Annotated[
        str,
        StringConstraints(max_length=MAX_QUERY_CHARS, pattern=NONBLANK),
        Field(description="The words to find"),
    ]
    limit: _query_int(1, 100) = absent()  # type: ignore[valid-type]
    offset: _query_int(0, 10**9) = absent()  # type: ignore[valid-type]

    @model_validator(mode="before")
    @classmethod
    def _empty_is_default(cls, data: Any) -> Any:
        # A form's empty field (?limit=) means the default.
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not (k in ("limit", "offset") and v == "")}
        return data

    @classmethod
    def explain(cls, errors: list[ErrorDetails], data: Any, context: Context) -> str:
        first = errors[0]
        field = field_of(first)
        if field == "q":
            q = str(data.get("q", "")).strip() if isinstance(data, dict) else ""
            if q and len(q) > MAX_QUERY_CHARS:
                return f"the search text has {len(q)} characters; send at most {MAX_QUERY_CHARS}"
            return "send a search text: ?q=<words>, e.g. ?q=budżet miasta"
        raw = data.get(field) if isinstance(data, dict) else None
        low, high = (1, 100) if field == "limit" else (0, 10**9)
        return f"{field} must be a whole number from {low} to {high}, not {raw!r}"


# --- answers (the document's response schemas) ------------------------------------------------


class Error(BaseModel):
    """Every refusal: what went wrong and what to do."""

    error: str


class AgendaItem(BaseModel):
    """An agenda item with its sub-items (and what changed during the session)."""

    id: int
    number: str = Field(examples=["4.1"])
    title: str
    added: bool
    removed: bool
    items: list[AgendaItem]


class Marker(BaseModel):
    """A moment of the session: an item taken up, a break, a part closed to the public."""

    id: int
    kind: Literal["item_start", "break_start", "break_end", "closed_start", "closed_end"]
    at: datetime | None
    offset_seconds: float | None
    item_id: int | None


class SessionSummary(BaseModel):
    """A session as listings show it."""

    id: int
    chamber: str
    title: str
    kind: Kind
    state: Literal["scheduled", "live", "ended"]
    scheduled_start: datetime
    scheduled_end: datetime
    started_at: datetime | None
    ended_at: datetime | None
    stopped_by: str | None
    published: bool
    url: str


class Session(SessionSummary):
    """A session in full: agenda, markers, votes and recording."""

    in_break: bool
    closed: bool
    current_item_id: int | None
    agenda: list[AgendaItem]
    markers: list[Marker]
    votes: list[dict[str, Any]]
    recording: dict[str, Any]
    page_url: str
    live_url: str


class Sessions(BaseModel):
    """Sessions, newest first."""

    sessions: list[SessionSummary]


class OnAirSession(BaseModel):
    """The session a chamber transmits now."""

    id: int
    title: str


class ChamberOnAir(BaseModel):
    """A chamber as a resident may know it: live, in a break, in a part closed to the public
    (the public sees a slate), or off air; the session while it runs."""

    id: str
    name: str
    state: Literal["live", "break", "closed", "off_air"]
    session: OnAirSession | None


class PublicStatus(BaseModel):
    """What anyone may know of the service: that it is up, its version and each chamber's
    public state. Nothing about cameras, disks, pushes or errors."""

    service: Literal["up"]
    version: str
    chambers: list[ChamberOnAir]


class BackupStatus(BaseModel):
    """The last good backup (`obrady backup`), its age, the last failure since, and a warning
    when the last good one is older than backup.warn_after_hours, or a later one failed."""

    last_good_at: str | None
    age_seconds: int | None
    destination: str | None
    segments: int | None
    last_failure: dict[str, Any] | None
    limit_hours: float
    problem: Literal["none", "stale", "failed"] | None
    warning: str | None


class DetailStatus(PublicStatus):
    """The public facts, and for a signed-in user (any role that sees the console) the
    details: captures and their health, disk, recogniser, archive index, media checks,
    viewers, search, off-air alarms, pushes and backups."""

    captures: list[dict[str, Any]]
    transcription: dict[str, Any]
    disk: dict[str, Any]
    capture_blocked: str | None
    index: dict[str, Any]
    media_checks: dict[str, Any]
    viewers: dict[str, int]
    search: dict[str, Any]
    offair: list[dict[str, Any]]
    pushes: list[dict[str, Any]]
    backup: BackupStatus


class Status(RootModel[DetailStatus | PublicStatus]):
    """GET /api/v1/status: DetailStatus when signed in, PublicStatus otherwise."""
