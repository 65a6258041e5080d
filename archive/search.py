"""Full-text search over sessions, agenda items, votes and councillors, for inflected Polish.

Text is normalized to lowercased lemmas (simplemma), surface forms, their diacritics-free
forms and, in a low-weight column, Stempel stems (pystempel); queries are normalized the same
way and only ever reach FTS5 as quoted terms, so no query text is FTS5 syntax.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import gzip
import io
import logging
import os
import re
import sqlite3
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from importlib.resources import files
from typing import TYPE_CHECKING, Literal

import simplemma
from pystempel import Stemmer
from pystempel.streams import DataInputStream

from archive.db import Store

if TYPE_CHECKING:
    from archive.records import Marker, Session
    from archive.timeline import Timeline

SearchKind = Literal["session", "item", "vote", "councillor", "speech"]

MAX_QUERY_CHARS = 200
# More terms than this add nothing to a search box query but cost time.
MAX_QUERY_TERMS = 12
# Sessions reindexed per transaction: the recorder's writes wait at most one batch.
REINDEX_BATCH = 50
# bm25 column weights: a title outweighs the text around it, which outweighs a stem match.
WEIGHTS = (10.0, 3.0, 1.0)
# Multipliers of the (negative) bm25 score: the whole query as a phrase, and the kind of thing.
PHRASE_BOOST = 2.0
# What a session's kind is called, searched with the session's title.
KIND_WORDS = {"session": "sesja rady", "committee": "posiedzenie komisji"}
KIND_BOOST = {"session": 1.2, "item": 1.1, "vote": 1.0, "councillor": 1.1, "speech": 0.8}

log = logging.getLogger(__name__)

_WORD = re.compile(r"\w+", re.UNICODE)
# NFKD leaves these without a combining mark, so they are mapped by hand.
_FOLD = str.maketrans({"ł": "l", "Ł": "L", "đ": "d", "ø": "o", "ß": "ss"})


class SearchError(ValueError):
    """The query cannot be searched (the message says what to send)."""


@dataclass(frozen=True)
class SearchHit:
    """One result: where in which session the query matched."""

    session_id: int
    session_title: str
    session_start: datetime
    kind: SearchKind
    title: str
    offset_seconds: float | None
    score: float


def fold(text: str) -> str:
    """The text without Polish (and other) diacritics."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLD))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def words(text: str) -> list[str]:
    """The lowercased words of a text (letters and digits; everything else separates)."""
    return [w for w in _WORD.findall(text.lower().replace("_", " ")) if w]


@dataclass(frozen=True)
class DictionaryState:
    """Whether the lemmatiser's and the stemmer's data are loaded, and how long that took."""

    loaded: bool
    seconds: float | None
    error: str | None


def _load_data() -> None:
    """Load simplemma's Polish dictionary and the Stempel stemmer. The dictionary in simplemma's
    memory-frugal form (`low_memory=True`): the same lemmas as its in-memory dict (compared on
    70,000 words), loaded in about half the time, a peak of ~110 MB instead of ~430 MB per
    process, and no multi-million-entry dict resizes that hold the GIL for 100 ms and more;
    a word not yet cached costs ~45 µs instead of ~4 µs."""
    simplemma.lemmatize("budżetu", lang="pl", low_memory=True)
    _load_stemmer()


class Dictionaries:
    """The process's dictionaries: loaded once, by `warm_up()` at start-up (in a thread of
    its own, see `load_in_background`) or else by the first word that needs them. A thread
    that needs them while another loads them waits; a coroutine waits with `ready()` without
    holding a thread."""

    def __init__(self, load: Callable[[], None] = _load_data) -> None:
        self._load = load
        self._lock = threading.Lock()  # held while loading
        self._state_lock = threading.Lock()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self.seconds: float | None = None
        self.error: str | None = None

    def state(self) -> DictionaryState:
        """What /api/v1/status and /metrics show."""
        return DictionaryState(self._done.is_set() and self.error is None, self.seconds, self.error)

    def load(self) -> float:
        """Load them in this thread, or wait for the thread loading them; the seconds the load
        took. A failed load is retried by the next caller (and its error raised)."""
        if self._done.is_set() and self.error is None:
            return self.seconds or 0.0
        with self._lock:
            if not (self._done.is_set() and self.error is None):
                started = time.perf_counter()
                try:
                    with _no_collection():
                        self._load()
                except Exception as exc:
                    self.error = f"{type(exc).__name__}: {exc}"
                    log.exception("could not load the search dictionaries")
                    self._finish()
                    raise
                self.seconds = round(time.perf_counter() - started, 3)
                self.error = None
                log.info("search dictionaries loaded in %.2f s", self.seconds)
                self._finish()
        return self.seconds or 0.0

    def _finish(self) -> None:
        with self._state_lock:
            self._done.set()
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):  # a loop closed meanwhile
                loop.call_soon_threadsafe(_wake, future)

    def start(self) -> threading.Thread | None:
        """Start loading in a thread of its own at a lower CPU priority (nothing if loaded
        or loading already); the thread, if one was started."""
        with self._state_lock:
            if self._done.is_set() and self.error is None:
                return None
            if self._thread is not None and self._thread.is_alive():
                return self._thread
            self._thread = threading.Thread(
                target=self._load_quietly, name="search-dictionaries", daemon=True
            )
            self._thread.start()
            return self._thread

    def _load_quietly(self) -> None:
        lower_priority()
        with contextlib.suppress(Exception):  # logged and kept in `error`
            self.load()

    async def ready(self) -> None:
        """Wait, without holding a thread, until they are loaded (starting the load if nobody
        has); the load's error if it failed."""
        if not self._done.is_set():
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            with self._state_lock:
                waiting = not self._done.is_set()
                if waiting:
                    self._waiters.append((asyncio.get_running_loop(), future))
            if waiting:
                self.start()
                await future
        if self.error is not None:
            # Retried in a thread: a loop must not load them itself.
            await asyncio.to_thread(self.load)


