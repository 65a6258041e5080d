"""Tests for reading a voting system's nominal vote CSV export (archive.votes)."""

from __future__ import annotations

import codecs

import pytest

from archive.votes import (
    CHOICES,
    MAX_BYTES,
    MAX_ROWS,
    Councillor,
    ImportedVote,
    VoteImportError,
    VoteLine,
    match_councillor,
    normalize_choice,
    parse_vote_csv,
)

TERM = (
    Councillor(1, "Jan Kowalski"),
    Councillor(2, "Anna Nowak-Wiśniewska"),
    Councillor(3, "Łukasz Żółtowski"),
    Councillor(4, "Małgorzata Ślęzak"),
)

# --- helpers --------------------------------------------------------------------------------------


def choices(vote: ImportedVote) -> dict[int, str]:
    """Councillor id -> choice, for compact assertions."""
    return {line.councillor_id: line.choice for line in vote.lines}


def refuse(data: bytes, councillors: tuple[Councillor, ...] = TERM) -> VoteImportError:
    """Parse a file that must be refused and return the error."""
    with pytest.raises(VoteImportError) as caught:
        parse_vote_csv(data, councillors)
    return caught.value


def problems(data: bytes) -> list[tuple[int, str]]:
    """(line, problem) of every error reported for a refused file."""
    return [(error.line, error.problem) for error in refuse(data).errors]


# --- vote words -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "choice"),
    [
        ("ZA", "for"),
        ("za", "for"),
        (" Za. ", "for"),
        ("tak", "for"),
        ("yes", "for"),
        ("for", "for"),
        ("Przeciw", "against"),
        ("PRZECIW", "against"),
        ("nie", "against"),
        ("no", "against"),
        ("against", "against"),
        ("wstrzymał się", "abstain"),
        ("Wstrzymała się od głosu", "abstain"),
        ("Wstrzymuję się", "abstain"),
        ("wstrzymal sie", "abstain"),
        ("abstain", "abstain"),
        ("nie głosował", "absent"),
        ("nie głosowała", "absent"),
        ("Nie głosował(a)", "absent"),
        ("brak głosu", "absent"),
        ("nieobecny", "absent"),
        ("Nieobecna", "absent"),
        ("nieobecny/a", "absent"),
        ("-", "absent"),
        ("", "absent"),
        ("absent", "absent"),
        ("did not vote", "absent"),
        ("Did not vote", "absent"),
    ],
)
def test_normalize_choice_maps_polish_and_english_words(word: str, choice: str) -> None:
    assert normalize_choice(word) == choice
    assert choice in CHOICES


@pytest.mark.parametrize("word", ["maybe", "zaa", "głos", "1", "przeciwnie?!x"])
def test_normalize_choice_returns_none_for_unknown_words(word: str) -> None:
    assert normalize_choice(word) is None


# --- names ----------------------------------------------------------------------------------------


def test_match_councillor_ignores_case_spacing_and_order() -> None:
    assert match_councillor("  KOWALSKI   jan ", TERM) == TERM[0]
    assert match_councillor("Żółtowski Łukasz", TERM) == TERM[2]
    assert match_councillor("Nowak - Wiśniewska Anna", TERM) == TERM[1]
    assert match_councillor("Jan Kowalsky", TERM) is None


def test_match_councillor_falls_back_to_no_diacritics_only_when_unambiguous() -> None:
    assert match_councillor("Lukasz Zoltowski", TERM) == TERM[2]
    twins = (Councillor(7, "Józef Łęcki"), Councillor(8, "Jozef Lecki"))
    # The exact spelling still picks each one; the folded spelling of a third form cannot.
    assert match_councillor("Józef Łęcki", twins) == twins[0]
    assert match_councillor("Jozef Lecki", twins) == twins[1]
    assert match_councillor("Józef Lecki", twins) is None


# --- file shapes ----------------------------------------------------------------------------------


def test_semicolon_cp1250_with_header_and_lp_column_keeps_polish_letters() -> None:
    text = (
        "Lp.;Imię i nazwisko;Klub;Głos\r\n"
        "1;Jan Kowalski;KO;ZA\r\n"
        "2;Anna Nowak-Wiśniewska;PiS;Przeciw\r\n"
        "3;Łukasz Żółtowski;KO;Wstrzymał się\r\n"
        "4;Małgorzata Ślęzak;Niezrzeszeni;nie głosowała\r\n"
    )
    vote = parse_vote_csv(text.encode("cp1250"), TERM)
    assert vote.lines == (
        VoteLine(2, 1, "for"),
        VoteLine(3, 2, "against"),
        VoteLine(4, 3, "abstain"),
        VoteLine(5, 4, "absent"),
    )
    assert vote.missing == ()


