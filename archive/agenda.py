"""Parse a pasted council-session agenda (porządek obrad) into a tree of numbered items."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

MAX_ITEMS = 500
MAX_DEPTH = 3
MAX_TITLE_LENGTH = 1000

NO_ITEMS_MESSAGE = (
    "no numbered agenda items were found; each item must start on its own line "
    'with its number, for example "1. Otwarcie sesji"'
)


@dataclass(frozen=True)
class AgendaItem:
    """One numbered agenda item with its sub-items."""

    number: str
    title: str
    children: tuple[AgendaItem, ...] = ()


@dataclass(frozen=True)
class AgendaLineError:
    """One pasted line that could not be understood, and what to fix."""

    line: int
    text: str
    problem: str


class AgendaError(ValueError):
    """The text is not an agenda; .errors lists each line it could not parse."""

    errors: tuple[AgendaLineError, ...]

    def __init__(self, errors: Iterable[AgendaLineError] = (), message: str | None = None) -> None:
        self.errors = tuple(errors)
        super().__init__(message if message is not None else _summary(self.errors))


def _summary(errors: Sequence[AgendaLineError]) -> str:
    if not errors:
        return NO_ITEMS_MESSAGE
    return ";\n".join(f"line {error.line}: {error.problem}" for error in errors)


# --- line classification ----------------------------------------------------------------------

# Marker kinds. Items at one level must all use the same kind.
_DOT = "dot"  # "1."  "1 ."
_PAREN = "paren"  # "1)"  "(1)"
_LOWER = "lower"  # "a)"  "a."  "(a)"
_UPPER = "upper"  # "A)"
_BULLET = "bullet"  # "-"  "–"  "•"
_DOTTED = "dotted"  # "4.1"  "4.1."  "4.1.1"
_ROMAN = "roman"  # "I."  "II."  (only when the agenda itself is numbered that way)

# Kinds that open the top level of an agenda.
_TOP = (_DOT, _PAREN, _ROMAN)
# Kinds whose lost numbering shows up as every item repeating the first marker ("1.", "a)").
_REPEATABLE = (_DOT, _PAREN, _LOWER, _UPPER, _ROMAN)

_INVISIBLE = dict.fromkeys(map(ord, "\ufeff\u200b\u200c\u200d\u2060"), None)

_DOTTED_RE = re.compile(r"(\d{1,3}(?:\.\d{1,3})+)\.?(?![\d.])\s*(.*)")
_DOT_RE = re.compile(r"(\d{1,3})\s*\.(?![\d.])\s*(.*)")
_PAREN_RE = re.compile(r"\(?(\d{1,3})\s*\)\s*(.*)")
_LETTER_RE = re.compile(r"\(?([A-Za-z])\s*\)\s*(.*)")
_LETTER_DOT_RE = re.compile(r"([a-z])\.(?=\s|$)\s*(.*)")
_BULLET_RE = re.compile(r"[-–—•·▪◦●]\s*(.*)")
_ROMAN_RE = re.compile(r"([IVXL]{1,7})\s*\.(?![\d.])\s*(.*)")
_ROMAN_DIGITS = (("L", 50), ("XL", 40), ("X", 10), ("IX", 9), ("V", 5), ("IV", 4), ("I", 1))
# Markers this parser deliberately does not accept; better refused than glued to a title.
_UNSUPPORTED_RE = re.compile(r"[IVX]{2,5}\.\s")

# Words that mark the notice's opening sentence or heading, which precede the agenda itself:
# "Zawiadamiam, że ... zwołuję sesję ...", "Na podstawie art. 20 ust. 1 ustawy ...",
# "LXV sesji Rady Miasta w dniu ..." (the second line of "Porządek obrad / LXV sesji ...").
_PREAMBLE_WORDS = (
    "porządek",
    "porzadek",
    "sesji",
    "zwołuj",
    "zwoluj",
    "zawiadami",
    "na podstawie art",
    "zgodnie z art",
)
# Lines at least this long are taken to be wrapped paragraphs, not headings.
_WRAPPED_LINE_LENGTH = 40
# The place and date heading a letter: "Nowy Sącz, 15 stycznia 2024 r.", "Kraków, dnia 3.01.2024".
_DATE_LINE_RE = re.compile(
    r"[^\W\d][\w .-]*,\s*(?:dnia\s+)?\d{1,2}(?:\s*\.\s*\d{1,2}\s*\.\s*|\s+\w+\s+)"
    r"\d{4}(?:\s*r\.?|\s+roku)?"
)
# The chair's signature under a notice: "Przewodniczący Rady Miasta", "/-/ Jan Kowalski".
_SIGNATURE_RE = re.compile(
    r"(?:(?:wice)?przewodnicząc[ay](?!\w)|z poważaniem|/-/|\(-\)|/podpis/|\(podpis\))",
    re.IGNORECASE,
)

_TRAILING_PUNCTUATION_RE = re.compile(r"[\s;,.:]+$")
# Short words ending with "." that do not end a sentence when a line breaks after them.
_ABBREVIATIONS = frozenset(
    {"godz", "prof", "późn", "tzw", "wsp", "zam", "dot", "ozn", "przyp", "nast", "poprz"}
)


@dataclass
class _Marked:
    """A line that starts with an item marker, plus the continuation lines joined to it."""

    line: int
    text: str
    kind: str
    value: int  # 1-based position the marker claims (0 for bullets)
    path: tuple[int, ...]  # the full number of a dotted marker, else ()
    indent: int
    marker: str  # the marker as shown in messages: "5", "b)", "4.1", "-"
    title_column: int  # where the title starts on the marker line
    parts: list[str] = field(default_factory=list)
    marker_text: str = ""  # the marker as pasted: "1.", "(a)", "1 )"
    title: str = ""
    opens: bool = False  # the title announces a list ("... w sprawie:")
    # The number a pasted HTML list showed in front of the line's own ("1." in "1. 1. Otwarcie"),
    # and the position it claims; dropped in favour of the line's own number.
    listed: str = ""
    listed_value: int = 0


def _clean(raw: str) -> tuple[str, int]:
    """Return the stripped line with all whitespace as spaces, and its indentation width."""
    line = "".join(" " if c.isspace() and c != "\t" else c for c in raw.translate(_INVISIBLE))
    line = line.expandtabs(4)
    stripped = line.lstrip()
    return stripped.rstrip(), len(line) - len(stripped)


def _to_roman(value: int) -> str:
    """Write 1..89 in Roman numerals."""
    digits = []
    for numeral, worth in _ROMAN_DIGITS:
        count, value = divmod(value, worth)
        digits.append(numeral * count)
    return "".join(digits)


def _roman_value(numeral: str) -> int | None:
    """Read a canonical Roman numeral ("IV", not "IIII"), or None."""
    value = 0
    rest = numeral
    for digit, worth in _ROMAN_DIGITS:
        while rest.startswith(digit):
            value, rest = value + worth, rest[len(digit) :]
    if rest or not value or _to_roman(value) != numeral:
        return None
    return value


def _match_roman(line: str) -> re.Match[str] | None:
    """Match a Roman-numbered item ("IV. Interpelacje") at the start of a cleaned line."""
    match = _ROMAN_RE.fullmatch(line)
    return match if match and _roman_value(match.group(1)) else None


def _match_marker(
    line: str, number: int, shown: str, indent: int, roman: bool = False, doubled: bool = False
) -> _Marked | None:
    """Recognise an item marker at the start of a cleaned line.

    Roman numerals count as markers only when roman is set: elsewhere "II." is far more
    often a stray heading than the agenda's own numbering.

    A line that carries two markers, the number a pasted HTML list rendered and then the
    author's own ("1. 1. Otwarcie", "a) a) budżetu", "1) 1. Otwarcie"), keeps only its own
    when the two claim the same position, or, when the paste is doubled throughout (see
    _doubled_paste), whatever the two claim: the author's number is the one the notice shows,
    and the list's may have been restarted or repeated by the page.
    """
    marked = _match_single(line, number, shown, indent, roman, doubled)
    if marked is None:
        return None
    own = _second_marker(marked, roman)
    if own is not None and (own.value == marked.value or doubled):
        own.listed, own.listed_value = marked.marker_text, marked.value
        return own
    return marked


def _second_marker(marked: _Marked, roman: bool) -> _Marked | None:
    """The author's own marker right after the one a pasted HTML list rendered, or None.

    Only the first marker is taken for a rendered one, and only once: in "7. 7. 3. Festiwal"
    the "3." after the repeated "7." stays in the title.
    """
    if marked.kind in (_BULLET, _DOTTED) or marked.listed:
        return None
    own = _match_single(marked.parts[0], marked.line, marked.text, marked.title_column, roman)
    if own is None or own.kind == _BULLET:
        return None
    own.indent = marked.indent
    return own


def _match_single(
    line: str, number: int, shown: str, indent: int, roman: bool = False, doubled: bool = False
) -> _Marked | None:
    """Recognise one item marker at the start of a cleaned line (see _match_marker)."""
    path: tuple[int, ...] = ()
    if match := _DOTTED_RE.fullmatch(line):
        path = tuple(int(part) for part in match.group(1).split("."))
        kind, value, marker = _DOTTED, path[-1], ".".join(str(part) for part in path)
    elif match := _DOT_RE.fullmatch(line):
        kind, value = _DOT, int(match.group(1))
        marker = str(value)
    elif match := _PAREN_RE.fullmatch(line):
        kind, value = _PAREN, int(match.group(1))
        marker = f"{value})"
    elif roman and (match := _match_roman(line)):
        kind, value, marker = _ROMAN, _roman_value(match.group(1)) or 0, match.group(1)
    elif match := _LETTER_RE.fullmatch(line) or _LETTER_DOT_RE.fullmatch(line):
        letter = match.group(1)
        kind = _LOWER if letter.islower() else _UPPER
        value, marker = ord(letter.lower()) - ord("a") + 1, f"{letter})"
    elif match := _BULLET_RE.fullmatch(line):
        # A list pasted from a page that shows both a bullet and the number ("• 1.Otwarcie"):
        # the number is the marker, the bullet only decoration.
        inner = _match_marker(
            match.group(1), number, shown, indent + match.start(1), roman, doubled
        )
        if inner is not None and inner.kind in (*_TOP, _DOTTED):
            inner.indent = indent
            return inner
        kind, value, marker = _BULLET, 0, line[0]
    else:
        return None
    title = match.lastindex or 0  # the title is always the last group
    return _Marked(
        line=number,
        text=shown,
        kind=kind,
        value=value,
        path=path,
        indent=indent,
        marker=marker,
        title_column=indent + match.start(title),
        parts=[match.group(title)],
        marker_text=line[: match.start(title)].strip(),
    )


def _is_preamble(line: str) -> bool:
    """Whether a line before the first item is the notice's heading or convening sentence."""
    if _UNSUPPORTED_RE.match(line) or _match_roman(line):
        return False  # "I. Otwarcie sesji" is an item numbered in a way not accepted here
    folded = line.casefold()
    return (
        any(word in folded for word in _PREAMBLE_WORDS)
        or line.endswith(":")
        or bool(_DATE_LINE_RE.fullmatch(line))
    )


