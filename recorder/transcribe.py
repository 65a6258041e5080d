"""Recognises a recording's speech as timed lines with faster-whisper (CTranslate2) on the CPU.

The recording (its files in playback order) is decoded once by ffmpeg to 16 kHz mono and then
recognised stretch by stretch along the agenda: each stretch gets a prompt holding the title
of the item under discussion, the councillors' names and the session's resolution numbers, so
the recogniser spells them as the record does. Line times are seconds of the recording.

The model is a folder given in the configuration; nothing is ever downloaded. A missing or
broken folder raises ModelUnavailable at load, naming the path and what to do. The blocking
work runs on one worker thread of its own at the lowest priority of recorder/priority.py
(CAPTIONS: they lag first); the model is loaded on that thread, so the threads CTranslate2
starts and the ffmpeg that decodes the sound inherit it. The async methods never block the
event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from recorder.ffmpeg import concat_list
from recorder.oneshot import FfmpegFailed, FfmpegTimedOut, run_ffmpeg_blocking
from recorder.priority import CAPTIONS, Priority, lower_this_thread

log = logging.getLogger(__name__)
_T = TypeVar("_T")

SAMPLE_RATE = 16_000
# Whisper's own retries when a window's text looks wrong (repetitive or improbable): each
# retry samples at the next temperature. Fewer retries are faster and a little worse.
WHISPER_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
# Whisper takes at most 223 prompt tokens (half its 448-token context, less one); faster-whisper
# keeps the *last* ones if there are more. Staying below leaves the decoder its usual room.
PROMPT_TOKENS = 200
# What a CTranslate2 Whisper folder must hold. Without tokenizer.json faster-whisper would fetch
# one from the internet: the folder is refused instead.
REQUIRED_FILES = ("model.bin", "config.json", "tokenizer.json")
VOCABULARY_FILES = ("vocabulary.txt", "vocabulary.json")
# An item boundary set by the operator's click may fall mid-word: it moves to the quietest
# moment this close to it. Long items are split at the quietest moment this close to the cut.
SNAP_ITEM_SECONDS = 1.5
SNAP_SPLIT_SECONDS = 10.0
QUIET_FRAME_SECONDS = 0.1
# Stretches shorter than this are joined to their neighbour (nothing is recognised in them).
MIN_STRETCH_SECONDS = 0.5
# Text Whisper is known to invent over silence or music (subtitle credits from its training
# data); such a line is dropped.
INVENTED = re.compile(
    r"amara\.org|napisy (?:stworzone|wykonane|przygotowane) przez|"
    r"subtitles by|transcribed by|www\.[a-z0-9.-]+\.(?:pl|com|org)",
    re.IGNORECASE,
)
# Latin-script languages: a recognised word in another script is an invention of the sampler
# (seen: Hangul inside Polish text after a temperature fallback).
LATIN_LANGUAGES = frozenset(
    "pl en de cs sk sl hr lt lv et fi sv da no nl fr es it pt ro hu".split()
)
NOT_LATIN = re.compile(r"[^\u0000-\u024f\u1e00-\u1eff\u2000-\u206f\u20a0-\u20cf]")
# Whisper's known failure: one phrase repeated until the window ends ("Uchwała nr XLI. Uchwała
# nr XLI. ..."). A run of this many copies of up to MAX_REPEAT_WORDS words is kept once.
REPEATS = 3
MAX_REPEAT_WORDS = 8
NUMBER_LOOP = re.compile(r"\b(\d+)(?:[,.]\1\b){2,}")
# Whisper often returns a whole 30 s window as one piece of text (always so with a prompt,
# seen here); it is cut into sentences, each timed by its share of the letters and its start
# moved to the pause nearest it, so captions change with the speech and a search hit lands on
# its sentence.
SENTENCE_BREAK = re.compile(r"(?<=[.!?…])\s+")
# Polish abbreviations after which a capital letter does not start a new sentence.
ABBREVIATIONS = frozenset(
    "ul al pl os nr r godz ok tj tzn np św im prof dr mgr inż pkt ust art poz par lit zob "
    "por sz p pp ks gen płk red tel".split()
)
SPLIT_ABOVE_SECONDS = 4.0
SNAP_SENTENCE_SECONDS = 1.0
RESOLUTION_NUMBER = re.compile(r"\b([MDCLXVI]{1,9})/(\d{1,5})/(\d{2}|\d{4})\b")
FFMPEG_WORDS = 2000
DECODE_TIMEOUT_SECONDS = 300.0
# A live window that is not the last ends at the quietest moment of its last this many seconds.
LIVE_CUT_SECONDS = 3.0


class TranscriptionError(Exception):
    """Base of the transcription errors; the message says what to fix."""


class ModelUnavailable(TranscriptionError):
    """The model folder is missing, incomplete or unreadable (the message names the path)."""


class AudioUnavailable(TranscriptionError):
    """The recording's sound could not be read (no audio track, or ffmpeg failed)."""


