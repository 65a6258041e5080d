"""Read a voting system's CSV export of a nominal vote (głosowanie imienne) and map each row onto
a councillor of the term; every problem in the file is reported at once, with its line number."""

from __future__ import annotations

import codecs
import csv
import difflib
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

CHOICES = ("for", "against", "abstain", "absent")

MAX_BYTES = 1_000_000
MAX_ROWS = 500

# Shown in the error for an unrecognised vote word, so the operator knows what to write instead.
ACCEPTED_WORDS = (
    'za, przeciw, wstrzymał(a) się, nie głosował(a), nieobecny/a, brak głosu, "-" or empty, '
    "tak, nie, for, against, abstain, absent, did not vote, yes, no"
)

# --- vote words ---------------------------------------------------------------------------------

# Keys are folded: lower case, no diacritics, punctuation turned into single spaces.
_CHOICE_WORDS: dict[str, str] = {
    **dict.fromkeys(
        ["za", "tak", "for", "yes", "aye", "in favour", "in favor", "glos za", "glosowal za"],
        "for",
    ),
    **dict.fromkeys(
        ["przeciw", "przeciwko", "nie", "against", "no", "nay", "glos przeciw", "glosowal przeciw"],
        "against",
    ),
    **dict.fromkeys(["abstain", "abstained", "abstaining", "abstention"], "abstain"),
    **dict.fromkeys(
        [
            "absent",
            "did not vote",
            "didn t vote",
            "didnt vote",
            "not voting",
            "not voted",
            "no vote",
            "nie glosowal",
            "nie glosowala",
            "nie glosowali",
            "nie glosujacy",
            "nie glosujaca",
            "nieglosujacy",
            "nie oddal glosu",
            "nie oddala glosu",
            "brak glosu",
            "brak",
            "nieobecny",
            "nieobecna",
            "nieobecni",
            "nieobecnosc",
            "nb",
        ],
        "absent",
    ),
}
# Every inflection of "wstrzymać się" (wstrzymał, wstrzymała, wstrzymuję, wstrzymujący ...)
# starts the same way, so one prefix is safer than a list that misses a form.
_ABSTAIN_PREFIX = "wstrzym"
_DASHES = frozenset({"", "-", "–", "—", "‐", "--", "---"})
# Gender endings written as "głosował(a)", "nieobecny/a", "nieobecna(y)", "głosował/-a".
_GENDER_RE = re.compile(r"(?<=\w)\s*(?:\(\s*-?\s*[ay]\s*\)|/\s*-?\s*[ay]\b)")
_NON_WORD_RE = re.compile(r"[\W_]+")
# Invisible characters that exports and copy-paste leave inside cells.
_INVISIBLE = dict.fromkeys(map(ord, "\ufeff\u200b\u200c\u200d\u2060\u00ad"), None)
# "ł" has no Unicode decomposition, so stripping combining marks alone leaves it in place.
_UNDECOMPOSED = str.maketrans({"ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ø": "o", "Ø": "O"})


def _strip_diacritics(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.translate(_UNDECOMPOSED))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _clean_cell(text: str) -> str:
    """A cell with invisible characters removed and all whitespace runs as single spaces."""
    return " ".join(text.translate(_INVISIBLE).split())


def normalize_choice(text: str) -> str | None:
    """Map a vote word in Polish or English to one of CHOICES, or None if it is not one."""
    cleaned = _clean_cell(text)
    if cleaned in _DASHES:
        return "absent"
    folded = _strip_diacritics(cleaned.casefold())
    folded = _GENDER_RE.sub("", folded)
    key = _NON_WORD_RE.sub(" ", folded).strip()
    if key.startswith(_ABSTAIN_PREFIX):
        return "abstain"
    return _CHOICE_WORDS.get(key)


# --- public types -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Councillor:
    """A councillor of the term, as the caller knows them."""

    id: int
    name: str


