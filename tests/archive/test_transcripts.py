"""Transcript store: automatic lines, staff corrections that a re-run never overwrites,
recognition progress, and the published WebVTT captions and plain-text transcript."""

from __future__ import annotations

import re
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from archive.agenda import parse_agenda
from archive.index import ArchiveIndex, Conflict, NotFound
from archive.transcripts import InvalidTranscript, captions_vtt

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
AGENDA = "1. Otwarcie sesji.\n2. Zmiany budżetu miasta.\n"
SEGMENTS = 15  # of 2 s: a recording of 30 s


@dataclass(frozen=True)
class Line:
    """A recognised line as the recogniser hands it over."""

    start: float
    end: float
    text: str


FIRST_RUN = [
    Line(0.5, 3.0, "Otwieram sesję Rady Miasta."),
    Line(3.2, 6.0, "Pojęcie uchwały w prania z nany budzę tu nasta."),
    Line(6.5, 9.0, "Głos zabiera radny Krzysztof Grzegorczyk."),
    Line(9.5, 12.0, "Napisy stworzone przez społeczność."),
]


@pytest.fixture
def index(tmp_path: Path) -> Iterator[ArchiveIndex]:
    idx = ArchiveIndex(tmp_path / "a.sqlite3")
    yield idx
    idx.close()


def recorded(index: ArchiveIndex) -> int:
    """An ended session with 30 s of recording from T0."""
    sid = index.create_session(
        chamber="sala",
        title="LXII sesja Rady Miasta",
        kind="session",
        scheduled_start=T0,
        scheduled_end=T0 + timedelta(hours=2),
        agenda_text=AGENDA,
        agenda=parse_agenda(AGENDA),
        created_by="op",
    ).id
    index.begin_live(sid, T0)
    run = index.add_run(sid, 1, "run-0001", T0)
    for seq in range(SEGMENTS):
        index.add_segment(
            run, seq, f"seg-{seq:06d}.ts", 2.0 * seq, 2.0, T0 + timedelta(seconds=2 * seq + 2), 1
        )
    index.end(sid, T0 + timedelta(seconds=30), "op")
    return sid


def texts(index: ArchiveIndex, sid: int) -> list[str]:
    return [line.text for line in index.transcript(sid)]


def test_a_rerun_never_overwrites_a_corrected_line(index: ArchiveIndex) -> None:
    sid = recorded(index)
    first = index.replace_automatic(sid, FIRST_RUN)
    assert (first.stored, first.removed, first.dropped) == (4, 0, 0)
    wrong = index.transcript(sid)[1]
    assert wrong.source == "automatic" and wrong.automatic_text == wrong.text

    fixed = index.correct_line(
        sid, wrong.id, "Podjęcie uchwały w sprawie zmiany budżetu miasta.", "anna"
    )
    assert fixed.corrected and fixed.corrected_by == "anna" and fixed.corrected_at is not None
    assert fixed.automatic_text == "Pojęcie uchwały w prania z nany budzę tu nasta."
    # An invented line is emptied by staff: hidden, but kept so that it cannot come back.
    invented = index.transcript(sid)[3]
    index.correct_line(sid, invented.id, "", "anna")

    second = index.replace_automatic(
        sid,
        [
            Line(0.4, 3.1, "Otwieram sesję Rady Miasta!"),
            Line(3.0, 6.2, "Podjęcie uchwały w sprawie zmiany budżetu."),  # overlaps the fix
            Line(6.4, 9.1, "Głos zabiera radny Krzysztof Grzegorczyk."),
            Line(9.4, 12.1, "Napisy stworzone przez społeczność."),  # overlaps the emptied one
            Line(20.0, 22.0, "Nowe zdanie."),
        ],
    )
    assert (second.removed, second.stored, second.dropped, second.corrected_kept) == (2, 3, 2, 2)
    assert texts(index, sid) == [
        "Otwieram sesję Rady Miasta!",
        "Podjęcie uchwały w sprawie zmiany budżetu miasta.",
        "Głos zabiera radny Krzysztof Grzegorczyk.",
        "Nowe zdanie.",
    ]
    assert index.get_line(sid, wrong.id) == fixed
    assert [line.text for line in index.transcript(sid, include_empty=True)].count("") == 1


