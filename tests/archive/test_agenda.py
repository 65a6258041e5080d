"""Tests for parsing pasted council-session agendas (archive.agenda)."""

from __future__ import annotations

import dataclasses

import pytest

from archive.agenda import (
    MAX_ITEMS,
    AgendaError,
    AgendaItem,
    AgendaLineError,
    flatten,
    parse_agenda,
)

# --- helpers --------------------------------------------------------------------------------------


def outline(items: tuple[AgendaItem, ...]) -> list[tuple[str, str]]:
    """(number, title) of every item in pre-order, for compact assertions."""
    return [(item.number, item.title) for item, _depth in flatten(items)]


def refuse(text: str) -> AgendaError:
    """Parse text that must be refused and return the error."""
    with pytest.raises(AgendaError) as caught:
        parse_agenda(text)
    return caught.value


def error_lines(text: str) -> list[int]:
    """Line numbers reported for text that must be refused."""
    return [error.line for error in refuse(text).errors]


def problem_at(text: str, line: int) -> str:
    """The problem reported for one line of refused text."""
    err = refuse(text)
    found = [error.problem for error in err.errors if error.line == line]
    assert found, f"no error on line {line}: {err.errors}"
    return found[0]


# --- the reference agenda from the brief ----------------------------------------------------------

REFERENCE = """\
Proponowany porządek obrad:
1. Otwarcie sesji i stwierdzenie prawomocności obrad.
2. Przyjęcie zmian do porządku obrad.
3. Przyjęcie protokołu z poprzedniej sesji.
4. Podjęcie uchwał w sprawie:
  1) zmiany budżetu miasta na 2027 rok;
  2) nadania nazwy rondu położonemu w rejonie ulic
     Zielonej i Długiej;
5. Interpelacje i zapytania radnych.
6. Wolne wnioski.
7. Zamknięcie obrad.
"""

EXPECTED = (
    AgendaItem("1", "Otwarcie sesji i stwierdzenie prawomocności obrad"),
    AgendaItem("2", "Przyjęcie zmian do porządku obrad"),
    AgendaItem("3", "Przyjęcie protokołu z poprzedniej sesji"),
    AgendaItem(
        "4",
        "Podjęcie uchwał w sprawie",
        (
            AgendaItem("4.1", "zmiany budżetu miasta na 2027 rok"),
            AgendaItem("4.2", "nadania nazwy rondu położonemu w rejonie ulic Zielonej i Długiej"),
        ),
    ),
    AgendaItem("5", "Interpelacje i zapytania radnych"),
    AgendaItem("6", "Wolne wnioski"),
    AgendaItem("7", "Zamknięcie obrad"),
)


def with_markers(first: str, second: str, indent: str = "  ") -> str:
    """The reference agenda with the two sub-item markers replaced."""
    return (
        REFERENCE.replace("  1) zmiany", f"{indent}{first} zmiany")
        .replace("  2) nadania", f"{indent}{second} nadania")
        .replace("     Zielonej", f"{indent}   Zielonej")
    )


def dedent_all(text: str) -> str:
    return "\n".join(line.strip() for line in text.splitlines())


def test_reference_agenda_gives_the_exact_tree() -> None:
    assert parse_agenda(REFERENCE) == EXPECTED


def test_reference_agenda_shape() -> None:
    items = parse_agenda(REFERENCE)
    assert len(items) == 7
    assert [item.number for item in items] == ["1", "2", "3", "4", "5", "6", "7"]
    assert [child.number for child in items[3].children] == ["4.1", "4.2"]
    assert all(not item.children for item in items if item.number != "4")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(REFERENCE, id="paren-indented"),
        pytest.param(with_markers("a)", "b)"), id="letters"),
        pytest.param(with_markers("a.", "b."), id="letters-with-dot"),
        pytest.param(with_markers("(a)", "(b)"), id="letters-in-brackets"),
        pytest.param(with_markers("4.1.", "4.2."), id="dotted-with-trailing-dot"),
        pytest.param(with_markers("4.1", "4.2"), id="dotted"),
        pytest.param(with_markers("1.", "2.", indent=""), id="restarted-html-list"),
        pytest.param(with_markers("1.", "2.", indent="    "), id="restarted-indented"),
        pytest.param(with_markers("-", "-"), id="hyphen-bullets"),
        pytest.param(with_markers("–", "–"), id="en-dash-bullets"),
        pytest.param(with_markers("•", "•"), id="round-bullets"),
        pytest.param(dedent_all(REFERENCE), id="paren-no-indentation"),
        pytest.param(dedent_all(with_markers("a)", "b)")), id="letters-no-indentation"),
        pytest.param(dedent_all(with_markers("4.1.", "4.2.")), id="dotted-no-indentation"),
        pytest.param(dedent_all(with_markers("-", "-")), id="bullets-no-indentation"),
        pytest.param(REFERENCE.replace("  ", "\t"), id="tabs"),
        pytest.param(REFERENCE.replace("\n", "\r\n"), id="windows-line-endings"),
        pytest.param(REFERENCE.replace("\n", "\r"), id="old-mac-line-endings"),
        pytest.param(REFERENCE.replace(" ", "\u00a0"), id="non-breaking-spaces"),
        pytest.param(REFERENCE.replace("\n", "\n\n"), id="blank-line-after-every-line"),
        pytest.param("\n\n  \n" + REFERENCE + "\n \t \n", id="blank-lines-around"),
        pytest.param(REFERENCE.replace("Proponowany porządek obrad:\n", ""), id="no-preamble"),
        pytest.param("\ufeff" + REFERENCE, id="byte-order-mark"),
        pytest.param(
            REFERENCE.replace("obrad.\n", "obrad;\n").replace("sesji.\n", "sesji ;\n"),
            id="mixed-trailing-punctuation",
        ),
        pytest.param(
            "\n".join("    " + line for line in REFERENCE.splitlines()), id="uniform-indent"
        ),
    ],
)
def test_equivalent_spellings_give_the_same_tree(text: str) -> None:
    assert parse_agenda(text) == EXPECTED


