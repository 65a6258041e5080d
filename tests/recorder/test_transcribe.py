"""Transcription: a short recording of synthetic Polish speech (espeak-ng, cut into MPEG-TS
segments by ffmpeg as the recorder cuts them) is recognised by the real Whisper base model,
prompted with its agenda item; a missing or broken model folder is reported clearly."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from recorder.ffmpeg import concat_list
from recorder.transcribe import (
    LIVE_CUT_SECONDS,
    SAMPLE_RATE,
    AgendaSpan,
    AudioUnavailable,
    ModelUnavailable,
    Progress,
    Recording,
    SessionVocabulary,
    Stretch,
    TimedLine,
    Transcriber,
    Window,
    build_prompt,
    clean_text,
    clip_ranges,
    collapse_repeats,
    extract_argv,
    find_resolution_numbers,
    plan_stretches,
    quietest_moment,
    render_prompt,
    split_sentences,
)
from recorder.whisper_model import (
    MODEL_FILES,
    ModelFile,
    ModelFilesError,
    assemble_model,
    check_model_dir,
    sha256_of,
)

ROOT = Path(__file__).resolve().parents[2]
MODEL_DIR = ROOT / ".cache" / "whisper-base"
TITLE = "Podjęcie uchwały w sprawie zmiany budżetu miasta na rok 2026"
SPOKEN = "Podjęcie uchwały w sprawie zmiany budżetu miasta."
LEAD_SECONDS = 1.5
TAIL_SECONDS = 1.0


def run(argv: list[str]) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def model_dir() -> Path:
    """Whisper base, assembled from its pinned PyPI packages (no download) and verified."""
    return assemble_model(MODEL_DIR)


@pytest.fixture(scope="module")
def transcriber(model_dir: Path) -> Transcriber:
    # One thread: the tests share this machine with others; the result does not depend on it.
    found = Transcriber(model_dir, cpu_threads=1, nice=0)
    found.load()
    return found


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Recording, float]]:
    """Silence, then SPOKEN, then silence, with a picture, as 2 s MPEG-TS segments with AAC
    sound; and the moment the speech starts."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed (apt-get install espeak-ng)")
    folder = tmp_path_factory.mktemp("speech")
    speech = folder / "speech.wav"
    run(["espeak-ng", "-v", "pl", "-s", "150", "-w", str(folder / "raw.wav"), SPOKEN])
    run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(folder / "raw.wav"),
         "-ac", "1", "-ar", str(SAMPLE_RATE), str(speech)])  # fmt: skip
    with wave.open(str(speech)) as handle:
        samples = np.frombuffer(handle.readframes(handle.getnframes()), dtype=np.int16)
    voiced = np.flatnonzero(np.abs(samples) > 1000)
    onset = LEAD_SECONDS + voiced[0] / SAMPLE_RATE
    lead = np.zeros(int(LEAD_SECONDS * SAMPLE_RATE), dtype=np.int16)
    tail = np.zeros(int(TAIL_SECONDS * SAMPLE_RATE), dtype=np.int16)
    with wave.open(str(folder / "padded.wav"), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(SAMPLE_RATE)
        handle.writeframes(np.concatenate([lead, samples, tail]).tobytes())
    run(["ffmpeg", "-nostdin", "-loglevel", "error",
         "-f", "lavfi", "-i", "color=c=gray:s=160x90:r=10", "-i", str(folder / "padded.wav"),
         "-map", "0:v", "-map", "1:a", "-shortest",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "20",
         "-c:a", "aac", "-ar", "48000", "-ac", "2",
         "-f", "segment", "-segment_time", "2", "-segment_format", "mpegts",
         "-segment_list", str(folder / "segments.csv"), "-segment_list_type", "csv",
         str(folder / "seg-%06d.ts")])  # fmt: skip
    files = []
    for row in (folder / "segments.csv").read_text().split():
        name, start, end = row.split(",")
        files.append((folder / name, float(end) - float(start)))
    yield Recording(tuple(files)), onset


def spans_of(total: float) -> list[AgendaSpan]:
    return [AgendaSpan(0.0, 0.8, "Otwarcie sesji"), AgendaSpan(0.8, total, TITLE)]


VOCABULARY = SessionVocabulary(
    "LXII sesja Rady Miasta", ("Krzysztof Grzegorczyk", "Halina Wróblewska"), ("LXII/801/25",)
)


def test_a_spoken_agenda_title_is_found_at_its_time(
    transcriber: Transcriber, recording: tuple[Recording, float]
) -> None:
    media, onset = recording
    reports: list[Progress] = []
    finished: list[tuple[Stretch, list[TimedLine]]] = []
    lines = transcriber.transcribe(
        media,
        spans_of(media.seconds),
        VOCABULARY,
        on_progress=reports.append,
        on_lines=lambda stretch, found: finished.append((stretch, found)),
    )
    assert lines, "nothing was recognised"
    hits = [line for line in lines if "budżetu miasta" in line.text.lower()]
    assert hits, [line.text for line in lines]
    assert abs(hits[0].start - onset) < 1.0, (hits[0], onset)
    for line in lines:
        assert 0 <= line.start < line.end <= media.seconds + 0.01
    # Progress rises to the end of the recording and estimates a finish along the way.
    done = [report.done_seconds for report in reports]
    assert done == sorted(done) and done[0] == 0
    assert reports[-1].fraction == pytest.approx(1.0, abs=0.02)
    assert any(report.estimated_finish is not None for report in reports[1:])
    # Each stretch's lines are handed over as it finishes, in order.
    assert [s.title for s, _ in finished][-1] == TITLE
    assert [line for _, found in finished for line in found] == lines


def test_the_same_recording_gives_the_same_lines(
    transcriber: Transcriber, recording: tuple[Recording, float]
) -> None:
    media, _ = recording
    first = transcriber.transcribe(media, spans_of(media.seconds), VOCABULARY)
    again = transcriber.transcribe(media, spans_of(media.seconds), VOCABULARY)
    assert first == again


def test_stretches_to_hear_are_kept_within_the_recording() -> None:
    assert clip_ranges([(20.0, 40.0), (-1.0, 5.0), (9.0, 9.2), (28.5, 31.0)], 30.0) == [
        (0.0, 5.0),
        (20.0, 30.0),
        (28.5, 30.0),
    ]
    assert clip_ranges([(31.0, 40.0)], 30.0) == []


def test_a_live_window_ends_in_a_pause_and_the_next_one_goes_on_from_there(
    transcriber: Transcriber, recording: tuple[Recording, float]
) -> None:
    media, _ = recording
    spans = spans_of(media.seconds)
    # The first window, while the session runs: it ends in its last LIVE_CUT_SECONDS, and its
    # lines end by where it ended.
    first = transcriber.transcribe_window(media, 0.0, spans, VOCABULARY)
    assert media.seconds - LIVE_CUT_SECONDS - 0.01 <= first.end <= media.seconds, first.end
    assert all(0 <= line.start < line.end <= first.end + 0.01 for line in first.lines)
    # The last one hears the rest, to the end.
    rest = transcriber.transcribe_window(media, first.end, spans, VOCABULARY, final=True)
    assert rest.end == pytest.approx(media.seconds, abs=0.1)
    assert all(first.end - 0.01 <= line.start < line.end for line in rest.lines)
    # The cut fell in a pause, not in the sentence: one of the two heard it whole.
    texts = [" ".join(line.text for line in w.lines).lower() for w in (first, rest)]
    assert sum("podjęcie" in t and "budżetu" in t for t in texts) == 1, texts
    assert " ".join(texts).count("budżetu") == 1, texts
    # Nothing left to hear: an empty window where it started.
    assert transcriber.transcribe_window(media, rest.end, spans, VOCABULARY, final=True) == (
        Window([], rest.end)
    )


def test_only_the_stretches_asked_for_are_heard(
    transcriber: Transcriber, recording: tuple[Recording, float]
) -> None:
    media, onset = recording
    reports: list[Progress] = []
    # Live captions heard the speech already: only the silence before it is left.
    lines = transcriber.transcribe(
        media, spans_of(media.seconds), VOCABULARY, only=[(0.0, onset - 0.2)],
        on_progress=reports.append,
    )  # fmt: skip
    assert all(line.end <= onset - 0.2 + 0.01 for line in lines), lines
    assert reports[-1].total_seconds == pytest.approx(onset - 0.2, abs=0.01)
    assert reports[-1].fraction == pytest.approx(1.0, abs=0.02)
    # And the speech alone, asked for on its own.
    spoken = transcriber.transcribe(
        media, spans_of(media.seconds), VOCABULARY, only=[(onset - 0.5, media.seconds)]
    )
    assert "budżetu" in " ".join(line.text for line in spoken).lower(), spoken
    assert all(line.start >= onset - 0.5 - 0.01 for line in spoken), spoken


async def test_transcribing_in_the_background_leaves_the_event_loop_free(
    model_dir: Path, recording: tuple[Recording, float]
) -> None:
    media, _ = recording
    worker = Transcriber(model_dir, cpu_threads=1)
    ticks = 0
    reports: list[Progress] = []

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        await worker.start()
        lines = await worker.transcribe_async(
            media, spans_of(media.seconds), VOCABULARY, on_progress=reports.append
        )
    finally:
        ticker.cancel()
        await asyncio.gather(ticker, return_exceptions=True)
        await worker.close()
    assert any("budżetu" in line.text.lower() for line in lines)
    assert ticks >= 10, "the event loop was blocked while the model loaded and ran"
    assert reports and reports[-1].fraction == pytest.approx(1.0, abs=0.02)


async def test_a_cancelled_transcription_stops_its_worker(
    model_dir: Path, recording: tuple[Recording, float]
) -> None:
    media, _ = recording
    worker = Transcriber(model_dir, cpu_threads=1)
    await worker.start()
    task = asyncio.create_task(worker.transcribe_async(media, spans_of(media.seconds)))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The worker is free again at once: another transcription runs to the end.
    assert await worker.transcribe_async(media, spans_of(media.seconds), VOCABULARY)
    await worker.close()


def test_a_missing_model_folder_is_reported_with_its_path(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelUnavailable) as caught:
        Transcriber(missing).load()
    message = str(caught.value)
    assert str(missing) in message and "model folder not found" in message
    assert "transcription.model_dir" in message and "recorder.whisper_model" in message


def test_an_incomplete_model_folder_names_what_it_lacks(tmp_path: Path, model_dir: Path) -> None:
    shutil.copy(model_dir / "config.json", tmp_path / "config.json")
    (tmp_path / "model.bin").write_bytes(b"")
    with pytest.raises(ModelUnavailable) as caught:
        Transcriber(tmp_path).load()
    assert str(tmp_path) in str(caught.value)
    assert "tokenizer.json" in str(caught.value) and "vocabulary.txt" in str(caught.value)


def test_a_damaged_model_is_reported_at_load_and_nothing_is_loaded(
    tmp_path: Path, model_dir: Path
) -> None:
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copy(model_dir / name, tmp_path / name)
    with (model_dir / "model.bin").open("rb") as whole:
        (tmp_path / "model.bin").write_bytes(whole.read(1_000_000))  # cut short
    broken = Transcriber(tmp_path, cpu_threads=1)
    with pytest.raises(ModelUnavailable) as caught:
        broken.load()
    assert str(tmp_path) in str(caught.value) and "cannot be loaded" in str(caught.value)
    assert not broken.loaded


async def test_a_broken_model_fails_start_without_harming_the_event_loop(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"not a model")
    broken = Transcriber(tmp_path)
    with pytest.raises(ModelUnavailable):
        await broken.start()
    await asyncio.sleep(0)  # the loop still runs
    await broken.close()


def test_a_recording_without_sound_is_refused_clearly(
    transcriber: Transcriber, tmp_path: Path
) -> None:
    silent = tmp_path / "picture.ts"
    run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi",
         "-i", "color=c=gray:s=160x90:r=10", "-t", "1", "-c:v", "libx264", "-preset", "ultrafast",
         "-f", "mpegts", str(silent)])  # fmt: skip
    with pytest.raises(AudioUnavailable, match="no sound track"):
        transcriber.transcribe(Recording(((silent, 1.0),)))
    with pytest.raises(AudioUnavailable, match="missing"):
        transcriber.transcribe(Recording(((tmp_path / "gone.ts", 2.0),)))