class TranscriptionCancelled(TranscriptionError):
    """The transcription was stopped before it finished."""


@dataclass(frozen=True)
class AgendaSpan:
    """An agenda item's stretch of the recording (seconds), with words to prompt for in it."""

    start: float
    end: float
    title: str
    terms: tuple[str, ...] = ()


@dataclass(frozen=True)
class SessionVocabulary:
    """What the whole session's speech is likely to name: for every stretch's prompt."""

    title: str = ""
    names: tuple[str, ...] = ()
    resolutions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Stretch:
    """A piece of the recording recognised in one go, with the prompt it is recognised with."""

    start: float
    end: float
    title: str = ""
    terms: tuple[str, ...] = ()

    @property
    def seconds(self) -> float:
        """Its length."""
        return self.end - self.start


@dataclass(frozen=True)
class TimedLine:
    """One recognised line: seconds of the recording and the text."""

    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Progress:
    """How far a transcription has got: recording seconds done of the total, and its
    estimated finish (None until there is a rate to go by)."""

    done_seconds: float
    total_seconds: float
    elapsed_seconds: float
    estimated_finish: datetime | None

    @property
    def fraction(self) -> float:
        """Done, from 0 to 1."""
        if self.total_seconds <= 0:
            return 1.0
        return min(1.0, max(0.0, self.done_seconds / self.total_seconds))

    @property
    def realtime_factor(self) -> float | None:
        """Seconds of work per second of recording so far."""
        return self.elapsed_seconds / self.done_seconds if self.done_seconds > 0 else None


@dataclass(frozen=True)
class Recording:
    """A recording to transcribe: its media files in playback order with their durations
    (as the archive's program lists them; any file ffmpeg reads will do)."""

    files: tuple[tuple[Path, float], ...]

    @property
    def seconds(self) -> float:
        """Its length, the sum of the files' durations."""
        return sum(seconds for _, seconds in self.files)


@dataclass(frozen=True)
class Window:
    """What a window of a running recording gave: its lines, and the moment (seconds of the
    recording) up to which it was heard; the next window starts there."""

    lines: list[TimedLine]
    end: float


ProgressCallback = Callable[[Progress], None]
LinesCallback = Callable[[Stretch, list[TimedLine]], None]


def find_resolution_numbers(*texts: str) -> tuple[str, ...]:
    """Resolution numbers such as "LVII/712/22" found in texts (agenda, vote subjects), each
    once, in order of appearance."""
    found: dict[str, None] = {}
    for text in texts:
        for match in RESOLUTION_NUMBER.finditer(text):
            found.setdefault(match.group(0), None)
    return tuple(found)


def _word_key(word: str) -> str:
    return word.strip(".,;:!?…\"'()").lower()


def collapse_repeats(text: str) -> str:
    """text with every run of REPEATS or more consecutive copies of the same phrase (up to
    MAX_REPEAT_WORDS words, compared without case and punctuation) kept once."""
    text = NUMBER_LOOP.sub(r"\1", text)
    tokens = text.split()
    keys = [_word_key(token) for token in tokens]
    kept: list[str] = []
    kept_keys: list[str] = []
    index = 0
    while index < len(tokens):
        skipped = False
        for size in range(1, MAX_REPEAT_WORDS + 1):
            phrase = keys[index : index + size]
            if len(phrase) < size or not any(phrase):
                break
            copies = 1
            while keys[index + copies * size : index + (copies + 1) * size] == phrase:
                copies += 1
            # A phrase that already ended what is kept counts as one copy.
            before = 1 if kept_keys[-size:] == phrase else 0
            if copies + before >= REPEATS:
                if not before:
                    kept += tokens[index : index + size]
                    kept_keys += phrase
                index += copies * size
                skipped = True
                break
        if not skipped:
            kept.append(tokens[index])
            kept_keys.append(keys[index])
            index += 1
    return " ".join(kept)