def test_restarted_list_with_windows_endings_and_nbsp() -> None:
    text = with_markers("1.", "2.", indent="").replace(" ", "\u00a0").replace("\n", "\r\n")
    assert parse_agenda(text) == EXPECTED


# --- preambles ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "preamble",
    [
        "Proponowany porządek obrad:",
        "Porządek obrad:",
        "Porządek sesji",
        "PORZĄDEK OBRAD",
        "Porzadek obrad XII sesji Rady Miasta",
        "Sesja nr XII Rady Miasta Piotrkowa Trybunalskiego:",
        "  \tPorządek obrad:  ",
    ],
)
def test_preamble_is_ignored(preamble: str) -> None:
    text = f"{preamble}\n1. Otwarcie sesji.\n2. Zamknięcie obrad."
    assert outline(parse_agenda(text)) == [("1", "Otwarcie sesji"), ("2", "Zamknięcie obrad")]


def test_several_preamble_lines_and_blank_lines_are_ignored() -> None:
    text = "Porządek obrad\n\nLXII sesji Rady Miasta w dniu 25 stycznia 2023 r.:\n\n1. Otwarcie"
    assert outline(parse_agenda(text)) == [("1", "Otwarcie")]


@pytest.mark.parametrize(
    "intro",
    [
        "Sesja Rady Miasta",
        "Zapraszam na sesję",
        "https://bip.example.pl/sesje/12",
        "I. Część pierwsza",
    ],
)
def test_other_text_before_the_first_item_is_refused(intro: str) -> None:
    err = refuse(f"Porządek obrad:\n{intro}\n1. Otwarcie sesji\n2. Zamknięcie obrad")
    assert [(e.line, e.text) for e in err.errors] == [(2, intro)]
    assert "before the first item" in err.errors[0].problem


def test_every_bad_line_before_the_first_item_is_reported() -> None:
    text = "Szanowni Państwo\nZapraszam\nPorządek obrad:\n1. Otwarcie"
    assert error_lines(text) == [1, 2]


# --- top-level marker styles ----------------------------------------------------------------------


def test_closing_bracket_at_top_level() -> None:
    text = (
        "1) Otwarcie sesji;\n2) Podjęcie uchwał:\n"
        "   a) budżetowej;\n   b) o nazwie ulicy;\n3) Zamknięcie."
    )
    assert outline(parse_agenda(text)) == [
        ("1", "Otwarcie sesji"),
        ("2", "Podjęcie uchwał"),
        ("2.1", "budżetowej"),
        ("2.2", "o nazwie ulicy"),
        ("3", "Zamknięcie"),
    ]


def test_closing_bracket_top_level_with_restarted_bracket_sub_items() -> None:
    text = (
        "1) Otwarcie\n2) Protokół\n3) Podjęcie uchwał w sprawie:\n"
        "1) budżetu\n2) nazwy ronda\n4) Zamknięcie"
    )
    assert outline(parse_agenda(text)) == [
        ("1", "Otwarcie"),
        ("2", "Protokół"),
        ("3", "Podjęcie uchwał w sprawie"),
        ("3.1", "budżetu"),
        ("3.2", "nazwy ronda"),
        ("4", "Zamknięcie"),
    ]


def test_closing_bracket_top_level_with_dot_sub_items() -> None:
    text = "1) Otwarcie\n2) Uchwały\n  1. budżet\n  2. ronda\n3) Zamknięcie"
    assert outline(parse_agenda(text)) == [
        ("1", "Otwarcie"),
        ("2", "Uchwały"),
        ("2.1", "budżet"),
        ("2.2", "ronda"),
        ("3", "Zamknięcie"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "1 . Otwarcie\n2 . Zamknięcie",
        "1 ) Otwarcie\n2 ) Zamknięcie",
        "(1) Otwarcie\n(2) Zamknięcie",
        "1.Otwarcie\n2.Zamknięcie",
        "1.\tOtwarcie\n2.\u00a0\u00a0Zamknięcie",
        "01. Otwarcie\n02. Zamknięcie",
    ],
)
def test_marker_whitespace_variants(text: str) -> None:
    assert outline(parse_agenda(text)) == [("1", "Otwarcie"), ("2", "Zamknięcie")]


def test_two_digit_numbers() -> None:
    text = "\n".join(f"{n}. Punkt {n}" for n in range(1, 13))
    items = parse_agenda(text)
    assert [item.number for item in items] == [str(n) for n in range(1, 13)]
    assert items[11].title == "Punkt 12"