def test_the_model_folder_is_checked_against_pinned_sums(tmp_path: Path, model_dir: Path) -> None:
    check_model_dir(model_dir)
    assert [f.name for f in MODEL_FILES] == [
        "config.json",
        "model.bin",
        "tokenizer.json",
        "vocabulary.txt",
    ]
    config = MODEL_FILES[0]
    (tmp_path / "config.json").write_bytes((model_dir / "config.json").read_bytes())
    check_model_dir(tmp_path, [config])
    data = bytearray((tmp_path / "config.json").read_bytes())
    data[10] ^= 1
    (tmp_path / "config.json").write_bytes(bytes(data))
    with pytest.raises(ModelFilesError, match="SHA-256"):
        check_model_dir(tmp_path, [config])
    (tmp_path / "config.json").write_bytes(b"{}")
    with pytest.raises(ModelFilesError, match="2 bytes, expected 2309"):
        check_model_dir(tmp_path, [config])
    with pytest.raises(ModelFilesError, match="missing"):
        check_model_dir(tmp_path, [ModelFile("tokenizer.json", 1, "0" * 64)])
    assert sha256_of(model_dir / "config.json") == config.sha256


def test_extraction_argv_decodes_the_first_sound_track_to_16_khz_mono(tmp_path: Path) -> None:
    assert extract_argv(tmp_path / "l.ffconcat", tmp_path / "o.pcm") == [
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-nostats",
        "-f", "concat", "-safe", "0", "-i", str(tmp_path / "l.ffconcat"),
        "-map", "0:a:0", "-vn", "-sn", "-dn",
        "-af", "aresample=async=1:first_pts=0",
        "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le", "-f", "s16le", "-n",
        str(tmp_path / "o.pcm"),
    ]  # fmt: skip
    files = [(Path("/m/run-0001/seg-000000.ts"), 2.0), (Path("/m/it's.ts"), 1.5)]
    listing = concat_list(files, durations=True)
    assert listing == (
        "ffconcat version 1.0\n"
        "file '/m/run-0001/seg-000000.ts'\nduration 2.000000\n"
        "file '/m/it'\\''s.ts'\nduration 1.500000\n"
    )


