"""Pages come from autoescaped templates and words from the catalogues: no HTML is put
together in Python strings, a title with markup in it is shown as text everywhere, and both
languages hold the same messages."""

from __future__ import annotations

import ast
import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import Service, segments_of, start_service, stop_service, wait_for

from config.settings import Settings
from streaming.web.i18n import LANGS
from streaming.web.templating import create_environment, read_catalogue

STREAMING = Path(__file__).resolve().parents[3] / "streaming"
TEMPLATES = STREAMING / "web" / "templates"
# Elements a page is made of: '<' with one of these names is HTML, not "<id>" in a message.
TAGS = (
    "a abbr article aside audio b body br button caption code dd details div dl dt em "
    "fieldset footer form h1 h2 h3 h4 h5 h6 head header hr html i iframe img input label legend "
    "li link main meta nav noscript ol optgroup option p pre progress script section select "
    "small source span strong style summary table tbody td textarea tfoot th thead time title "
    "tr track ul video"
).split()
TAG = re.compile(r"</?(?:" + "|".join(TAGS) + r")(?=[\s>/])|<!doctype", re.IGNORECASE)


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of the docstring constants (they may name elements: "the browser's <video>")."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def html_in_strings(source: str) -> list[str]:
    """Every string literal (f-strings with each {…} read as "X") that holds an HTML tag."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    # The pieces of an f-string are read with it, as one string.
    skip |= {
        id(part)
        for node in ast.walk(tree)
        if isinstance(node, ast.JoinedStr)
        for part in node.values
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = "".join(
                part.value if isinstance(part, ast.Constant) else "X" for part in node.values
            )
        elif (
            isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
        ):
            text = node.value
        else:
            continue
        if TAG.search(text):
            found.append(f"line {node.lineno}: {text[:80]!r}")
    return found


def test_the_check_finds_html_in_strings() -> None:
    source = 'x = f"<p>{name}</p>"\ny = "<li><a href=\'/\'>"\nz = f\'<a href="{u}">\'\n'
    assert len(html_in_strings(source)) == 3
    harmless = (
        '"""The browser\'s <video>."""\nx = \'send {"camera": "<camera id>"}\'\ny = "a < b"\n'
    )
    assert html_in_strings(harmless) == []