@dataclass(frozen=True)
class VoteLine:
    """How one councillor voted, and the line of the file that says so."""

    line: int
    councillor_id: int
    choice: str


@dataclass(frozen=True)
class VoteLineError:
    """One line of the file that could not be used, and what to fix; line 0 means the whole file."""

    line: int
    text: str
    problem: str


class VoteImportError(ValueError):
    """The file cannot be imported; .errors lists every problem found, in line order."""

    errors: tuple[VoteLineError, ...]

    def __init__(self, errors: Iterable[VoteLineError]) -> None:
        self.errors = tuple(sorted(errors, key=lambda error: error.line))
        super().__init__(_summary(self.errors))


def _summary(errors: Sequence[VoteLineError]) -> str:
    parts = [
        f"line {error.line}: {error.problem}" if error.line else error.problem for error in errors
    ]
    count = f"{len(errors)} problems" if len(errors) != 1 else "1 problem"
    return f"the vote file cannot be imported ({count}):\n" + ";\n".join(parts)


@dataclass(frozen=True)
class ImportedVote:
    """Every councillor's vote from the file, and the councillors of the term it does not list."""

    lines: tuple[VoteLine, ...]
    missing: tuple[int, ...]


# --- names --------------------------------------------------------------------------------------

_HYPHEN_RE = re.compile(r"\s*[-‐‑‒–—]\s*")


def _name_tokens(name: str) -> list[str]:
    # Double-barrelled surnames arrive as "Nowak-Kowalska", "Nowak - Kowalska" or with an en dash.
    text = _HYPHEN_RE.sub("-", _clean_cell(name).casefold())
    # "Kowalski, Jan" puts punctuation on the tokens themselves.
    tokens = (token.strip(".,;:\"'„”«»()") for token in text.split())
    return [token for token in tokens if token]


class _NameIndex:
    """Looks up councillors by name: same order first, then any order, then without diacritics."""

    def __init__(self, councillors: Sequence[Councillor]) -> None:
        self.councillors = tuple({c.id: c for c in councillors}.values())
        self._tiers: list[dict[str, list[Councillor]]] = [{}, {}, {}]
        for councillor in self.councillors:
            for tier, key in zip(self._tiers, self._keys(councillor.name), strict=True):
                tier.setdefault(key, []).append(councillor)

    @staticmethod
    def _keys(name: str) -> tuple[str, str, str]:
        tokens = _name_tokens(name)
        return (
            " ".join(tokens),
            " ".join(sorted(tokens)),
            " ".join(sorted(_strip_diacritics(token) for token in tokens)),
        )

    def find(self, name: str) -> tuple[Councillor | None, tuple[Councillor, ...]]:
        """The one councillor the name means, or None and the councillors it could mean."""
        keys = self._keys(name)
        if not keys[0]:
            return None, ()
        for tier, key in zip(self._tiers, keys, strict=True):
            found = tier.get(key, [])
            if len(found) == 1:
                return found[0], ()
            if found:
                # Stop at the first tier that has candidates: a looser tier can only add more.
                return None, tuple(found)
        return None, ()

    def suggest(self, name: str) -> str | None:
        """The councillor's name closest to a misspelt one, if any is close."""
        folded = {self._keys(c.name)[2]: c.name for c in self.councillors}
        close = difflib.get_close_matches(self._keys(name)[2], list(folded), n=1, cutoff=0.8)
        return folded[close[0]] if close else None


def match_councillor(name: str, councillors: Sequence[Councillor]) -> Councillor | None:
    """The councillor a written name means (ignoring case, spacing and order), or None."""
    return _NameIndex(councillors).find(name)[0]


# --- decoding -----------------------------------------------------------------------------------


class _FileProblem(Exception):
    """A problem with the file as a whole; it becomes a VoteLineError on line 0."""


