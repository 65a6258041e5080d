"""Agendas shaped like real BIP session notices (zawiadomienie o sesji), parsed end to end.

Each notice is adapted from a published one (shortened, names and dates changed); the source
it imitates is named above it, so a failure can be checked against the original shape.
"""

from __future__ import annotations

import pytest

from archive.agenda import AgendaError, AgendaItem, parse_agenda


def item(number: str, title: str, *children: AgendaItem) -> AgendaItem:
    """Build an expected item; children given positionally keep the trees readable."""
    return AgendaItem(number, title, tuple(children))


def refusal(text: str) -> list[tuple[int, str]]:
    """(line, text as pasted) of every line reported for text that must be refused."""
    with pytest.raises(AgendaError) as caught:
        parse_agenda(text)
    return [(error.line, error.text) for error in caught.value.errors]


def problems(text: str) -> dict[int, str]:
    """The problem reported for each refused line, keyed by line number."""
    with pytest.raises(AgendaError) as caught:
        parse_agenda(text)
    return {error.line: error.problem for error in caught.value.errors}


# --- 1. convening sentence, indented list, signature (after sokolowpodl.pl, 2015) -------------

CONVENED = """\
Na podstawie art. 20 ust. 3 ustawy z dnia 8 marca 1990 r. o samorządzie gminnym (Dz.U. z 2023 r. poz. 40) oraz wniosku Burmistrza Miasta z dnia 14.10.2023 r., zwołuję na dzień 19 października 2023 r. (czwartek) na godz. 9.00 w sali konferencyjnej Urzędu Miasta nadzwyczajną LXI sesję Rady Miejskiej.

Proponowany porządek obrad:

  1. Otwarcie sesji.
  2. Ustalenie porządku obrad.
  3. Projekt uchwały RM w spr. powołania zespołu ds. zaopiniowania kandydatów na ławników do sądów powszechnych w kadencji 2024-2027.
  4. Zapytania, interpelacje radnych.
  5. Przyjęcie protokołu z LX sesji Rady Miejskiej
  6. Zamknięcie sesji.
"""  # noqa: E501 - a BIP page keeps each paragraph on one line

CONVENED_TREE = (
    item("1", "Otwarcie sesji"),
    item("2", "Ustalenie porządku obrad"),
    item(
        "3",
        "Projekt uchwały RM w spr. powołania zespołu ds. zaopiniowania kandydatów na ławników "
        "do sądów powszechnych w kadencji 2024-2027",
    ),
    item("4", "Zapytania, interpelacje radnych"),
    item("5", "Przyjęcie protokołu z LX sesji Rady Miejskiej"),
    item("6", "Zamknięcie sesji"),
)


def test_convening_sentence_and_heading_precede_an_indented_list() -> None:
    assert parse_agenda(CONVENED) == CONVENED_TREE


def test_signature_under_the_notice_is_reported_line_by_line() -> None:
    text = CONVENED + "\nPrzewodniczący Rady Miejskiej\n\n/-/ Waldemar Nowak\n"
    assert refusal(text) == [(12, "Przewodniczący Rady Miejskiej"), (14, "/-/ Waldemar Nowak")]


# --- 2. bullets in front of the numbers (after bip.um.rybnik.eu, 2017) --------------------------

BULLETED_NUMBERS = """\
Sesja
XXXVII (Kadencja: 2014-2018)
Porządek spotkania:

  • 1.Otwarcie i stwierdzenie prawomocności obrad.
  • 2.Przyjęcie protokołu z poprzedniej sesji.
  • 3.Informacja Prezydenta o pracach w mieście.
  • 4.Poparcie apelu przedstawicieli środowisk samorządowych z dnia 16 marca 2017 r.
  • 5.Wnioski, oświadczenia, interpelacje i pytania radnych.
  • 6.Zakończenie sesji.
"""


def test_bullet_shown_before_each_number_is_decoration() -> None:
    text = BULLETED_NUMBERS.replace("Sesja\nXXXVII (Kadencja: 2014-2018)\n", "")
    assert parse_agenda(text) == (
        item("1", "Otwarcie i stwierdzenie prawomocności obrad"),
        item("2", "Przyjęcie protokołu z poprzedniej sesji"),
        item("3", "Informacja Prezydenta o pracach w mieście"),
        item("4", "Poparcie apelu przedstawicieli środowisk samorządowych z dnia 16 marca 2017 r"),
        item("5", "Wnioski, oświadczenia, interpelacje i pytania radnych"),
        item("6", "Zakończenie sesji"),
    )


def test_page_chrome_above_the_heading_is_reported() -> None:
    assert refusal(BULLETED_NUMBERS) == [(1, "Sesja"), (2, "XXXVII (Kadencja: 2014-2018)")]


# --- 3. Roman numerals at the top level (after pyskowice.pl, 2010) ------------------------------

