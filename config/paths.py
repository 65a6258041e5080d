"""Where obrady keeps things under its data directory: the one place that names each folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Paths:
    """The layout of the data directory. Media holds what was recorded, with the segment
    lists, checksums (manifest.sha256) and each session's record (record.json) that the index
    can be rebuilt from; everything made from it (redaction slates, downloads, transcription
    work) lives beside it."""

    data: Path

    @property
    def database(self) -> Path:
        """The archive's SQLite index (rebuildable from the media and their manifests)."""
        return self.data / "obrady.sqlite3"

    @property
    def media(self) -> Path:
        """Where recordings are written: media/<chamber>/<session id>/<camera>/run-*/."""
        return self.data / "media"

    def session_media(self, chamber: str, session_id: int) -> Path:
        """The folder holding a session's media (one sub-folder per camera)."""
        return self.media / chamber / str(session_id)

    def redactions(self, session_id: int) -> Path:
        """The slates of a session's redactions: outside the media folders, which only ever
        hold what was recorded."""
        return self.data / "redacted" / str(session_id)

    @property
    def live(self) -> Path:
        """The live edge's state files and the gateways' viewer counts."""
        return self.data / "live"

    @property
    def exports(self) -> Path:
        """Finished and partial MP4 downloads."""
        return self.data / "exports"

    @property
    def transcription_work(self) -> Path:
        """Scratch files of the speech recogniser."""
        return self.data / "transcripts" / "work"

    @property
    def preflight(self) -> Path:
        """Pre-flight previews and test recordings."""
        return self.data / "preflight"