@contextlib.contextmanager
def _no_collection() -> Iterator[None]:
    """No cyclic garbage collection while the dictionaries load, then the objects the process
    has by then frozen out of every later collection. The load makes some 10^5 objects (the
    stemmer's trie) and so starts full collections of the whole heap, each of which holds the
    GIL, and so the event loop, for 25-70 ms in a service-sized process (measured: a 10 ms
    ticker's longest stall 69-72 ms with collection, 8-10 ms without); frozen, those objects
    no longer lengthen the collections that come later."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
    gc.freeze()


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def lower_priority(niceness: int = 10) -> None:
    """Lower the calling thread's CPU priority (Linux: a thread is a task with its own nice
    value), so that capture and the live edge come first; nothing where that is unsupported."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)


DICTIONARIES = Dictionaries()


def warm_up() -> float:
    """Load the dictionaries now (in this thread); the seconds it took."""
    return DICTIONARIES.load()


async def load_in_background() -> None:
    """Load the dictionaries in a thread of their own and wait until they are; cancelled, it
    still waits for that thread, so that nothing outlives the part that started it. The work
    of a `Background` part entered at start-up by both composition roots."""
    dictionaries = DICTIONARIES
    thread = dictionaries.start()
    try:
        await dictionaries.ready()
    except asyncio.CancelledError:
        if thread is not None:
            await asyncio.to_thread(thread.join)
        raise


@lru_cache(maxsize=200_000)
def lemma(word: str) -> str:
    """The word's lemma (lowercase in, lowercase out)."""
    if word.isdigit():
        return word
    DICTIONARIES.load()
    return simplemma.lemmatize(word, lang="pl", low_memory=True).lower()


_stemmer: Stemmer | None = None
_stemmer_lock = threading.Lock()


def _load_stemmer() -> Stemmer:
    """The Stempel stemmer with its original table (the one Lucene's Polish analyzer ships),
    loaded once per process (about 0.3 s), without its progress bar."""
    global _stemmer
    with _stemmer_lock:
        if _stemmer is None:
            table = files("pystempel.data.original").joinpath("stemmer_20000.tbl.gz")
            raw = gzip.decompress(table.read_bytes())
            _stemmer = Stemmer.from_stream(DataInputStream(io.BytesIO(raw)))
        return _stemmer


def stemmer() -> Stemmer:
    """The Stempel stemmer, once the dictionaries are loaded."""
    DICTIONARIES.load()
    return _load_stemmer()


@lru_cache(maxsize=200_000)
def stem(word: str) -> str | None:
    """The word's Stempel stem, folded: it joins forms that the lemmatizer files under other
    lemmas ("stawek" is also a pond); None for words too short or numeric to stem."""
    if len(word) < 4 or not word.isalpha():
        return None
    found = stemmer()(word.lower())
    if not found or len(found) < 3:
        return None
    return fold(found)


@lru_cache(maxsize=200_000)
def forms(word: str) -> tuple[str, ...]:
    """Every term a word is indexed and searched under: lemma, surface form, and both folded."""
    found: list[str] = []
    for form in (lemma(word), word, fold(lemma(word)), fold(word)):
        if form and form not in found:
            found.append(form)
    return tuple(found)


def index_terms(text: str) -> tuple[str, str]:
    """The text as FTS5 terms and as stems."""
    terms: list[str] = []
    stems: list[str] = []
    for word in words(text):
        terms.extend(forms(word))
        s = stem(word)
        if s:
            stems.append(s)
    return " ".join(terms), " ".join(stems)