ROMAN = """\
W środę, 1 grudnia o godz. 16.00 w sali sesyjnej Urzędu Miejskiego zwołuję I sesję
nowo wybranej Rady Miejskiej.

Porządek obrad:

I. Otwarcie sesji przez radnego seniora.

II. Złożenie ślubowania przez nowo wybranych radnych.

III. Stwierdzenie prawomocności obrad.

IV. Podjęcie uchwał w sprawie:
1) wyboru przewodniczącego Rady Miejskiej,
2) wyboru wiceprzewodniczącego Rady Miejskiej,
3) powołania składów osobowych komisji Rady Miejskiej.

V. Sprawy organizacyjne.

VI. Zamknięcie I sesji Rady Miejskiej.
"""


def test_roman_top_level_with_sub_items() -> None:
    assert parse_agenda(ROMAN) == (
        item("1", "Otwarcie sesji przez radnego seniora"),
        item("2", "Złożenie ślubowania przez nowo wybranych radnych"),
        item("3", "Stwierdzenie prawomocności obrad"),
        item(
            "4",
            "Podjęcie uchwał w sprawie",
            item("4.1", "wyboru przewodniczącego Rady Miejskiej"),
            item("4.2", "wyboru wiceprzewodniczącego Rady Miejskiej"),
            item("4.3", "powołania składów osobowych komisji Rady Miejskiej"),
        ),
        item("5", "Sprawy organizacyjne"),
        item("6", "Zamknięcie I sesji Rady Miejskiej"),
    )


def test_roman_sections_with_restarted_arabic_items() -> None:
    text = (
        "I. Sprawy regulaminowe:\n"
        "1. Otwarcie sesji.\n"
        "2. Przyjęcie porządku obrad.\n"
        "II. Sprawozdania:\n"
        "1. Sprawozdanie Burmistrza z pracy w okresie międzysesyjnym.\n"
        "2. Sprawozdanie z wykonania uchwał Rady.\n"
        "III. Zamknięcie sesji.\n"
    )
    assert parse_agenda(text) == (
        item(
            "1",
            "Sprawy regulaminowe",
            item("1.1", "Otwarcie sesji"),
            item("1.2", "Przyjęcie porządku obrad"),
        ),
        item(
            "2",
            "Sprawozdania",
            item("2.1", "Sprawozdanie Burmistrza z pracy w okresie międzysesyjnym"),
            item("2.2", "Sprawozdanie z wykonania uchwał Rady"),
        ),
        item("3", "Zamknięcie sesji"),
    )


def test_skipped_roman_numeral_is_reported() -> None:
    text = ROMAN.replace("V. Sprawy", "VI. Sprawy").replace("VI. Zamknięcie", "VII. Zamknięcie")
    assert problems(text) == {17: 'expected item 5 "V." after item 4.3, found VI'}


def test_roman_one_typed_for_arabic_one_is_reported() -> None:
    # After labowa.pl (2016): the first item was typed "I." and the rest "2.", "3.", ...
    text = (
        "Proponowany porządek obrad :\n"
        " I.    Otwarcie sesji.\n"
        "2.    Przyjęcie porządku obrad.\n"
        "3.    Wolne wnioski i dyskusja.\n"
    )
    found = problems(text)
    assert sorted(found) == [2, 3]
    assert 'if this is item 1, write "1."' in found[2]
    assert found[3] == "the agenda must start with item 1, found 2"


# --- 4. indented sub-list restarting at "1." (after bip.miejska-gorka.pl, 2022) ----------------

RESTARTED = """\
Porządek obrad XLVI sesji Rady Miejskiej:
 1. Otwarcie Sesji oraz stwierdzenie prawomocności obrad.
 2. Przyjęcie protokołu poprzedniej Sesji.
 3.  Informacja Burmistrza o działalności w okresie międzysesyjnym.
 4. Wnioski i interpelacje Radnych.
 5. Podjęcie uchwał w sprawie:
  1. zmiany uchwały budżetowej na rok 2022,
  2. udzielenia pomocy finansowej Powiatowi Rawickiemu,
  3. wyrażenia zgody na odstąpienie od obowiązku przetargowego trybu zawarcia umowy
     dzierżawy nieruchomości,
  4. zatwierdzenia zmiany Planu Odnowy Miejscowości Dłoń.
 6. Odpowiedzi na wnioski i interpelacje Radnych.
 7. Wolne głosy i wnioski.
 8. Zamknięcie Sesji.
"""


def test_indented_sub_list_restarting_at_one_with_commas() -> None:
    assert parse_agenda(RESTARTED) == (
        item("1", "Otwarcie Sesji oraz stwierdzenie prawomocności obrad"),
        item("2", "Przyjęcie protokołu poprzedniej Sesji"),
        item("3", "Informacja Burmistrza o działalności w okresie międzysesyjnym"),
        item("4", "Wnioski i interpelacje Radnych"),
        item(
            "5",
            "Podjęcie uchwał w sprawie",
            item("5.1", "zmiany uchwały budżetowej na rok 2022"),
            item("5.2", "udzielenia pomocy finansowej Powiatowi Rawickiemu"),
            item(
                "5.3",
                "wyrażenia zgody na odstąpienie od obowiązku przetargowego trybu zawarcia "
                "umowy dzierżawy nieruchomości",
            ),
            item("5.4", "zatwierdzenia zmiany Planu Odnowy Miejscowości Dłoń"),
        ),
        item("6", "Odpowiedzi na wnioski i interpelacje Radnych"),
        item("7", "Wolne głosy i wnioski"),
        item("8", "Zamknięcie Sesji"),
    )