def _continues_preamble(previous: str, line: str) -> bool:
    """Whether a line is the wrapped rest of the preamble sentence on the line above."""
    if previous.endswith(":") or _ends_sentence(previous):
        return False
    # A lone "I." or "II." may be a mistyped or unsupported item number; better refused.
    if _UNSUPPORTED_RE.match(line) or _match_roman(line):
        return False
    # A capital may start the next line of a wrapped paragraph ("... Rady Miasta / Nowego
    # Sącza"), but after a short heading such as "Porządek obrad" it starts something else.
    return not line[0].isupper() or len(previous) >= _WRAPPED_LINE_LENGTH


def _signature_problem(line: str, hanging: bool = False) -> str | None:
    """Explain a line that looks like the signature under the notice, or None."""
    match = _SIGNATURE_RE.match(line)
    # A title may wrap before "Przewodniczący Rady ..."; its hanging indent tells it apart.
    if match is None or (hanging and match.group(0)[0].isalpha()):
        return None
    return (
        "looks like the signature under the notice, not part of an agenda item; "
        "remove it and everything after the last item"
    )


def _ends_sentence(line: str) -> bool:
    """Whether a line ends with a full stop after a real word (not an abbreviation or number)."""
    last = line.split()[-1]
    if not last.endswith("."):
        return False
    word = last.rstrip(".").strip("()[]\"'„”«»")
    return (
        len(word) >= 4
        and word.isalpha()
        and not word.isupper()
        and word.casefold() not in _ABBREVIATIONS
    )