def test_stretches_follow_the_agenda_and_cover_the_recording() -> None:
    spans = [AgendaSpan(10, 40, "A"), AgendaSpan(40, 45, "B"), AgendaSpan(45.2, 200, "C")]
    found = plan_stretches(spans, 100, max_seconds=30)
    # Untitled before the first item; the 0.2 s gap before C is too short to recognise and
    # joins B; C is clipped to the recording and split in two.
    assert [(s.start, s.end, s.title) for s in found] == [
        (0, 10, ""),
        (10, 40, "A"),
        (40, 45.2, "B"),
        (45.2, pytest.approx(72.6), "C"),
        (pytest.approx(72.6), 100, "C"),
    ]
    assert all(a.end == b.start for a, b in zip(found, found[1:], strict=False))
    assert plan_stretches([], 0, 30) == []
    assert plan_stretches([], 5, 30) == [Stretch(0, 5)]


def test_a_boundary_moves_to_a_quiet_moment_near_it() -> None:
    rng = np.random.default_rng(1)
    samples = (rng.standard_normal(SAMPLE_RATE * 4) * 3000).astype(np.int16)
    samples[int(2.3 * SAMPLE_RATE) : int(2.5 * SAMPLE_RATE)] = 0  # a pause between words
    assert 2.3 <= quietest_moment(samples, 2.0, 1.0) <= 2.5
    assert quietest_moment(samples, 0.5, 0.2) == pytest.approx(0.5, abs=0.2)