# --- 5. lettered sub-items, "w sprawie :" with a space (after bip.rogowo.pl, 2004) -------------

LETTERED = """\
Przewodniczący Rady zaproponował następujący porządek obrad :
1. Sprawy organizacyjne :
a) otwarcie obrad XVII sesji i stwierdzenie quorum,
b) przyjęcie protokołu z XVI sesji.
2. Sprawozdanie Wójta Gminy z działalności między sesjami.
3. Podjęcie uchwał w sprawie :
a) zbycia nieruchomości mienia gminnego,
b) przejęcia na rzecz gminy nieruchomości gruntowych z przeznaczeniem na poszerzenie
pasa drogowego,
c) ustalenia wysokości składki członkowskiej na 2005r,
d) przyjęcia Statutu Związku Gmin Północnego Mazowsza,
e) określenia wysokości stawek podatku od środków transportowych na 2005r,
f) podatku od posiadania psów na 2005r,
g) podatku od nieruchomości na 2005r,
h) określenia wzorów formularzy deklaracji podatkowych,
i) obniżenia średniej ceny skupu żyta dla celów podatku rolnego na 2005r,
j) zmieniająca uchwałę Nr XII/3/04 Rady Gminy z dnia 19.02.2004r.
4. Wolne wnioski i zapytania.
5. Zakończenie obrad.
"""


def test_lettered_sub_items_through_i_and_j() -> None:
    assert parse_agenda(LETTERED) == (
        item(
            "1",
            "Sprawy organizacyjne",
            item("1.1", "otwarcie obrad XVII sesji i stwierdzenie quorum"),
            item("1.2", "przyjęcie protokołu z XVI sesji"),
        ),
        item("2", "Sprawozdanie Wójta Gminy z działalności między sesjami"),
        item(
            "3",
            "Podjęcie uchwał w sprawie",
            item("3.1", "zbycia nieruchomości mienia gminnego"),
            item(
                "3.2",
                "przejęcia na rzecz gminy nieruchomości gruntowych z przeznaczeniem na "
                "poszerzenie pasa drogowego",
            ),
            item("3.3", "ustalenia wysokości składki członkowskiej na 2005r"),
            item("3.4", "przyjęcia Statutu Związku Gmin Północnego Mazowsza"),
            item("3.5", "określenia wysokości stawek podatku od środków transportowych na 2005r"),
            item("3.6", "podatku od posiadania psów na 2005r"),
            item("3.7", "podatku od nieruchomości na 2005r"),
            item("3.8", "określenia wzorów formularzy deklaracji podatkowych"),
            item("3.9", "obniżenia średniej ceny skupu żyta dla celów podatku rolnego na 2005r"),
            item("3.10", "zmieniająca uchwałę Nr XII/3/04 Rady Gminy z dnia 19.02.2004r"),
        ),
        item("4", "Wolne wnioski i zapytania"),
        item("5", "Zakończenie obrad"),
    )


# --- 6. tabs and blank lines between items, sub-items without a colon (after Rudka, 2007) ------

TABBED = (
    "proponowany porządek obrad:\n\n"
    "1.\tOtwarcie obrad i stwierdzenie quorum.\n\n"
    "2.\tPrzyjęcie porządku obrad.\n\n"
    "3.\tRozpatrzenie sprawozdania z wykonania budżetu gminy za 2023 rok:\n\n"
    "a)\topinia Regionalnej Izby Obrachunkowej w Białymstoku z wykonania budżetu,\n\n"
    "b)\topinia Komisji Rewizyjnej w sprawie wykonania budżetu.\n\n"
    "4.\tPodjęcie uchwały w sprawie udzielenia absolutorium Wójtowi Gminy Rudka\n\n"
    "a)\twniosek Komisji Rewizyjnej,\n\n"
    "b)\topinia składu orzekającego Regionalnej Izby Obrachunkowej.\n\n"
    "5.\tZamknięcie obrad.\n"
)


def test_tabs_and_blank_lines_between_every_item() -> None:
    assert parse_agenda(TABBED) == (
        item("1", "Otwarcie obrad i stwierdzenie quorum"),
        item("2", "Przyjęcie porządku obrad"),
        item(
            "3",
            "Rozpatrzenie sprawozdania z wykonania budżetu gminy za 2023 rok",
            item("3.1", "opinia Regionalnej Izby Obrachunkowej w Białymstoku z wykonania budżetu"),
            item("3.2", "opinia Komisji Rewizyjnej w sprawie wykonania budżetu"),
        ),
        item(
            "4",
            "Podjęcie uchwały w sprawie udzielenia absolutorium Wójtowi Gminy Rudka",
            item("4.1", "wniosek Komisji Rewizyjnej"),
            item("4.2", "opinia składu orzekającego Regionalnej Izby Obrachunkowej"),
        ),
        item("5", "Zamknięcie obrad"),
    )