def _continuation_problem(
    previous: str, line: str, after_blank: bool, hanging: bool, bad_block: int | None
) -> str | None:
    """Why an unmarked line cannot continue the item above, or None if it can."""
    if bad_block is not None:
        return f"continues the unrecognised text on line {bad_block}; remove it or number it"
    if _UNSUPPORTED_RE.match(line):
        return (
            f'unsupported item marker "{line.split()[0]}"; number items "1.", "2.", ... '
            'and sub-items "a)", "b)", ...'
        )
    if previous.endswith(";"):
        return (
            'has no item number, but the line above ends with ";" so this looks like a '
            "separate item; number it or join it to the line above"
        )
    if after_blank and not (line[0].islower() or hanging):
        return (
            "text after a blank line does not start with an item number; number it, "
            "or remove it if it is not part of the agenda"
        )
    if line[0].isupper() and (previous.endswith(":") or _ends_sentence(previous)):
        return (
            "has no item number and does not continue the sentence on the line above; "
            "number it, or remove it if it is not part of the agenda"
        )
    # Without a full stop or a blank line above, a signature would be glued to the last title.
    return _signature_problem(line, hanging)


def _finish_title(item: _Marked) -> None:
    joined = " ".join(" ".join(item.parts).split())
    folded = joined.casefold()
    item.opens = joined.endswith(":") or folded.endswith(("w sprawie", "w sprawach"))
    item.title = _TRAILING_PUNCTUATION_RE.sub("", joined)