def test_iso_8859_2_export_is_not_read_as_cp1250() -> None:
    # ą and ś sit at different bytes in ISO-8859-2; read as Windows-1250 they become ± and ¶.
    term = (Councillor(1, "Jolanta Kąś"),)
    vote = parse_vote_csv("Jolanta Kąś;wstrzymała się\n".encode("iso8859_2"), term)
    assert choices(vote) == {1: "abstain"}


def test_comma_with_utf8_bom_and_english_header() -> None:
    data = codecs.BOM_UTF8 + "Name,Vote\nJan Kowalski,for\nŁukasz Żółtowski,against\n".encode()
    vote = parse_vote_csv(data, TERM)
    assert choices(vote) == {1: "for", 3: "against"}
    assert vote.missing == (2, 4)


def test_tab_separated_without_header() -> None:
    text = "Jan Kowalski\tza\nAnna Nowak-Wiśniewska\tprzeciw\nŁukasz Żółtowski\t-\n"
    vote = parse_vote_csv(text.encode(), TERM)
    assert choices(vote) == {1: "for", 2: "against", 3: "absent"}
    assert vote.missing == (4,)


@pytest.mark.parametrize(
    "header",
    ["Radny,Głos", "Nazwisko i imię,Oddany głos", "Imię i nazwisko,Głos radnego", "Name,Vote"],
)
def test_header_variants_find_name_and_vote_columns(header: str) -> None:
    # Name order follows the header: "Nazwisko i imię" lists the surname first.
    text = f"{header}\nKowalski Jan,tak\nNowak-Wiśniewska Anna,nie\n"
    vote = parse_vote_csv(text.encode(), TERM)
    assert choices(vote) == {1: "for", 2: "against"}


def test_header_puts_vote_before_name() -> None:
    text = "Głos;Klub;Radny\nza;KO;Jan Kowalski\nprzeciw;PiS;Małgorzata Ślęzak\n"
    assert choices(parse_vote_csv(text.encode(), TERM)) == {1: "for", 4: "against"}


def test_no_header_finds_name_column_after_lp_and_club() -> None:
    text = (
        "1.;KO;Kowalski Jan;za\n"
        "2.;PiS;Żółtowski Łukasz;przeciw\n"
        "\n"
        "3.;KO;Ślęzak Małgorzata;wstrzymuję się;\n"
    )
    vote = parse_vote_csv(text.encode(), TERM)
    assert vote.lines == (
        VoteLine(1, 1, "for"),
        VoteLine(2, 3, "against"),
        VoteLine(4, 4, "abstain"),
    )
    assert vote.missing == (2,)


def test_no_header_with_surname_and_first_name_in_separate_columns() -> None:
    text = "Kowalski;Jan;za\nŻółtowski;Łukasz;przeciw\n"
    assert choices(parse_vote_csv(text.encode(), TERM)) == {1: "for", 3: "against"}


def test_quoted_names_with_commas_and_trailing_delimiters() -> None:
    text = '"Kowalski, Jan",za,\n"Ślęzak, Małgorzata",nieobecna,\n'
    assert choices(parse_vote_csv(text.encode(), TERM)) == {1: "for", 4: "absent"}


def test_blank_lines_and_empty_spreadsheet_rows_are_skipped() -> None:
    text = "\n\nRadny;Głos\n\n;;\nJan Kowalski;za\n   \n"
    vote = parse_vote_csv(text.encode(), TERM)
    assert vote.lines == (VoteLine(6, 1, "for"),)


def test_empty_vote_cell_means_did_not_vote() -> None:
    text = "Jan Kowalski;za\nŁukasz Żółtowski;\n"
    assert choices(parse_vote_csv(text.encode(), TERM)) == {1: "for", 3: "absent"}


def test_missing_lists_councillors_not_in_the_file_in_term_order() -> None:
    vote = parse_vote_csv("Małgorzata Ślęzak;za\n".encode(), TERM)
    assert vote.missing == (1, 2, 3)