def _looks_misdecoded(text: str) -> int:
    """How many characters would be unlikely in a vote list: symbols and control characters."""
    return sum(
        1
        for c in text
        if c not in "\t\r\n" and unicodedata.category(c)[0] in "CS" and c not in "+<=>|~^`$"
    )


def _decode(data: bytes) -> str:
    """The file's text: UTF-8 (with or without BOM) or UTF-16 with BOM, else Windows-1250."""
    if data.startswith(b"PK\x03\x04") or data.startswith(b"\xd0\xcf\x11\xe0"):
        raise _FileProblem(
            "this is an Excel workbook, not a CSV file; in Excel use Save As and choose "
            '"CSV UTF-8" or "CSV (separated by semicolons)"'
        )
    # Excel's "Unicode text" export is UTF-16 with a byte-order mark.
    for bom, encoding in ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(encoding)
            except UnicodeDecodeError:
                break
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    # Polish Windows exports are Windows-1250; older systems write ISO-8859-2, which shares most
    # bytes but puts ą, ś, ź, Ą, Ś, Ź elsewhere. Read wrongly, those letters become symbols
    # (±, ¶, ¦) or control characters, so the reading with fewer of them is the right one.
    candidates = []
    for rank, encoding in enumerate(("cp1250", "iso8859_2")):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        candidates.append((_looks_misdecoded(text), rank, text))
    if candidates:
        _score, _rank, text = min(candidates)
        if not any(unicodedata.category(c) == "Cc" and c not in "\t\r\n" for c in text):
            return text
    raise _FileProblem(
        "the file is not text in UTF-8 or Windows-1250; export the vote list as CSV "
        '(in Excel: "CSV UTF-8")'
    )


# --- table shape --------------------------------------------------------------------------------

_DELIMITERS = {";": "semicolons", "\t": "tabs", ",": "commas"}
_LINE_BREAK_RE = re.compile(r"\r\n|\r|\n")

# Header words, compared as whole folded words so that a surname such as "Radnicki" is not one.
_NAME_HEADER_WORDS = frozenset(
    {
        "imie",
        "imiona",
        "nazwisko",
        "nazwiska",
        "radny",
        "radna",
        "radni",
        "radnego",
        "radnej",
        "glosujacy",
        "glosujaca",
        "osoba",
        "name",
        "councillor",
        "councilor",
        "member",
        "voter",
    }
)
_VOTE_HEADER_WORDS = frozenset(
    {"glos", "glosu", "glosowanie", "vote", "voted", "choice", "decyzja", "wynik", "stanowisko"}
)


@dataclass(frozen=True)
class _Row:
    line: int
    text: str
    cells: tuple[str, ...]


def _split(lines: Sequence[tuple[int, str]], delimiter: str) -> list[_Row]:
    rows = []
    for number, text in lines:
        # One line at a time, so every row keeps its own line number even if a quote is unclosed.
        parsed = next(csv.reader([text], delimiter=delimiter, skipinitialspace=True), [])
        rows.append(_Row(number, text, tuple(_clean_cell(cell) for cell in parsed)))
    return rows


def _pick_delimiter(lines: Sequence[tuple[int, str]]) -> str:
    """The delimiter that splits the most lines into two or more cells, most consistently."""
    best, best_score = ";", (0, 0)
    for delimiter in _DELIMITERS:
        widths = [len(row.cells) for row in _split(lines, delimiter)]
        multi = [width for width in widths if width >= 2]
        score = (len(multi), Counter(multi).most_common(1)[0][1] if multi else 0)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _header_words(cell: str) -> set[str]:
    return set(_NON_WORD_RE.sub(" ", _strip_diacritics(cell.casefold())).split())


def _header_role(cell: str) -> str | None:
    words = _header_words(cell)
    # "Głos radnego" names the vote column although it mentions the councillor.
    if words & _VOTE_HEADER_WORDS:
        return "vote"
    if words & _NAME_HEADER_WORDS:
        return "name"
    return None