# --- numbering ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Level:
    """The latest item at one depth of the tree being built."""

    kind: str
    value: int
    indent: int
    opens: bool
    ones: bool = False  # every item of this list so far was marked "1." (or "a)", "I.")
    capital: bool | None = None  # whether the title starts with a capital letter, if a letter


_Stack = tuple[_Level, ...]  # the path from the top level down to the latest item


@dataclass(frozen=True)
class _Move:
    """One way of placing a marked line, or of recovering from a line that fits nowhere."""

    stack: _Stack
    error: bool
    misfit: int  # 1 when the placement disagrees with the indentation
    repeat: int = 0  # 1 when the line repeats its list's first marker, as lost numbering does
    unlike: int = 0  # 1 when a repeated marker's title is capitalised unlike its sibling's


_Cost = tuple[int, int, int, int]  # errors, repeated markers, indentation misfits, unlike case
_MAX_STATES = 64
_ERROR_SLACK = 2
# Every repeated "1." could sit at either of two levels; the readings that need many more
# repeats, or go against capitalisation many more times, than the best one are never chosen
# in practice and would multiply the states. Neither cost arises without repeated markers.
_REPEAT_SLACK = 4


def _add(cost: _Cost, move: _Move) -> _Cost:
    """The cost of a path extended by one move."""
    return (
        cost[0] + move.error,
        cost[1] + move.repeat,
        cost[2] + move.misfit,
        cost[3] + move.unlike,
    )


def _number(stack: Sequence[_Level]) -> str:
    return ".".join(str(level.value) for level in stack)


def _marker(kind: str, value: int) -> str:
    if kind == _DOT:
        return f"{value}."
    if kind == _PAREN:
        return f"{value})"
    if kind == _ROMAN:
        return f"{_to_roman(value)}."
    if kind in (_LOWER, _UPPER) and 1 <= value <= 26:
        letter = chr(ord("a") + value - 1)
        return f"{letter if kind == _LOWER else letter.upper()})"
    if kind == _BULLET:
        return "-"
    return str(value)


def _capital(title: str) -> bool | None:
    """Whether a title starts with a capital letter; None when it starts with no letter."""
    first = title.lstrip("\"'„”«»(")[:1]
    return first.isupper() if first.isalpha() else None


def _place(item: _Marked, stack: _Stack, depth: int, value: int) -> _Stack:
    """The stack after putting the line at depth with the given position in its list."""
    continues = depth < len(stack) and stack[depth].kind == item.kind
    ones = item.value == 1 and item.kind in _REPEATABLE and (not continues or stack[depth].ones)
    level = _Level(item.kind, value, item.indent, item.opens, ones, _capital(item.title))
    return stack[:depth] + (level,)


def _lost_numbering(level: _Level) -> bool:
    """Whether a list has repeated its first marker, so its numbers carry no information."""
    return level.ones and level.value >= 2


def _repeat_move(item: _Marked, stack: _Stack, depth: int) -> _Move:
    """Place a line that repeats its list's first marker as the list's next item.

    Lists pasted from pages that put every item in its own HTML list lose their numbering
    and show "1." on every line; the position then gives the number.
    """
    sibling = stack[depth]
    capital = _capital(item.title)
    # Without indentation, case is the best remaining clue to the level: in Polish agendas
    # items start with a capital, while the sub-items of "w sprawie:" continue its sentence.
    unlike = int(None not in (capital, sibling.capital) and capital != sibling.capital)
    misfit = int(item.indent != sibling.indent)
    return _Move(_place(item, stack, depth, sibling.value + 1), False, misfit, 1, unlike)


