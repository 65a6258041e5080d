"""Synthetic Polish speech for the benchmarks: espeak-ng speaks each sentence into a cached
16 kHz mono WAV (never committed), and word error rates are counted per kind of word."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tomllib
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000
MARKUP = re.compile(r"\[([tnr]):([^\]]*)\]")
KINDS = {"t": "agenda titles", "n": "names", "r": "resolution numbers", "": "other words"}
WORD = re.compile(r"\w+(?:/\w+)*")
# Written and spoken forms that mean the same word for counting errors.
SAME = {"numer": "nr", "numerze": "nr"}


class SpeechError(RuntimeError):
    """The speech could not be made (the message says what is missing)."""


@dataclass(frozen=True)
class Sentence:
    """One held-set sentence: the agenda item it is spoken under, the reference text with its
    marked words, and what the synthesizer says."""

    item: str
    text: str
    spoken: str

    @property
    def plain(self) -> str:
        """The reference without markup."""
        return MARKUP.sub(lambda m: m.group(2), self.text)


@dataclass(frozen=True)
class HeldSet:
    """The fictional session and the sentences spoken in it."""

    title: str
    agenda: tuple[tuple[str, str], ...]  # (number, title)
    councillors: tuple[str, ...]
    resolutions: tuple[str, ...]
    sentences: tuple[Sentence, ...]

    def item_title(self, number: str) -> str:
        """The title of agenda item `number`."""
        return dict(self.agenda)[number]


def load_held_set(path: Path) -> HeldSet:
    """Read a held set TOML file (see bench/speech/council_pl.toml)."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    session = data["session"]
    sentences = []
    for entry in data["sentence"]:
        plain = MARKUP.sub(lambda m: m.group(2), entry["text"])
        sentences.append(Sentence(str(entry["item"]), entry["text"], entry.get("spoken", plain)))
    return HeldSet(
        session["title"],
        tuple((str(item["number"]), item["title"]) for item in session["agenda"]),
        tuple(session["councillors"]),
        tuple(session["resolutions"]),
        tuple(sentences),
    )


def espeak_version() -> str:
    """The installed espeak-ng's version line (part of the cache key)."""
    if shutil.which("espeak-ng") is None:
        raise SpeechError("espeak-ng is not installed (apt-get install espeak-ng)")
    out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def speak(text: str, cache: Path, *, voice: str = "pl", words_per_minute: int = 150) -> Path:
    """A 16 kHz mono WAV of espeak-ng saying text, made once into cache."""
    key = hashlib.sha256(f"{espeak_version()}|{voice}|{words_per_minute}|{text}".encode())
    target = cache / f"{key.hexdigest()[:24]}.wav"
    if target.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    raw = target.with_suffix(".espeak.wav")
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(words_per_minute), "-w", str(raw), text], check=True
    )
    partial = target.with_suffix(".part.wav")
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", str(raw),
         "-ac", "1", "-ar", str(SAMPLE_RATE), "-c:a", "pcm_s16le", str(partial)],
        check=True,
    )  # fmt: skip
    partial.replace(target)
    raw.unlink(missing_ok=True)
    return target


def read_wav(path: Path) -> np.ndarray:
    """A 16 kHz mono 16-bit WAV's samples."""
    with wave.open(str(path)) as handle:
        if handle.getframerate() != SAMPLE_RATE or handle.getnchannels() != 1:
            raise SpeechError(f"{path}: not 16 kHz mono")
        return np.frombuffer(handle.readframes(handle.getnframes()), dtype=np.int16)


def write_wav(path: Path, samples: np.ndarray) -> None:
    """Write 16 kHz mono 16-bit samples as a WAV file."""
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(SAMPLE_RATE)
        handle.writeframes(np.asarray(samples, dtype=np.int16).tobytes())


def words(text: str) -> list[str]:
    """Normalized words for counting: lower case, no punctuation, "numer" as "nr"; a resolution
    number such as LVII/712/22 is one word."""
    return [SAME.get(w, w) for w in WORD.findall(text.lower())]


def marked_words(text: str) -> list[tuple[str, str]]:
    """The reference's words, each with its kind ("t", "n", "r" or "" for other)."""
    found: list[tuple[str, str]] = []
    position = 0
    for match in MARKUP.finditer(text):
        found += [(w, "") for w in words(text[position : match.start()])]
        found += [(w, match.group(1)) for w in words(match.group(2))]
        position = match.end()
    found += [(w, "") for w in words(text[position:])]
    return found


@dataclass
class Tally:
    """Reference words and errors (substitutions, deletions, insertions) per kind."""

    words: dict[str, int]
    errors: dict[str, int]

    def rate(self, kind: str | None = None) -> float:
        """Word error rate of one kind, or of all words."""
        if kind is None:
            total = sum(self.words.values())
            return sum(self.errors.values()) / total if total else 0.0
        return self.errors[kind] / self.words[kind] if self.words[kind] else 0.0


def tally(reference: Sequence[tuple[str, str]], hypothesis: Sequence[str]) -> Tally:
    """Align hypothesis words to the reference (Levenshtein) and charge each error to the kind
    of reference word it touches; an insertion inside a marked stretch counts against its kind,
    elsewhere against other words."""
    rows, cols = len(reference), len(hypothesis)
    cost = [list(range(cols + 1))] + [[i] + [0] * cols for i in range(1, rows + 1)]
    for i in range(1, rows + 1):
        word, above, here = reference[i - 1][0], cost[i - 1], cost[i]
        for j in range(1, cols + 1):
            here[j] = min(above[j] + 1, here[j - 1] + 1, above[j - 1] + (word != hypothesis[j - 1]))
    result = Tally({k: 0 for k in KINDS}, {k: 0 for k in KINDS})
    for _, kind in reference:
        result.words[kind] += 1
    i, j = rows, cols
    while i > 0 or j > 0:
        if (
            i > 0
            and j > 0
            and cost[i][j] == cost[i - 1][j - 1] + (reference[i - 1][0] != hypothesis[j - 1])
        ):
            if reference[i - 1][0] != hypothesis[j - 1]:
                result.errors[reference[i - 1][1]] += 1
            i, j = i - 1, j - 1
        elif i > 0 and cost[i][j] == cost[i - 1][j] + 1:
            result.errors[reference[i - 1][1]] += 1
            i -= 1
        else:
            before = reference[i - 1][1] if i > 0 else ""
            after = reference[i][1] if i < rows else ""
            result.errors[before if before == after else ""] += 1
            j -= 1
    return result