def _is_header(row: _Row, names: _NameIndex) -> bool:
    if not any(_header_role(cell) for cell in row.cells):
        return False
    # A real vote word or a councillor's name means the first row is already data.
    return not any(
        (normalize_choice(cell) is not None and any(c.isalpha() for c in cell))
        or names.find(cell)[0] is not None
        for cell in row.cells
    )


def _width(rows: Sequence[_Row]) -> int:
    """The usual number of cells in a data row; on a tie, the wider."""
    counts = Counter(len(row.cells) for row in rows)
    return max(counts, key=lambda width: (counts[width], width))


def _cell(row: _Row, index: int) -> str:
    return row.cells[index] if index < len(row.cells) else ""


def _guess_name_columns(
    rows: Sequence[_Row], width: int, vote: int, names: _NameIndex
) -> tuple[int, ...]:
    """The column, or two adjacent ones (surname; first name), that holds councillors' names."""
    others = [index for index in range(width) if index != vote]
    candidates: list[tuple[int, ...]] = [(index,) for index in others]
    candidates += [(a, b) for a, b in zip(others, others[1:], strict=False) if b == a + 1]

    def matches(columns: tuple[int, ...]) -> int:
        return sum(
            names.find(" ".join(_cell(row, i) for i in columns))[0] is not None for row in rows
        )

    scored = [(matches(columns), -len(columns), columns) for columns in candidates]
    best = max(scored, default=None)
    if best is not None and best[0] > 0:
        return best[2]
    # Nothing matches: report names from the first column with letters in it (not "Lp.").
    for index in others:
        if any(any(c.isalpha() for c in _cell(row, index)) for row in rows):
            return (index,)
    return (others[0],) if others else (0,)


# --- parsing ------------------------------------------------------------------------------------


def _too_big(size: int) -> VoteLineError:
    return VoteLineError(
        0,
        "",
        f"the file is {size:,} bytes; a vote list is at most 1 MB ({MAX_BYTES:,} bytes), "
        "so check that this is the export of a single vote",
    )