def _valid_moves(item: _Marked, stack: _Stack) -> list[_Move]:
    """Every placement of the line that keeps the numbering consistent."""
    if item.kind == _DOTTED:
        depth = len(item.path) - 1
        if len(item.path) > MAX_DEPTH or len(stack) < depth:
            return []
        if any(stack[j].value != item.path[j] for j in range(depth)):
            return []
        if len(stack) > depth:
            sibling = stack[depth]
            if sibling.kind == _DOTTED and item.value == sibling.value + 1:
                misfit = int(item.indent != sibling.indent)
                return [_Move(_place(item, stack, depth, item.value), False, misfit)]
            return []
        if item.value == 1:
            misfit = int(item.indent <= stack[-1].indent)
            return [_Move(_place(item, stack, depth, 1), False, misfit)]
        return []

    moves = []
    for depth, sibling in enumerate(stack):
        if sibling.kind != item.kind or _contradicts_indentation(item, stack, depth):
            continue
        if item.kind == _BULLET or (
            item.value == sibling.value + 1 and not _lost_numbering(sibling)
        ):
            misfit = int(item.indent != sibling.indent)
            moves.append(_Move(_place(item, stack, depth, sibling.value + 1), False, misfit))
        elif item.value == 1 and sibling.ones:
            moves.append(_repeat_move(item, stack, depth))
    depth = len(stack)
    if depth == 0:
        if item.kind in _TOP and item.value == 1:
            moves.append(_Move(_place(item, stack, 0, 1), False, 0))
    elif depth < MAX_DEPTH and item.kind != _ROMAN and (item.kind == _BULLET or item.value == 1):
        parent = stack[-1]
        # A sub-list in a style already used above (a pasted nested list that restarts at
        # "1.") is only believed when the parent announces it or the line is indented.
        restart = any(level.kind == item.kind for level in stack)
        if not restart or parent.opens or item.indent > parent.indent:
            misfit = int(item.indent <= parent.indent)
            moves.append(_Move(_place(item, stack, depth, 1), False, misfit))
    return moves


def _contradicts_indentation(item: _Marked, stack: _Stack, depth: int) -> bool:
    """Whether placing the line as a sibling at depth goes against clear indentation.

    Only lists that restart in a style already used above can be confused with their
    parent level, so only they are held to their indentation.
    """
    if depth > 0:
        parent, sibling = stack[depth - 1], stack[depth]
        restart = any(level.kind == sibling.kind for level in stack[:depth])
        if restart and sibling.indent > parent.indent and item.indent <= parent.indent:
            return True  # would continue an indented sub-list from outside it
    return any(
        level.kind == item.kind
        and level.indent > stack[depth].indent
        and item.indent >= level.indent
        for level in stack[depth + 1 :]
    )  # would leave an indented sub-list while indented like it


def _error_moves(item: _Marked, stack: _Stack) -> list[_Move]:
    """Ways to go on after a line that fits nowhere: skip it, or trust its number."""
    moves = [_Move(stack, True, 0)]
    if item.kind == _DOTTED:
        depth = len(item.path) - 1
        if (
            len(item.path) <= MAX_DEPTH
            and len(stack) >= depth
            and all(stack[j].value == item.path[j] for j in range(depth))
            and item.value >= 1
        ):
            moves.append(_Move(_place(item, stack, depth, item.value), True, 0))
    elif item.kind != _BULLET and item.value >= 1:
        if not stack and item.kind in _TOP:
            moves.append(_Move(_place(item, stack, 0, item.value), True, 0))
        for depth, level in enumerate(stack):
            if level.kind == item.kind:
                moves.append(_Move(_place(item, stack, depth, item.value), True, 0))
    return moves


def _next_number(stack: _Stack, depth: int) -> str:
    return _number(stack[:depth] + (_Level("", stack[depth].value + 1, 0, False),))


def _expected(stack: _Stack, depth: int) -> str:
    level = stack[depth]
    number = _next_number(stack, depth)
    if level.kind != _ROMAN and (depth == 0 or level.kind == _DOTTED):
        return f"item {number}"
    return f'item {number} "{_marker(level.kind, level.value + 1)}"'