# --- 7. wrapped convening paragraph, non-breaking spaces (after policzna.ugm.pl, 2022) ---------

WRAPPED = (
    "Policzna, 22 sierpnia 2022 r.\n"
    "Zgodnie z art. 20 ust. 1 ustawy z dnia 8 marca 1990 roku o samorządzie gminnym\n"
    "(Dz.U. z 2022 r. poz. 559 z późn. zm.) zwołuję sesję Rady Gminy Policzna na dzień\n"
    "30 sierpnia 2022 r. (wtorek), godz. 9:00 w Świetlicy Gminnej w Policznie\n"
    "z następującym porządkiem obrad:\n"
    "\u00a0\n"
    "\u00a0 1.\u00a0Otwarcie sesji, stwierdzenie quorum oraz przyjęcie porządku obrad.\n"
    "\u00a0 2.\u00a0Przyjęcie protokołu z poprzedniej sesji.\n"
    "\u00a0 3.\u00a0Wyniki egzaminów oraz ocena przygotowania szkół i przedszkoli do\n"
    "\u00a0 \u00a0 \u00a0rozpoczęcia roku szkolnego 2022/2023.\n"
    "\u00a0 4.\u00a0Podjęcie uchwał.\n"
    "\u00a0 5.\u00a0Sprawy różne, informacje, komentarze.\n"
    "\u00a0 6.\u00a0Zamknięcie obrad.\n"
)

WRAPPED_TREE = (
    item("1", "Otwarcie sesji, stwierdzenie quorum oraz przyjęcie porządku obrad"),
    item("2", "Przyjęcie protokołu z poprzedniej sesji"),
    item(
        "3",
        "Wyniki egzaminów oraz ocena przygotowania szkół i przedszkoli do rozpoczęcia roku "
        "szkolnego 2022/2023",
    ),
    item("4", "Podjęcie uchwał"),
    item("5", "Sprawy różne, informacje, komentarze"),
    item("6", "Zamknięcie obrad"),
)


def test_wrapped_convening_paragraph_and_non_breaking_spaces() -> None:
    assert parse_agenda(WRAPPED) == WRAPPED_TREE


def test_indented_signature_and_transmission_note_are_reported() -> None:
    text = (
        WRAPPED + "\u00a0\n"
        "             Przewodniczący Rady Gminy\n"
        " /-/Paweł Jędrzejczak\n"
        "\n"
        "Transmisja z obrad sesji dostępna będzie na stronie http://policzna.wideosesja.pl\n"
    )
    assert [line for line, _text in refusal(text)] == [15, 16, 18]


# --- 8. every item "1." because the HTML list numbering was lost -------------------------------

LOST_NUMBERING = """\
Zawiadamiam, że w dniu 25 stycznia 2024 r. o godz. 10:00 w sali obrad Ratusza odbędzie się
LXX sesja Rady Miasta.
Porządek obrad:
1. Otwarcie sesji.
1. Przyjęcie protokołu z LXIX sesji.
1. Podjęcie uchwał w sprawie:
1. zmiany budżetu miasta na 2024 rok;
1. zmiany Wieloletniej Prognozy Finansowej;
1. nadania nazwy skwerowi położonemu przy ul. Kolejowej;
1. Interpelacje i zapytania radnych.
1. Zamknięcie sesji.
"""

LOST_TREE = (
    item("1", "Otwarcie sesji"),
    item("2", "Przyjęcie protokołu z LXIX sesji"),
    item(
        "3",
        "Podjęcie uchwał w sprawie",
        item("3.1", "zmiany budżetu miasta na 2024 rok"),
        item("3.2", "zmiany Wieloletniej Prognozy Finansowej"),
        item("3.3", "nadania nazwy skwerowi położonemu przy ul. Kolejowej"),
    ),
    item("4", "Interpelacje i zapytania radnych"),
    item("5", "Zamknięcie sesji"),
)


def test_every_item_numbered_one_is_numbered_by_position() -> None:
    assert parse_agenda(LOST_NUMBERING) == LOST_TREE


def test_lost_numbering_with_indented_sub_items() -> None:
    text = LOST_NUMBERING.replace("1. zmiany", "    1. zmiany").replace(
        "1. nadania", "    1. nadania"
    )
    assert parse_agenda(text) == LOST_TREE


def test_sub_items_repeating_one_under_numbered_items() -> None:
    text = (
        "1. Otwarcie sesji.\n"
        "2. Podjęcie uchwał w sprawie:\n"
        "1. zmiany budżetu miasta na 2024 rok,\n"
        "1. nadania nazwy rondu,\n"
        "1. zmiany Statutu Miasta.\n"
        "3. Wolne wnioski.\n"
        "4. Zamknięcie sesji.\n"
    )
    assert parse_agenda(text) == (
        item("1", "Otwarcie sesji"),
        item(
            "2",
            "Podjęcie uchwał w sprawie",
            item("2.1", "zmiany budżetu miasta na 2024 rok"),
            item("2.2", "nadania nazwy rondu"),
            item("2.3", "zmiany Statutu Miasta"),
        ),
        item("3", "Wolne wnioski"),
        item("4", "Zamknięcie sesji"),
    )