def parse_vote_csv(data: bytes, councillors: Sequence[Councillor]) -> ImportedVote:
    """Read a nominal vote CSV; raise VoteImportError listing every bad line if any."""
    if len(data) > MAX_BYTES:
        raise VoteImportError([_too_big(len(data))])
    try:
        text = _decode(data)
    except _FileProblem as problem:
        raise VoteImportError([VoteLineError(0, "", str(problem))]) from None

    lines = [
        (number, line)
        for number, line in enumerate(_LINE_BREAK_RE.split(text), start=1)
        # A line of bare delimiters (";;;") is how spreadsheets save an empty row.
        if _clean_cell(re.sub(r"[;,\t\"]", " ", line))
    ]
    if not lines:
        raise VoteImportError(
            [
                VoteLineError(
                    0,
                    "",
                    "the file is empty; export the nominal vote list with one line per "
                    "councillor: name and vote",
                )
            ]
        )

    names = _NameIndex(councillors)
    delimiter = _pick_delimiter(lines)
    rows = _split(lines, delimiter)
    separated = f"separated by {_DELIMITERS[delimiter]}"

    header = rows[0] if _is_header(rows[0], names) else None
    data_rows = rows[1:] if header else rows
    if not data_rows:
        raise VoteImportError(
            [
                VoteLineError(
                    rows[0].line,
                    rows[0].text,
                    "the file has a header but no votes; export the list with one line per "
                    "councillor",
                )
            ]
        )
    if len(data_rows) > MAX_ROWS:
        extra = data_rows[MAX_ROWS]
        raise VoteImportError(
            [
                VoteLineError(
                    extra.line,
                    extra.text,
                    f"the file has {len(data_rows)} rows; a vote list has at most {MAX_ROWS}, "
                    "so check that this is the export of a single vote",
                )
            ]
        )

    errors: list[VoteLineError] = []
    vote_column: int | None = None
    name_columns: tuple[int, ...] = ()
    if header:
        width = len(header.cells)
        while width > 1 and not header.cells[width - 1]:
            width -= 1
        width = max(width, 2)
        roles = [_header_role(cell) for cell in header.cells[:width]]
        votes = [index for index, role in enumerate(roles) if role == "vote"]
        name_columns = tuple(index for index, role in enumerate(roles) if role == "name")
        if len(votes) > 1:
            shown = ", ".join(f'"{header.cells[i]}"' for i in votes)
            raise VoteImportError(
                [
                    VoteLineError(
                        header.line,
                        header.text,
                        f"the header has several vote columns ({shown}); export one vote per file",
                    )
                ]
            )
        if votes:
            vote_column = votes[0]
    else:
        # At least a name and a vote, so that one-column rows are reported as too short.
        width = max(_width(data_rows), 2)
    if vote_column is None:
        # Spreadsheets often end every line with a delimiter: an empty last column followed by
        # vote words is that artefact, not a column of blank (absent) votes.
        while (
            width > 2
            and all(not _cell(row, width - 1) for row in data_rows)
            and any(
                normalize_choice(_cell(row, width - 2)) and _cell(row, width - 2)
                for row in data_rows
            )
        ):
            width -= 1
        vote_column = width - 1
    if not name_columns:
        name_columns = _guess_name_columns(data_rows, width, vote_column, names)
    needed = max(*name_columns, vote_column) + 1

    seen: dict[int, int] = {}
    found: list[VoteLine] = []
    for row in data_rows:
        if len(row.cells) < needed:
            count = len(row.cells)
            errors.append(
                VoteLineError(
                    row.line,
                    row.text,
                    f"has {count} column{'s' if count != 1 else ''} but {needed} are needed: "
                    f"the councillor's name and the vote, {separated}",
                )
            )
            continue
        if any(row.cells[width:]):
            errors.append(
                VoteLineError(
                    row.line,
                    row.text,
                    f"has {len(row.cells)} columns but the file has {width}; a name or vote "
                    f'that contains the delimiter must be in double quotes ("...")',
                )
            )
            continue
        name = " ".join(row.cells[index] for index in name_columns).strip()
        vote = row.cells[vote_column]
        choice = normalize_choice(vote)
        if choice is None:
            errors.append(
                VoteLineError(
                    row.line,
                    row.text,
                    f'unknown vote "{vote}"; write one of: {ACCEPTED_WORDS}',
                )
            )
        councillor, candidates = names.find(name)
        if councillor is None:
            errors.append(VoteLineError(row.line, row.text, _name_problem(name, candidates, names)))
        elif councillor.id in seen:
            errors.append(
                VoteLineError(
                    row.line,
                    row.text,
                    f"{councillor.name} is already on line {seen[councillor.id]}; "
                    "keep one line per councillor",
                )
            )
        else:
            seen[councillor.id] = row.line
            if choice is not None:
                found.append(VoteLine(row.line, councillor.id, choice))

    if errors:
        raise VoteImportError(errors)
    missing = tuple(c.id for c in names.councillors if c.id not in seen)
    return ImportedVote(lines=tuple(found), missing=missing)


def _name_problem(name: str, candidates: Sequence[Councillor], names: _NameIndex) -> str:
    if not name:
        return "the councillor's name is empty; write the name as on the list of councillors"
    if candidates:
        shown = ", ".join(c.name for c in candidates)
        return (
            f'"{name}" could mean more than one councillor ({shown}); write the name exactly '
            "as on the list of councillors, with Polish letters"
        )
    problem = f'no councillor of this term is called "{name}"'
    suggestion = names.suggest(name)
    if suggestion:
        return f'{problem}; did you mean "{suggestion}"?'
    return f"{problem}; check the spelling against the list of councillors"