def _describe_dotted(item: _Marked, stack: _Stack) -> str:
    path = item.path
    shown = item.marker
    depth = len(path) - 1
    if len(path) > MAX_DEPTH:
        return f"item {shown} is nested too deeply; at most {MAX_DEPTH} levels are allowed"
    for j in range(depth):
        parent = ".".join(str(part) for part in path[: j + 1])
        if j >= len(stack):
            return f"sub-item {shown} has no parent: there is no item {parent}"
        if stack[j].value != path[j]:
            latest = _number(stack[: j + 1])
            if path[j] > stack[j].value:
                return (
                    f"sub-item {shown} has no parent: there is no item {parent} "
                    f"(the last item is {latest})"
                )
            return (
                f"sub-item {shown} is out of place: it comes after item {latest}, "
                f"not under item {parent}"
            )
    parent = _number(stack[:depth])
    if len(stack) > depth:
        sibling = stack[depth]
        if sibling.kind != _DOTTED:
            return (
                f"sub-item {shown} is numbered differently from the sub-items of item {parent} "
                f'above it (they are marked like "{_marker(sibling.kind, sibling.value)}")'
            )
        return (
            f"expected item {_next_number(stack, depth)} after item {_number(stack)}, found {shown}"
        )
    return f"expected item {parent}.1 as the first sub-item of item {parent}, found {shown}"


def _describe(item: _Marked, stack: _Stack) -> str:
    """Explain why a marked line fits nowhere in the numbering so far."""
    if item.kind == _DOTTED:
        return _describe_dotted(item, stack)
    found = item.marker
    if not stack:
        if item.kind in _TOP:
            return f"the agenda must start with item 1, found {found}"
        return (
            f'sub-item "{found}" comes before any numbered item; the first item '
            'must look like "1. Otwarcie sesji"'
        )
    latest = _number(stack)
    first = item.kind == _BULLET or item.value == 1
    if first and len(stack) >= MAX_DEPTH:
        return (
            f'"{found}" would be a sub-item of item {latest}, but items can be nested '
            f"at most {MAX_DEPTH} levels deep"
        )
    matching = [depth for depth in reversed(range(len(stack))) if stack[depth].kind == item.kind]
    if matching:
        problem = (
            f"expected {' or '.join(_expected(stack, depth) for depth in matching)} "
            f"after item {latest}, found {found}"
        )
        if any(stack[depth].value == item.value for depth in matching):
            problem += f" again (number {found} is repeated)"
        elif first:
            problem += (
                f'; to start sub-items of item {latest} numbered "{_marker(item.kind, 1)}", '
                'end its title with ":" or indent the sub-items'
            )
        return problem
    return (
        f'expected {_expected(stack, 0)} or a first sub-item "{_marker(item.kind, 1)}" '
        f"under item {latest}, found {found}"
    )


@dataclass
class _Numbering:
    """The chosen placement of each marked line, and the lines that fit nowhere."""

    placed: list[tuple[_Marked, _Stack]]
    problems: list[tuple[_Marked, str]]