def test_no_module_builds_html_in_strings() -> None:
    found = {}
    for path in sorted(STREAMING.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        problems = html_in_strings(source)
        # Escaping by hand means HTML is being made by hand.
        problems += [
            f"imports {name}"
            for name in ("from html import", "import html\n", "markupsafe")
            if name in source
        ]
        if problems:
            found[str(path.relative_to(STREAMING.parent))] = problems
    assert found == {}, found


def test_both_languages_hold_the_same_messages_with_the_same_placeholders() -> None:
    placeholders = re.compile(r"%\((\w+)\)s")
    pl, en = (read_catalogue(lang) for lang in LANGS)
    assert pl.keys() == en.keys(), pl.keys() ^ en.keys()
    for key in pl.keys():
        assert set(placeholders.findall(pl.gettext(key))) == set(
            placeholders.findall(en.gettext(key))
        ), key


def test_every_message_a_template_names_is_in_the_catalogue() -> None:
    named = re.compile(r"""_\(\s*"([a-z_]+\.[a-z_0-9]+)"\s*[,)]""")
    messages = read_catalogue("pl").keys()
    env = create_environment()
    for path in sorted(TEMPLATES.iterdir()):
        env.get_template(path.name)  # it compiles
        missing = set(named.findall(path.read_text(encoding="utf-8"))) - messages
        assert not missing, (path.name, missing)


NASTY = 'Sesja <script>alert("x")</script> & <b onmouseover="x()">budżet</b>'
ESCAPED = "&lt;script&gt;alert("


@pytest.fixture
async def service(make_settings: Callable[..., Settings]) -> AsyncIterator[Service]:
    """A running obrady whose live.public_url is its own address: feeds, embeds and oEmbed
    give absolute addresses only from there."""
    svc = await start_service(make_settings(public=True))
    try:
        yield svc
    finally:
        await stop_service(svc)


async def _ended_session(service: Service, title: str) -> dict[str, Any]:
    at = datetime.now(UTC) + timedelta(hours=1)
    created: dict[str, Any] = await service.post_json(
        "/api/v1/sessions",
        {
            "title": title,
            "scheduled_start": at.isoformat(),
            "scheduled_end": (at + timedelta(hours=2)).isoformat(),
            "agenda_text": "1. Otwarcie sesji.\n2. Zamknięcie obrad.\n",
        },
        status=201,
    )
    sid = created["id"]
    await service.post_json(f"/api/v1/sessions/{sid}/start")

    async def recorded() -> bool:
        return await segments_of(service, sid) >= 1

    await wait_for(recorded, 30, "the first recorded segment")
    stopped: dict[str, Any] = await service.post_json(f"/api/v1/sessions/{sid}/stop")
    return stopped


async def test_a_title_with_markup_is_shown_as_text_on_every_page(service: Service) -> None:
    ended = await _ended_session(service, NASTY)
    sid = ended["id"]
    scheduled = await service.begin(start=False, title=NASTY)
    pages = [
        "/",
        "/archive",
        f"/sessions/{sid}",
        f"/sessions/{scheduled['id']}",
        f"/sessions/{sid}/votes",
        f"/embed/sessions/{sid}",
    ]
    for path in pages:
        for lang in ("pl", "en"):
            html = await service.get_text(f"{path}?lang={lang}")
            assert "<script>alert" not in html and "<b onmouseover" not in html, path
            assert ESCAPED in html or "&amp;lt;script&amp;gt;" in html, (path, html[-800:])

    async def found() -> str | None:
        html = await service.get_text("/search?q=bud%C5%BCet")
        return html if ESCAPED in html else None

    html = await wait_for(found, 20, "the session in the search results")
    assert "<script>alert" not in html

    for feed, title_path in (
        (
            "/feeds/recordings.atom",
            "{http://www.w3.org/2005/Atom}entry/{http://www.w3.org/2005/Atom}title",
        ),
        ("/feeds/recordings.rss", "channel/item/title"),
    ):
        xml = await service.get_text(feed)
        assert "<script>" not in xml, feed
        assert ET.fromstring(xml.encode("utf-8")).findtext(title_path) == NASTY, feed

    page_url = f"{service.base}/sessions/{sid}"
    answer = await service.get_json(f"/oembed?url={page_url}")
    assert answer["title"] == NASTY
    assert "<script>" not in answer["html"] and ESCAPED in answer["html"]


def test_every_word_the_scripts_ask_for_is_in_the_catalogue() -> None:
    static = STREAMING / "web" / "static"
    messages = read_catalogue("pl").keys()
    asked = {
        "console." + key
        for key in re.findall(r"""\bt\("([a-z_]+)"\)""", (static / "console.js").read_text())
    }
    asked |= set(re.findall(r"""\bw\("([a-z_]+\.[a-z_]+)"\)""", (static / "player.js").read_text()))
    assert len(asked) > 100
    assert asked <= messages, asked - messages


def test_the_progress_page_shows_the_file_name_as_text() -> None:
    env = create_environment()
    html = env.get_template("progress.html").render(
        lang="pl",
        words=read_catalogue("pl"),
        zone=None,
        title="Przygotowujemy plik MP4",
        other="en",
        switch_href="/sessions/1/recording.mp4?lang=en",
        scripts=(),
        refresh_seconds=2,
        name=NASTY + ".mp4",
        percent=40,
        queued=True,
        session_id=1,
    )
    assert "<script>alert" not in html and ESCAPED in html
    assert "Gotowe: 40%." in html and "Czeka w kolejce" in html
    assert '<meta http-equiv="refresh" content="2">' in html