# --- sub-items ------------------------------------------------------------------------------------


def test_sub_items_are_numbered_by_position_whatever_their_marker() -> None:
    text = "1. Otwarcie\n2. Sprawy:\n  a) pierwsza\n  b) druga\n  c) trzecia\n3. Koniec"
    items = parse_agenda(text)
    assert [(c.number, c.title) for c in items[1].children] == [
        ("2.1", "pierwsza"),
        ("2.2", "druga"),
        ("2.3", "trzecia"),
    ]


def test_upper_case_letters_as_sub_items() -> None:
    text = "1. Otwarcie\n2. Sprawy:\n  A) pierwsza\n  B) druga\n3. Koniec"
    assert [c.number for c in parse_agenda(text)[1].children] == ["2.1", "2.2"]


def test_bullet_alone_on_its_line_takes_the_next_line_as_title() -> None:
    text = "1. Uchwały:\n•\nzmiany budżetu\n•\nnadania nazwy\n2. Koniec"
    assert outline(parse_agenda(text)) == [
        ("1", "Uchwały"),
        ("1.1", "zmiany budżetu"),
        ("1.2", "nadania nazwy"),
        ("2", "Koniec"),
    ]


def test_three_levels_with_dotted_numbers() -> None:
    text = (
        "1. Otwarcie\n"
        "2. Uchwały:\n"
        "2.1. budżetowe:\n"
        "2.1.1. zmiana budżetu;\n"
        "2.1.2. zmiana WPF;\n"
        "2.2. pozostałe\n"
        "3. Zamknięcie"
    )
    assert outline(parse_agenda(text)) == [
        ("1", "Otwarcie"),
        ("2", "Uchwały"),
        ("2.1", "budżetowe"),
        ("2.1.1", "zmiana budżetu"),
        ("2.1.2", "zmiana WPF"),
        ("2.2", "pozostałe"),
        ("3", "Zamknięcie"),
    ]


def test_three_levels_with_mixed_markers() -> None:
    text = (
        "1. Otwarcie\n"
        "2. Uchwały w sprawie:\n"
        "  1) budżetu:\n"
        "     a) zmiany budżetu na 2027 rok,\n"
        "     b) zmiany WPF,\n"
        "  2) nadania nazw:\n"
        "     - rondu,\n"
        "     - skwerowi.\n"
        "3. Zamknięcie"
    )
    assert outline(parse_agenda(text)) == [
        ("1", "Otwarcie"),
        ("2", "Uchwały w sprawie"),
        ("2.1", "budżetu"),
        ("2.1.1", "zmiany budżetu na 2027 rok"),
        ("2.1.2", "zmiany WPF"),
        ("2.2", "nadania nazw"),
        ("2.2.1", "rondu"),
        ("2.2.2", "skwerowi"),
        ("3", "Zamknięcie"),
    ]


def test_bullets_nest_by_indentation() -> None:
    text = "1. Sprawy\n - pierwsza\n - druga\n   - szczegół\n2. Koniec"
    assert outline(parse_agenda(text)) == [
        ("1", "Sprawy"),
        ("1.1", "pierwsza"),
        ("1.2", "druga"),
        ("1.2.1", "szczegół"),
        ("2", "Koniec"),
    ]


def test_unindented_bullets_stay_siblings() -> None:
    text = "1. Sprawy\n- pierwsza\n- druga\n- trzecia\n2. Koniec"
    assert outline(parse_agenda(text)) == [
        ("1", "Sprawy"),
        ("1.1", "pierwsza"),
        ("1.2", "druga"),
        ("1.3", "trzecia"),
        ("2", "Koniec"),
    ]


def test_restarted_list_at_the_last_item() -> None:
    text = "1. Otwarcie\n2. Podjęcie uchwał w sprawie:\n1. budżetu\n2. ronda"
    assert outline(parse_agenda(text)) == [
        ("1", "Otwarcie"),
        ("2", "Podjęcie uchwał w sprawie"),
        ("2.1", "budżetu"),
        ("2.2", "ronda"),
    ]


@pytest.mark.parametrize("announcement", ["w sprawie", "w sprawach", "W SPRAWIE:"])
def test_restart_announced_by_w_sprawie_without_colon(announcement: str) -> None:
    text = (
        f"1. Otwarcie\n2. Uchwały\n3. Podjęcie uchwał {announcement}\n"
        "1. budżetu\n2. ronda\n4. Koniec"
    )
    assert outline(parse_agenda(text))[2:] == [
        ("3", f"Podjęcie uchwał {announcement.rstrip(':')}"),
        ("3.1", "budżetu"),
        ("3.2", "ronda"),
        ("4", "Koniec"),
    ]


def test_restarted_list_resolved_by_what_follows() -> None:
    # "3. z" could be item 3 or item 2.3; only reading it as 2.3 lets "3. Wolne" fit later.
    text = "1. Otwarcie\n2. Uchwały:\n1. x\n2. y\n3. z\n4. w\n3. Wolne wnioski\n4. Zamknięcie"
    assert outline(parse_agenda(text)) == [
        ("1", "Otwarcie"),
        ("2", "Uchwały"),
        ("2.1", "x"),
        ("2.2", "y"),
        ("2.3", "z"),
        ("2.4", "w"),
        ("3", "Wolne wnioski"),
        ("4", "Zamknięcie"),
    ]