def test_a_correction_keeps_who_when_and_the_previous_text(index: ArchiveIndex) -> None:
    sid = recorded(index)
    index.replace_automatic(sid, FIRST_RUN)
    line = index.transcript(sid)[2]
    index.correct_line(sid, line.id, "Głos zabiera radny Grzegorczyk.", "anna")
    index.correct_line(
        sid, line.id, "Głos zabiera radny Krzysztof Grzegorczyk.", "jan", start=6.6, end=8.8
    )
    history = index.line_history(sid, line.id)
    assert [(e.user_name, e.before_text, e.after_text) for e in history] == [
        ("anna", "Głos zabiera radny Krzysztof Grzegorczyk.", "Głos zabiera radny Grzegorczyk."),
        ("jan", "Głos zabiera radny Grzegorczyk.", "Głos zabiera radny Krzysztof Grzegorczyk."),
    ]
    assert (history[1].before_start, history[1].after_start, history[1].after_end) == (
        6.5,
        6.6,
        8.8,
    )
    now = index.get_line(sid, line.id)
    assert (now.corrected_by, now.start, now.end) == ("jan", 6.6, 8.8)
    assert now.automatic_text == "Głos zabiera radny Krzysztof Grzegorczyk."


def test_a_line_added_by_hand_replaces_the_automatic_lines_it_covers(index: ArchiveIndex) -> None:
    sid = recorded(index)
    index.replace_automatic(sid, FIRST_RUN)
    added = index.add_line(sid, 9.0, 12.5, "Dziękuję, przechodzimy do punktu drugiego.", "anna")
    assert added.corrected and added.automatic_text is None
    assert texts(index, sid)[-1] == "Dziękuję, przechodzimy do punktu drugiego."
    assert len(index.transcript(sid)) == 4
    assert index.line_history(sid, added.id)[0].before_text is None


def test_a_rerun_of_one_stretch_leaves_the_rest(index: ArchiveIndex) -> None:
    sid = recorded(index)
    index.replace_automatic(sid, FIRST_RUN)
    index.replace_automatic(sid, [Line(6.5, 9.0, "Głos ma radny Grzegorczyk.")], within=(6.0, 9.2))
    assert texts(index, sid) == [
        "Otwieram sesję Rady Miasta.",
        "Pojęcie uchwały w prania z nany budzę tu nasta.",
        "Głos ma radny Grzegorczyk.",
        "Napisy stworzone przez społeczność.",
    ]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([Line(-1.0, 2.0, "x")], "before the recording"),
        ([Line(3.0, 3.0, "x")], "end after it starts"),
        ([Line(float("nan"), 2.0, "x")], "finite"),
        ([Line(1.0, 2.0, "x" * 2001)], "at most 2000"),
    ],
)
def test_bad_lines_are_refused_and_nothing_changes(
    index: ArchiveIndex, lines: list[Line], message: str
) -> None:
    sid = recorded(index)
    index.replace_automatic(sid, FIRST_RUN)
    with pytest.raises(InvalidTranscript, match=message):
        index.replace_automatic(sid, [Line(1.0, 2.0, "ok"), *lines])
    assert len(index.transcript(sid)) == 4


def test_corrections_are_checked(index: ArchiveIndex) -> None:
    sid = recorded(index)
    index.replace_automatic(sid, FIRST_RUN)
    line = index.transcript(sid)[0]
    with pytest.raises(InvalidTranscript, match="who made it"):
        index.correct_line(sid, line.id, "Tekst.", "  ")
    with pytest.raises(InvalidTranscript, match="within the recording"):
        index.correct_line(sid, line.id, "Tekst.", "anna", end=45.0)
    with pytest.raises(NotFound):
        index.correct_line(sid, 9999, "Tekst.", "anna")
    other = recorded(index)
    with pytest.raises(NotFound):
        index.correct_line(other, line.id, "Tekst.", "anna")
    with pytest.raises(NotFound):
        index.replace_automatic(9999, FIRST_RUN)
    assert index.get_line(sid, line.id).source == "automatic"


def test_progress_goes_from_queued_to_done_or_failed(index: ArchiveIndex) -> None:
    sid, other = recorded(index), recorded(index)
    assert index.transcription_progress(sid) is None
    queued = index.queue_transcription(sid, 30.0)
    assert (queued.state, queued.fraction, queued.total_seconds) == ("queued", 0.0, 30.0)
    index.queue_transcription(other)
    assert index.transcription_queue() == [sid, other]

    index.start_transcription(sid, 30.0, model="whisper-base")
    with pytest.raises(Conflict):
        index.queue_transcription(sid)
    finish = T0 + timedelta(minutes=5)
    running = index.update_transcription(sid, 12.0, estimated_finish=finish)
    assert (running.state, running.fraction, running.estimated_finish) == ("running", 0.4, finish)
    assert running.model == "whisper-base" and running.started_at is not None
    done = index.finish_transcription(sid)
    assert (done.state, done.done_seconds, done.fraction, done.error) == ("done", 30.0, 1.0, None)
    with pytest.raises(Conflict):
        index.update_transcription(sid, 13.0)

    index.start_transcription(other, 60.0)
    failed = index.fail_transcription(other, "ffmpeg could not decode\nthe sound")
    assert (failed.state, failed.error) == ("failed", "ffmpeg could not decode the sound")
    assert index.transcription_queue() == []
    assert {p.session_id: p.state for p in index.transcription_progresses()} == {
        sid: "done",
        other: "failed",
    }
    with pytest.raises(InvalidTranscript, match="zero or more"):
        index.queue_transcription(sid, -1)