def test_diacritic_free_export_still_matches_unambiguous_names() -> None:
    text = "Lukasz Zoltowski;za\nMalgorzata Slezak;przeciw\n"
    assert choices(parse_vote_csv(text.encode("ascii"), TERM)) == {3: "for", 4: "against"}


# --- errors ---------------------------------------------------------------------------------------


def test_every_bad_line_is_reported_together_with_its_line_number() -> None:
    text = (
        "Lp.;Imię i nazwisko;Głos\n"
        "1;Jan Kowalski;za\n"
        "2;Jan Kowalsky;za\n"
        "3;Łukasz Żółtowski;może\n"
        "4;Kowalski Jan;przeciw\n"
        "5;Małgorzata Ślęzak\n"
        "6;Zenon Nieznany;za\n"
    )
    found = problems(text.encode())
    assert [line for line, _ in found] == [3, 4, 5, 6, 7]
    by_line = dict(found)
    assert 'did you mean "Jan Kowalski"' in by_line[3]
    assert 'unknown vote "może"' in by_line[4] and "wstrzymał(a) się" in by_line[4]
    assert "already on line 2" in by_line[5]
    assert "has 2 columns but 3 are needed" in by_line[6]
    assert 'no councillor of this term is called "Zenon Nieznany"' in by_line[7]


def test_error_message_summarises_every_problem() -> None:
    error = refuse("Jan Kowalski;za\nJan Kowalski;przeciw\nAnna Nowak-Wiśniewska;hmm\n".encode())
    message = str(error)
    assert "2 problems" in message
    assert "line 2: Jan Kowalski is already on line 1" in message
    assert 'line 3: unknown vote "hmm"' in message
    assert error.errors[0].text == "Jan Kowalski;przeciw"


def test_row_with_a_single_column_is_reported() -> None:
    assert problems("Jan Kowalski;za\nŁukasz Żółtowski\n".encode()) == [
        (
            2,
            "has 1 column but 2 are needed: the councillor's name and the vote, "
            "separated by semicolons",
        ),
    ]


@pytest.mark.parametrize("data", [b"", codecs.BOM_UTF8, b"\r\n  \r\n", b";;;\n"])
def test_empty_file_is_refused(data: bytes) -> None:
    ((line, problem),) = problems(data)
    assert line == 0
    assert "the file is empty" in problem


def test_header_without_votes_is_refused() -> None:
    ((line, problem),) = problems("Imię i nazwisko;Głos\n".encode())
    assert line == 1
    assert "no votes" in problem


def test_file_larger_than_1_mb_is_refused() -> None:
    data = b"Jan Kowalski;za\n" * (MAX_BYTES // 16 + 1)
    ((line, problem),) = problems(data)
    assert (line, "at most 1 MB" in problem) == (0, True)


def test_file_with_too_many_rows_is_refused() -> None:
    text = "Radny;Głos\n" + "Jan Kowalski;za\n" * (MAX_ROWS + 1)
    ((line, problem),) = problems(text.encode())
    assert line == MAX_ROWS + 2
    assert f"{MAX_ROWS + 1} rows" in problem and f"at most {MAX_ROWS}" in problem


def test_ambiguous_name_without_diacritics_is_refused() -> None:
    twins = (Councillor(7, "Józef Łęcki"), Councillor(8, "Jozef Lecki"))
    error = refuse("Józef Lecki;za\n".encode(), twins)
    assert "could mean more than one councillor (Józef Łęcki, Jozef Lecki)" in str(error)


def test_excel_workbook_and_binary_files_are_refused_with_advice() -> None:
    ((_, problem),) = problems(b"PK\x03\x04" + b"\x00" * 40)
    assert "Excel workbook" in problem
    ((_, problem),) = problems(b"\x81\x00\x90\x8d binary")
    assert "not text in UTF-8 or Windows-1250" in problem


def test_several_vote_columns_are_refused() -> None:
    text = "Radny;Głosowanie 1;Głosowanie 2\nJan Kowalski;za;przeciw\n"
    ((line, problem),) = problems(text.encode())
    assert line == 1
    assert "several vote columns" in problem


def test_file_of_names_only_reports_every_row_as_too_short() -> None:
    found = problems("Jan Kowalski\nŁukasz Żółtowski\n".encode())
    assert [line for line, _ in found] == [1, 2]
    assert all("has 1 column but 2 are needed" in problem for _, problem in found)