def test_restarted_list_ambiguity_resolved_by_indentation() -> None:
    text = "1. Otwarcie\n2. Uchwały:\n   1. budżet\n   2. rondo\n3. Wolne wnioski\n4. Koniec"
    assert outline(parse_agenda(text)) == [
        ("1", "Otwarcie"),
        ("2", "Uchwały"),
        ("2.1", "budżet"),
        ("2.2", "rondo"),
        ("3", "Wolne wnioski"),
        ("4", "Koniec"),
    ]


def test_unindented_line_cannot_continue_an_indented_restarted_list() -> None:
    # The numbering alone would make "4. Koniec" item 2.4, but the indented sub-list has
    # ended, so item 3 is missing.
    text = "1. Otwarcie\n2. Uchwały:\n   1. budżet\n   2. rondo\n   3. skwer\n4. Koniec"
    assert error_lines(text) == [6]
    assert "item 3 after item 2.3, found 4" in problem_at(text, 6)


def test_indentation_breaks_ties_even_with_a_glitch_on_the_first_line() -> None:
    text = " 1. Otwarcie\n2. Uchwały:\n    1. budżet\n    2. rondo\n3. Koniec"
    assert outline(parse_agenda(text)) == [
        ("1", "Otwarcie"),
        ("2", "Uchwały"),
        ("2.1", "budżet"),
        ("2.2", "rondo"),
        ("3", "Koniec"),
    ]


def test_stray_indentation_of_a_top_level_item_is_tolerated() -> None:
    text = "1. Otwarcie\n   2. Przyjęcie protokołu\n3. Zamknięcie"
    assert outline(parse_agenda(text)) == [
        ("1", "Otwarcie"),
        ("2", "Przyjęcie protokołu"),
        ("3", "Zamknięcie"),
    ]


def test_differently_styled_first_sub_item_needs_no_colon() -> None:
    text = "1. Otwarcie\n2. Sprawy różne\n1) wniosek\n2) pismo\n3. Koniec"
    assert outline(parse_agenda(text)) == [
        ("1", "Otwarcie"),
        ("2", "Sprawy różne"),
        ("2.1", "wniosek"),
        ("2.2", "pismo"),
        ("3", "Koniec"),
    ]


# --- titles ---------------------------------------------------------------------------------------


def test_continuation_lines_are_joined_with_single_spaces() -> None:
    text = "1.   Podjęcie   uchwały\n        w sprawie\tzmiany\n\n   budżetu  miasta;\n2. Koniec"
    assert parse_agenda(text)[0].title == "Podjęcie uchwały w sprawie zmiany budżetu miasta"


def test_title_may_start_on_the_line_after_the_number() -> None:
    text = "1. Otwarcie\n2.\n   Przyjęcie protokołu.\n3. Zamknięcie"
    assert outline(parse_agenda(text)) == [
        ("1", "Otwarcie"),
        ("2", "Przyjęcie protokołu"),
        ("3", "Zamknięcie"),
    ]


@pytest.mark.parametrize(
    ("line", "title"),
    [
        ("1. Otwarcie sesji.", "Otwarcie sesji"),
        ("1. Otwarcie sesji;", "Otwarcie sesji"),
        ("1. Otwarcie sesji,", "Otwarcie sesji"),
        ("1. Otwarcie sesji:", "Otwarcie sesji"),
        ("1. Otwarcie sesji ; ", "Otwarcie sesji"),
        ("1. Otwarcie sesji...", "Otwarcie sesji"),
        ("1. Otwarcie sesji.;:", "Otwarcie sesji"),
        ("1. Sprawozdanie z dnia 30 listopada 2022 r.", "Sprawozdanie z dnia 30 listopada 2022 r"),
        ("1. Nadanie nazwy ul. Zielonej.", "Nadanie nazwy ul. Zielonej"),
        ("1. Zmiana uchwały Nr LVII/712/22.", "Zmiana uchwały Nr LVII/712/22"),
        ("1. Informacja (art. 28aa ust. 1 ustawy).", "Informacja (art. 28aa ust. 1 ustawy)"),
        ("1. Sprawy różne – wolne wnioski", "Sprawy różne – wolne wnioski"),
        ("1. ŻÓŁĆ gęślą jaźń: ąćęłńóśźż", "ŻÓŁĆ gęślą jaźń: ąćęłńóśźż"),
    ],
)
def test_title_normalisation(line: str, title: str) -> None:
    assert parse_agenda(line) == (AgendaItem("1", title),)


def test_line_ending_with_an_abbreviation_continues_before_a_capital() -> None:
    text = "1. Nadanie nazwy rondu przy ul.\nZielonej i al.\nJana Pawła II.\n2. Koniec"
    assert (
        parse_agenda(text)[0].title == "Nadanie nazwy rondu przy ul. Zielonej i al. Jana Pawła II"
    )


def test_lowercase_continuation_after_a_blank_line() -> None:
    text = "1. Podjęcie uchwały\n\nw sprawie zmiany budżetu.\n2. Koniec"
    assert parse_agenda(text)[0].title == "Podjęcie uchwały w sprawie zmiany budżetu"