def test_a_long_recognised_piece_becomes_one_line_per_sentence() -> None:
    rng = np.random.default_rng(2)
    audio = (rng.standard_normal(SAMPLE_RATE * 10) * 0.1).astype(np.float32)
    audio[int(3.2 * SAMPLE_RATE) : int(3.6 * SAMPLE_RATE)] = 0  # the pause between them
    first, second = "Otwieram sesję.", "Proszę o sprawdzenie listy obecności, dziękuję bardzo."
    pieces = split_sentences(audio, 0.5, 9.5, f"{first} {second}")
    assert [text for *_, text in pieces] == [first, second]
    assert pieces[0][0] == 0.5 and pieces[-1][1] == 9.5
    assert 3.2 <= pieces[0][1] == pieces[1][0] <= 3.6
    # Abbreviations do not end a sentence, and a short piece stays whole.
    text = "Uchwała z 5 r. w sprawie ul. Długiej. Koniec."
    assert [t for *_, t in split_sentences(audio, 0.0, 9.0, text)] == [
        "Uchwała z 5 r. w sprawie ul. Długiej.",
        "Koniec.",
    ]
    assert split_sentences(audio, 0.0, 3.0, text) == [(0.0, 3.0, text)]


def test_the_prompt_keeps_the_current_item_within_the_token_limit() -> None:
    def count(text: str) -> int:
        return len(text.split())

    names = tuple(f"Imię Nazwisko{i}" for i in range(40))
    vocabulary = SessionVocabulary("Sesja Rady Miasta", names, ("LVII/712/22", "LVII/713/22"))
    prompt = build_prompt(TITLE, vocabulary, count, limit=40)
    assert count(prompt) <= 40
    assert prompt.endswith(TITLE + ".")
    assert "Uchwała nr LVII/712/22. Uchwała nr LVII/713/22." in prompt
    assert "Imię Nazwisko0." in prompt and "Nazwisko39" not in prompt
    # Terms of the item come before the session's vocabulary.
    with_terms = build_prompt(TITLE, vocabulary, count, terms=("ulica Słowackiego",), limit=13)
    assert with_terms == "ulica Słowackiego. " + TITLE + "."
    # A title longer than the limit loses words from its end, never the whole item.
    assert build_prompt(TITLE, SessionVocabulary(), count, limit=4) == "Podjęcie uchwały w sprawie."
    assert render_prompt("Wolne wnioski", names=("A B",), session_title="Sesja") == (
        "Sesja. A B. Wolne wnioski."
    )


