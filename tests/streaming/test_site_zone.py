"""[site] time_zone outside the web pages: download names, the announcement slate and search
hit dates are in the configured zone (a session at 03:30 UTC is the evening before in New York,
the next morning in Warsaw)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from conftest import config_text, free_port

from archive.records import Session
from archive.search import SearchHit
from config.settings import Settings, SiteSettings, parse_settings
from streaming.api.search import hit_json, routes
from streaming.keys import ARCHIVE, SETTINGS
from streaming.services.control import announce_slate
from streaming.services.exports import download_name

AT = datetime(2026, 12, 7, 3, 30, tzinfo=UTC)


def new_york(tmp_path: Path) -> Settings:
    text = config_text(tmp_path / "data", free_port())
    return parse_settings(text + '\n[site]\ntime_zone = "America/New_York"\n')


def session() -> Session:
    return Session(
        id=1,
        chamber="sala",
        title="Sesja",
        kind="session",
        scheduled_start=AT,
        scheduled_end=AT + timedelta(hours=2),
        state="ended",
        started_at=AT,
        ended_at=AT + timedelta(hours=2),
        stopped_by=None,
        agenda_text="",
        created_at=AT,
    )


HIT = SearchHit(1, "Sesja", AT, "session", "Sesja", None, 1.0)


def test_download_names_and_the_announcement_use_the_site_zone(tmp_path: Path) -> None:
    zone = new_york(tmp_path).site.zone
    assert str(zone) == "America/New_York"
    assert download_name(session(), "punkt 2", zone) == "2026-12-06 Sesja punkt 2.mp4"
    assert download_name(session(), "", SiteSettings().zone) == "2026-12-07 Sesja.mp4"  # Warsaw
    assert announce_slate(session(), zone).text == "Transmisja rozpocznie się o godz. 22.30"
    assert hit_json(HIT, zone)["date"] == "2026-12-06"


class _Archive:
    """The archive's search, answering one hit (the route's dating is under test)."""

    async def search(self, q: str, limit: int, offset: int, *_: Any) -> list[SearchHit]:
        return [HIT]


async def test_the_search_api_dates_hits_in_the_site_zone(tmp_path: Path) -> None:
    app = web.Application()
    app[SETTINGS] = new_york(tmp_path)
    app[ARCHIVE] = _Archive()  # type: ignore[assignment]
    app.add_routes(routes)
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/api/v1/search", params={"q": "sesja"})
        assert resp.status == 200
        [hit] = (await resp.json())["results"]
    assert hit["date"] == "2026-12-06"