def test_lettered_sub_items_all_marked_a() -> None:
    text = "1. Otwarcie.\n2. Uchwały w sprawie:\n a) budżetu,\n a) ronda,\n a) skweru.\n3. Koniec."
    assert parse_agenda(text) == (
        item("1", "Otwarcie"),
        item(
            "2",
            "Uchwały w sprawie",
            item("2.1", "budżetu"),
            item("2.2", "ronda"),
            item("2.3", "skweru"),
        ),
        item("3", "Koniec"),
    )


def test_numbered_item_after_lost_numbering_is_reported() -> None:
    text = "1. Otwarcie.\n1. Protokół.\n1. Interpelacje.\n4. Zamknięcie."
    assert problems(text) == {4: "expected item 4 after item 3, found 4"}


def test_lost_numbering_that_case_cannot_settle_is_reported_as_ambiguous() -> None:
    # Capitalised sub-items under an unindented "1." list could belong to either level.
    text = "1. Otwarcie.\n1. Sprawy różne:\n1. Pytania mieszkańców.\n1. Wolne wnioski.\n"
    found = problems(text)
    assert sorted(found) == [4]
    assert "ambiguous" in found[4] and "item 3" in found[4] and "item 2.2" in found[4]


# --- 9. dotted sub-items with wrapped titles (typical of larger cities) ------------------------

DOTTED = """\
PORZĄDEK OBRAD
LXV sesji Rady Miasta Nowego Sącza w dniu 30 stycznia 2024 r.

1. Otwarcie sesji i stwierdzenie quorum.
2. Przyjęcie protokołu z LXIV sesji.
3. Podjęcie uchwał w sprawie:
\t3.1. zmiany uchwały Nr LX/601/2023 Rady Miasta Nowego Sącza z dnia 19 grudnia 2023 r.
\t     w sprawie uchwały budżetowej na 2024 rok;
\t3.2. przystąpienia do sporządzenia miejscowego planu zagospodarowania przestrzennego
\t     „Zabełcze – Park”;
\t3.3. nadania imienia Szkole Podstawowej nr 5.
4. Informacja Prezydenta Miasta z działalności w okresie międzysesyjnym.
5. Interpelacje, wnioski i zapytania radnych.
6. Zamknięcie sesji.
"""


def test_dotted_sub_items_with_wrapped_titles_and_tabs() -> None:
    assert parse_agenda(DOTTED) == (
        item("1", "Otwarcie sesji i stwierdzenie quorum"),
        item("2", "Przyjęcie protokołu z LXIV sesji"),
        item(
            "3",
            "Podjęcie uchwał w sprawie",
            item(
                "3.1",
                "zmiany uchwały Nr LX/601/2023 Rady Miasta Nowego Sącza z dnia 19 grudnia "
                "2023 r. w sprawie uchwały budżetowej na 2024 rok",
            ),
            item(
                "3.2",
                "przystąpienia do sporządzenia miejscowego planu zagospodarowania przestrzennego "
                "„Zabełcze – Park”",
            ),
            item("3.3", "nadania imienia Szkole Podstawowej nr 5"),
        ),
        item("4", "Informacja Prezydenta Miasta z działalności w okresie międzysesyjnym"),
        item("5", "Interpelacje, wnioski i zapytania radnych"),
        item("6", "Zamknięcie sesji"),
    )


# --- 10. dash bullets under "w sprawie:", a stray space before the dot (after labowa.pl, 2016) --

DASHED = """\
Proponowany porządek obrad :
1.    Otwarcie sesji.
2.    Przyjęcie porządku obrad.
3.    Przyjęcie protokołu z poprzedniej sesji.
4    .Podjęcie uchwał w sprawie:
- zmiany uchwały w sprawie ustalenia ryczałtowej stawki opłaty za gospodarowanie
  odpadami komunalnymi dla nieruchomości rekreacyjnych,
– zmian w budżecie gminy na 2016 rok,
• zaciągnięcia pożyczki w Wojewódzkim Funduszu Ochrony Środowiska,
5.    Wolne wnioski i dyskusja.
6.     Zakończenie obrad
"""


def test_mixed_dash_and_round_bullets_under_w_sprawie() -> None:
    assert parse_agenda(DASHED) == (
        item("1", "Otwarcie sesji"),
        item("2", "Przyjęcie porządku obrad"),
        item("3", "Przyjęcie protokołu z poprzedniej sesji"),
        item(
            "4",
            "Podjęcie uchwał w sprawie",
            item(
                "4.1",
                "zmiany uchwały w sprawie ustalenia ryczałtowej stawki opłaty za gospodarowanie "
                "odpadami komunalnymi dla nieruchomości rekreacyjnych",
            ),
            item("4.2", "zmian w budżecie gminy na 2016 rok"),
            item("4.3", "zaciągnięcia pożyczki w Wojewódzkim Funduszu Ochrony Środowiska"),
        ),
        item("5", "Wolne wnioski i dyskusja"),
        item("6", "Zakończenie obrad"),
    )


