"""Schemathesis against the real service: every operation of the served OpenAPI document (but
those that would record, below), with valid and invalid requests, through every check
schemathesis has: no server errors; statuses, media types and answers as documented; what the
document allows is accepted and what it refuses is refused; credentials are not ignored."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import schemathesis
from conftest import ADMIN, SHORT_AGENDA, sign_in, start_service, stop_service
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS
from schemathesis.generation.case import Case

from archive.agenda import AgendaError, parse_agenda
from archive.transcripts import clean_line_text
from config.settings import Settings
from streaming.app.gateway import GatewaySite, create_gateway_app
from streaming.app.sites import service_runner
from streaming.keys import SCHEDULER

EXCLUDED = {
    # Routes that would start real ffmpeg processes (the fuzz does not record): session start
    # and stop (a capture of every camera), the pre-flight view and preview picture (a preview
    # capture per camera) and test recordings (a short recording).
    ("POST", "/api/v1/sessions/{id}/start"),
    ("POST", "/api/v1/sessions/{id}/stop"),
    ("GET", "/api/v1/chambers/{chamber}/preflight"),
    ("GET", "/api/v1/chambers/{chamber}/cameras/{camera}/preview.jpg"),
    ("POST", "/api/v1/chambers/{chamber}/test-recordings"),
    # The pages' oEmbed (streaming/web, described in the document, not in /api/v1): any format
    # but json is 501 by design, which schemathesis counts as a server error.
    ("GET", "/oembed"),
}
# Examples per operation, valid and invalid ones together.
EXAMPLES = 12


def keep_unexpressed_rules(case: Case) -> None:
    """A valid request as the document describes it may still break a rule JSON Schema cannot
    say (the models check them, and say so in their descriptions): an end after its start (a
    session's window, a redaction, a transcript line), an agenda_text the agenda parser can
    read, a new transcript line with something printable in it. Valid examples are made to
    keep those rules; invalid ones are left alone."""
    body = case.body
    if not isinstance(body, dict):
        return
    if isinstance(body.get("agenda_text"), str):
        try:
            parse_agenda(body["agenda_text"])
        except AgendaError:
            body["agenda_text"] = SHORT_AGENDA
    if case.operation.path.endswith("/transcript/lines") and isinstance(body.get("text"), str):
        if not clean_line_text(body["text"]):
            body["text"] = "Dziękuję."
    start, end = body.get("scheduled_start"), body.get("scheduled_end")
    if isinstance(start, str) and isinstance(end, str):
        begins, ends = datetime.fromisoformat(start), datetime.fromisoformat(end)
        if ends <= begins:
            try:
                body["scheduled_end"] = (begins + timedelta(hours=1)).isoformat()
            except OverflowError:  # at the end of year 9999
                body["scheduled_start"] = (begins - timedelta(hours=1)).isoformat()
                body["scheduled_end"] = begins.isoformat()
    start, end = body.get("start_seconds"), body.get("end_seconds")
    if isinstance(start, int | float) and isinstance(end, int | float) and end <= start:
        after = math.nextafter(float(start), math.inf)
        if math.isinf(after):
            body["start_seconds"], body["end_seconds"] = 0.0, 1.0
        else:
            body["end_seconds"] = after


def fuzz(
    doc: dict[str, Any],
    base: str,
    headers: dict[str, str],
    only: set[tuple[str, str]] | None = None,
) -> tuple[list[str], int, int]:
    """Run every operation's examples (of those in `only`, if given); the failures in words,
    the number of operations and of requests."""
    schema = schemathesis.openapi.from_dict(doc)
    failures: list[str] = []
    counted = {"operations": 0, "requests": 0}
    checks = CHECKS.get_all()
    for result in schema.get_all_operations():
        operation = result.ok()
        key = (operation.method.upper(), operation.path)
        if key in EXCLUDED or (only is not None and key not in only):
            continue
        counted["operations"] += 1
        strategy = st.one_of(
            operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
            operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
        )

        @given(case=strategy)
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Case) -> None:
            counted["requests"] += 1
            if case.meta is not None and case.meta.generation.mode.is_positive:
                keep_unexpressed_rules(case)
            response = case.call(base_url=base, headers=headers)
            try:
                case.validate_response(response, checks=checks, headers=headers)
            except (AssertionError, BaseExceptionGroup) as exc:  # each failure, then the next
                failures.append(f"{case.operation.label}: {exc}")

        run()
    return failures, counted["operations"], counted["requests"]


async def test_the_api_keeps_to_its_openapi_document(
    make_settings: Callable[..., Settings],
) -> None:
    # The service as tests/conftest.py starts it, but its scheduler never starts a capture:
    # sessions the fuzz schedules around now would otherwise start recording.
    # Its checks send the same wrong credentials to every operation, all from this address:
    # past max_failed_logins (per name) or max_failed_logins_per_address they would get 429
    # with Retry-After, as tests/streaming/web/test_login.py checks.
    settings = make_settings()
    console = settings.console.model_copy(
        update={"max_failed_logins": 1000, "max_failed_logins_per_address": 10_000}
    )
    settings = settings.model_copy(update={"console": console})
    service = await start_service(settings, reconcile_every_seconds=3600)
    try:
        service.app[SCHEDULER].reconcile = _no_captures  # type: ignore[method-assign]
        doc = await service.get_json("/api/v1/openapi.json")
        headers = await sign_in(service.base, ADMIN)
        began = time.monotonic()
        failures, operations, examples = await asyncio.to_thread(fuzz, doc, service.base, headers)
        took = time.monotonic() - began
    finally:
        await stop_service(service)
    print(f"schemathesis: {operations} operations, {examples} examples in {took:.1f} s")
    assert not failures, "\n\n".join(failures)


async def test_the_gateway_keeps_to_the_openapi_document(
    make_settings: Callable[..., Settings],
) -> None:
    # The operations of the document that the viewers' gateway serves too, against a gateway
    # served as `obrady gateway` serves it, without credentials (its side is public).
    service = await start_service(make_settings(), reconcile_every_seconds=3600)
    try:
        service.app[SCHEDULER].reconcile = _no_captures  # type: ignore[method-assign]
        doc = await service.get_json("/api/v1/openapi.json")
        app = create_gateway_app(service.settings)
        served = {(r.method, r.resource.canonical) for r in app.router.routes() if r.resource}
        runner = service_runner(app, access_log=None)
        await runner.setup()
        try:
            site = GatewaySite(runner, "127.0.0.1", 0)
            await site.start()
            base = f"http://127.0.0.1:{site.port}"
            failures, operations, examples = await asyncio.to_thread(fuzz, doc, base, {}, served)
        finally:
            await runner.cleanup()
    finally:
        await stop_service(service)
    print(f"schemathesis on the gateway: {operations} operations, {examples} examples")
    assert operations >= 2  # /api/v1/search, /api/v1/chambers/{chamber}/now
    assert not failures, "\n\n".join(failures)


async def _no_captures() -> None:
    """The scheduler's reconcile, doing nothing."""