def clean_text(text: str, language: str) -> str:
    """A recognised line as it is kept: one space between words, repeated phrases collapsed,
    words in a script the language does not use removed."""
    text = " ".join(text.split())
    if language in LATIN_LANGUAGES:
        text = " ".join(word for word in text.split() if not NOT_LATIN.search(word))
    return collapse_repeats(text)


def _sentence(text: str) -> str:
    text = " ".join(text.split()).rstrip(" .;:,")
    return f"{text}." if text else ""


def render_prompt(
    title: str,
    terms: Sequence[str] = (),
    names: Sequence[str] = (),
    resolutions: Sequence[str] = (),
    session_title: str = "",
) -> str:
    """The prompt text: the session, the councillors, the resolutions, the item's terms and,
    last (nearest the speech, where Whisper heeds it most), the item's title.

    Every name and number is a sentence of its own: Whisper continues in the style of its
    prompt, and a comma-separated list made it break plain speech into lists of words too
    (seen on a development set of synthetic speech, not the benchmark's held set).
    """
    parts = [_sentence(session_title)]
    parts += [_sentence(name) for name in names]
    parts += [_sentence(f"Uchwała nr {number}") for number in resolutions]
    parts += [_sentence(term) for term in terms]
    parts.append(_sentence(title))
    return " ".join(part for part in parts if part)


def build_prompt(
    title: str,
    vocabulary: SessionVocabulary,
    count_tokens: Callable[[str], int],
    *,
    terms: Sequence[str] = (),
    limit: int = PROMPT_TOKENS,
) -> str:
    """The prompt for one stretch within `limit` tokens. What goes in first and stays if room
    runs out: the item's title (its words cut from the end if it alone is too long), the item's
    own terms, the session's resolution numbers, the councillors' names (in the order given),
    then the session's title."""
    words = title.split()
    while words and count_tokens(render_prompt(" ".join(words))) > limit:
        words.pop()
    chosen_title = " ".join(words)
    chosen: dict[str, list[str]] = {"terms": [], "resolutions": [], "names": []}
    session_title = ""

    def fits(extra_session_title: str = "") -> bool:
        text = render_prompt(
            chosen_title,
            chosen["terms"],
            chosen["names"],
            chosen["resolutions"],
            extra_session_title or session_title,
        )
        return count_tokens(text) <= limit

    for kind, candidates in (
        ("terms", terms),
        ("resolutions", vocabulary.resolutions),
        ("names", vocabulary.names),
    ):
        for candidate in candidates:
            candidate = " ".join(candidate.split())
            if not candidate or candidate in chosen[kind]:
                continue
            chosen[kind].append(candidate)
            if not fits():
                chosen[kind].pop()
    if vocabulary.title and fits(vocabulary.title):
        session_title = vocabulary.title
    return render_prompt(
        chosen_title, chosen["terms"], chosen["names"], chosen["resolutions"], session_title
    )


def plan_stretches(
    spans: Sequence[AgendaSpan], total: float, max_seconds: float, start: float = 0.0
) -> list[Stretch]:
    """Stretches covering [start, total] end to end: one per agenda span (clipped to it),
    untitled ones where no item runs, and long ones split evenly into parts of at most
    max_seconds."""
    if total - start <= 0:
        return []
    plain: list[Stretch] = []
    position = max(0.0, start)
    for span in sorted(spans, key=lambda s: s.start):
        start, end = max(span.start, position), min(span.end, total)
        if end - start <= 0:
            continue
        if start - position > 0:
            plain.append(Stretch(position, start))
        plain.append(Stretch(start, end, span.title, span.terms))
        position = end
    if total - position > 0:
        plain.append(Stretch(position, total))
    merged: list[Stretch] = []
    for stretch in plain:
        if merged and stretch.seconds < MIN_STRETCH_SECONDS:
            merged[-1] = replace(merged[-1], end=stretch.end)
        elif merged and merged[-1].seconds < MIN_STRETCH_SECONDS:
            merged[-1] = replace(stretch, start=merged[-1].start)
        else:
            merged.append(stretch)
    found: list[Stretch] = []
    for stretch in merged:
        parts = max(1, int(np.ceil(stretch.seconds / max_seconds - 1e-9)))
        step = stretch.seconds / parts
        for index in range(parts):
            end = stretch.end if index == parts - 1 else stretch.start + step * (index + 1)
            found.append(replace(stretch, start=stretch.start + step * index, end=end))
    return found


