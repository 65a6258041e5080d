"""Live captions: a running session's newest public sound recognised window by window, kept as
automatic transcript lines (so the live page shows them, labelled automatic, and the archive
search finds them at once), and replaced by the full recognition after the session.

The captioner hears the program, the same segments the public copy is made of: breaks and
closed parts never reach it. When recognition falls behind the recording by more than
`live_max_lag_seconds` (the machine cannot keep up), it skips to the newest sound and counts
what it skipped; the recognition after the session fills the gap.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import dataclass, replace
from typing import Any, Literal

from archive.index import ArchiveIndex, AsyncArchive
from config.settings import Settings
from recorder.priority import CAPTIONS
from recorder.transcribe import (
    AgendaSpan,
    Recording,
    SessionVocabulary,
    Transcriber,
    find_resolution_numbers,
)
from streaming.services.exports import RecordingView, read_view, span_plan
from streaming.services.slates import make_slates

log = logging.getLogger(__name__)

# How often the captioner looks for new sound while it waits for a whole window.
POLL_SECONDS = 1.0
# After a failed window, wait this long before trying again (the error is shown meanwhile).
RETRY_SECONDS = 5.0

LiveState = Literal["waiting", "captioning", "behind", "failed", "ended"]


def session_vocabulary(
    index: ArchiveIndex, settings: Settings, view: RecordingView
) -> SessionVocabulary:
    """What the session's speech is likely to name: its title, the term's councillors and the
    resolution numbers in its agenda and votes (archive thread)."""
    names = tuple(c.name for c in index.councillors(settings.console.term, True))
    subjects = [v.subject for v in index.votes(view.session.id)]
    titles = [row.title for row in view.agenda]
    return SessionVocabulary(
        title=view.session.title,
        names=names,
        resolutions=find_resolution_numbers(view.session.agenda_text, *subjects, *titles),
    )


def agenda_spans(view: RecordingView) -> tuple[AgendaSpan, ...]:
    """The recording's chapters as the recogniser's spans."""
    return tuple(AgendaSpan(c.start, c.end, c.label) for c in view.chapters if c.end > c.start)


@dataclass(frozen=True)
class _Ahead:
    """The public sound not yet captioned, read from the archive in one go."""

    view: RecordingView
    base: float  # where in the recording the files begin
    recording: Recording
    spans: tuple[AgendaSpan, ...]
    vocabulary: SessionVocabulary
    slates: tuple[Any, ...]

    @property
    def live(self) -> bool:
        """Whether the session was still running."""
        return self.view.session.state == "live"

    @property
    def available(self) -> float:
        """Seconds of public recording so far."""
        return self.view.duration


def _peek(index: ArchiveIndex, session_id: int) -> tuple[bool, float]:
    """Whether the session is still live, and how long its public recording is."""
    return index.get_session(session_id).state == "live", index.program_seconds(session_id)


def _read_ahead(index: ArchiveIndex, settings: Settings, session_id: int, done: float) -> _Ahead:
    view = read_view(index, session_id)
    plan = span_plan(settings, view, "live", "", done, view.duration)
    return _Ahead(
        view=view,
        base=plan.start,
        recording=Recording(plan.files),
        spans=tuple(
            AgendaSpan(s.start - plan.start, s.end - plan.start, s.title, s.terms)
            for s in agenda_spans(view)
        ),
        vocabulary=session_vocabulary(index, settings, view),
        slates=plan.slates,
    )


@dataclass
class LiveStatus:
    """How live captioning of one session is going, for the console and /api/v1/status."""

    session_id: int
    state: LiveState = "waiting"
    captioned_seconds: float = 0.0  # the recording is captioned up to here
    recorded_seconds: float = 0.0  # of public recording so far
    skipped_seconds: float = 0.0  # left for the recognition after the session
    windows: int = 0
    work_seconds: float = 0.0  # spent recognising
    heard_seconds: float = 0.0  # recognised
    error: str | None = None

    @property
    def lag_seconds(self) -> float:
        """How far captions are behind the recording."""
        return max(0.0, self.recorded_seconds - self.captioned_seconds)

    @property
    def realtime_factor(self) -> float | None:
        """Seconds of work per second of sound so far (below 1: it keeps up)."""
        return self.work_seconds / self.heard_seconds if self.heard_seconds > 0 else None

    def to_json(self) -> dict[str, Any]:
        """As JSON."""
        factor = self.realtime_factor
        return {
            "session_id": self.session_id,
            "state": self.state,
            "captioned_seconds": round(self.captioned_seconds, 1),
            "recorded_seconds": round(self.recorded_seconds, 1),
            "lag_seconds": round(self.lag_seconds, 1),
            "skipped_seconds": round(self.skipped_seconds, 1),
            "windows": self.windows,
            "realtime_factor": round(factor, 3) if factor is not None else None,
            "error": self.error,
        }


class LiveCaptioner:
    """Captions one running session until it ends (run() returns then)."""

    def __init__(
        self,
        settings: Settings,
        archive: AsyncArchive,
        transcriber: Transcriber,
        session_id: int,
        *,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self._settings = settings
        self._archive = archive
        self._transcriber = transcriber
        self._poll = poll_seconds
        self.status = LiveStatus(session_id)

    async def run(self) -> None:
        """Caption windows of the newest sound as they are recorded, until the session ends."""
        config = self._settings.transcription
        window, max_lag = config.live_window_seconds, config.live_max_lag_seconds
        status = self.status
        archive = self._archive
        sid = status.session_id
        # After a restart of the service, go on from where captions had got to.
        heard = await archive.call(archive.index.heard_ranges, sid)
        status.captioned_seconds = heard[-1][1] if heard else 0.0
        while True:
            # A cheap look first; the whole view only when a window is due.
            live, recorded = await archive.call(_peek, archive.index, sid)
            status.recorded_seconds = recorded
            if not live:
                status.state = "ended"
                return
            if recorded - status.captioned_seconds < window:
                await asyncio.sleep(self._poll)
                continue
            ahead = await archive.call(
                _read_ahead, archive.index, self._settings, sid, status.captioned_seconds
            )
            status.recorded_seconds = ahead.available
            if not ahead.live:
                status.state = "ended"
                return
            if ahead.available - status.captioned_seconds > max_lag:
                # Too far behind: caption the newest window and leave the rest to the
                # recognition after the session.
                jump = ahead.available - window
                status.skipped_seconds += jump - status.captioned_seconds
                status.captioned_seconds = jump
                status.state = "behind"
                log.warning(
                    "live captions of session %d fell %.0f s behind: skipped to the newest sound",
                    sid,
                    ahead.available - jump,
                )
                continue
            try:
                if not await self._caption(ahead):
                    # Nothing new could be heard (the sound ends before the files do): wait.
                    await asyncio.sleep(self._poll)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("live captions of session %d: a window failed", sid)
                status.state, status.error = "failed", str(exc)[:500]
                await asyncio.sleep(RETRY_SECONDS)

    async def _caption(self, ahead: _Ahead) -> bool:
        """Recognise the next window; whether captions moved on."""
        status = self.status
        archive = self._archive
        if ahead.slates:
            await make_slates(
                self._settings, ahead.view.session, list(ahead.slates), priority=CAPTIONS
            )
        started = time.monotonic()
        start = status.captioned_seconds
        found = await self._transcriber.transcribe_window_async(
            ahead.recording, start - ahead.base, ahead.spans, ahead.vocabulary
        )
        end = ahead.base + found.end
        if end <= start:
            return False
        lines = [
            replace(line, start=line.start + ahead.base, end=line.end + ahead.base)
            for line in found.lines
        ]
        await archive.call(
            functools.partial(archive.index.replace_automatic, within=(start, end)),
            status.session_id,
            lines,
        )
        # Kept after the lines: if this process stopped in between, the recognition after
        # the session would hear the window again rather than miss it.
        await archive.call(archive.index.mark_heard, status.session_id, start, end)
        status.work_seconds += time.monotonic() - started
        status.heard_seconds += end - start
        status.windows += 1
        status.captioned_seconds = end
        status.error = None
        behind = status.lag_seconds > 2 * self._settings.transcription.live_window_seconds
        status.state = "behind" if behind else "captioning"
        return True
