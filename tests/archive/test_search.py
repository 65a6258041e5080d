"""The archive search: inflected Polish queries find the right thing, bad syntax is only text,
and the index follows changes to the archive."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from archive.agenda import parse_agenda
from archive.index import ArchiveIndex
from archive.search import SearchError

COUNCIL = [
    ("Jan Kowalski", "KO"),
    ("Anna Nowak", "PiS"),
    ("Łukasz Żółtowski", "Lewica"),
]

SESSIONS = [
    (
        "LVII Sesja Rady Miasta Piotrkowa Trybunalskiego",
        datetime(2022, 3, 30, 9, tzinfo=UTC),
        "1. Otwarcie sesji.\n"
        "2. Podjęcie uchwał w sprawie:\n"
        "  a) zmiany budżetu miasta na 2022 rok;\n"
        "  b) określenia wysokości stawek podatku od nieruchomości;\n"
        "3. Wolne wnioski.\n",
        [("Uchwała nr LVII/712/22 w sprawie zmiany budżetu miasta", 0)],
    ),
    (
        "Nadzwyczajna sesja w sprawie komunikacji miejskiej",
        datetime(2023, 6, 1, 9, tzinfo=UTC),
        "1. Otwarcie sesji.\n"
        "2. Informacja o funkcjonowaniu Miejskiego Zakładu Komunikacji.\n"
        "3. Nadanie nazwy rondu u zbiegu ulic Słowackiego i Wojska Polskiego.\n",
        [("Uchwała nr LXX/801/23 w sprawie nadania nazwy rondu", 2)],
    ),
    (
        "Posiedzenie Komisji Oświaty",
        datetime(2024, 1, 15, 9, tzinfo=UTC),
        "1. Sieć szkół podstawowych w roku szkolnym 2024/2025.\n"
        "2. Dróg gminnych remont – sprawozdanie.\n",
        [],
    ),
]

# query -> (kind, the top result's title, or the part of it that identifies it)
RELEVANCE = [
    ("budżet", "item", "zmiany budżetu miasta na 2022 rok"),
    ("budzet", "item", "zmiany budżetu miasta na 2022 rok"),
    ("stawki podatku", "item", "określenia wysokości stawek podatku od nieruchomości"),
    ("stawka podatku od nieruchomosci", "item", "określenia wysokości stawek podatku"),
    ("uchwała nr LVII/712/22", "vote", "Uchwała nr LVII/712/22 w sprawie zmiany budżetu miasta"),
    ("LXX/801/23", "vote", "Uchwała nr LXX/801/23 w sprawie nadania nazwy rondu"),
    ("Kowalskiego", "councillor", "Jan Kowalski"),
    ("Żółtowskiemu", "councillor", "Łukasz Żółtowski"),
    ("zoltowski", "councillor", "Łukasz Żółtowski"),
    ("radna Nowak", "councillor", "Anna Nowak"),
    ("radnego Kowalskiego", "councillor", "Jan Kowalski"),
    ("komisja oświaty", "session", "Posiedzenie Komisji Oświaty"),
    ("sesja nadzwyczajna komunikacja", "session", "Nadzwyczajna sesja w sprawie komunikacji"),
    ("szkoła podstawowa", "item", "Sieć szkół podstawowych"),
    ("droga gminna", "item", "Dróg gminnych remont"),
    ("nazwa ronda", "item", "Nadanie nazwy rondu"),
    ("zakład komunikacji", "item", "Miejskiego Zakładu Komunikacji"),
]


def build(index: ArchiveIndex) -> list[int]:
    """The three sessions above, held and ended, with their votes."""
    ids = [index.add_councillor("2018-2023", name, caucus).id for name, caucus in COUNCIL]
    made = []
    for title, start, agenda_text, votes in SESSIONS:
        session = index.create_session(
            chamber="sala",
            title=title,
            kind="committee" if "Komisji" in title else "session",
            scheduled_start=start,
            scheduled_end=start + timedelta(hours=3),
            agenda_text=agenda_text,
            agenda=parse_agenda(agenda_text),
            created_by=None,
        )
        index.begin_live(session.id, start)
        items = index.agenda(session.id)
        for n, item in enumerate(items):
            index.add_marker(session.id, "item_start", start + timedelta(minutes=n), item.id)
        for subject, item_pos in votes:
            index.add_vote(
                session.id,
                item_id=items[item_pos].id,
                subject=subject,
                at=start + timedelta(minutes=30),
                source="console",
                choices={cid: "for" for cid in ids},
                created_by=None,
            )
        index.end(session.id, start + timedelta(hours=2), "operator")
        made.append(session.id)
    return made


@pytest.fixture
def index(tmp_path: Path) -> Iterator[ArchiveIndex]:
    archive = ArchiveIndex(tmp_path / "obrady.sqlite3")
    build(archive)
    try:
        yield archive
    finally:
        archive.close()


@pytest.mark.parametrize(("query", "kind", "title"), RELEVANCE)
def test_inflected_queries_find_the_right_thing_first(
    index: ArchiveIndex, query: str, kind: str, title: str
) -> None:
    hits = index.search(query)
    assert hits, query
    top = hits[0]
    assert (top.kind, title in top.title) == (kind, True), [(h.kind, h.title) for h in hits[:5]]


@pytest.mark.parametrize(
    "query",
    [
        '"budżet',
        "budżet*",
        "budżet NEAR miasta",
        "NEAR(budżet miasta)",
        "-budżet",
        "(budżet OR",
        "title: budżet",
        "{title}: x",
        "^budżet",
        "AND OR NOT",
        "🏛️ budżet 🎉",
        "🏛️",
        "***",
        "a" * 200,
        "budżet " * 28,
    ],
)
def test_query_syntax_is_only_text(index: ArchiveIndex, query: str) -> None:
    hits = index.search(query)
    # Operators are searched as words; where the query holds only "budżet", it is found.
    if "budżet" in query and query.replace("budżet", "").strip(' "*-^🏛️🎉') == "":
        assert hits, query


@pytest.mark.parametrize("query", ["", "   \t\n", "x" * 201])
def test_empty_or_too_long_queries_are_refused(index: ArchiveIndex, query: str) -> None:
    with pytest.raises(SearchError):
        index.search(query)


def test_the_index_follows_renames_withdrawal_and_new_sessions(index: ArchiveIndex) -> None:
    assert not index.search("kanalizacja deszczowa")
    item = next(i for i in index.agenda(1) if "budżetu" in i.title)
    index.rename_item(1, item.id, "Budowa kanalizacji deszczowej")
    assert index.search("kanalizacja deszczowa")[0].title == "Budowa kanalizacji deszczowej"
    assert not any(h.title == item.title for h in index.search("zmiany budżetu miasta"))
    index.set_published(1, False)
    assert not index.search("kanalizacja deszczowa")
    assert index.search("kanalizacja deszczowa", include_withdrawn=True)
    index.set_published(1, True)
    start = datetime(2025, 5, 5, 9, tzinfo=UTC)
    index.create_session(
        chamber="sala",
        title="Sesja absolutoryjna",
        kind="session",
        scheduled_start=start,
        scheduled_end=start + timedelta(hours=1),
        agenda_text="1. Absolutorium dla Prezydenta Miasta.\n",
        agenda=parse_agenda("1. Absolutorium dla Prezydenta Miasta.\n"),
        created_by=None,
    )
    top = index.search("absolutorium prezydenta")[0]
    assert top.kind == "item" and top.offset_seconds is None


def test_newer_sessions_come_first_on_equal_scores(index: ArchiveIndex) -> None:
    hits = [h for h in index.search("otwarcie sesji") if h.kind == "item"]
    assert [h.session_start.year for h in hits] == [2023, 2022]


def test_a_full_rebuild_gives_the_same_answers(index: ArchiveIndex) -> None:
    before = [(h.kind, h.title) for h in index.search("budżet")]
    assert index.reindex_search(everything=True) == 3
    assert [(h.kind, h.title) for h in index.search("budżet")] == before