def test_title_of_exactly_the_maximum_length_is_accepted() -> None:
    title = "a" * 1000
    assert parse_agenda(f"1. {title}")[0].title == title


def test_title_over_the_maximum_length_is_refused() -> None:
    text = "1. Otwarcie\n2. " + "ą" * 600 + "\n" + "ę" * 600 + "\n3. Koniec"
    err = refuse(text)
    assert [e.line for e in err.errors] == [2]
    assert "1000" in err.errors[0].problem


# --- a realistic agenda -----------------------------------------------------------------------

REALISTIC = """\
Porządek obrad LXIII sesji Rady Miasta Piotrkowa Trybunalskiego
zwołanej na dzień 25 stycznia 2023 r. o godz. 9:00:

1. Otwarcie sesji i stwierdzenie prawomocności obrad.
2. Przyjęcie porządku obrad.
3. Przyjęcie protokołu z LXII sesji Rady Miasta Piotrkowa Trybunalskiego.
4. Sprawozdanie z pracy Prezydenta Miasta Piotrkowa Trybunalskiego
   w okresie międzysesyjnym.
5. Podjęcie uchwały w sprawie zmiany uchwały Nr LVII/712/22 Rady Miasta
   Piotrkowa Trybunalskiego z dnia 30 listopada 2022 r. w sprawie uchwalenia
   Wieloletniej Prognozy Finansowej Miasta Piotrkowa Trybunalskiego.
6. Podjęcie uchwały w sprawie zmiany budżetu miasta na 2023 rok.
7. Podjęcie uchwał w sprawie:
   a) nadania nazwy rondu położonemu u zbiegu ul. Zielonej
      i ul. Długiej;
   b) wyrażenia zgody na zbycie nieruchomości położonej przy
      ul. Wojska Polskiego 12;
   c) zmiany uchwały Nr LVII/712/22 Rady Miasta Piotrkowa Trybunalskiego
      z dnia 30 listopada 2022 r.
8. Podjęcie uchwały w sprawie przyjęcia Gminnego Programu Profilaktyki
   i Rozwiązywania Problemów Alkoholowych oraz Przeciwdziałania Narkomanii
   na 2023 rok.
9. Podjęcie uchwały w sprawie określenia wysokości stawek opłat za zajęcie pasa
   drogowego dróg publicznych na cele niezwiązane z budową.
10. Podjęcie uchwały w sprawie udzielenia pomocy finansowej Powiatowi Piotrkowskiemu.
11. Podjęcie uchwały w sprawie rozpatrzenia skargi na działalność Dyrektora
    Miejskiego Ośrodka Pomocy Rodzinie.
12. Podjęcie uchwały w sprawie planu pracy Rady Miasta na 2023 rok.
13. Sprawozdanie z wykonania uchwał Rady Miasta.
14. Informacja o stanie bezpieczeństwa i porządku publicznego w mieście
    za 2022 rok.
15. Informacja o pracy komisji stałych Rady Miasta.
16. Odpowiedzi na interpelacje i zapytania radnych.
17. Interpelacje i zapytania radnych.
18. Sprawy różne, informacje i komunikaty.
19. Zamknięcie obrad LXIII sesji Rady Miasta Piotrkowa Trybunalskiego.
"""


def test_realistic_agenda() -> None:
    items = parse_agenda(REALISTIC)
    assert [item.number for item in items] == [str(n) for n in range(1, 20)]
    assert items[4] == AgendaItem(
        "5",
        "Podjęcie uchwały w sprawie zmiany uchwały Nr LVII/712/22 Rady Miasta Piotrkowa "
        "Trybunalskiego z dnia 30 listopada 2022 r. w sprawie uchwalenia Wieloletniej "
        "Prognozy Finansowej Miasta Piotrkowa Trybunalskiego",
    )
    assert items[6] == AgendaItem(
        "7",
        "Podjęcie uchwał w sprawie",
        (
            AgendaItem("7.1", "nadania nazwy rondu położonemu u zbiegu ul. Zielonej i ul. Długiej"),
            AgendaItem(
                "7.2",
                "wyrażenia zgody na zbycie nieruchomości położonej przy ul. Wojska Polskiego 12",
            ),
            AgendaItem(
                "7.3",
                "zmiany uchwały Nr LVII/712/22 Rady Miasta Piotrkowa Trybunalskiego "
                "z dnia 30 listopada 2022 r",
            ),
        ),
    )
    assert items[7].title == (
        "Podjęcie uchwały w sprawie przyjęcia Gminnego Programu Profilaktyki i Rozwiązywania "
        "Problemów Alkoholowych oraz Przeciwdziałania Narkomanii na 2023 rok"
    )
    assert items[13].title == (
        "Informacja o stanie bezpieczeństwa i porządku publicznego w mieście za 2022 rok"
    )
    assert items[18].title == "Zamknięcie obrad LXIII sesji Rady Miasta Piotrkowa Trybunalskiego"
    assert len(flatten(items)) == 22


def test_realistic_agenda_with_windows_endings_and_restarted_sub_list() -> None:
    text = (
        REALISTIC.replace("   a) ", "1. ")
        .replace("   b) ", "2. ")
        .replace("   c) ", "3. ")
        .replace("\n", "\r\n")
    )
    assert parse_agenda(text) == parse_agenda(REALISTIC)