def lemma_line(text: str) -> str:
    """The folded lemmas of a text, space-separated, for exact-phrase boosting."""
    return " ".join(fold(lemma(w)) for w in words(text))


def match_expression(query: str) -> tuple[str, str] | None:
    """The FTS5 MATCH expression for a query (every word must match one of its forms) and its
    lemma line; None if the query has no words. Each term is a quoted string of \\w characters,
    so quotes, operators, NEAR and column filters in the query are just text."""
    found = words(query)[:MAX_QUERY_TERMS]
    if not found:
        return None
    groups = []
    for word in found:
        alternatives = " OR ".join(f'"{form}"' for form in forms(word))
        group = f"{{title body}} : ({alternatives})"
        s = stem(word)
        if s:
            group += f' OR stems : "{s}"'
        groups.append(f"({group})")
    return " AND ".join(groups), " ".join(fold(lemma(w)) for w in found)


def check_query(query: str) -> str:
    """The query stripped; SearchError if it is empty or too long."""
    text = query.strip()
    if not text:
        raise SearchError("send a search text: ?q=<words>, e.g. ?q=budżet miasta")
    if len(text) > MAX_QUERY_CHARS:
        raise SearchError(
            f"the search text has {len(text)} characters; send at most {MAX_QUERY_CHARS}"
        )
    return text


@dataclass(frozen=True)
class _Doc:
    kind: SearchKind
    ref_id: int | None
    title: str
    body: str
    offset: float | None


