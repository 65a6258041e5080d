"""JSON views of archive records (sessions, agenda trees, markers, votes, runs) shared by the API
and the pages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from archive.continuity import MediaHole
from archive.council import AgendaEntry, Vote
from archive.index import ArchiveIndex, AsyncArchive, Marker, Run, Session
from archive.timeline import Gap, Timeline


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def agenda_tree(rows: list[AgendaEntry]) -> list[dict[str, Any]]:
    """Nest stored agenda rows as items with sub-items (with what changed during the session)."""
    nodes: dict[int, dict[str, Any]] = {}
    top: list[dict[str, Any]] = []
    for row in rows:
        node = {
            "id": row.id,
            "number": row.number,
            "title": row.title,
            "added": row.added,
            "removed": row.removed,
            "items": [],
        }
        nodes[row.id] = node
        if row.parent_id is None or row.parent_id not in nodes:
            top.append(node)
        else:
            nodes[row.parent_id]["items"].append(node)
    return top


def marker_json(marker: Marker, timeline: Timeline) -> dict[str, Any]:
    """A marker with its offset in the recording."""
    offset = timeline.offset_of(marker.at)
    return {
        "id": marker.id,
        "kind": marker.kind,
        "at": _iso(marker.at),
        "offset_seconds": None if offset is None else round(offset, 3),
        "item_id": marker.item_id,
    }


def vote_json(vote: Vote, timeline: Timeline) -> dict[str, Any]:
    """A nominal vote: its subject, moment in the recording, totals and per-councillor list."""
    offset = timeline.offset_of(vote.at)
    return {
        "id": vote.id,
        "item_id": vote.item_id,
        "subject": vote.subject,
        "at": _iso(vote.at),
        "offset_seconds": None if offset is None else round(offset, 3),
        "source": vote.source,
        "totals": vote.totals(),
        "choices": [
            {
                "councillor_id": c.councillor_id,
                "name": c.name,
                "caucus": c.caucus,
                "choice": c.choice,
            }
            for c in vote.choices
        ],
    }


def run_json(run: Run) -> dict[str, Any]:
    """One ffmpeg run of the recording."""
    return {
        "camera": run.camera,
        "ordinal": run.ordinal,
        "started_at": _iso(run.started_at),
        "media_started_at": _iso(run.anchor_at),
        "ended_at": _iso(run.ended_at),
        "exit_code": run.exit_code,
        "end_reason": run.end_reason,
        "duration_seconds": round(run.duration, 3),
        "segments": run.segment_count,
    }


def continuity_json(gaps: list[Gap], holes: list[MediaHole], timeline: Timeline) -> list[Any]:
    """Everything missing from the recording in wall-clock order: stretches no run covers
    (kind "gap") and holes in the recorded video or audio (kind "video", "audio", "drift")."""
    found: list[tuple[datetime, dict[str, Any]]] = []
    for gap in gaps:
        entry = {
            "kind": "gap",
            "start": _iso(gap.start),
            "end": _iso(gap.end),
            "seconds": round(gap.seconds, 3),
            "offset_seconds": round(gap.offset_seconds, 3),
            "cause": gap.cause,
        }
        found.append((gap.start, entry))
    for hole in holes:
        offset = timeline.offset_of(hole.start)
        entry = {
            "kind": hole.kind,
            "camera": hole.camera,
            "start": _iso(hole.start),
            "end": _iso(hole.end),
            "seconds": round(hole.seconds, 3),
            "offset_seconds": None if offset is None else round(offset, 3),
            "cause": hole.cause,
        }
        found.append((hole.start, entry))
    return [entry for _, entry in sorted(found, key=lambda pair: pair[0])]


def session_summary(session: Session) -> dict[str, Any]:
    """The fields every listing shows."""
    return {
        "id": session.id,
        "chamber": session.chamber,
        "title": session.title,
        "kind": session.kind,
        "state": session.state,
        "scheduled_start": _iso(session.scheduled_start),
        "scheduled_end": _iso(session.scheduled_end),
        "started_at": _iso(session.started_at),
        "ended_at": _iso(session.ended_at),
        "stopped_by": session.stopped_by,
        "published": session.published,
        "url": f"/api/v1/sessions/{session.id}",
    }


async def session_detail(archive: AsyncArchive, session_id: int) -> dict[str, Any]:
    """A session with its agenda, markers (with offsets) and recording."""

    def read(
        index: ArchiveIndex,
    ) -> tuple[
        Session,
        list[AgendaEntry],
        list[Marker],
        list[Run],
        Timeline,
        list[Vote],
        list[MediaHole],
        int,
    ]:
        return (
            index.get_session(session_id),
            index.agenda_entries(session_id),
            index.markers(session_id),
            index.runs(session_id),
            index.timeline(session_id),
            index.votes(session_id),
            index.media_holes(session_id),
            index.unchecked_program_segments(session_id),
        )

    session, agenda, markers, runs, timeline, votes, holes, unchecked = await archive.read(read)
    gaps = timeline.gaps()
    breaks = [m.kind for m in markers if m.kind in ("break_start", "break_end")]
    closed = [m.kind for m in markers if m.kind in ("closed_start", "closed_end")]
    current_item = next((m.item_id for m in reversed(markers) if m.kind == "item_start"), None)
    detail = session_summary(session)
    detail.update(
        {
            "in_break": session.state == "live" and bool(breaks) and breaks[-1] == "break_start",
            "closed": session.state == "live" and bool(closed) and closed[-1] == "closed_start",
            "current_item_id": current_item if session.state == "live" else None,
            "agenda": agenda_tree(agenda),
            "markers": [marker_json(m, timeline) for m in markers],
            "votes": [vote_json(v, timeline) for v in votes],
            "recording": {
                "duration_seconds": round(timeline.duration, 3),
                # Complete: ended, every program segment's media checked, and nothing missing.
                "complete": session.state == "ended" and not gaps and not holes and not unchecked,
                "media_checked": unchecked == 0,
                "continuity": continuity_json(gaps, holes, timeline),
                "runs": [run_json(r) for r in runs],
                "gaps": [
                    {
                        "start": _iso(g.start),
                        "end": _iso(g.end),
                        "seconds": round(g.seconds, 3),
                        "offset_seconds": round(g.offset_seconds, 3),
                        "cause": g.cause,
                    }
                    for g in gaps
                ],
                "playlist_url": f"/sessions/{session.id}/index.m3u8",
                "chapters_url": f"/sessions/{session.id}/chapters.vtt",
            },
            "page_url": f"/sessions/{session.id}",
            "live_url": f"/live/{session.chamber}/index.m3u8",
        }
    )
    return detail
