"""The request models and the OpenAPI document generated from them, without a running service."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from conftest import config_text
from pydantic import BaseModel

from config.settings import parse_settings
from streaming.api import models
from streaming.api.body import validate
from streaming.api.openapi import ATTRIBUTE, openapi_document
from streaming.app.service import create_app

GOOD_SESSION = {
    "title": "  Sesja   Rady ",
    "scheduled_start": "2027-01-28T10:00:00+01:00",
    "scheduled_end": "2027-01-28T12:00:00+01:00",
    "agenda_text": "1. Otwarcie.\n",
}
CHAMBERS = {"chambers": ["sala"]}


def refusal(model: type[BaseModel], data: Any, context: dict[str, Any] | None = None) -> str:
    with pytest.raises(web.HTTPBadRequest) as refused:
        validate(model, data, context)
    assert refused.value.content_type == "application/json"
    error: str = json.loads(refused.value.text or "")["error"]
    return error


@pytest.mark.parametrize(
    ("model", "data", "says"),
    [
        (models.SessionCreate, {**GOOD_SESSION, "titel": "x"}, "unknown field(s): titel; allowed"),
        (models.SessionCreate, {**GOOD_SESSION, "title": " "}, "title is required: a non-empty"),
        (models.SessionCreate, {**GOOD_SESSION, "scheduled_start": "jutro"}, "not an ISO 8601"),
        (
            models.SessionCreate,
            {**GOOD_SESSION, "scheduled_start": "2027-01-28T10:00:00"},
            "scheduled_start '2027-01-28T10:00:00' has no UTC offset",
        ),
        (
            models.SessionCreate,
            {**GOOD_SESSION, "scheduled_end": "2027-01-28T09:00:00+01:00"},
            "must be after scheduled_start",
        ),
        (models.SessionCreate, {**GOOD_SESSION, "chamber": "kuchnia"}, "known: sala"),
        (models.SessionCreate, {**GOOD_SESSION, "kind": "x"}, "kind must be 'session' or"),
        (models.SessionEdit, {}, "send one or more of: chamber, kind"),
        (models.AgendaChange, {"op": "jump"}, '"op" must be one of: add, remove'),
        (models.AgendaChange, {"op": "move", "item_id": 1}, '"move" needs "index"'),
        (models.AgendaChange, {"op": "remove"}, '"remove" needs "item_id"'),
        (models.BreakSwitch, {"on": "yes"}, '{"on": true} to start a break'),
        (models.CouncillorsAdd, {"councillors": []}, "up to 200 of those"),
        (models.CouncillorsAdd, {"councillors": [{"name": "A"}, {}]}, "councillor 2: name"),
        (models.CouncillorsAdd, {"name": "A", "x": 1}, 'councillor 1: send only "name"'),
        (models.VoteRecord, {"subject": "s", "choices": {"x": "for"}}, "councillor 'x' is not"),
        (models.VoteRecord, {"subject": "s", "choices": {"1": "yes"}}, "'yes' is not one of"),
        (models.MarkerMove, {"offset_seconds": "5"}, "number of seconds"),
        (models.MarkerMove, {}, 'send {"offset_seconds": x} to move the marker'),
        (models.ChapterSplit, {"offset_seconds": 1}, 'send either "item_id"'),
        (models.ChapterSplit, {"offset_seconds": 1, "item_id": 1, "parent_id": 2}, "parent_id"),
        (models.ItemRename, {"titel": "x"}, "titel"),
        (models.Publish, {"published": "no"}, '"published": true'),
        (models.RedactionAdd, {"start_seconds": 5, "end_seconds": 6}, "reason is required"),
        (models.RedactionAdd, {"start_seconds": 5, "end_seconds": 4, "reason": "x"}, "before"),
        (models.LineAdd, {"text": "x"}, "start_seconds and end_seconds are needed"),
        (models.LineAdd, {"text": "x", "start_seconds": 2, "end_seconds": 1}, "end after it"),
        (models.LineCorrect, {"text": 5}, '{"text": "the corrected line"} (a string)'),
        (models.UserAdd, {"name": "a", "role": "king", "password": "x" * 8}, "role must be one"),
        (models.UserAdd, {"name": " a", "role": "staff", "password": "x" * 8}, "no outer spaces"),
        (models.UserEdit, {"password": "short"}, "password must be 8 to 1000"),
        (models.AuditQuery, {"session_id": "x"}, "session_id must be a session's number"),
        (models.SearchQuery, {"q": " "}, "q="),
        (models.SearchQuery, {"q": "a", "limit": "0"}, "limit must be a whole number from 1"),
    ],
)
def test_a_refusal_names_the_field_and_what_to_fix(
    model: type[BaseModel], data: Any, says: str
) -> None:
    assert says in refusal(model, data, CHAMBERS)


def test_valid_bodies_read_as_before() -> None:
    created = validate(models.SessionCreate, GOOD_SESSION, CHAMBERS)
    assert created.title == "Sesja Rady" and created.kind == "session"
    assert "chamber" not in created.model_fields_set
    # Whole numbers may come as 3.0 (JSON Schema's "integer" says they are integers).
    moved = validate(models.AgendaChange, {"op": "move", "item_id": 3.0, "index": 0}).root
    assert isinstance(moved, models.MoveItem) and moved.item_id == 3
    test = validate(models.TestRecordingStart, {"camera": "main", "seconds": 10.0})
    assert test.seconds == 10
    assert validate(models.SearchQuery, {"q": "budżet", "limit": ""}).limit is None
    assert "camera is required: one of main" in refusal(
        models.TestRecordingStart, {"seconds": 5}, {"cameras": ["main"]}
    )


def test_every_api_route_is_described_beside_its_handler(tmp_path: Path) -> None:
    app = create_app(parse_settings(config_text(tmp_path, 8080)))
    doc = openapi_document(app)
    for route in app.router.routes():
        path = route.resource.canonical if route.resource else ""
        if path.startswith("/api/v1/") and route.method != "HEAD":
            assert hasattr(route.handler, ATTRIBUTE), (route.method, path)
            assert route.method.lower() in doc["paths"][path], (route.method, path)
    # The bodies are the models' own schemas, with the configured chambers filled in.
    create = doc["paths"]["/api/v1/sessions"]["post"]
    ref = create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["chamber"]["enum"] == ["sala"]
    assert set(schema["required"]) == {"title", "scheduled_start", "scheduled_end", "agenda_text"}
    assert "(operator or admin)" in create["summary"]