class SearchStore(Store):
    """The search index and its queries (mixed into ArchiveIndex)."""

    if TYPE_CHECKING:
        # Provided by ArchiveIndex, which this is mixed into.
        def get_session(self, session_id: int) -> Session: ...
        def markers(self, session_id: int) -> list[Marker]: ...
        def timeline(self, session_id: int) -> Timeline: ...
        def hidden_ranges(self, session_id: int) -> list[tuple[float, float]]: ...

    def reindex_search(self, everything: bool = False) -> int:
        """Rebuild the documents of sessions marked dirty (or of all sessions); returns how many
        sessions were indexed."""
        if everything:
            with self._tx() as c:
                c.execute("INSERT OR IGNORE INTO search_dirty (session_id) SELECT id FROM sessions")
        done = 0
        while found := self.reindex_search_batch():
            done += found
        return done

    def search_pending(self) -> bool:
        """Whether some session's documents wait to be rebuilt (a read)."""
        row = self._conn.execute("SELECT EXISTS (SELECT 1 FROM search_dirty)").fetchone()
        return bool(row[0])

    def reindex_search_batch(self) -> int:
        """Rebuild the documents of at most REINDEX_BATCH dirty sessions in one transaction;
        how many it rebuilt (0: none was dirty)."""
        with self._tx() as c:
            ids = [
                int(r[0])
                for r in c.execute(
                    "SELECT session_id FROM search_dirty ORDER BY session_id LIMIT ?",
                    (REINDEX_BATCH,),
                )
            ]
            for session_id in ids:
                self._index_session(c, session_id)
            c.executemany("DELETE FROM search_dirty WHERE session_id = ?", [(i,) for i in ids])
        return len(ids)

    def _index_session(self, c: sqlite3.Connection, session_id: int) -> None:
        old = [
            (r[0],)
            for r in c.execute("SELECT id FROM search_docs WHERE session_id = ?", (session_id,))
        ]
        c.executemany("DELETE FROM search_fts WHERE rowid = ?", old)
        c.execute("DELETE FROM search_docs WHERE session_id = ?", (session_id,))
        row = c.execute("SELECT title, kind FROM sessions WHERE id = ?", (session_id,)).fetchone()
        if row is None:
            return
        for doc in self._documents(c, session_id, str(row["title"]), str(row["kind"])):
            cur = c.execute(
                "INSERT INTO search_docs (session_id, kind, ref_id, title, lemmas, offset_seconds)"
                " VALUES (?,?,?,?,?,?)",
                (
                    session_id,
                    doc.kind,
                    doc.ref_id,
                    doc.title,
                    lemma_line(doc.title),
                    doc.offset,
                ),
            )
            title_terms, title_stems = index_terms(doc.title)
            body_terms, body_stems = index_terms(doc.body)
            c.execute(
                "INSERT INTO search_fts (rowid, title, body, stems) VALUES (?,?,?,?)",
                (cur.lastrowid, title_terms, body_terms, f"{title_stems} {body_stems}".strip()),
            )

    def _documents(
        self, c: sqlite3.Connection, session_id: int, title: str, kind: str
    ) -> Iterable[_Doc]:
        """The session (body: what its kind is called), its items (body: the parent item),
        votes (body: their item), the councillors who voted (at their first vote; body:
        "radny" and their caucus) and the transcript's lines outside redactions."""
        timeline = self.timeline(session_id)

        def offset(at: datetime) -> float | None:
            value = timeline.offset_of(at)
            return None if value is None else round(value, 3)

        yield _Doc("session", session_id, title, KIND_WORDS.get(kind, ""), None)
        item_starts: dict[int, float | None] = {}
        for marker in self.markers(session_id):
            if marker.kind == "item_start" and marker.item_id is not None:
                # An item taken up twice is found where it was first taken up.
                item_starts.setdefault(marker.item_id, offset(marker.at))
        items = c.execute(
            "SELECT id, parent_id, number, title FROM agenda_items WHERE session_id = ?"
            " ORDER BY position",
            (session_id,),
        ).fetchall()
        titles = {int(r["id"]): str(r["title"]) for r in items}
        for r in items:
            parent = titles.get(r["parent_id"], "") if r["parent_id"] is not None else ""
            yield _Doc("item", r["id"], r["title"], parent, item_starts.get(r["id"]))
        first_vote: dict[str, float | None] = {}
        for v in c.execute(
            "SELECT id, item_id, subject, at FROM votes WHERE session_id = ? ORDER BY at, id",
            (session_id,),
        ).fetchall():
            at = offset(datetime.fromisoformat(v["at"]))
            body = titles.get(v["item_id"], "") if v["item_id"] is not None else ""
            yield _Doc("vote", v["id"], v["subject"], body, at)
            for choice in c.execute(
                "SELECT name, caucus FROM vote_choices WHERE vote_id = ?", (v["id"],)
            ):
                if choice["name"] not in first_vote:
                    first_vote[choice["name"]] = at
                    body = f"radny {choice['caucus'] or ''}".strip()
                    yield _Doc("councillor", None, choice["name"], body, at)
        # What was said (the transcript), but nothing the public copy hides behind a slate.
        hidden = self.hidden_ranges(session_id)
        for line in c.execute(
            "SELECT id, start_seconds, end_seconds, text FROM transcript_lines"
            " WHERE session_id = ? AND text != '' ORDER BY start_seconds, id",
            (session_id,),
        ).fetchall():
            start, end = float(line["start_seconds"]), float(line["end_seconds"])
            if any(low < end and high > start for low, high in hidden):
                continue
            yield _Doc("speech", line["id"], line["text"], "", round(start, 3))

    def search(
        self, query: str, limit: int = 20, offset: int = 0, include_withdrawn: bool = False
    ) -> list[SearchHit]:
        """The best matches for a query, best first (newer sessions first on equal scores);
        SearchError for an empty or too long query. Reindexes dirty sessions first."""
        check_query(query)
        self.reindex_search()
        return self.find(query, limit, offset, include_withdrawn)

    def find(
        self, query: str, limit: int = 20, offset: int = 0, include_withdrawn: bool = False
    ) -> list[SearchHit]:
        """As `search`, on the index as it is (a read: dirty sessions are not rebuilt)."""
        text = check_query(query)
        built = match_expression(text)
        if built is None:
            return []
        expression, line = built
        kind_case = " ".join(f"WHEN '{k}' THEN {v}" for k, v in KIND_BOOST.items())
        sql = (
            "SELECT d.session_id, d.kind, d.title, d.offset_seconds, s.title AS session_title,"
            " s.scheduled_start,"
            f" bm25(search_fts, {WEIGHTS[0]}, {WEIGHTS[1]}, {WEIGHTS[2]})"
            f" * (CASE d.kind {kind_case} ELSE 1.0 END)"
            f" * (CASE WHEN instr(' ' || d.lemmas || ' ', ?) > 0 THEN {PHRASE_BOOST} ELSE 1.0 END)"
            " AS score"
            " FROM search_fts JOIN search_docs d ON d.id = search_fts.rowid"
            " JOIN sessions s ON s.id = d.session_id"
            " WHERE search_fts MATCH ?"
            + ("" if include_withdrawn else " AND s.published = 1")
            + " ORDER BY score, s.scheduled_start DESC, d.id LIMIT ? OFFSET ?"
        )
        rows = self._conn.execute(sql, (f" {line} ", expression, limit, offset)).fetchall()
        return [
            SearchHit(
                session_id=int(r["session_id"]),
                session_title=str(r["session_title"]),
                session_start=datetime.fromisoformat(r["scheduled_start"]),
                kind=r["kind"],
                title=str(r["title"]),
                offset_seconds=r["offset_seconds"],
                score=float(r["score"]),
            )
            for r in rows
        ]
