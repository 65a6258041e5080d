"""The archive's records as plain frozen dataclasses: sessions, agenda rows, markers, capture runs
and segments. Callers get these, never database rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

SessionState = Literal["scheduled", "live", "ended"]
MarkerKind = Literal["item_start", "break_start", "break_end", "closed_start", "closed_end"]


@dataclass(frozen=True)
class Session:
    """A council session or committee meeting: a scheduled recording window with an agenda."""

    id: int
    chamber: str
    title: str
    kind: str
    scheduled_start: datetime
    scheduled_end: datetime
    state: SessionState
    started_at: datetime | None
    ended_at: datetime | None
    stopped_by: str | None
    agenda_text: str
    created_at: datetime
    published: bool = True


@dataclass(frozen=True)
class AgendaRow:
    """One stored agenda item."""

    id: int
    session_id: int
    parent_id: int | None
    position: int
    depth: int
    number: str
    title: str


@dataclass(frozen=True)
class Marker:
    """A moment in the session: an agenda item started, a break started or ended."""

    id: int
    session_id: int
    kind: MarkerKind
    at: datetime
    item_id: int | None
    created_by: str | None


@dataclass(frozen=True)
class Run:
    """One ffmpeg process's share of a session's recording."""

    id: int
    session_id: int
    camera: str
    ordinal: int
    dir: str
    started_at: datetime
    anchor_at: datetime | None
    ended_at: datetime | None
    exit_code: int | None
    duration: float
    segment_count: int
    end_reason: str | None
    media_origin: float | None


@dataclass(frozen=True)
class Segment:
    """One finished media file of a run."""

    id: int
    run_id: int
    run_ordinal: int
    run_dir: str
    camera: str
    session_id: int
    chamber: str
    seq: int
    file: str
    media_start: float
    duration: float
    observed_at: datetime
    size_bytes: int
    sha256: str | None
    program_seq: int | None
    program_disc: int | None

    @property
    def rel_path(self) -> str:
        """Path below the session's media folder: camera/run-NNNN/seg-NNNNNN.ts."""
        return f"{self.camera}/{self.run_dir}/{self.file}"