def test_a_recognition_interrupted_by_a_stop_is_queued_again(index: ArchiveIndex) -> None:
    sid = recorded(index)
    index.start_transcription(sid, 30.0)
    index.update_transcription(sid, 10.0)
    assert index.requeue_interrupted() == [sid]
    progress = index.transcription_progress(sid)
    assert progress is not None and (progress.state, progress.done_seconds) == ("queued", 0.0)
    assert index.transcription_queue() == [sid]


def test_after_live_captions_only_the_rest_is_recognised_unless_all_is_asked_for(
    index: ArchiveIndex,
) -> None:
    sid = recorded(index)
    assert index.heard_ranges(sid) == []
    # Windows as live captions hear them: end to end, and again after a skip.
    for low, high in ((0.0, 6.2), (6.2, 12.9), (20.0, 26.0)):
        index.mark_heard(sid, low, high)
    assert index.heard_ranges(sid) == [(0.0, 12.9), (20.0, 26.0)]
    with pytest.raises(InvalidTranscript):
        index.mark_heard(sid, 5.0, 4.0)
    assert index.heard_ranges(sid) == [(0.0, 12.9), (20.0, 26.0)]
    # Queued after the session: only the rest is to be recognised ...
    progress = index.queue_transcription(sid, 30.0)
    assert progress.pass_ == "rest" and progress.completed_at is None
    index.start_transcription(sid, 30.0)
    assert index.transcription_progress(sid).pass_ == "rest"  # type: ignore[union-attr]
    with pytest.raises(Conflict):
        index.queue_transcription(sid, 30.0, full=True)
    done = index.finish_transcription(sid)
    assert done.completed_at is not None and done.completed_at == done.finished_at
    # ... and then the whole of it, when asked for; what live captions heard is still known,
    # and the transcript stays complete since the first recognition.
    again = index.queue_transcription(sid, 30.0, full=True)
    assert again.pass_ == "full" and again.completed_at == done.completed_at
    assert index.heard_ranges(sid) == [(0.0, 12.9), (20.0, 26.0)]
    # A session live captions never heard is recognised whole.
    other = recorded(index)
    assert index.queue_transcription(other, 30.0).pass_ == "full"


CUE_TIMING = re.compile(
    r"^(\d{2,}):([0-5]\d):([0-5]\d)\.(\d{3}) --> (\d{2,}):([0-5]\d):([0-5]\d)\.(\d{3})$"
)


def parse_vtt(text: str) -> list[tuple[str, float, float, str]]:
    """Check text against the WebVTT file syntax (header, blocks, cue timings, escaped
    payloads, start times in order) and return its cues as (id, start, end, payload)."""

    def seconds(parts: tuple[str, ...]) -> float:
        hours, minutes, secs, millis = (int(p) for p in parts)
        return hours * 3600 + minutes * 60 + secs + millis / 1000

    assert text.startswith("WEBVTT\n\n") or text == "WEBVTT\n", text[:20]
    cues = []
    for block in text.split("\n\n")[1:]:
        block = block.strip("\n")
        if not block:
            continue
        rows = block.split("\n")
        if rows[0] == "NOTE" or rows[0].startswith("NOTE "):
            assert "-->" not in block
            continue
        assert len(rows) >= 3, block
        cue_id, timing, payload = rows[0], rows[1], rows[2:]
        assert "-->" not in cue_id and cue_id.strip() == cue_id
        match = CUE_TIMING.match(timing)
        assert match, timing
        start, end = seconds(match.groups()[:4]), seconds(match.groups()[4:])
        assert end > start, timing
        for row in payload:
            assert row.strip() and "-->" not in row
            assert "<" not in row and ">" not in row
            assert not re.search(r"&(?!amp;|lt;|gt;)", row), row
        cues.append((cue_id, start, end, "\n".join(payload)))
    starts = [cue[1] for cue in cues]
    assert starts == sorted(starts)
    assert len({cue[0] for cue in cues}) == len(cues)
    return cues