# --- 11. three levels: dotted, then letters (as in larger councils' notices) --------------------

THREE_LEVELS = """\
Porządek obrad:
1. Otwarcie sesji.
2. Podjęcie uchwał w sprawie:
   2.1. finansowych:
        a) zmiany budżetu miasta na 2024 rok,
        b) zmiany Wieloletniej Prognozy Finansowej,
   2.2. nadania nazw:
        a) rondu u zbiegu ulic Zielonej
           i Długiej,
        b) skwerowi przy ul. Kolejowej.
3. Zamknięcie sesji.
"""


def test_three_levels_dotted_then_letters() -> None:
    assert parse_agenda(THREE_LEVELS) == (
        item("1", "Otwarcie sesji"),
        item(
            "2",
            "Podjęcie uchwał w sprawie",
            item(
                "2.1",
                "finansowych",
                item("2.1.1", "zmiany budżetu miasta na 2024 rok"),
                item("2.1.2", "zmiany Wieloletniej Prognozy Finansowej"),
            ),
            item(
                "2.2",
                "nadania nazw",
                item("2.2.1", "rondu u zbiegu ulic Zielonej i Długiej"),
                item("2.2.2", "skwerowi przy ul. Kolejowej"),
            ),
        ),
        item("3", "Zamknięcie sesji"),
    )


# --- bad lines are reported by line number, never dropped ---------------------------------------


def test_signature_right_after_the_last_item_is_not_glued_to_its_title() -> None:
    text = "1. Otwarcie sesji\n2. Zamknięcie sesji\nPrzewodniczący Rady Miejskiej\n/-/ Jan Nowak"
    found = problems(text)
    assert sorted(found) == [3, 4]
    assert "signature" in found[3]
    assert "line 3" in found[4]


def test_esesja_page_with_gaps_and_page_chrome_reports_each_line() -> None:
    # After gorakalwaria.esesja.pl (2024): the page lists only some items, between links.
    text = (
        "« Powrót do strony głównej\n"
        "\n"
        "Porządek obrad\n"
        "\n"
        "1. Otwarcie CVII sesji Rady Miejskiej, stwierdzenie prawomocności obrad.\n"
        "\n"
        "3. Sprawozdanie Burmistrza o działaniach podjętych w okresie międzysesyjnym.\n"
        "\n"
        "4. Sprawy różne:\n"
        "\n"
        "a) pytania mieszkańców i odpowiedzi,\n"
        "\n"
        "b) wolne wnioski.\n"
        "\n"
        "17. Zamknięcie CVII sesji Rady Miejskiej.\n"
        "\n"
        "« Powrót do strony głównej\n"
    )
    found = problems(text)
    assert sorted(found) == [1, 7, 15, 17]
    assert "before the first item" in found[1]
    assert found[7] == "expected item 2 after item 1, found 3"
    assert "blank line" in found[17]


def test_voting_notes_pasted_between_items_are_reported() -> None:
    # After nowasucha.rada24.pl: vote records interleaved with the agenda on the page.
    text = (
        "1.Otwarcie sesji i stwierdzenie prawomocności obrad.\n"
        "2.Ustalenie porządku obrad.\n"
        "Głosowanie (Ustalenie porządku obrad.)\n"
        "3.Wybór Przewodniczącego Rady.\n"
        "Głosowanie (wyboru Komisji Skrutacyjnej)\n"
        "4.Zakończenie obrad I sesji Rady.\n"
    )
    assert refusal(text) == [
        (3, "Głosowanie (Ustalenie porządku obrad.)"),
        (5, "Głosowanie (wyboru Komisji Skrutacyjnej)"),
    ]


def test_unnumbered_sub_item_after_a_semicolon_is_reported() -> None:
    text = LOST_NUMBERING.replace(
        "1. nadania nazwy", "nadania nazwy rondu Solidarności;\n1. nadania nazwy"
    )
    assert refusal(text) == [(9, "nadania nazwy rondu Solidarności;")]


def test_every_bad_line_in_a_messy_notice_is_reported_once() -> None:
    text = (
        "Szanowni Państwo,\n"  # 1: not a heading
        "Proponowany porządek obrad:\n"  # 2
        "1. Otwarcie sesji.\n"  # 3
        "2. Podjęcie uchwał w sprawie:\n"  # 4
        "\ta) zmiany budżetu;\n"  # 5
        "\tc) nadania nazwy ulicy;\n"  # 6: skips b)
        "3.\n"  # 7: no title
        "4. Wolne wnioski.\n"  # 8
        "Obrady będą transmitowane.\n"  # 9: a new sentence, not an item
        "5. Zamknięcie sesji\n"  # 10
        "Przewodnicząca Rady Miasta\n"  # 11: signature
    )
    found = problems(text)
    assert sorted(found) == [1, 6, 7, 9, 11]
    assert found[6] == 'expected item 2.2 "b)" after item 2.1, found c)'
    assert "no title" in found[7]
    assert "signature" in found[11]