def test_the_real_prompt_fits_whispers_limit(transcriber: Transcriber) -> None:
    names = tuple(f"Przemysław Jędrzejczak-Kołodziejczyk {i}" for i in range(40))
    vocabulary = SessionVocabulary("LXII sesja", names, ("LXII/801/25",))
    stretch = Stretch(0, 10, TITLE)
    prompt = transcriber.prompt_for(stretch, vocabulary)
    assert prompt is not None and prompt.endswith(TITLE + ".")
    assert 150 < transcriber.count_tokens(prompt) <= 200
    assert transcriber.prompt_for(Stretch(0, 10), SessionVocabulary()) is None


def test_repetition_loops_and_foreign_scripts_are_cleaned_from_lines() -> None:
    loop = "Uchwała nr XLI. Uchwała nr XLI. Uchwała nr XLI. Uchwała nr XLI. Zamykam."
    assert collapse_repeats(loop) == "Uchwała nr XLI. Zamykam."
    assert collapse_repeats("numer 57,77,77,77,77 dalej") == "numer 57,77 dalej"
    assert collapse_repeats("nie, nie i jeszcze raz nie") == "nie, nie i jeszcze raz nie"
    assert clean_text("  Stawki  pozostają 것ach  bez zmian ", "pl") == "Stawki pozostają bez zmian"
    assert find_resolution_numbers("uchwała nr LVII/712/22 i XLI/512/2021", "LVII/712/22") == (
        "LVII/712/22",
        "XLI/512/2021",
    )