# --- refusals: nothing like an agenda -------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "\n\n\t\n",
        "Ala ma kota",
        "https://bip.piotrkow.pl/sesje/lxiii-sesja-rady-miasta",
        '{"items": [{"number": 1, "title": "Otwarcie"}]}',
        '{\n  "porządek": [\n    "Otwarcie",\n    "Zamknięcie"\n  ]\n}',
        "Porządek obrad:",
        "- Otwarcie\n- Zamknięcie",
        "a) Otwarcie\nb) Zamknięcie",
        "Sesja rozpocznie się o godz. 10:00 w sali obrad.",
    ],
)
def test_text_without_numbered_items_is_refused_with_a_general_message(text: str) -> None:
    err = refuse(text)
    assert err.errors == ()
    assert "no numbered agenda items" in str(err)
    assert "1. Otwarcie sesji" in str(err)


def test_agenda_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_agenda("Ala ma kota")


# --- refusals: numbering --------------------------------------------------------------------------


def test_skipped_number_names_the_line() -> None:
    err = refuse("1. A\n2. B\n5. C")
    assert err.errors == (
        AgendaLineError(line=3, text="5. C", problem="expected item 3 after item 2, found 5"),
    )


def test_numbering_resumes_after_a_skip_so_only_the_bad_lines_are_reported() -> None:
    text = "1. A\n2. B\n5. C\n6. D\n7. E\n9. F\n10. G"
    err = refuse(text)
    assert [(e.line, e.problem) for e in err.errors] == [
        (3, "expected item 3 after item 2, found 5"),
        (6, "expected item 8 after item 7, found 9"),
    ]


def test_numbering_going_backwards_is_refused() -> None:
    assert problem_at("1. A\n2. B\n3. C\n2. D", 4).startswith(
        "expected item 4 after item 3, found 2"
    )


def test_duplicate_number_is_refused() -> None:
    err = refuse("1. A\n2. B\n2. C\n3. D")
    assert [e.line for e in err.errors] == [3]
    assert err.errors[0].problem.startswith("expected item 3 after item 2, found 2")
    assert "repeated" in err.errors[0].problem


def test_duplicate_first_item_without_announcement_is_refused() -> None:
    problem = problem_at("1. Otwarcie\n1. Otwarcie\n2. Zamknięcie", 2)
    assert problem.startswith("expected item 2 after item 1, found 1")


def test_restart_without_colon_or_indentation_is_refused_with_a_hint() -> None:
    text = "1. Otwarcie\n2. Uchwały\n3. Podjęcie uchwał\n1. budżet\n2. rondo\n4. Koniec"
    err = refuse(text)
    assert [e.line for e in err.errors] == [4, 5]
    assert err.errors[0].problem.startswith("expected item 4 after item 3, found 1")
    assert 'end its title with ":"' in err.errors[0].problem


def test_agenda_pasted_twice_is_refused() -> None:
    once = "1. Otwarcie\n2. Interpelacje\n3. Zamknięcie"
    assert error_lines(f"{once}\n{once}") == [4]


def test_agenda_must_start_at_one() -> None:
    err = refuse("Porządek obrad:\n3. Przyjęcie protokołu\n4. Zamknięcie")
    assert [(e.line, e.problem) for e in err.errors] == [
        (2, "the agenda must start with item 1, found 3")
    ]


def test_mixed_top_level_styles_are_refused() -> None:
    assert error_lines("1) Otwarcie\n2. Protokół\n3) Zamknięcie") == [2, 3]


def test_skipped_sub_item_letter_is_refused() -> None:
    text = "1. A\n2. Uchwały:\n a) x\n c) y\n3. B"
    assert problem_at(text, 4) == 'expected item 2.2 "b)" after item 2.1, found c)'


def test_sub_item_not_starting_at_its_first_marker_is_refused() -> None:
    text = "1. A\n2. B\nb) x\n3. C"
    assert problem_at(text, 3) == 'expected item 3 or a first sub-item "a)" under item 2, found b)'


def test_ambiguous_restarted_list_is_refused() -> None:
    # Without indentation "3. Interpelacje" may be item 3 or the third sub-item of item 2.
    text = "1. Otwarcie\n2. Uchwały:\n1. budżet\n2. rondo\n3. Interpelacje\n4. Zamknięcie"
    err = refuse(text)
    assert [e.line for e in err.errors] == [5]
    assert "ambiguous" in err.errors[0].problem
    assert "item 3" in err.errors[0].problem and "item 2.3" in err.errors[0].problem


# --- refusals: dotted numbers ---------------------------------------------------------------------


def test_dotted_sub_item_without_its_parent_is_refused() -> None:
    err = refuse("1. A\n2. B\n4.1 x\n3. C")
    assert [(e.line, e.text) for e in err.errors] == [(3, "4.1 x")]
    assert "no parent" in err.errors[0].problem and "item 4" in err.errors[0].problem


def test_dotted_sub_item_under_an_earlier_item_is_refused() -> None:
    assert "out of place" in problem_at("1. A\n2. B\n3. C\n2.1 x", 4)


