"""The demo's own operator: an account, a session a few seconds ahead, and agenda items that
advance by themselves, so a newcomer sees capture, live and archive work without clicking."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from archive.agenda import parse_agenda
from archive.index import AsyncArchive, Conflict
from config.settings import DemoSettings, Settings
from streaming.auth.passwords import hash_password
from streaming.services.control import SessionControl

log = logging.getLogger(__name__)
BREAK_AFTER_ITEMS = 3


async def prepare_demo(
    settings: Settings, archive: AsyncArchive, clock: Callable[[], datetime]
) -> int | None:
    """Create the demo operator and schedule the demo session; returns the session's id."""
    demo = settings.demo
    assert demo is not None
    index = archive.index
    if await archive.call(index.get_user, demo.operator_name) is None:
        password_hash = await asyncio.to_thread(hash_password, demo.operator_password)
        try:
            await archive.call(index.add_user, demo.operator_name, "operator", password_hash)
        except Conflict:
            pass
    if demo.session is None:
        return None
    chamber = settings.chambers[0].id
    for session in await archive.call(index.active_sessions):
        if session.chamber == chamber:
            return session.id  # one is already scheduled or live: leave it be
    start = clock() + timedelta(seconds=demo.session.start_in_seconds)
    created = await archive.call(
        index.create_session,
        chamber=chamber,
        title=demo.session.title,
        kind="session",
        scheduled_start=start,
        scheduled_end=start + timedelta(minutes=demo.session.duration_minutes),
        agenda_text=demo.session.agenda_text,
        agenda=parse_agenda(demo.session.agenda_text),
        created_by=demo.operator_name,
    )
    log.info("demo: session %s scheduled for %s", created.id, start.isoformat())
    return created.id


async def autopilot(
    demo: DemoSettings, session_id: int, archive: AsyncArchive, control: SessionControl
) -> None:
    """While the demo session is live, start its agenda items one after another."""
    try:
        await _advance(demo, session_id, archive, control)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("demo autopilot stopped")


async def _advance(
    demo: DemoSettings, session_id: int, archive: AsyncArchive, control: SessionControl
) -> None:
    assert demo.session is not None
    every = demo.session.advance_item_every_seconds
    if every <= 0:
        return
    index = archive.index
    while True:
        session = await archive.call(index.get_session, session_id)
        if session.state == "ended":
            return
        if session.state == "live":
            agenda = await archive.call(index.agenda, session_id)
            started = {m.item_id for m in await archive.call(index.markers, session_id)}
            pending = [row for row in agenda if row.id not in started]
            if not pending:
                return
            try:
                if len(started - {None}) == BREAK_AFTER_ITEMS:
                    # Show the break slate once: the live URL keeps playing through it.
                    await control.set_break(session_id, True, by=demo.operator_name)
                    log.info("demo: break (the live page shows the slate)")
                    await asyncio.sleep(every / 2)
                    await control.set_break(session_id, False, by=demo.operator_name)
                await control.start_item(session_id, pending[0].id, by=demo.operator_name)
                log.info("demo: item %s. %s", pending[0].number, pending[0].title)
            except Conflict:
                pass
            await asyncio.sleep(every)
        else:
            await asyncio.sleep(1)