def clip_ranges(ranges: Sequence[tuple[float, float]], total: float) -> list[tuple[float, float]]:
    """The ranges within [0, total], in order, those shorter than MIN_STRETCH_SECONDS left
    out (nothing is recognised in them)."""
    found = []
    for low, high in sorted(ranges):
        low, high = max(0.0, low), min(total, high)
        if high - low >= MIN_STRETCH_SECONDS:
            found.append((low, high))
    return found


def quietest_moment(samples: np.ndarray, at: float, window: float) -> float:
    """The middle of the quietest QUIET_FRAME_SECONDS within `window` seconds of `at` (in
    seconds of `samples`, 16 kHz mono); `at` itself if the audio there is missing."""
    frame = int(QUIET_FRAME_SECONDS * SAMPLE_RATE)
    low = max(0, int((at - window) * SAMPLE_RATE))
    high = min(len(samples), int((at + window) * SAMPLE_RATE))
    count = (high - low) // frame
    if count < 2:
        return at
    chunk = np.asarray(samples[low : low + count * frame], dtype=np.float64).reshape(count, frame)
    energy = np.square(chunk).mean(axis=1)
    centres = low / SAMPLE_RATE + (np.arange(count) + 0.5) * QUIET_FRAME_SECONDS
    # Of the frames about as quiet as the quietest, the one nearest the planned moment.
    quiet = energy <= energy.min() * 1.5 + energy.max() * 1e-4
    nearest = np.where(quiet, np.abs(centres - at), np.inf)
    return float(centres[int(np.argmin(nearest))])


def split_sentences(
    samples: np.ndarray, start: float, end: float, text: str
) -> list[tuple[float, float, str]]:
    """A recognised piece (start and end in seconds of `samples`) as one (start, end, text)
    per sentence: each sentence's time is its share of the letters, and every boundary moves
    to the quietest moment within SNAP_SENTENCE_SECONDS of where that puts it."""
    sentences: list[str] = []
    for part in SENTENCE_BREAK.split(text):
        # A sentence starts with a capital letter or a digit, and not after "ul." or "r.".
        last = sentences[-1].split()[-1].rstrip(".").lower() if sentences else ""
        if sentences and (last in ABBREVIATIONS or not (part[:1].isupper() or part[:1].isdigit())):
            sentences[-1] += " " + part
        elif part:
            sentences.append(part)
    if len(sentences) < 2 or end - start < SPLIT_ABOVE_SECONDS:
        return [(start, end, text)]
    letters = [len(sentence) for sentence in sentences]
    bounds = [start]
    done = 0
    for count in letters[:-1]:
        done += count
        planned = start + (end - start) * done / sum(letters)
        moment = quietest_moment(samples, planned, SNAP_SENTENCE_SECONDS)
        low, high = bounds[-1] + QUIET_FRAME_SECONDS, end - QUIET_FRAME_SECONDS
        bounds.append(min(max(moment, low), high) if low < high else planned)
    bounds.append(end)
    return [
        (bounds[i], bounds[i + 1], sentence)
        for i, sentence in enumerate(sentences)
        if bounds[i + 1] > bounds[i]
    ]


