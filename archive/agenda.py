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

_INVISIBLE = dict.fromkeys(map(ord, "\ufeff\u200b\u200c\u200d\u2060"), None)

_DOTTED_RE = re.compile(r"(\d{1,3}(?:\.\d{1,3})+)\.?(?![\d.])\s*(.*)")
_DOT_RE = re.compile(r"(\d{1,3})\s*\.(?![\d.])\s*(.*)")
_PAREN_RE = re.compile(r"\(?(\d{1,3})\s*\)\s*(.*)")
_LETTER_RE = re.compile(r"\(?([A-Za-z])\s*\)\s*(.*)")
_LETTER_DOT_RE = re.compile(r"([a-z])\.(?=\s|$)\s*(.*)")
_BULLET_RE = re.compile(r"[-–—•·▪◦●]\s*(.*)")
# Markers this parser deliberately does not accept; better refused than glued to a title.
_UNSUPPORTED_RE = re.compile(r"[IVX]{2,5}\.\s")

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
    title: str = ""
    opens: bool = False  # the title announces a list ("... w sprawie:")


def _clean(raw: str) -> tuple[str, int]:
    """Return the stripped line with all whitespace as spaces, and its indentation width."""
    line = "".join(" " if c.isspace() and c != "\t" else c for c in raw.translate(_INVISIBLE))
    line = line.expandtabs(4)
    stripped = line.lstrip()
    return stripped.rstrip(), len(line) - len(stripped)


def _match_marker(line: str, number: int, shown: str, indent: int) -> _Marked | None:
    """Recognise an item marker at the start of a cleaned line."""
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
    elif match := _LETTER_RE.fullmatch(line) or _LETTER_DOT_RE.fullmatch(line):
        letter = match.group(1)
        kind = _LOWER if letter.islower() else _UPPER
        value, marker = ord(letter.lower()) - ord("a") + 1, f"{letter})"
    elif match := _BULLET_RE.fullmatch(line):
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
    )


def _is_preamble(line: str) -> bool:
    folded = line.casefold()
    return "porządek" in folded or "porzadek" in folded or line.endswith(":")


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
    return None


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


_Stack = tuple[_Level, ...]  # the path from the top level down to the latest item


@dataclass(frozen=True)
class _Move:
    """One way of placing a marked line, or of recovering from a line that fits nowhere."""

    stack: _Stack
    error: bool
    misfit: int  # 1 when the placement disagrees with the indentation


_MAX_STATES = 256
_ERROR_SLACK = 2


def _number(stack: Sequence[_Level]) -> str:
    return ".".join(str(level.value) for level in stack)


def _marker(kind: str, value: int) -> str:
    if kind == _DOT:
        return f"{value}."
    if kind == _PAREN:
        return f"{value})"
    if kind in (_LOWER, _UPPER) and 1 <= value <= 26:
        letter = chr(ord("a") + value - 1)
        return f"{letter if kind == _LOWER else letter.upper()})"
    if kind == _BULLET:
        return "-"
    return str(value)


def _place(item: _Marked, stack: _Stack, depth: int, value: int) -> _Stack:
    return stack[:depth] + (_Level(item.kind, value, item.indent, item.opens),)


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
        if sibling.kind == item.kind and (item.kind == _BULLET or item.value == sibling.value + 1):
            if _contradicts_indentation(item, stack, depth):
                continue
            misfit = int(item.indent != sibling.indent)
            moves.append(_Move(_place(item, stack, depth, sibling.value + 1), False, misfit))
    depth = len(stack)
    if depth == 0:
        if item.kind in (_DOT, _PAREN) and item.value == 1:
            moves.append(_Move(_place(item, stack, 0, 1), False, 0))
    elif depth < MAX_DEPTH and (item.kind == _BULLET or item.value == 1):
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
        if not stack and item.kind in (_DOT, _PAREN):
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
    if depth == 0 or level.kind == _DOTTED:
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
        if item.kind in (_DOT, _PAREN):
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
    trees, the one that agrees with the indentation wins; a remaining tie is reported.
    """
    layers: list[dict[_Stack, int]] = [{(): 0}]
    moves: list[dict[_Stack, list[_Move]]] = []
    for item in items:
        following: dict[_Stack, int] = {}
        options: dict[_Stack, list[_Move]] = {}
        for stack, errors in layers[-1].items():
            options[stack] = _valid_moves(item, stack) or _error_moves(item, stack)
            for move in options[stack]:
                total = errors + move.error
                if total < following.get(move.stack, total + 1):
                    following[move.stack] = total
        best = min(following.values())
        kept = sorted(
            (
                (stack, errors)
                for stack, errors in following.items()
                if errors <= best + _ERROR_SLACK
            ),
            key=lambda entry: entry[1],
        )[:_MAX_STATES]
        layers.append(dict(kept))
        moves.append(options)

    # Backwards: the cheapest (errors, indentation misfits) completion from every state.
    ahead: dict[_Stack, tuple[int, int]] = dict.fromkeys(layers[-1], (0, 0))
    choices: list[dict[_Stack, list[_Move]]] = [{} for _ in items]
    for index in reversed(range(len(items))):
        here: dict[_Stack, tuple[int, int]] = {}
        for stack in layers[index]:
            best_cost: tuple[int, int] | None = None
            chosen: list[_Move] = []
            for move in moves[index][stack]:
                rest = ahead.get(move.stack)
                if rest is None:
                    continue
                cost = (rest[0] + move.error, rest[1] + move.misfit)
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


def parse_agenda(text: str) -> tuple[AgendaItem, ...]:
    """Parse pasted agenda text into top-level items; raise AgendaError listing every bad line."""
    problems: dict[int, tuple[str, list[str]]] = {}

    def report(line: int, shown: str, problem: str) -> None:
        problems.setdefault(line, (shown, []))[1].append(problem)

    items: list[_Marked] = []
    previous = ""
    after_blank = False
    bad_block: int | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line, indent = _clean(raw)
        if not line:
            after_blank = True
            continue
        shown = raw.translate(_INVISIBLE).strip()
        item = _match_marker(line, number, shown, indent)
        lone_bullet = item is not None and item.kind == _BULLET and item.parts == [""]
        if not lone_bullet and not any(c.isalnum() for c in line):
            # Separators such as "-----" or "* * *"; a bullet alone may precede its title.
            report(number, shown, "line has no words or numbers; remove it")
            continue
        if item is not None:
            items.append(item)
            bad_block = None
        elif not items:
            if not _is_preamble(line):
                report(
                    number,
                    shown,
                    "text before the first item is not an agenda item; only a heading such as "
                    '"Porządek obrad:" may come before "1."',
                )
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

    if not any(item.kind in (_DOT, _PAREN, _DOTTED) for item in items):
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