def test_dotted_sub_item_before_any_item_is_refused() -> None:
    assert error_lines("1.1 x\n1. A") == [1]


def test_skipped_dotted_sub_item_is_refused() -> None:
    text = "1. A\n2. Uchwały\n2.1 x\n2.3 y\n3. C"
    assert problem_at(text, 4) == "expected item 2.2 after item 2.1, found 2.3"


def test_first_dotted_sub_item_must_be_one() -> None:
    assert problem_at("1. A\n2. B\n2.2 x", 3) == (
        "expected item 2.1 as the first sub-item of item 2, found 2.2"
    )


# --- refusals: sub-items before items, empty titles, depth ----------------------------------------


@pytest.mark.parametrize("marker", ["a)", "A)", "-", "–", "•"])
def test_sub_item_before_the_first_item_is_refused(marker: str) -> None:
    err = refuse(f"Porządek obrad:\n{marker} Otwarcie\n1. Otwarcie sesji\n2. Koniec")
    assert [e.line for e in err.errors] == [2]
    assert "before any numbered item" in err.errors[0].problem


def test_other_style_first_item_takes_dot_items_as_its_sub_items() -> None:
    text = "1) Otwarcie\n1. powitanie\n2. prawomocność\n2) Koniec"
    assert outline(parse_agenda(text)) == [
        ("1", "Otwarcie"),
        ("1.1", "powitanie"),
        ("1.2", "prawomocność"),
        ("2", "Koniec"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "1. A\n2. B\n3.\n4. D",
        "1. A\n2. B\n3.  ;\n4. D",
        "1. A\n2. B\n3.\n\n4. D",
        "1. A\n2. B\n3. :\n4. D",
    ],
)
def test_item_with_an_empty_title_is_refused(text: str) -> None:
    err = refuse(text)
    assert [e.line for e in err.errors] == [3]
    assert "no title" in err.errors[0].problem


def test_empty_sub_item_is_refused() -> None:
    assert error_lines("1. A\n2. Uchwały:\n  a)\n  b) rondo\n  -\n3. C") == [3, 5]


def test_too_deep_dotted_number_is_refused() -> None:
    text = "1. A\n1.1 x\n1.1.1 y\n1.1.1.1 z\n2. B"
    assert error_lines(text) == [4]
    assert "at most 3 levels" in problem_at(text, 4)


def test_too_deep_nesting_by_markers_is_refused() -> None:
    text = "1. A\n  a) x\n    - y\n      1) z\n2. B"
    assert error_lines(text) == [4]
    assert "at most 3 levels" in problem_at(text, 4)


def test_too_many_items_are_refused() -> None:
    text = "\n".join(f"{n}. Punkt {n}" for n in range(1, MAX_ITEMS + 2))
    err = refuse(text)
    assert [e.line for e in err.errors] == [MAX_ITEMS + 1]
    assert "at most 500" in err.errors[0].problem


def test_exactly_the_maximum_number_of_items_is_accepted() -> None:
    lines = []
    for n in range(1, 11):
        lines.append(f"{n}. Punkt {n}:")
        lines += [f"   - podpunkt {n}.{k}" for k in range(1, 50)]
    items = parse_agenda("\n".join(lines))
    flat = flatten(items)
    assert len(flat) == MAX_ITEMS
    assert len(items) == 10
    assert flat[-1][0].number == "10.49"
    assert flat[-1][0].title == "podpunkt 10.49"


# --- refusals: stray text after the first item ----------------------------------------------------


def test_footer_after_a_blank_line_is_refused_line_by_line() -> None:
    text = "1. Otwarcie sesji.\n2. Zamknięcie obrad.\n\nPrzewodniczący Rady Miasta\nJan Kowalski\n"
    err = refuse(text)
    assert [(e.line, e.text) for e in err.errors] == [
        (4, "Przewodniczący Rady Miasta"),
        (5, "Jan Kowalski"),
    ]
    assert "blank line" in err.errors[0].problem
    assert "line 4" in err.errors[1].problem


def test_new_sentence_after_a_full_stop_is_refused() -> None:
    text = "1. Otwarcie sesji.\n2. Zamknięcie obrad.\nSesja będzie transmitowana w internecie."
    assert error_lines(text) == [3]


def test_unnumbered_line_after_a_semicolon_is_refused() -> None:
    text = "1. Otwarcie\n2. Uchwały w sprawie:\n a) budżetu;\n nadania nazwy rondu;\n3. Koniec"
    err = refuse(text)
    assert [e.line for e in err.errors] == [4]
    assert '";"' in err.errors[0].problem


def test_capitalised_unnumbered_line_after_a_colon_is_refused() -> None:
    assert error_lines("1. Otwarcie\n2. Podjęcie uchwał w sprawie:\nZmiany budżetu\n3. Koniec") == [
        3
    ]


@pytest.mark.parametrize("separator", ["-----", "* * *", "======", "…"])
def test_separator_lines_are_refused(separator: str) -> None:
    text = f"Porządek obrad:\n{separator}\n1. Otwarcie\n{separator}\n2. Koniec\n{separator}"
    err = refuse(text)
    assert [(e.line, e.text) for e in err.errors] == [
        (2, separator),
        (4, separator),
        (6, separator),
    ]
    assert all("no words" in e.problem for e in err.errors)