def snap_stretches(stretches: Sequence[Stretch], samples: np.ndarray) -> list[Stretch]:
    """Move each boundary between two stretches to a quiet moment near it: item changes within
    SNAP_ITEM_SECONDS, splits of one long item within SNAP_SPLIT_SECONDS."""
    snapped = list(stretches)
    for index in range(1, len(snapped)):
        before, after = snapped[index - 1], snapped[index]
        same_item = (before.title, before.terms) == (after.title, after.terms)
        window = SNAP_SPLIT_SECONDS if same_item else SNAP_ITEM_SECONDS
        window = min(window, (before.seconds - MIN_STRETCH_SECONDS) / 2, after.seconds / 2)
        if window <= QUIET_FRAME_SECONDS:
            continue
        moment = quietest_moment(samples, after.start, window)
        snapped[index - 1] = replace(before, end=moment)
        snapped[index] = replace(after, start=moment)
    return snapped


def decode_timeout(seconds: float) -> float:
    """How long decoding a recording's sound may take before ffmpeg counts as hung: it runs
    tens of times faster than real time, so this is room for a busy machine, not an estimate."""
    return DECODE_TIMEOUT_SECONDS + seconds / 2


def extract_argv(listing: Path, output: Path) -> list[str]:
    """ffmpeg argv decoding the first audio track of the listed files into raw 16 kHz mono
    signed 16-bit samples (what Whisper hears), with gaps filled with silence."""
    return [
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-nostats",
        "-f", "concat", "-safe", "0", "-i", str(listing),
        "-map", "0:a:0", "-vn", "-sn", "-dn",
        # async fills holes and trims overlaps so that a sample's index is its time in the
        # recording, across runs whose timestamps restart.
        "-af", "aresample=async=1:first_pts=0",
        "-ac", "1", "-ar", str(SAMPLE_RATE), "-c:a", "pcm_s16le", "-f", "s16le", "-n", str(output),
    ]  # fmt: skip


def check_model_folder(folder: Path) -> None:
    """Raise ModelUnavailable unless folder looks like a CTranslate2 Whisper model."""
    what = (
        "set transcription.model_dir to a folder holding a Whisper model converted for "
        "CTranslate2 (model.bin, config.json, tokenizer.json, vocabulary.txt); "
        "`python -m recorder.whisper_model DIR` assembles Whisper base into DIR"
    )
    if not folder.exists():
        raise ModelUnavailable(f"{folder}: model folder not found; {what}")
    if not folder.is_dir():
        raise ModelUnavailable(f"{folder}: not a folder; {what}")
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if not any((folder / name).is_file() for name in VOCABULARY_FILES):
        missing.append(" or ".join(VOCABULARY_FILES))
    if missing:
        raise ModelUnavailable(f"{folder}: model folder lacks {', '.join(missing)}; {what}")


