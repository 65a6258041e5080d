"""Word error rate of council speech with and without the agenda-aware prompt, by kind of word
(agenda titles, councillors' names, resolution numbers, the rest), and the real-time factor.

The held set (bench/speech/council_pl.toml) is spoken by espeak-ng into one session recording:
the sentences in order, a pause between them, the agenda items as chapters. The recording is
transcribed twice by recorder.transcribe, cut into the same stretches: once with each stretch's
prompt (item title, councillors, resolution numbers), once without any prompt.

    nice -n 15 .venv/bin/python bench/wer.py [--threads 2] [--show]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
from _speech import (
    KINDS,
    SAMPLE_RATE,
    HeldSet,
    Tally,
    espeak_version,
    load_held_set,
    marked_words,
    read_wav,
    speak,
    tally,
    words,
    write_wav,
)

from recorder.transcribe import (
    AgendaSpan,
    Recording,
    SessionVocabulary,
    TimedLine,
    Transcriber,
)
from recorder.whisper_model import MODEL_NAME, assemble_model

ROOT = Path(__file__).resolve().parents[1]
VOICES = ("pl", "pl+f3")
WORDS_PER_MINUTE = 150


def make_session(
    held: HeldSet, cache: Path, gap: float
) -> tuple[Path, list[tuple[float, float]], list[AgendaSpan]]:
    """The held set spoken as one recording: its WAV, each sentence's (start, end), and the
    agenda items as spans running from a pause before their first sentence to the next item."""
    silence = np.zeros(int(gap * SAMPLE_RATE), dtype=np.int16)
    pieces = [silence]
    times = []
    position = gap
    for index, sentence in enumerate(held.sentences):
        voice = VOICES[index % len(VOICES)]
        samples = read_wav(
            speak(sentence.spoken, cache, voice=voice, words_per_minute=WORDS_PER_MINUTE)
        )
        seconds = len(samples) / SAMPLE_RATE
        times.append((position, position + seconds))
        pieces += [samples, silence]
        position += seconds + gap
    audio = np.concatenate(pieces)
    key = hashlib.sha256(audio.tobytes()).hexdigest()[:16]
    path = cache / f"session-{key}.wav"
    if not path.exists():
        write_wav(path, audio)
    spans: list[AgendaSpan] = []
    for (start, _), sentence in zip(times, held.sentences, strict=True):
        if spans and spans[-1].title == held.item_title(sentence.item):
            continue
        begin = max(0.0, start - gap / 2)
        if spans:
            spans[-1] = AgendaSpan(spans[-1].start, begin, spans[-1].title)
        spans.append(AgendaSpan(begin, 0.0, held.item_title(sentence.item)))
    total = len(audio) / SAMPLE_RATE
    spans[-1] = AgendaSpan(spans[-1].start, total, spans[-1].title)
    return path, times, spans


def _cpu_seconds() -> float:
    """CPU time of this process (all its threads) and of its finished children (ffmpeg)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def hypothesis(lines: list[TimedLine]) -> list[str]:
    """The recognised words in time order."""
    return [w for line in sorted(lines, key=lambda x: x.start) for w in words(line.text)]


def lines_near(lines: list[TimedLine], start: float, end: float, gap: float) -> str:
    """The recognised text whose middle falls within a sentence's time (give or take a pause)."""
    chosen = [
        line.text
        for line in lines
        if start - gap / 2 <= (line.start + line.end) / 2 <= end + gap / 2
    ]
    return " ".join(chosen)


