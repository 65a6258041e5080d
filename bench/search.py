"""Archive search speed on a synthetic 20-year archive: index build time and query p50/p95/max.

Builds ~1,400 meetings, ~10,000 agenda items and ~15,000 nominal votes of 23 councillors by bulk
SQL into a temporary archive (the migration's triggers mark every session dirty, as real writes
would), indexes it, then runs ~1,000 Polish queries with inflected forms.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from archive.index import ArchiveIndex

MEETINGS = 1400
ITEMS_PER_MEETING = 7
VOTES_PER_MEETING = 11
COUNCILLORS = 23
QUERIES = 1000

SUBJECTS = [
    "zmiany budżetu miasta na {y} rok",
    "zmian w Wieloletniej Prognozie Finansowej Miasta",
    "określenia wysokości stawek podatku od nieruchomości",
    "nadania nazwy rondu u zbiegu ulic {s} i {t}",
    "nadania nazwy ulicy {s}",
    "przyjęcia programu współpracy z organizacjami pozarządowymi",
    "zbycia nieruchomości położonej przy ulicy {s}",
    "uchwalenia miejscowego planu zagospodarowania przestrzennego rejonu ulicy {s}",
    "ustalenia sieci szkół podstawowych",
    "opłat za korzystanie z komunikacji miejskiej",
    "udzielenia pomocy finansowej Powiatowi Piotrkowskiemu",
    "regulaminu utrzymania czystości i porządku na terenie gminy",
    "przyznania dotacji na prace konserwatorskie przy zabytku",
    "rozpatrzenia skargi na działalność Prezydenta Miasta",
    "absolutorium dla Prezydenta Miasta za {y} rok",
    "remontu dróg gminnych",
    "taryfy za zbiorowe zaopatrzenie w wodę",
]
STREETS = [
    "Słowackiego",
    "Wojska Polskiego",
    "Sienkiewicza",
    "Próchnika",
    "Łódzkiej",
    "Żeromskiego",
    "Kopernika",
    "Rolniczej",
    "Wolborskiej",
    "Piłsudskiego",
]
FIRST = ["Jan", "Anna", "Piotr", "Maria", "Łukasz", "Katarzyna", "Tomasz", "Małgorzata"]
LAST = [
    "Kowalski",
    "Nowak",
    "Wiśniewski",
    "Wójcik",
    "Kowalczyk",
    "Kamiński",
    "Lewandowski",
    "Zieliński",
    "Szymański",
    "Woźniak",
    "Dąbrowski",
    "Kozłowski",
    "Jankowski",
    "Mazur",
    "Kwiatkowski",
    "Krawczyk",
    "Piotrowski",
    "Grabowski",
    "Nowakowski",
    "Pawłowski",
    "Michalski",
    "Nowicki",
    "Adamczyk",
    "Dudek",
    "Zając",
    "Wieczorek",
    "Jabłoński",
]
QUERY_FORMS = [
    "budżet",
    "budżetu miasta",
    "budzet",
    "zmiana budżetu {y}",
    "stawki podatku",
    "stawek podatku od nieruchomości",
    "podatek od nieruchomosci",
    "nazwa ronda",
    "nadanie nazwy ulicy {s}",
    "ulica {s}",
    "plan zagospodarowania przestrzennego",
    "planu zagospodarowania",
    "sieć szkół",
    "szkoły podstawowe",
    "komunikacja miejska",
    "opłaty za komunikację",
    "skarga na prezydenta",
    "absolutorium {y}",
    "drogi gminne",
    "remont drogi",
    "woda taryfa",
    "dotacja zabytek",
    "uchwała nr {r}",
    "{r}",
    "Kowalskiego",
    "radny Nowak",
    "Wiśniewskiej",
    "Zielińskiego",
    "sesja rady miasta",
    "{n} sesja",
    "sesja nadzwyczajna",
    "komisja budżetowa",
    "wolne wnioski",
    "otwarcie sesji",
]


def roman(n: int) -> str:
    """n in Roman numerals."""
    out = ""
    for value, letters in (
        (100, "C"),
        (90, "XC"),
        (50, "L"),
        (40, "XL"),
        (10, "X"),
        (9, "IX"),
        (5, "V"),
        (4, "IV"),
        (1, "I"),
    ):
        while n >= value:
            out += letters
            n -= value
    return out


def build(index: ArchiveIndex, rng: random.Random) -> None:
    """Fill the archive by bulk SQL, in one transaction."""
    conn = index._conn
    start = datetime(2006, 1, 10, 9, tzinfo=UTC)
    names = [f"{rng.choice(FIRST)} {last}" for last in LAST]
    conn.execute("BEGIN")
    councillor_ids = []
    for term in range(5):
        for name in rng.sample(names, COUNCILLORS):
            cur = conn.execute(
                "INSERT INTO councillors (term, name, caucus) VALUES (?,?,?)",
                (str(term), name, rng.choice(["KO", "PiS", "Lewica", "Niezależni"])),
            )
            councillor_ids.append((term, int(cur.lastrowid or 0), name))
    for m in range(MEETINGS):
        at = start + timedelta(days=m * 5.2)
        y = at.year
        number = roman(m // 2 + 1)
        committee = m % 2 == 1
        title = (
            f"Posiedzenie Komisji {rng.choice(['Budżetowej', 'Oświaty', 'Gospodarki'])}"
            if committee
            else f"{number} {'Nadzwyczajna ' if m % 10 == 4 else ''}Sesja Rady Miasta"
            " Piotrkowa Trybunalskiego"
        )
        cur = conn.execute(
            "INSERT INTO sessions (chamber, title, kind, scheduled_start, scheduled_end, state,"
            " started_at, ended_at, agenda_text, created_at) VALUES (?,?,?,?,?,'ended',?,?,'',?)",
            (
                "sala",
                title,
                "committee" if committee else "session",
                at.isoformat(),
                (at + timedelta(hours=4)).isoformat(),
                at.isoformat(),
                (at + timedelta(hours=3)).isoformat(),
                at.isoformat(),
            ),
        )
        sid = int(cur.lastrowid or 0)
        # One run of 60 three-minute segments: a timeline to place markers and votes on.
        run = conn.execute(
            "INSERT INTO runs (session_id, camera, ordinal, dir, started_at, anchor_at,"
            " media_origin, ended_at) VALUES (?, 'main', 1, 'run-0001', ?, ?, 0, ?)",
            (sid, at.isoformat(), at.isoformat(), (at + timedelta(hours=3)).isoformat()),
        ).lastrowid
        for seq in range(60):
            seg = conn.execute(
                "INSERT INTO segments (run_id, session_id, chamber, seq, file, media_start,"
                " duration, observed_at, size_bytes, chamber_seq, chamber_disc)"
                " VALUES (?,?,'sala',?,?,?,180,?,1,?,0)",
                (
                    run,
                    sid,
                    seq,
                    f"seg-{seq:06d}.ts",
                    seq * 180.0,
                    (at + timedelta(seconds=seq * 180 + 180)).isoformat(),
                    m * 60 + seq,
                ),
            ).lastrowid
            conn.execute(
                "INSERT INTO program (chamber, seq, disc, segment_id, session_id)"
                " VALUES ('sala',?,?,?,?)",
                (m * 60 + seq, m, seg, sid),
            )
        items = ["Otwarcie sesji i stwierdzenie quorum"]
        items += [
            "Podjęcie uchwały w sprawie "
            + rng.choice(SUBJECTS).format(y=y, s=rng.choice(STREETS), t=rng.choice(STREETS))
            for _ in range(ITEMS_PER_MEETING - 3)
        ]
        items += ["Wolne wnioski", "Zamknięcie obrad"]
        item_ids = []
        for pos, text in enumerate(items):
            iid = conn.execute(
                "INSERT INTO agenda_items (session_id, position, depth, number, title)"
                " VALUES (?,?,0,?,?)",
                (sid, pos, str(pos + 1), text),
            ).lastrowid
            item_ids.append(iid)
            conn.execute(
                "INSERT INTO markers (session_id, kind, at, item_id) VALUES (?,?,?,?)",
                (sid, "item_start", (at + timedelta(minutes=pos * 20)).isoformat(), iid),
            )
        term = min(4, (y - 2006) // 5)
        voters = [(cid, name) for t, cid, name in councillor_ids if t == term]
        for v in range(VOTES_PER_MEETING):
            iid = item_ids[1 + v % (ITEMS_PER_MEETING - 3)]
            subject = (
                f"Uchwała nr {number}/{m * 11 + v}/{y % 100:02d} w sprawie "
                + (items[1 + v % (ITEMS_PER_MEETING - 3)].split("w sprawie ", 1)[1])
            )
            vid = conn.execute(
                "INSERT INTO votes (session_id, item_id, subject, at, source, created_at)"
                " VALUES (?,?,?,?,'console',?)",
                (
                    sid,
                    iid,
                    subject,
                    (at + timedelta(minutes=25 + v * 10)).isoformat(),
                    at.isoformat(),
                ),
            ).lastrowid
            conn.executemany(
                "INSERT INTO vote_choices (vote_id, councillor_id, name, caucus, choice)"
                " VALUES (?,?,?,'KO',?)",
                [
                    (vid, cid, name, rng.choice(["for", "for", "against", "abstain"]))
                    for cid, name in voters
                ],
            )
    conn.execute("COMMIT")


def queries(rng: random.Random) -> list[str]:
    """Realistic queries: inflected, some without diacritics, some resolution numbers."""
    found = []
    for _ in range(QUERIES):
        m = rng.randrange(MEETINGS)
        y = 2006 + m * 52 // 3650
        q = rng.choice(QUERY_FORMS).format(
            y=y,
            s=rng.choice(STREETS),
            n=roman(m // 2 + 1),
            r=f"{roman(m // 2 + 1)}/{m * 11 + rng.randrange(11)}/{y % 100:02d}",
        )
        found.append(q.lower() if rng.random() < 0.3 else q)
    return found


def main() -> None:
    """Build, index, query; print the figures."""
    rng = random.Random(2026)
    with tempfile.TemporaryDirectory() as tmp:
        index = ArchiveIndex(Path(tmp) / "obrady.sqlite3")
        began = time.perf_counter()
        build(index, rng)
        built = time.perf_counter() - began
        counts = {
            t: index._conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("sessions", "agenda_items", "votes", "vote_choices")
        }
        began = time.perf_counter()
        indexed = index.reindex_search()
        indexing = time.perf_counter() - began
        docs = index._conn.execute("SELECT COUNT(*) FROM search_docs").fetchone()[0]
        times, empty = [], 0
        for q in queries(rng):
            t0 = time.perf_counter()
            hits = index.search(q)
            times.append((time.perf_counter() - t0) * 1000)
            empty += not hits
        times.sort()
        size = (Path(tmp) / "obrady.sqlite3").stat().st_size
        index.close()
    print(f"archive: {counts} built in {built:.1f} s, database {size / 1e6:.0f} MB")
    print(f"index: {indexed} sessions, {docs} documents in {indexing:.1f} s")
    print(
        f"{len(times)} queries: p50 {statistics.median(times):.2f} ms, "
        f"p95 {times[int(len(times) * 0.95)]:.2f} ms, max {times[-1]:.2f} ms; "
        f"{empty} without results"
    )


if __name__ == "__main__":
    main()