@dataclass
class _Clock:
    """Elapsed time and the estimate of the finish, from the rate so far."""

    total: float
    now: Callable[[], datetime]
    started: float = field(default_factory=time.monotonic)

    def progress(self, done: float) -> Progress:
        done = min(self.total, max(0.0, done))
        elapsed = time.monotonic() - self.started
        finish = None
        if done > 0 and elapsed > 0:
            remaining = (self.total - done) * elapsed / done
            finish = self.now() + timedelta(seconds=remaining)
        return Progress(done, self.total, elapsed, finish)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Transcriber:
    """One Whisper model, loaded from a folder, and one worker thread that runs it.

    load() (or start()) checks the folder and loads the model, raising ModelUnavailable with
    the path and what to do; transcribe() recognises a recording (blocking: call it from the
    worker, as transcribe_async does). One transcription at a time.
    """

    def __init__(
        self,
        model_dir: Path,
        *,
        language: str = "pl",
        cpu_threads: int = 2,
        compute_type: str = "int8",
        beam_size: int = 5,
        temperatures: Sequence[float] = WHISPER_TEMPERATURES,
        vad: bool = True,
        nice: int = CAPTIONS.nice,
        max_stretch_seconds: float = 600.0,
        work_dir: Path | None = None,
        seed: int = 0,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.language = language
        self.cpu_threads = cpu_threads
        self.compute_type = compute_type
        self.beam_size = beam_size
        self.temperatures = tuple(temperatures)
        self.vad = vad
        self.nice = nice
        self.max_stretch_seconds = max_stretch_seconds
        self.work_dir = work_dir
        self.seed = seed
        self._now = now
        self._model: Any = None
        self._ctranslate2: Any = None
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    @property
    def priority(self) -> Priority:
        """The level of the ffmpeg runs it starts: CAPTIONS, at its own nice value."""
        return replace(CAPTIONS, nice=self.nice)

    @property
    def loaded(self) -> bool:
        """Whether the model is loaded."""
        return self._model is not None

    # blocking API (worker thread, benchmarks)

    def load(self) -> None:
        """Check the model folder and load the model (once); ModelUnavailable if it cannot be."""
        with self._lock:
            if self._model is not None:
                return
            folder = self.model_dir.expanduser().resolve()
            check_model_folder(folder)
            try:
                import ctranslate2  # type: ignore[import-untyped]
                from faster_whisper import WhisperModel  # type: ignore[import-untyped]
            except ImportError as exc:
                raise ModelUnavailable(
                    f"faster-whisper cannot be imported ({exc}); install it: "
                    "pip install faster-whisper==1.2.1"
                ) from None
            try:
                # An existing folder is used as it is: WhisperModel downloads only for a model
                # name, and the tokenizer only when tokenizer.json is missing (checked above).
                self._ctranslate2 = ctranslate2
                self._model = WhisperModel(
                    str(folder),
                    device="cpu",
                    compute_type=self.compute_type,
                    cpu_threads=self.cpu_threads,
                    local_files_only=True,
                )
            except Exception as exc:
                raise ModelUnavailable(
                    f"{folder}: the model cannot be loaded ({exc}); replace the folder with a "
                    "complete Whisper model converted for CTranslate2 "
                    "(`python -m recorder.whisper_model --check DIR` verifies the bundled one)"
                ) from None
            log.info(
                "whisper model loaded from %s (%s, %d threads)",
                folder,
                self.compute_type,
                self.cpu_threads,
            )

    def count_tokens(self, text: str) -> int:
        """Whisper tokens in text as a prompt (the model must be loaded)."""
        self.load()
        return len(self._model.hf_tokenizer.encode(" " + text.strip()).ids)

    def prompt_for(self, stretch: Stretch, vocabulary: SessionVocabulary) -> str | None:
        """The prompt a stretch is recognised with (None: nothing to say)."""
        if not (stretch.title or stretch.terms or vocabulary.names or vocabulary.resolutions):
            return None
        text = build_prompt(stretch.title, vocabulary, self.count_tokens, terms=stretch.terms)
        return text or None

    def recognise(
        self,
        samples: np.ndarray,
        prompt: str | None = None,
        *,
        offset: float = 0.0,
        on_segment: Callable[[float], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> list[TimedLine]:
        """Recognise 16 kHz mono float32 samples; line times are `offset` plus seconds into them.
        on_segment gets the end (in samples' seconds) of each recognised piece."""
        self.load()
        audio = np.ascontiguousarray(samples, dtype=np.float32)
        if len(audio) < int(MIN_STRETCH_SECONDS * SAMPLE_RATE):
            return []
        # When a window's text looks wrong Whisper retries at a higher temperature, sampling:
        # a fixed seed makes the same audio give the same lines.
        self._ctranslate2.set_random_seed(self.seed)
        segments, _info = self._model.transcribe(
            audio,
            language=self.language,
            beam_size=self.beam_size,
            # The prompt is given anew for every 30 s window: the item's words stay in force
            # through a long item instead of scrolling out behind recognised text.
            hotwords=prompt,
            condition_on_previous_text=False,
            temperature=list(self.temperatures),
            vad_filter=self.vad,
        )
        seconds = len(audio) / SAMPLE_RATE
        lines: list[TimedLine] = []
        for segment in segments:
            if cancel is not None and cancel.is_set():
                raise TranscriptionCancelled("transcription stopped")
            if on_segment is not None:
                on_segment(min(float(segment.end), seconds))
            text = clean_text(str(segment.text), self.language)
            start = min(max(0.0, float(segment.start)), seconds)
            end = min(max(start, float(segment.end)), seconds)
            if not text or INVENTED.search(text) or end <= start:
                continue
            for piece_start, piece_end, sentence in split_sentences(audio, start, end, text):
                if lines and _word_key(lines[-1].text) == _word_key(sentence):
                    # The same sentence again straight after: a repetition, not new speech.
                    lines[-1] = replace(lines[-1], end=offset + piece_end)
                    continue
                lines.append(TimedLine(offset + piece_start, offset + piece_end, sentence))
        return lines

    def transcribe(
        self,
        recording: Recording,
        spans: Sequence[AgendaSpan] = (),
        vocabulary: SessionVocabulary = SessionVocabulary(),
        *,
        only: Sequence[tuple[float, float]] | None = None,
        on_progress: ProgressCallback | None = None,
        on_lines: LinesCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> list[TimedLine]:
        """Recognise a whole recording (or `only` those stretches of it, in seconds), stretch
        by stretch along the agenda spans, reporting progress (seconds of what is to be heard)
        after every recognised piece and the lines of every finished stretch."""
        self.load()
        total = recording.seconds
        clock = _Clock(total, self._now)
        if on_progress is not None:
            on_progress(clock.progress(0.0))
        with self._decoded(recording) as samples:
            total = min(total, len(samples) / SAMPLE_RATE) if len(samples) else 0.0
            ranges = [(0.0, total)] if only is None else clip_ranges(only, total)
            clock.total = sum(high - low for low, high in ranges)
            lines: list[TimedLine] = []
            heard = 0.0
            for low, high in ranges:

                def report(done: float, low: float = low, before: float = heard) -> None:
                    if on_progress is not None:
                        on_progress(clock.progress(before + done - low))

                lines += self._recognise_range(
                    samples, low, high, spans, vocabulary, report, on_lines, cancel
                )
                heard += high - low
            return lines

    def transcribe_window(
        self,
        recording: Recording,
        start: float,
        spans: Sequence[AgendaSpan] = (),
        vocabulary: SessionVocabulary = SessionVocabulary(),
        *,
        final: bool = False,
        cancel: threading.Event | None = None,
    ) -> Window:
        """Recognise the recording (so far) from `start` seconds: to its end if final, else to
        the quietest moment of its last LIVE_CUT_SECONDS, so that no word is cut in two (what
        follows is heard with the next window). Used to caption a session while it runs."""
        self.load()
        with self._decoded(recording) as samples:
            total = min(recording.seconds, len(samples) / SAMPLE_RATE)
            end = total
            if not final:
                end = quietest_moment(samples, total - LIVE_CUT_SECONDS / 2, LIVE_CUT_SECONDS / 2)
            lines: list[TimedLine] = []
            if end - start >= MIN_STRETCH_SECONDS:
                lines = self._recognise_range(
                    samples, start, end, spans, vocabulary, None, None, cancel
                )
            # The last window heard all there is, also where the sound ends before the files'
            # indexed length.
            heard = max(start, recording.seconds if final else end)
            return Window(lines, heard)

    def _recognise_range(
        self,
        samples: np.ndarray,
        start: float,
        end: float,
        spans: Sequence[AgendaSpan],
        vocabulary: SessionVocabulary,
        report: Callable[[float], None] | None,
        on_lines: LinesCallback | None,
        cancel: threading.Event | None,
    ) -> list[TimedLine]:
        """Recognise [start, end] of int16 samples stretch by stretch along the spans."""
        lines: list[TimedLine] = []
        planned = plan_stretches(spans, end, self.max_stretch_seconds, start)
        for stretch in snap_stretches(planned, samples):
            if cancel is not None and cancel.is_set():
                raise TranscriptionCancelled("transcription stopped")
            piece = samples[int(stretch.start * SAMPLE_RATE) : int(stretch.end * SAMPLE_RATE)]
            audio = np.asarray(piece, dtype=np.float32) / 32768.0

            def segment_done(seconds: float, at: float = stretch.start) -> None:
                if report is not None:
                    report(at + seconds)

            found = self.recognise(
                audio,
                self.prompt_for(stretch, vocabulary),
                offset=stretch.start,
                on_segment=segment_done,
                cancel=cancel,
            )
            found = [
                replace(line, end=min(line.end, stretch.end))
                for line in found
                if line.start < stretch.end
            ]
            lines.extend(found)
            if on_lines is not None:
                on_lines(stretch, found)
            if report is not None:
                report(stretch.end)
        return lines

    @contextlib.contextmanager
    def _decoded(self, recording: Recording) -> Iterator[np.ndarray]:
        """The recording's sound as int16 16 kHz mono samples, memory-mapped from a temporary
        file (a four-hour session is 460 MB on disk, not in memory)."""
        if not recording.files:
            yield np.zeros(0, dtype=np.int16)
            return
        missing = [str(path) for path, _ in recording.files if not path.is_file()]
        if missing:
            raise AudioUnavailable(
                f"{len(missing)} file(s) of the recording are missing, first {missing[0]}"
            )
        folder = self.work_dir or Path(tempfile.gettempdir())
        folder.mkdir(parents=True, exist_ok=True)
        tag = uuid.uuid4().hex[:12]
        listing = folder / f".transcribe-{tag}.ffconcat"
        raw = folder / f".transcribe-{tag}.pcm"
        try:
            listing.write_text(concat_list(recording.files, durations=True), encoding="utf-8")
            try:
                run_ffmpeg_blocking(
                    extract_argv(listing, raw),
                    timeout=decode_timeout(recording.seconds),
                    what="decode the recording's sound",
                    priority=self.priority,
                )
            except FfmpegTimedOut as exc:
                raise AudioUnavailable(
                    f"ffmpeg could not decode the recording's sound in time ({exc.why})"
                ) from None
            except FfmpegFailed as exc:
                words = exc.stderr_tail[-FFMPEG_WORDS:]
                if "matches no streams" in words:
                    raise AudioUnavailable("the recording has no sound track") from None
                raise AudioUnavailable(
                    f"ffmpeg could not decode the recording's sound (exit {exc.returncode}): "
                    f"{words}"
                ) from None
            size = raw.stat().st_size
            if size < 2:
                yield np.zeros(0, dtype=np.int16)
                return
            samples = np.memmap(raw, dtype=np.int16, mode="r", shape=(size // 2,))
            try:
                yield samples
            finally:
                del samples
        finally:
            listing.unlink(missing_ok=True)
            raw.unlink(missing_ok=True)

    # async API (the service)

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=1,
                thread_name_prefix="transcribe",
                initializer=lower_this_thread,
                initargs=(self.nice,),
            )
        return self._pool

    async def start(self) -> None:
        """Load the model on the worker thread; ModelUnavailable if it cannot be."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor(), self.load)

    async def _on_worker(self, work: Callable[[threading.Event], _T]) -> _T:
        """work(cancel) on the worker thread. Cancelling the caller sets `cancel` (the work
        stops at its next piece) and waits for the worker to be free."""
        loop = asyncio.get_running_loop()
        cancel = threading.Event()
        future = loop.run_in_executor(self._executor(), work, cancel)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            cancel.set()
            with contextlib.suppress(Exception):
                await future
            raise

    async def transcribe_async(
        self,
        recording: Recording,
        spans: Sequence[AgendaSpan] = (),
        vocabulary: SessionVocabulary = SessionVocabulary(),
        *,
        only: Sequence[tuple[float, float]] | None = None,
        on_progress: ProgressCallback | None = None,
        on_lines: LinesCallback | None = None,
    ) -> list[TimedLine]:
        """transcribe() on the worker thread; the callbacks run on the event loop."""
        loop = asyncio.get_running_loop()

        def progress(value: Progress) -> None:
            if on_progress is not None:
                loop.call_soon_threadsafe(on_progress, value)

        def lines(stretch: Stretch, found: list[TimedLine]) -> None:
            if on_lines is not None:
                loop.call_soon_threadsafe(on_lines, stretch, found)

        return await self._on_worker(
            lambda cancel: self.transcribe(
                recording,
                spans,
                vocabulary,
                only=only,
                on_progress=progress,
                on_lines=lines,
                cancel=cancel,
            )
        )

    async def transcribe_window_async(
        self,
        recording: Recording,
        start: float,
        spans: Sequence[AgendaSpan] = (),
        vocabulary: SessionVocabulary = SessionVocabulary(),
        *,
        final: bool = False,
    ) -> Window:
        """transcribe_window() on the worker thread (after any work queued before it)."""
        return await self._on_worker(
            lambda cancel: self.transcribe_window(
                recording, start, spans, vocabulary, final=final, cancel=cancel
            )
        )

    async def close(self) -> None:
        """Stop the worker thread (after the running transcription) and free the model."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.get_running_loop().run_in_executor(None, pool.shutdown, True)
        self._model = None