def transcribe_live(
    transcriber: Transcriber,
    samples: np.ndarray,
    spans: list[AgendaSpan],
    vocabulary: SessionVocabulary,
    window: float,
    cache: Path,
) -> list[TimedLine]:
    """The recording captioned as streaming.live_captions does while a session runs: the sound
    recorded so far (in 2 s segments) recognised from where the last window ended, each window
    ending at the quiet moment near the newest sound, until all of it is heard."""
    segment = 2.0
    total = len(samples) / SAMPLE_RATE
    lines: list[TimedLine] = []
    done = 0.0
    while done < total - 0.5:
        recorded = min(total, done + window)
        final = recorded >= total
        base = segment * int(done // segment)  # the first segment holding what is not heard
        part = cache / f".live-window-{os.getpid()}.wav"
        write_wav(part, samples[int(base * SAMPLE_RATE) : int(recorded * SAMPLE_RATE)])
        try:
            found = transcriber.transcribe_window(
                Recording(((part, recorded - base),)),
                done - base,
                [AgendaSpan(s.start - base, s.end - base, s.title) for s in spans],
                vocabulary,
                final=final,
            )
        finally:
            part.unlink(missing_ok=True)
        lines += [TimedLine(line.start + base, line.end + base, line.text) for line in found.lines]
        if found.end + base <= done:
            break
        done = found.end + base
    return lines


def main() -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / ".cache" / "whisper-base")
    parser.add_argument("--held", type=Path, default=ROOT / "bench" / "speech" / "council_pl.toml")
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache" / "speech")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compute", default="int8")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument(
        "--temperatures",
        default="0,0.2,0.4,0.6,0.8,1",
        help="Whisper's fallback temperatures, comma-separated",
    )
    parser.add_argument("--no-vad", action="store_true")
    parser.add_argument("--gap", type=float, default=1.5, help="pause between sentences (s)")
    parser.add_argument(
        "--live-window",
        type=float,
        default=0.0,
        help="recognise as live captions do, in windows of this many seconds (0: after the "
        "session, the whole recording)",
    )
    parser.add_argument("--show", action="store_true", help="print every sentence's results")
    args = parser.parse_args()

    if args.model == parser.get_default("model"):
        assemble_model(args.model)
    held = load_held_set(args.held)
    path, times, spans = make_session(held, args.cache, args.gap)
    recording = Recording(((path, len(read_wav(path)) / SAMPLE_RATE),))
    transcriber = Transcriber(
        args.model,
        cpu_threads=args.threads,
        compute_type=args.compute,
        beam_size=args.beam,
        temperatures=[float(t) for t in args.temperatures.split(",")],
        vad=not args.no_vad,
        nice=0,
        work_dir=args.cache,
    )
    started = time.monotonic()
    transcriber.load()
    load_seconds = time.monotonic() - started
    vocabulary = SessionVocabulary(held.title, held.councillors, held.resolutions)
    plain_spans = [AgendaSpan(s.start, s.end, "") for s in spans]

    runs: dict[str, tuple[list[TimedLine], float]] = {}
    cpu: dict[str, float] = {}
    loads: dict[str, float] = {}
    for name, run_spans, run_vocabulary in (
        ("without prompt", plain_spans, SessionVocabulary()),
        ("with prompt", spans, vocabulary),
    ):
        started, cpu_started = time.monotonic(), _cpu_seconds()
        if args.live_window > 0:
            lines = transcribe_live(
                transcriber,
                read_wav(path),
                run_spans,
                run_vocabulary,
                args.live_window,
                args.cache,
            )
        else:
            lines = transcriber.transcribe(recording, run_spans, run_vocabulary)
        runs[name] = (lines, time.monotonic() - started)
        cpu[name] = _cpu_seconds() - cpu_started
        loads[name] = os.getloadavg()[0]

    reference = [pair for sentence in held.sentences for pair in marked_words(sentence.text)]
    tallies: dict[str, Tally] = {
        name: tally(reference, hypothesis(lines)) for name, (lines, _) in runs.items()
    }
    seconds = recording.seconds
    speech = sum(end - start for start, end in times)
    print(f"model: {MODEL_NAME}")
    print(
        f"  {args.compute}, {args.threads} CPU thread(s), beam {args.beam}, "
        f"temperatures {args.temperatures}, VAD {'off' if args.no_vad else 'on'}, "
        + (
            f"live captions in {args.live_window:g} s windows; "
            if args.live_window > 0
            else "the whole recording after the session; "
        )
        + f"loaded in {load_seconds:.2f} s"
    )
    print(
        f"held set: {len(held.sentences)} sentences, {len(reference)} words, {seconds:.0f} s "
        f"({speech:.0f} s of speech), {espeak_version().split('  ')[0]}, voices "
        f"{', '.join(VOICES)} at {WORDS_PER_MINUTE} words/min"
    )
    print()
    names = list(runs)
    print(f"{'word error rate':<22}{'words':>7}" + "".join(f"{n:>17}" for n in names) + "   ratio")
    for kind, label in list(KINDS.items()) + [(None, "all words")]:
        count = (
            sum(tallies[names[0]].words.values()) if kind is None else tallies[names[0]].words[kind]
        )
        rates = [tallies[n].rate(kind) for n in names]
        ratio = f"{rates[1] / rates[0]:.2f}" if rates[0] > 0 else "-"
        print(
            f"{label:<22}{count:>7}" + "".join(f"{r * 100:>16.1f}%" for r in rates) + f"   {ratio}"
        )
    keywords = [k for k in KINDS if k]
    key_rates = []
    for n in names:
        t = tallies[n]
        key_rates.append(sum(t.errors[k] for k in keywords) / sum(t.words[k] for k in keywords))
    print(
        f"{'titles+names+numbers':<22}{sum(tallies[names[0]].words[k] for k in keywords):>7}"
        + "".join(f"{r * 100:>16.1f}%" for r in key_rates)
        + f"   {key_rates[1] / key_rates[0]:.2f}"
    )
    print()
    print(f"{'real-time factor':<29}" + "".join(f"{runs[n][1] / seconds:>17.3f}" for n in names))
    print(f"{'seconds for the recording':<29}" + "".join(f"{runs[n][1]:>17.1f}" for n in names))
    # Wall time depends on what else the machine runs; CPU time much less so.
    print(f"{'CPU s per recording s':<29}" + "".join(f"{cpu[n] / seconds:>17.3f}" for n in names))
    print(f"{'load average after the run':<29}" + "".join(f"{loads[n]:>17.2f}" for n in names))
    hours = 4 * 3600 * runs["with prompt"][1] / seconds / 60
    print(f"a 4-hour session at this rate: about {hours:.0f} minutes (with prompt)")
    if args.show:
        print()
        for (start, end), sentence in zip(times, held.sentences, strict=True):
            print(f"[{start:7.2f}] {sentence.plain}")
            for n in names:
                print(f"  {n:>15}: {lines_near(runs[n][0], start, end, args.gap)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