def test_hanging_indent_continues_an_item_across_a_blank_line() -> None:
    text = "1. Podjęcie uchwały w sprawie nadania nazwy\n\n   Rondu Solidarności\n2. Koniec"
    assert (
        parse_agenda(text)[0].title == "Podjęcie uchwały w sprawie nadania nazwy Rondu Solidarności"
    )


def test_far_indented_footer_after_a_blank_line_is_refused() -> None:
    text = "1. Otwarcie\n2. Zamknięcie obrad\n\n                         Przewodniczący Rady Miasta"
    assert error_lines(text) == [4]


def test_line_starting_like_a_letter_marker_inside_a_title_is_refused_not_merged() -> None:
    # "r." at the start of a wrapped line looks like sub-item "r)"; refusing is the safe side.
    text = "1. Otwarcie\n2. Uchwała z dnia 30 listopada 2022\nr. w sprawie budżetu\n3. Koniec"
    assert error_lines(text) == [3]


def test_roman_numeral_markers_are_refused() -> None:
    text = "1. Otwarcie\nII. Część uchwałodawcza\n2. Uchwały"
    assert "unsupported item marker" in problem_at(text, 2)


# --- reporting ------------------------------------------------------------------------------------


def test_all_bad_lines_are_reported_with_their_numbers() -> None:
    text = (
        "Szanowni Państwo,\n"  # 1: not a preamble
        "Porządek obrad:\n"  # 2
        "\n"  # 3
        "1. Otwarcie sesji.\n"  # 4
        "2. Przyjęcie porządku.\n"  # 5
        "4. Przyjęcie protokołu.\n"  # 6: skips 3
        "5.\n"  # 7: no title
        "6. Uchwały:\n"  # 8
        "  b) budżet\n"  # 9: does not start at a)
        "7.1 rondo\n"  # 10: no item 7
        "7. Wolne wnioski.\n"  # 11
        "\n"  # 12
        "Przewodniczący Rady\n"  # 13: footer
    )
    err = refuse(text)
    assert [e.line for e in err.errors] == [1, 6, 7, 9, 10, 13]
    assert err.errors[1].problem == "expected item 3 after item 2, found 4"
    assert err.errors[1].text == "4. Przyjęcie protokołu."
    message = str(err)
    assert message.splitlines()[0].startswith("line 1: ")
    assert "line 6: expected item 3 after item 2, found 4;" in message
    assert len(message.splitlines()) == 6


def test_line_numbers_count_blank_lines_and_windows_endings() -> None:
    text = "\r\n\r\n1. A\r\n\r\n2. B\r\n\r\n\r\n9. C\r\n"
    err = refuse(text)
    assert [(e.line, e.text) for e in err.errors] == [(8, "9. C")]


def test_error_text_is_the_stripped_line_as_pasted() -> None:
    err = refuse("1. A\n\t  5.\u00a0Wolne  wnioski ;  \n")
    assert err.errors[0].text == "5.\u00a0Wolne  wnioski ;"


def test_one_line_with_two_problems_gets_one_error() -> None:
    err = refuse("1. A\n5.\n6. B")
    assert [e.line for e in err.errors] == [2]
    assert "no title" in err.errors[0].problem
    assert "expected item 2 after item 1, found 5" in err.errors[0].problem


def test_agenda_error_can_be_built_directly() -> None:
    errors = (AgendaLineError(4, "5. C", "bad"), AgendaLineError(9, "x", "worse"))
    err = AgendaError(errors)
    assert err.errors == errors
    assert str(err) == "line 4: bad;\nline 9: worse"
    assert "no numbered agenda items" in str(AgendaError())


# --- flatten --------------------------------------------------------------------------------------


def test_flatten_is_depth_first_pre_order_with_depths() -> None:
    text = "1. A\n2. B:\n  a) B1:\n    - B1x\n    - B1y\n  b) B2\n3. C\n"
    flat = flatten(parse_agenda(text))
    assert [(item.number, item.title, depth) for item, depth in flat] == [
        ("1", "A", 0),
        ("2", "B", 0),
        ("2.1", "B1", 1),
        ("2.1.1", "B1x", 2),
        ("2.1.2", "B1y", 2),
        ("2.2", "B2", 1),
        ("3", "C", 0),
    ]
    assert flat[1][0].children[0] is flat[2][0]


def test_flatten_of_the_reference_agenda() -> None:
    flat = flatten(EXPECTED)
    assert [(item.number, depth) for item, depth in flat] == [
        ("1", 0),
        ("2", 0),
        ("3", 0),
        ("4", 0),
        ("4.1", 1),
        ("4.2", 1),
        ("5", 0),
        ("6", 0),
        ("7", 0),
    ]


def test_flatten_accepts_any_iterable_and_empty_input() -> None:
    assert flatten(()) == []
    assert flatten([]) == []
    assert [item.number for item, _ in flatten(iter(EXPECTED[:2]))] == ["1", "2"]


# --- data classes ---------------------------------------------------------------------------------


def test_items_are_frozen_and_hashable() -> None:
    item = parse_agenda("1. Otwarcie")[0]
    assert item.children == ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        item.title = "x"  # type: ignore[misc]
    assert hash(EXPECTED) == hash(parse_agenda(REFERENCE))