def _number_items(items: Sequence[_Marked]) -> _Numbering:
    """Choose the placement of every marked line that needs the fewest corrections.

    A dynamic programme over the possible stacks: when the numbering alone allows several
    trees, the one with the fewest repeated markers wins, then the one that agrees with the
    indentation, then the one whose repeated markers agree with capitalisation; a remaining
    tie is reported.
    """
    # Forward: the cheapest prefix reaching each stack. Only plausible stacks are kept, the
    # cheapest first, so that long lists with lost numbering stay fast.
    layers: list[dict[_Stack, _Cost]] = [{(): (0, 0, 0, 0)}]
    moves: list[dict[_Stack, list[_Move]]] = []
    for item in items:
        following: dict[_Stack, _Cost] = {}
        options: dict[_Stack, list[_Move]] = {}
        for stack, cost in layers[-1].items():
            valid = _valid_moves(item, stack)
            if not valid:
                valid = _error_moves(item, stack)
            elif any(move.repeat for move in valid):
                # A repeated marker is also what a duplicated line looks like; keep the
                # reading that reports it, so the cheapest tree decides between the two.
                valid.append(_Move(stack, True, 0))
            options[stack] = valid
            for move in valid:
                total = _add(cost, move)
                if move.stack not in following or total < following[move.stack]:
                    following[move.stack] = total
        best = tuple(min(cost[part] for cost in following.values()) for part in range(4))
        kept = sorted(
            (
                (stack, cost)
                for stack, cost in following.items()
                if cost[0] <= best[0] + _ERROR_SLACK
                and cost[1] <= best[1] + _REPEAT_SLACK
                and cost[3] <= best[3] + _REPEAT_SLACK
            ),
            key=lambda entry: entry[1],
        )[:_MAX_STATES]
        layers.append(dict(kept))
        moves.append(options)

    # Backwards: the cheapest (errors, repeats, misfits, unlike) completion from every state.
    # Repeats come before indentation: a sub-list restarting at "1." under an announcing
    # parent is likelier than an unannounced run of "1." at the same level.
    ahead: dict[_Stack, _Cost] = dict.fromkeys(layers[-1], (0, 0, 0, 0))
    choices: list[dict[_Stack, list[_Move]]] = [{} for _ in items]
    for index in reversed(range(len(items))):
        here: dict[_Stack, _Cost] = {}
        for stack in layers[index]:
            best_cost: _Cost | None = None
            chosen: list[_Move] = []
            for move in moves[index][stack]:
                rest = ahead.get(move.stack)
                if rest is None:
                    continue
                cost = _add(rest, move)
                if best_cost is None or cost < best_cost:
                    best_cost, chosen = cost, [move]
                elif cost == best_cost:
                    chosen.append(move)
            if best_cost is not None:
                here[stack] = best_cost
                choices[index][stack] = chosen
        ahead = here

    result = _Numbering([], [])
    current: _Stack = ()
    for index, item in enumerate(items):
        # The pruning in the forward pass never drops the cheapest path in practice; should it
        # ever, fall back to placing this line on its own merits.
        chosen = (
            choices[index].get(current)
            or (_valid_moves(item, current) or _error_moves(item, current))[:1]
        )
        move = chosen[0]
        if move.error:
            result.problems.append((item, _describe(item, current)))
        else:
            if len(chosen) > 1:
                readings = " or ".join(f"item {_number(option.stack)}" for option in chosen)
                result.problems.append(
                    (
                        item,
                        f"ambiguous numbering: this could be {readings}; indent sub-items "
                        'under their parent or mark them "a)", "b)", ...',
                    )
                )
            result.placed.append((item, move.stack))
        current = move.stack
    return result


@dataclass
class _Node:
    """A mutable tree node used while building the frozen AgendaItem tree."""

    item: _Marked
    number: str
    children: list[_Node] = field(default_factory=list)

    def freeze(self) -> AgendaItem:
        return AgendaItem(self.number, self.item.title, tuple(c.freeze() for c in self.children))


def _build(placed: Sequence[tuple[_Marked, _Stack]]) -> tuple[AgendaItem, ...]:
    """Turn pre-order placements into a tree of AgendaItem."""
    roots: list[_Node] = []
    open_lists: list[list[_Node]] = [roots]  # open_lists[d] receives the next item at depth d
    for item, stack in placed:
        depth = len(stack) - 1
        node = _Node(item, _number(stack))
        del open_lists[depth + 1 :]
        open_lists[depth].append(node)
        open_lists.append(node.children)
    return tuple(node.freeze() for node in roots)


# --- public API ---------------------------------------------------------------------------------


def _numbered_in_roman(lines: Sequence[str]) -> bool:
    """Whether the agenda numbers its top level "I.", "II.", ... rather than "1.", "2.", ...

    It must start with "I." and go on to "II.": a lone "I." is more likely a heading or a
    mistyped "1." than a one-item agenda.
    """
    first: _Marked | None = None
    for raw in lines:
        line, _indent = _clean(raw)
        item = _match_marker(line, 0, "", 0, roman=True) if line else None
        if item is None or item.kind not in (*_TOP, _DOTTED):
            continue
        if first is None:
            first = item
            if item.kind != _ROMAN or item.value != 1:
                return False
        elif item.kind == _ROMAN and item.value == 2:
            return True
    return False


