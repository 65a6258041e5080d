"""The council in the archive: councillors of a term, nominal votes, and agenda changes (SQL)."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from archive.agenda import AgendaItem, flatten
from archive.db import Conflict, NotFound, Store, to_text, utc_now

Choice = Literal["for", "against", "abstain", "absent"]
CHOICES: tuple[Choice, ...] = ("for", "against", "abstain", "absent")


@dataclass(frozen=True)
class Councillor:
    """A councillor (radny, radna) of one term of office, with their caucus (klub)."""

    id: int
    term: str
    name: str
    caucus: str
    active: bool


@dataclass(frozen=True)
class VoteChoice:
    """How one councillor voted, with their name and caucus as they were at the vote."""

    councillor_id: int
    name: str
    caucus: str
    choice: Choice


@dataclass(frozen=True)
class Vote:
    """A nominal vote (głosowanie imienne) at the moment its result was announced."""

    id: int
    session_id: int
    item_id: int | None
    subject: str
    at: datetime
    source: str
    created_by: str | None
    choices: tuple[VoteChoice, ...]

    def totals(self) -> dict[str, int]:
        """How many chose each option."""
        counts: dict[str, int] = dict.fromkeys(CHOICES, 0)
        for choice in self.choices:
            counts[choice.choice] += 1
        return counts


@dataclass(frozen=True)
class AgendaEntry:
    """An agenda item as the console edits it: with whether it was added or taken off."""

    id: int
    parent_id: int | None
    position: int
    depth: int
    number: str
    title: str
    added: bool
    removed: bool


def _councillor(row: sqlite3.Row) -> Councillor:
    return Councillor(row["id"], row["term"], row["name"], row["caucus"], bool(row["active"]))


def _entry(row: sqlite3.Row) -> AgendaEntry:
    return AgendaEntry(
        row["id"],
        row["parent_id"],
        row["position"],
        row["depth"],
        row["number"],
        row["title"],
        bool(row["added"]),
        bool(row["removed"]),
    )


class CouncilStore(Store):
    """Councillors, votes and agenda edits (mixed into ArchiveIndex)."""

    # councillors

    def councillors(self, term: str, include_inactive: bool = False) -> list[Councillor]:
        """The councillors of a term, by name."""
        sql = "SELECT * FROM councillors WHERE term = ?"
        if not include_inactive:
            sql += " AND active = 1"
        rows = self._conn.execute(sql + " ORDER BY name COLLATE NOCASE, id", (term,)).fetchall()
        return [_councillor(r) for r in rows]

    def terms(self) -> list[str]:
        """Every term that has councillors on record."""
        rows = self._conn.execute("SELECT DISTINCT term FROM councillors ORDER BY term").fetchall()
        return [str(r[0]) for r in rows]

    def get_councillor(self, councillor_id: int) -> Councillor:
        """One councillor; NotFound if there is none."""
        row = self._conn.execute(
            "SELECT * FROM councillors WHERE id = ?", (councillor_id,)
        ).fetchone()
        if row is None:
            raise NotFound(f"councillor {councillor_id} does not exist")
        return _councillor(row)

    def add_councillor(self, term: str, name: str, caucus: str) -> Councillor:
        """Add a councillor to a term; Conflict if the name is already there."""
        try:
            with self._tx() as c:
                cur = c.execute(
                    "INSERT INTO councillors (term, name, caucus) VALUES (?,?,?)",
                    (term, name, caucus),
                )
        except sqlite3.IntegrityError:
            raise Conflict(f"councillor {name!r} is already on the list of term {term}") from None
        return self.get_councillor(int(cur.lastrowid or 0))

    def update_councillor(
        self,
        councillor_id: int,
        *,
        name: str | None = None,
        caucus: str | None = None,
        active: bool | None = None,
    ) -> Councillor:
        """Correct a councillor's name or caucus, or take them off (or back on) the list."""
        current = self.get_councillor(councillor_id)
        try:
            with self._tx() as c:
                c.execute(
                    "UPDATE councillors SET name = ?, caucus = ?, active = ? WHERE id = ?",
                    (
                        current.name if name is None else name,
                        current.caucus if caucus is None else caucus,
                        int(current.active if active is None else active),
                        councillor_id,
                    ),
                )
        except sqlite3.IntegrityError:
            raise Conflict(f"councillor {name!r} is already on the list of this term") from None
        return self.get_councillor(councillor_id)

    # votes

    def add_vote(
        self,
        session_id: int,
        *,
        item_id: int | None,
        subject: str,
        at: datetime,
        source: str,
        choices: Mapping[int, Choice],
        created_by: str | None,
    ) -> Vote:
        """Store a nominal vote; every councillor named must exist."""
        with self._tx() as c:
            cur = c.execute(
                "INSERT INTO votes (session_id, item_id, subject, at, source, created_by,"
                " created_at) VALUES (?,?,?,?,?,?,?)",
                (session_id, item_id, subject, to_text(at), source, created_by, to_text(utc_now())),
            )
            vote_id = int(cur.lastrowid or 0)
            for councillor_id, choice in choices.items():
                row = c.execute(
                    "SELECT name, caucus FROM councillors WHERE id = ?", (councillor_id,)
                ).fetchone()
                if row is None:
                    raise NotFound(f"councillor {councillor_id} does not exist")
                c.execute(
                    "INSERT INTO vote_choices (vote_id, councillor_id, name, caucus, choice)"
                    " VALUES (?,?,?,?,?)",
                    (vote_id, councillor_id, row["name"], row["caucus"], choice),
                )
        return self.get_vote(vote_id)

    def get_vote(self, vote_id: int) -> Vote:
        """One vote with its per-councillor list; NotFound if there is none."""
        row = self._conn.execute("SELECT * FROM votes WHERE id = ?", (vote_id,)).fetchone()
        if row is None:
            raise NotFound(f"vote {vote_id} does not exist")
        return self._vote(row)

    def delete_vote(self, vote_id: int) -> None:
        """Remove a vote entered by mistake (the audit log keeps what it was)."""
        with self._tx() as c:
            c.execute("DELETE FROM vote_choices WHERE vote_id = ?", (vote_id,))
            if c.execute("DELETE FROM votes WHERE id = ?", (vote_id,)).rowcount == 0:
                raise NotFound(f"vote {vote_id} does not exist")

    def votes(self, session_id: int) -> list[Vote]:
        """A session's votes in the order they were announced."""
        rows = self._conn.execute(
            "SELECT * FROM votes WHERE session_id = ? ORDER BY at, id", (session_id,)
        ).fetchall()
        return [self._vote(r) for r in rows]

    def _vote(self, row: sqlite3.Row) -> Vote:
        choices = self._conn.execute(
            "SELECT * FROM vote_choices WHERE vote_id = ? ORDER BY name COLLATE NOCASE",
            (row["id"],),
        ).fetchall()
        return Vote(
            row["id"],
            row["session_id"],
            row["item_id"],
            row["subject"],
            datetime.fromisoformat(row["at"]),
            row["source"],
            row["created_by"],
            tuple(
                VoteChoice(c["councillor_id"], c["name"], c["caucus"], c["choice"]) for c in choices
            ),
        )

    # agenda edits

    def agenda_entries(self, session_id: int) -> list[AgendaEntry]:
        """The session's agenda in order, items taken off included."""
        rows = self._conn.execute(
            "SELECT * FROM agenda_items WHERE session_id = ? ORDER BY position", (session_id,)
        ).fetchall()
        return [_entry(r) for r in rows]

    def replace_agenda(
        self, session_id: int, agenda_text: str, agenda: Sequence[AgendaItem]
    ) -> None:
        """Replace the agenda of a session nothing has been marked in yet."""
        with self._tx() as c:
            used = c.execute(
                "SELECT (SELECT COUNT(*) FROM markers WHERE session_id = ? AND item_id IS NOT NULL)"
                " + (SELECT COUNT(*) FROM votes WHERE session_id = ? AND item_id IS NOT NULL)",
                (session_id, session_id),
            ).fetchone()[0]
            if used:
                raise Conflict(
                    f"session {session_id} already has items started or voted on; change its "
                    "agenda item by item (add, take off, move) instead of pasting it again"
                )
            c.execute("DELETE FROM agenda_items WHERE session_id = ?", (session_id,))
            c.execute("UPDATE sessions SET agenda_text = ? WHERE id = ?", (agenda_text, session_id))
            parents: list[int] = []
            for position, (item, depth) in enumerate(flatten(agenda)):
                del parents[depth:]
                cur = c.execute(
                    "INSERT INTO agenda_items"
                    " (session_id, parent_id, position, depth, number, title)"
                    " VALUES (?,?,?,?,?,?)",
                    (
                        session_id,
                        parents[-1] if parents else None,
                        position,
                        depth,
                        item.number,
                        item.title,
                    ),
                )
                parents.append(int(cur.lastrowid or 0))

    def add_agenda_item(
        self,
        session_id: int,
        title: str,
        *,
        parent_id: int | None = None,
        before_id: int | None = None,
        added: bool = True,
    ) -> int:
        """Insert an item (at the end of its parent, or before a sibling); returns its id."""
        with self._tx() as c:
            entries = self._entries(c, session_id)
            if parent_id is not None:
                parent = self._find(entries, parent_id, session_id)
                if parent.depth >= 2:
                    raise Conflict("items nest at most three levels deep")
            siblings = [e.id for e in entries if e.parent_id == parent_id]
            if before_id is not None:
                if before_id not in siblings:
                    raise Conflict(
                        f"item {before_id} is not among the items the new one is placed with"
                    )
                index = siblings.index(before_id)
            else:
                index = len(siblings)
            cur = c.execute(
                "INSERT INTO agenda_items"
                " (session_id, parent_id, position, depth, number, title, added)"
                " VALUES (?,?,?,?,?,?,?)",
                (
                    session_id,
                    parent_id,
                    10**9,
                    0,
                    "",
                    title,
                    int(added),
                ),
            )
            new_id = int(cur.lastrowid or 0)
            siblings.insert(index, new_id)
            self._reorder(c, session_id, {parent_id: siblings})
        return new_id

    def move_agenda_item(self, session_id: int, item_id: int, index: int) -> None:
        """Move an item to this place (0-based) among its siblings."""
        with self._tx() as c:
            entries = self._entries(c, session_id)
            item = self._find(entries, item_id, session_id)
            siblings = [e.id for e in entries if e.parent_id == item.parent_id]
            if not 0 <= index < len(siblings):
                raise Conflict(
                    f"place {index} is out of range: item {item_id} has {len(siblings)} "
                    "siblings, counted from 0"
                )
            siblings.remove(item_id)
            siblings.insert(index, item_id)
            self._reorder(c, session_id, {item.parent_id: siblings})

    def set_agenda_item_removed(self, session_id: int, item_id: int, removed: bool) -> None:
        """Take an item off the agenda (zdjęcie z porządku obrad), or put it back."""
        with self._tx() as c:
            entries = self._entries(c, session_id)
            self._find(entries, item_id, session_id)
            if removed:
                started = c.execute(
                    "SELECT COUNT(*) FROM markers WHERE item_id = ?", (item_id,)
                ).fetchone()[0]
                if started:
                    raise Conflict(
                        f"item {item_id} has already been taken up in this session; it stays "
                        "on the agenda"
                    )
            ids = {item_id} | self._descendants(entries, item_id)
            c.executemany(
                "UPDATE agenda_items SET removed = ? WHERE id = ?",
                [(int(removed), i) for i in ids],
            )
            self._reorder(c, session_id, {})

    def rename_agenda_item(self, session_id: int, item_id: int, title: str) -> None:
        """Correct an item's title."""
        with self._tx() as c:
            self._find(self._entries(c, session_id), item_id, session_id)
            c.execute("UPDATE agenda_items SET title = ? WHERE id = ?", (title, item_id))

    def _entries(self, c: sqlite3.Connection, session_id: int) -> list[AgendaEntry]:
        rows = c.execute(
            "SELECT * FROM agenda_items WHERE session_id = ? ORDER BY position", (session_id,)
        ).fetchall()
        return [_entry(r) for r in rows]

    @staticmethod
    def _find(entries: Sequence[AgendaEntry], item_id: int, session_id: int) -> AgendaEntry:
        for entry in entries:
            if entry.id == item_id:
                return entry
        raise NotFound(f"agenda item {item_id} is not in session {session_id}")

    @staticmethod
    def _descendants(entries: Sequence[AgendaEntry], item_id: int) -> set[int]:
        found: set[int] = set()
        frontier = {item_id}
        while frontier:
            frontier = {e.id for e in entries if e.parent_id in frontier}
            found |= frontier
        return found

    def _reorder(
        self,
        c: sqlite3.Connection,
        session_id: int,
        orders: Mapping[int | None, Sequence[int]],
    ) -> None:
        """Rewrite positions, depths and numbers from the tree, with given sibling orders.

        Items taken off keep their place but no number: the rest are numbered 1, 2, ... and
        2.1, 2.2, ..., as the council's amended agenda is.
        """
        entries = self._entries(c, session_id)
        by_parent: dict[int | None, list[AgendaEntry]] = {}
        for entry in entries:
            by_parent.setdefault(entry.parent_id, []).append(entry)
        for parent, order in orders.items():
            rank = {item: n for n, item in enumerate(order)}
            by_parent[parent] = sorted(by_parent.get(parent, []), key=lambda e: rank[e.id])
        updates: list[tuple[int, int, str, int]] = []

        def walk(parent: int | None, prefix: str, depth: int) -> None:
            counter = 0
            for entry in by_parent.get(parent, []):
                if entry.removed:
                    number = ""
                else:
                    counter += 1
                    number = f"{prefix}{counter}"
                updates.append((len(updates), depth, number, entry.id))
                walk(entry.id, f"{number}." if number else f"{prefix}?.", depth + 1)

        walk(None, "", 0)
        c.executemany(
            "UPDATE agenda_items SET position = ?, depth = ?, number = ? WHERE id = ?", updates
        )