def test_title_wrapping_before_przewodniczacy_is_not_taken_for_a_signature() -> None:
    text = (
        "1. Otwarcie.\n2. Informacja, którą przedstawi\n   Przewodniczący Rady Miasta.\n3. Koniec."
    )
    assert parse_agenda(text)[1] == item(
        "2", "Informacja, którą przedstawi Przewodniczący Rady Miasta"
    )


def test_other_text_after_a_heading_without_a_colon_is_reported() -> None:
    assert refusal("Porządek obrad\nSzanowni Państwo\n1. Otwarcie.\n2. Koniec.") == [
        (2, "Szanowni Państwo")
    ]


def test_duplicated_first_line_is_not_taken_for_lost_numbering() -> None:
    text = "1. Otwarcie sesji.\n1. Przyjęcie porządku obrad.\n2. Protokół.\n3. Zamknięcie."
    assert refusal(text) == [(2, "1. Przyjęcie porządku obrad.")]


# --- 12. numbers doubled by a pasted HTML list (after bip.piotrkow.pl, 2024) -------------------
# The notice's own numbers sit inside an HTML <ol>, so a copy of the page shows the list's number
# and then the author's: "1. 1. Otwarcie sesji".

PIOTRKOW = """\
Zawiadamiam, że LXXXII sesja Rady Miasta Piotrkowa Trybunalskiego odbędzie się
w dniu 24 stycznia 2024 r. o godz. 9:00 w sali posiedzeń Urzędu Miasta, Pasaż Rudowskiego 10.

Proponowany porządek obrad:
1. Otwarcie sesji.
2. Stwierdzenie quorum.
3. Przyjęcie porządku obrad.
4. Przyjęcie protokołu z LXXXI sesji Rady Miasta Piotrkowa Trybunalskiego.
5. Informacja Prezydenta Miasta o pracach w okresie międzysesyjnym.
6. Rozpatrzenie projektów uchwał w sprawie:
a) zmiany Wieloletniej Prognozy Finansowej Miasta Piotrkowa Trybunalskiego;
b) zmiany budżetu miasta na 2024 rok;
c) nadania nazwy rondu położonemu u zbiegu ulic Słowackiego
   i Wojska Polskiego;
d) przyjęcia Gminnego Programu Profilaktyki i Rozwiązywania Problemów Alkoholowych.
7. Sprawozdanie z działalności Miejskiego Ośrodka Pomocy Rodzinie za 2023 rok.
8. Rozpatrzenie skarg:
a) na działalność Dyrektora Zarządu Dróg i Utrzymania Miasta;
b) na działalność Prezydenta Miasta.
9. Informacja o stanie bezpieczeństwa na terenie miasta.
10. Interpelacje i zapytania radnych.
11. Wolne wnioski i informacje.
12. Zamknięcie sesji.
"""

PIOTRKOW_TREE = (
    item("1", "Otwarcie sesji"),
    item("2", "Stwierdzenie quorum"),
    item("3", "Przyjęcie porządku obrad"),
    item("4", "Przyjęcie protokołu z LXXXI sesji Rady Miasta Piotrkowa Trybunalskiego"),
    item("5", "Informacja Prezydenta Miasta o pracach w okresie międzysesyjnym"),
    item(
        "6",
        "Rozpatrzenie projektów uchwał w sprawie",
        item("6.1", "zmiany Wieloletniej Prognozy Finansowej Miasta Piotrkowa Trybunalskiego"),
        item("6.2", "zmiany budżetu miasta na 2024 rok"),
        item("6.3", "nadania nazwy rondu położonemu u zbiegu ulic Słowackiego i Wojska Polskiego"),
        item(
            "6.4",
            "przyjęcia Gminnego Programu Profilaktyki i Rozwiązywania Problemów Alkoholowych",
        ),
    ),
    item("7", "Sprawozdanie z działalności Miejskiego Ośrodka Pomocy Rodzinie za 2023 rok"),
    item(
        "8",
        "Rozpatrzenie skarg",
        item("8.1", "na działalność Dyrektora Zarządu Dróg i Utrzymania Miasta"),
        item("8.2", "na działalność Prezydenta Miasta"),
    ),
    item("9", "Informacja o stanie bezpieczeństwa na terenie miasta"),
    item("10", "Interpelacje i zapytania radnych"),
    item("11", "Wolne wnioski i informacje"),
    item("12", "Zamknięcie sesji"),
)


def doubled(text: str, top: str, sub: str, indent: str = "") -> str:
    """The notice as copied from a page whose HTML lists render each number again.

    top and sub format the list's number in front of a top-level item or sub-item: {n} is its
    position, {a} its letter. Sub-items and their wrapped lines get indent in front.
    """
    lines = []
    for line in text.splitlines():
        head = line.split(" ", 1)[0]
        if head[:-1].isdigit() and head.endswith("."):
            lines.append(top.format(n=head[:-1]) + line)
        elif len(head) == 2 and head[0].isalpha() and head.endswith(")"):
            n = ord(head[0]) - ord("a") + 1
            lines.append(indent + sub.format(n=n, a=head[0]) + line)
        elif line.startswith("   "):
            lines.append(indent + line)
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