def _doubled_paste(lines: Sequence[str], roman: bool) -> bool:
    """Whether a pasted HTML list doubled the numbers throughout ("1. 1. Otwarcie sesji").

    It is when more than half of the numbered lines carry two markers and at least one pair
    agrees. Only then does a pair that disagrees ("1. 5. Interpelacje", after a page restarted
    its list) count as doubled; elsewhere "7. 3. Festiwal" is an item titled "3. Festiwal".
    """
    numbered = pairs = agreeing = 0
    for raw in lines:
        line, indent = _clean(raw)
        first = _match_single(line, 0, "", indent, roman) if line else None
        if first is None or first.kind == _BULLET:
            continue
        numbered += 1
        if first.listed:  # a bullet, then both numbers
            pairs += 1
            agreeing += first.listed_value == first.value
        elif (own := _second_marker(first, roman)) is not None:
            pairs += 1
            agreeing += own.value == first.value
    return agreeing > 0 and 2 * pairs > numbered


def parse_agenda(text: str) -> tuple[AgendaItem, ...]:
    """Parse pasted agenda text into top-level items; raise AgendaError listing every bad line."""
    problems: dict[int, tuple[str, list[str]]] = {}

    def report(line: int, shown: str, problem: str) -> None:
        problems.setdefault(line, (shown, []))[1].append(problem)

    lines = text.splitlines()
    roman = _numbered_in_roman(lines)
    doubled = _doubled_paste(lines, roman)
    items: list[_Marked] = []
    previous = ""
    after_blank = False
    in_preamble = False
    bad_block: int | None = None
    for number, raw in enumerate(lines, start=1):
        line, indent = _clean(raw)
        if not line:
            after_blank = True
            continue
        shown = raw.translate(_INVISIBLE).strip()
        item = _match_marker(line, number, shown, indent, roman, doubled)
        lone_bullet = item is not None and item.kind == _BULLET and item.parts == [""]
        if not lone_bullet and not any(c.isalnum() for c in line):
            # Separators such as "-----" or "* * *"; a bullet alone may precede its title.
            report(number, shown, "line has no words or numbers; remove it")
            continue
        if item is not None:
            items.append(item)
            bad_block = None
        elif not items:
            continued = in_preamble and not after_blank and _continues_preamble(previous, line)
            in_preamble = continued or _is_preamble(line)
            if not in_preamble:
                refusal = (
                    "text before the first item is not an agenda item; only a heading such as "
                    '"Porządek obrad:" may come before "1."'
                )
                if _match_roman(line):
                    refusal += (
                        "; Roman numerals are read as item numbers only when the items are "
                        'numbered "I.", "II.", ...; if this is item 1, write "1."'
                    )
                report(number, shown, refusal)
        else:
            owner = items[-1]
            hanging = owner.indent < indent <= owner.title_column + 4
            problem = _continuation_problem(previous, line, after_blank, hanging, bad_block)
            if problem is None:
                items[-1].parts.append(line)
            else:
                report(number, shown, problem)
                bad_block = bad_block or number
        previous = line
        after_blank = False

    if not any(item.kind in (*_TOP, _DOTTED) for item in items):
        raise AgendaError((), NO_ITEMS_MESSAGE)

    for item in items:
        _finish_title(item)
        if not item.title:
            report(
                item.line,
                item.text,
                f'item "{item.marker}" has no title; write it after the number',
            )
        elif len(item.title) > MAX_TITLE_LENGTH:
            report(
                item.line,
                item.text,
                f"the title is {len(item.title)} characters long; at most "
                f"{MAX_TITLE_LENGTH} are allowed",
            )

    placed: list[tuple[_Marked, _Stack]] = []
    if len(items) > MAX_ITEMS:
        extra = items[MAX_ITEMS]
        report(extra.line, extra.text, f"too many items: an agenda may have at most {MAX_ITEMS}")
    else:
        numbering = _number_items(items)
        for item, problem in numbering.problems:
            if item.listed and item.listed_value != item.value:
                problem += (
                    f'; the line has two numbers, "{item.listed}" from the pasted list and its '
                    f'own "{item.marker_text}", and its own is used: correct it, or remove '
                    "one of the two"
                )
            report(item.line, item.text, problem)
        placed = numbering.placed

    if problems:
        raise AgendaError(
            AgendaLineError(line, shown, "; ".join(found))
            for line, (shown, found) in sorted(problems.items())
        )
    return _build(placed)


def flatten(items: Iterable[AgendaItem]) -> list[tuple[AgendaItem, int]]:
    """List items depth-first in pre-order, each with its depth (0 = top level)."""
    result: list[tuple[AgendaItem, int]] = []
    pending = [(item, 0) for item in reversed(tuple(items))]
    while pending:
        item, depth = pending.pop()
        result.append((item, depth))
        pending.extend((child, depth + 1) for child in reversed(item.children))
    return result