def test_captions_are_valid_webvtt_within_the_recording(
    index: ArchiveIndex, tmp_path: Path
) -> None:
    sid = recorded(index)
    index.replace_automatic(
        sid,
        [
            *FIRST_RUN,
            Line(12.5, 14.0, "Koszt <b>remontu</b> & utrzymania --> 2 mln zł."),
            Line(
                14.0,
                20.0,
                "Podjęcie uchwały zmieniającej uchwałę nr LVII/712/22 w sprawie określenia "
                "wysokości stawek podatku od nieruchomości na terenie miasta w roku 2026.",
            ),
            Line(28.0, 33.0, "Zamykam sesję."),  # runs past the end of the recording
        ],
    )
    index.correct_line(sid, index.transcript(sid)[3].id, "", "anna")
    vtt = index.transcript_vtt(sid)
    cues = parse_vtt(vtt)
    assert all(0 <= start < end <= 30.0 for _, start, end, _ in cues)
    assert cues[0] == ("line-1", 0.5, 3.0, "Otwieram sesję Rady Miasta.")
    payloads = [payload.replace("\n", " ") for *_, payload in cues]
    assert "Koszt &lt;b&gt;remontu&lt;/b&gt; &amp; utrzymania → 2 mln zł." in payloads
    assert not any("Napisy" in p for p in payloads)
    # The long line is shown as cues of two rows of at most 42 characters, one after another.
    long_cues = [cue for cue in cues if cue[0].startswith("line-6-")]
    assert len(long_cues) == 2 and long_cues[0][1] == 14.0 and long_cues[-1][2] == 20.0
    assert all(len(row) <= 42 for cue in long_cues for row in cue[3].split("\n"))
    assert all(len(cue[3].split("\n")) <= 2 for cue in long_cues)
    assert cues[-1][2] == 30.0 and cues[-1][3] == "Zamykam sesję."
    assert "NOTE\nNapisy rozpoznane automatycznie" in vtt
    # ffmpeg's WebVTT reader reads every cue.
    path = tmp_path / "captions.vtt"
    path.write_text(vtt, encoding="utf-8")
    srt = subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(path), "-f", "srt", "-"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert srt.count(" --> ") == len(cues)
    assert "Otwieram sesję Rady Miasta." in srt


def test_redacted_ranges_are_left_out_of_captions_and_text(index: ArchiveIndex) -> None:
    sid = recorded(index)
    index.replace_automatic(sid, FIRST_RUN)
    cues = parse_vtt(index.transcript_vtt(sid, hidden=[(6.2, 8.0)]))
    assert [cue[3].replace("\n", " ") for cue in cues] == [
        "Otwieram sesję Rady Miasta.",
        "Pojęcie uchwały w prania z nany budzę tu nasta.",
        "Napisy stworzone przez społeczność.",
    ]
    text = index.transcript_text(sid, hidden=[(6.2, 8.0)])
    assert "Grzegorczyk" not in text


def test_empty_transcript_is_still_valid_webvtt(index: ArchiveIndex) -> None:
    sid = recorded(index)
    assert parse_vtt(index.transcript_vtt(sid)) == []
    assert captions_vtt([], None) == "WEBVTT\n"


def test_plain_text_transcript_has_times_and_chapter_headings(index: ArchiveIndex) -> None:
    sid = recorded(index)
    index.replace_automatic(sid, FIRST_RUN)
    index.correct_line(
        sid, index.transcript(sid)[1].id, "Podjęcie uchwały w sprawie zmiany budżetu.", "anna"
    )
    text = index.transcript_text(
        sid, chapters=[(0.0, "1. Otwarcie sesji"), (3.1, "2. Zmiany budżetu miasta")]
    )
    assert text == (
        "LXII sesja Rady Miasta\n"
        "Transkrypcja rozpoznana automatycznie; poprawione wiersze: 1 z 4.\n"
        "\n"
        "1. Otwarcie sesji\n"
        "[00:00:00] Otwieram sesję Rady Miasta.\n"
        "\n"
        "2. Zmiany budżetu miasta\n"
        "[00:00:03] Podjęcie uchwały w sprawie zmiany budżetu.\n"
        "[00:00:06] Głos zabiera radny Krzysztof Grzegorczyk.\n"
        "[00:00:09] Napisy stworzone przez społeczność.\n"
    )


def test_a_spoken_phrase_is_found_at_its_line(index: ArchiveIndex) -> None:
    sid = recorded(index)
    index.replace_automatic(sid, FIRST_RUN)
    hits = [line for line in index.transcript(sid) if "Grzegorczyk" in line.text]
    assert [(line.start, line.end) for line in hits] == [(6.5, 9.0)]


def test_the_schema_refuses_a_corrected_line_without_its_author(index: ArchiveIndex) -> None:
    sid = recorded(index)
    with pytest.raises(sqlite3.IntegrityError):
        index._conn.execute(
            "INSERT INTO transcript_lines (session_id, start_seconds, end_seconds, text, source,"
            " created_at) VALUES (?, 0, 1, 'x', 'corrected', '2026-01-01T00:00:00+00:00')",
            (sid,),
        )
    assert index._conn.execute("PRAGMA user_version").fetchone()[0] >= 7