def test_the_clean_piotrkow_notice_gives_the_tree() -> None:
    assert parse_agenda(PIOTRKOW) == PIOTRKOW_TREE


@pytest.mark.parametrize(
    ("top", "sub", "indent", "shown"),
    [
        pytest.param("{n}. ", "{a}) ", "", "1. 1. Otwarcie sesji", id="same-markers"),
        pytest.param("{n}.\t", "{a}.\t", "\t", "1.\t1. Otwarcie sesji", id="tabs-indented"),
        pytest.param("{n}) ", "({a}) ", "  ", "1) 1. Otwarcie sesji", id="paren-before-dot"),
        pytest.param("{n}. ", "{n}. ", "    ", "    2. b) zmiany", id="decimal-sub-list"),
    ],
)
def test_numbers_doubled_by_a_pasted_html_list_give_the_clean_tree(
    top: str, sub: str, indent: str, shown: str
) -> None:
    text = doubled(PIOTRKOW, top, sub, indent)
    assert shown in text
    assert parse_agenda(text) == PIOTRKOW_TREE


def test_titles_that_begin_with_a_number_keep_it() -> None:
    text = (
        "1. Otwarcie sesji.\n"
        "2. 2 projekty uchwał w sprawie zmian budżetu.\n"
        "3. 1 maja — obchody Święta Pracy.\n"
        "4. 4-letni plan inwestycji.\n"
        "5. 3. Festiwal Kultury Trybunalskiej — sprawozdanie.\n"
        "6. 1) propozycje mieszkańców.\n"
        "7. Zamknięcie sesji.\n"
    )
    assert parse_agenda(text) == (
        item("1", "Otwarcie sesji"),
        item("2", "2 projekty uchwał w sprawie zmian budżetu"),
        item("3", "1 maja — obchody Święta Pracy"),
        item("4", "4-letni plan inwestycji"),
        item("5", "3. Festiwal Kultury Trybunalskiej — sprawozdanie"),
        item("6", "1) propozycje mieszkańców"),
        item("7", "Zamknięcie sesji"),
    )


def test_titles_that_begin_with_a_number_keep_it_when_numbers_are_doubled() -> None:
    text = (
        "1. 1. Otwarcie sesji.\n"
        "2. 2. 2 projekty uchwał w sprawie zmian budżetu.\n"
        "3. 3. 1 maja — obchody Święta Pracy.\n"
        "4. 4. 4-letni plan inwestycji.\n"
        "5. 5. 3. Festiwal Kultury Trybunalskiej — sprawozdanie.\n"
        "6. 6. Zamknięcie sesji.\n"
    )
    assert parse_agenda(text) == (
        item("1", "Otwarcie sesji"),
        item("2", "2 projekty uchwał w sprawie zmian budżetu"),
        item("3", "1 maja — obchody Święta Pracy"),
        item("4", "4-letni plan inwestycji"),
        item("5", "3. Festiwal Kultury Trybunalskiej — sprawozdanie"),
        item("6", "Zamknięcie sesji"),
    )


def test_a_list_restarted_by_the_page_keeps_the_items_own_numbers() -> None:
    # The page split the notice into two lists (a heading between them); the second restarts.
    text = doubled(PIOTRKOW, "{n}. ", "{a}) ").replace("10. 10. ", "1. 10. ")
    text = text.replace("11. 11. ", "2. 11. ").replace("12. 12. ", "3. 12. ")
    assert parse_agenda(text) == PIOTRKOW_TREE


def test_every_item_in_its_own_html_list_with_its_own_number_after() -> None:
    # Each item in its own <ol>: the list shows "1." everywhere, the author's number follows.
    text = "".join(
        f"1. {line}\n" if line[:1].isdigit() else f"a) {line}\n" if line[1:2] == ")" else line
        for line in PIOTRKOW.splitlines()
        if line[:1].isdigit() or line[1:2] == ")"
    )
    assert text.startswith("1. 1. Otwarcie sesji.\n1. 2. Stwierdzenie quorum.\n")
    assert [(i.number, i.title) for i in parse_agenda(text)] == [
        (i.number, i.title) for i in PIOTRKOW_TREE
    ]


def test_doubled_numbers_that_disagree_are_reported_with_both() -> None:
    # The notice skips a number the page's list does not: the notice's own numbers are used.
    text = doubled(PIOTRKOW, "{n}. ", "{a}) ").replace("9. 9. ", "9. 10. ")
    text = text.replace("10. 10. ", "10. 11. ").replace("11. 11. ", "11. 12. ")
    text = text.replace("12. 12. ", "12. 13. ")
    found = problems(text)
    assert list(found) == [20]
    assert found[20] == (
        "expected item 9 after item 8.2, found 10; the line has two numbers, "
        '"9." from the pasted list and its own "10.", and its own is used: correct it, '
        "or remove one of the two"
    )
