"""Integrity of recordings: SHA-256 of every segment, in the index and in a manifest file beside
the media (`sha256sum -c manifest.sha256` checks it too), and verification of both."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

MANIFEST = "manifest.sha256"


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's contents."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def append_manifest(session_dir: Path, rel_path: str, digest: str) -> None:
    """Add one line to the session's manifest and make it durable."""
    with (session_dir / MANIFEST).open("a", encoding="utf-8") as fh:
        fh.write(f"{digest}  {rel_path}\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_manifest(session_dir: Path) -> dict[str, str]:
    """rel_path -> digest as listed in the manifest (later lines win)."""
    entries: dict[str, str] = {}
    try:
        text = (session_dir / MANIFEST).read_text(encoding="utf-8")
    except FileNotFoundError:
        return entries
    for line in text.splitlines():
        digest, sep, rel = line.partition("  ")
        if sep and len(digest) == 64:
            entries[rel] = digest
    return entries


@dataclass
class VerifyReport:
    """What `obrady verify` found for one session."""

    checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every segment is present and matches."""
        return not self.problems


def verify_files(session_dir: Path, indexed: dict[str, str | None]) -> VerifyReport:
    """Check every indexed segment (rel_path -> digest) against the file and the manifest."""
    report = VerifyReport()
    manifest = read_manifest(session_dir)
    for rel, digest in sorted(indexed.items()):
        path = session_dir / rel
        listed = manifest.get(rel)
        if digest is None and listed is None:
            report.problems.append(f"{rel}: no checksum was recorded")
            continue
        if digest is not None and listed is not None and digest != listed:
            report.problems.append(f"{rel}: index and manifest disagree")
        try:
            actual = sha256_file(path)
        except FileNotFoundError:
            report.problems.append(f"{rel}: file is missing")
            continue
        report.checked += 1
        expected = digest or listed
        if actual != expected:
            report.problems.append(f"{rel}: SHA-256 mismatch (file changed or damaged)")
    for rel in sorted(set(manifest) - set(indexed)):
        report.problems.append(f"{rel}: listed in the manifest but not in the index")
    return report
