"""After the session, on real capture: staff correct chapters, withdraw and publish, redact."""

from __future__ import annotations

import asyncio
import hashlib
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import OPERATOR, STAFF, Service, basic, record_two_items
from helpers import ffprobe

from archive.session_record import RECORD
from recorder.ffmpeg import RedactionSlate, redaction_slate_argv
from streaming.keys import ARCHIVE


async def call(
    service: Service,
    method: str,
    path: str,
    body: Any = None,
    *,
    auth: tuple[str, str] | None = STAFF,
    status: int = 200,
) -> Any:
    """A JSON request with Basic credentials (no cookie); checks the status."""
    async with service.http.request(
        method, service.base + path, json=body, headers=basic(auth)
    ) as resp:
        data = await resp.json()
        assert resp.status == status, (resp.status, data)
        return data


async def get(
    service: Service, path: str, auth: tuple[str, str] | None = None
) -> tuple[int, str, bytes]:
    """Status, Cache-Control and body of a GET."""
    async with service.http.get(service.base + path, headers=basic(auth)) as resp:
        return resp.status, resp.headers.get("Cache-Control", ""), await resp.read()


async def record(service: Service, *, stop: bool = True) -> dict[str, Any]:
    """A short real recording (conftest.record_two_items); the session's detail if still live."""
    answer = await record_two_items(service, title="Sesja do korekty", stop=stop)
    if stop:
        return answer
    return await service.get_json(f"/api/v1/sessions/{answer['id']}")


async def video_frames(url: str, authorization: str | None = None) -> int:
    """How many video frames ffprobe decodes from a playlist, start to end."""
    headers = [] if authorization is None else ["-headers", f"Authorization: {authorization}\r\n"]
    proc = await asyncio.create_subprocess_exec(
        "ffprobe", *headers, "-v", "error", "-select_streams", "v:0", "-count_frames",
        "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    # The stream is listed under its program and on its own: the same count twice.
    return int(out.decode().split()[0].strip(","))


def vtt_cues(text: str) -> list[tuple[float, float, str]]:
    cues = []
    pattern = re.compile(r"(\d\d):(\d\d):(\d\d)\.(\d{3}) --> (\d\d):(\d\d):(\d\d)\.(\d{3})\n(.+)")
    for m in pattern.finditer(text):
        g = [int(x) for x in m.groups()[:8]]
        start = g[0] * 3600 + g[1] * 60 + g[2] + g[3] / 1000
        end = g[4] * 3600 + g[5] * 60 + g[6] + g[7] / 1000
        cues.append((start, end, m.group(9)))
    return cues


async def cues(service: Service, sid: int) -> list[tuple[float, float, str]]:
    return vtt_cues(await service.get_text(f"/sessions/{sid}/chapters.vtt"))


def digests(folder: Path) -> dict[str, str]:
    """What was recorded in a session's media folder (not the session's record, record.json,
    which follows every change of the session's records, redactions included)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != RECORD
    }


async def audit_actions(service: Service, sid: int) -> list[tuple[str, Any, Any]]:
    archive = service.app[ARCHIVE]
    entries = await archive.call(archive.index.audit_log, sid)
    return [(e.action, e.before, e.after) for e in reversed(entries)]


async def test_staff_move_split_merge_and_rename_chapters(service: Service) -> None:
    live = await record(service, stop=False)
    sid = live["id"]
    first_marker = live["markers"][0]["id"]
    refused = await call(
        service, "PATCH", f"/api/v1/sessions/{sid}/markers/{first_marker}",
        {"offset_seconds": 1.0}, status=409,
    )  # fmt: skip
    assert refused["error"] == "session is live; correct markers after it ends"
    stopped = await service.post_json(f"/api/v1/sessions/{sid}/stop")
    duration = stopped["recording"]["duration_seconds"]
    item_1, item_2, item_3 = (i["id"] for i in stopped["agenda"])
    m1, m2 = (m["id"] for m in stopped["markers"])
    before = await cues(service, sid)
    assert [c[2] for c in before] == ["1. Otwarcie sesji", "2. Budżet miasta"]

    # Move item 2's start to 5.25 s of the recording.
    moved = await call(
        service, "PATCH", f"/api/v1/sessions/{sid}/markers/{m2}", {"offset_seconds": 5.25}
    )
    assert moved["marker"]["offset_seconds"] == 5.25
    after = await cues(service, sid)
    assert after[0][1] == 5.25 and after[1][:2] == (5.25, before[1][1])
    assert [c["start_seconds"] for c in moved["chapters"]] == pytest.approx([c[0] for c in after])

    # Re-point it at item 3.
    await call(service, "PATCH", f"/api/v1/sessions/{sid}/markers/{m2}", {"item_id": item_3})
    assert (await cues(service, sid))[1][2] == "3. Zamknięcie obrad"

    # Split: a chapter for item 2 from 4 s, then one for a new item from 6 s.
    split = await call(
        service, "POST", f"/api/v1/sessions/{sid}/markers",
        {"kind": "item_start", "offset_seconds": 4.0, "item_id": item_2}, status=201,
    )  # fmt: skip
    added = await call(
        service, "POST", f"/api/v1/sessions/{sid}/markers",
        {"kind": "item_start", "offset_seconds": 6.0, "title": "Wolne wnioski"}, status=201,
    )  # fmt: skip
    assert added["item"]["number"] == "4" and added["item"]["title"] == "Wolne wnioski"
    assert [(c[0], c[2]) for c in await cues(service, sid)] == [
        (before[0][0], "1. Otwarcie sesji"),
        (4.0, "2. Budżet miasta"),
        (5.25, "3. Zamknięcie obrad"),
        (6.0, "4. Wolne wnioski"),
    ]
    detail = await service.get_json(f"/api/v1/sessions/{sid}")
    assert [i["number"] for i in detail["agenda"]] == ["1", "2", "3", "4"]

    # Merge: deleting item 2's start joins its chapter to item 1's.
    merged = await call(
        service, "DELETE", f"/api/v1/sessions/{sid}/markers/{split['marker']['id']}"
    )
    assert merged["deleted"]["offset_seconds"] == 4.0
    assert [c[2] for c in await cues(service, sid)] == [
        "1. Otwarcie sesji",
        "3. Zamknięcie obrad",
        "4. Wolne wnioski",
    ]
    assert (await cues(service, sid))[0][1] == 5.25

    # Rename.
    renamed = await call(
        service, "PATCH", f"/api/v1/sessions/{sid}/items/{item_1}",
        {"title": "Otwarcie sesji i stwierdzenie quorum"},
    )  # fmt: skip
    assert renamed["item"]["title"] == "Otwarcie sesji i stwierdzenie quorum"
    assert (await cues(service, sid))[0][2] == "1. Otwarcie sesji i stwierdzenie quorum"

    # Bad input: clear 4xx, nothing changed.
    state = await cues(service, sid)
    markers = (await service.get_json(f"/api/v1/sessions/{sid}"))["markers"]
    base = f"/api/v1/sessions/{sid}"
    outside = await call(
        service, "PATCH", f"{base}/markers/{m1}", {"offset_seconds": duration + 5}, status=400
    )
    assert "outside the recording" in outside["error"]
    negative = await call(
        service, "PATCH", f"{base}/markers/{m1}", {"offset_seconds": -1}, status=400
    )
    assert "outside the recording" in negative["error"]
    text = await call(service, "PATCH", f"{base}/markers/{m1}", {"offset_seconds": "5"}, status=400)
    assert "number of seconds" in text["error"]
    await call(service, "PATCH", f"{base}/markers/99999", {"offset_seconds": 1}, status=404)
    await call(service, "PATCH", f"{base}/markers/{m1}", {"item_id": 99999}, status=404)
    await call(service, "PATCH", f"/api/v1/sessions/4242/markers/{m1}", {"item_id": 1}, status=404)
    await call(service, "DELETE", f"{base}/markers/99999", status=404)
    first = await call(service, "DELETE", f"{base}/markers/{m1}", status=409)
    assert "no previous chapter" in first["error"]
    await call(service, "PATCH", f"{base}/items/99999", {"title": "x"}, status=404)
    await call(service, "PATCH", f"{base}/items/{item_1}", {"title": ""}, status=400)
    unknown = await call(service, "PATCH", f"{base}/items/{item_1}", {"titel": "x"}, status=400)
    assert "titel" in unknown["error"]
    assert await cues(service, sid) == state
    assert (await service.get_json(f"/api/v1/sessions/{sid}"))["markers"] == markers

    actions = await audit_actions(service, sid)
    edits = [a for a in actions if a[0].startswith("marker.") or a[0] == "item.rename"]
    assert [a[0] for a in edits] == [
        "marker.move",
        "marker.move",
        "marker.split",
        "marker.split",
        "marker.merge",
        "item.rename",
    ]
    move = edits[0]
    assert move[1]["offset_seconds"] == before[1][0] and move[2]["offset_seconds"] == 5.25
    assert edits[1][1]["item_id"] == item_2 and edits[1][2]["item_id"] == item_3
    assert edits[5][1]["title"] == "Otwarcie sesji" and edits[5][2]["title"].endswith("quorum")


async def test_a_withdrawn_recording_is_gone_for_the_public_and_kept_for_staff(
    service: Service,
) -> None:
    stopped = await record(service)
    sid = stopped["id"]
    playlist = await service.get_text(f"/sessions/{sid}/index.m3u8")
    media = next(line for line in playlist.splitlines() if line.endswith(".ts"))
    media_path = "/sessions/" + media.removeprefix("../")
    public = [f"/sessions/{sid}/index.m3u8", f"/sessions/{sid}/chapters.vtt", media_path]
    for path in public:
        status, cache, _ = await get(service, path)
        assert status == 200 and cache.startswith("public"), (path, status, cache)

    answer = await call(service, "POST", f"/api/v1/sessions/{sid}/publish", {"published": False})
    assert answer == {"session_id": sid, "published": False}
    for path in public:
        status, cache, body = await get(service, path)
        assert status == 410, (path, status)
        assert b"withdrawn" in body and cache == "no-store"
        status, cache, body = await get(service, path, auth=STAFF)
        assert status == 200 and cache == "private, no-store", (path, status, cache)
        status, cache, _ = await get(service, path, auth=OPERATOR)  # archive.sealed: any role
        assert status == 200 and cache == "private, no-store"
    # The session's page too.
    status, cache, body = await get(service, f"/sessions/{sid}")
    assert status == 410 and "wycofane z publikacji" in body.decode() and cache == "no-store"
    status, _, body = await get(service, f"/sessions/{sid}?lang=en")
    assert status == 410 and b"withdrawn from publication" in body
    # The embed (in a BIP page's frame) says so too.
    status, cache, body = await get(service, f"/embed/sessions/{sid}")
    assert status == 410 and "wycofane z publikacji" in body.decode() and cache == "no-store"
    status, cache, body = await get(service, f"/embed/sessions/{sid}", auth=STAFF)
    assert status == 200 and cache == "private, no-store" and b"<video" in body
    status, cache, body = await get(service, f"/sessions/{sid}", auth=STAFF)
    assert status == 200 and cache == "private, no-store" and b"<video" in body
    detail = await service.get_json(f"/api/v1/sessions/{sid}")
    assert detail["published"] is False

    await call(service, "POST", f"/api/v1/sessions/{sid}/publish", {"published": True})
    for path in public:
        status, cache, _ = await get(service, path)
        assert status == 200 and cache.startswith("public"), (path, status, cache)
    bad = await call(
        service, "POST", f"/api/v1/sessions/{sid}/publish", {"published": "no"}, status=400
    )
    assert '"published": true' in bad["error"]
    await call(service, "POST", "/api/v1/sessions/4242/publish", {"published": True}, status=404)
    ours = ("session.withdraw", "session.publish")
    assert [a for a in await audit_actions(service, sid) if a[0] in ours] == [
        ("session.withdraw", {"published": True}, {"published": False}),
        ("session.publish", {"published": False}, {"published": True}),
    ]


async def test_redaction_replaces_segments_with_slates_and_keeps_the_original(
    service: Service,
) -> None:
    stopped = await record(service)
    sid = stopped["id"]
    data = service.settings.data_path
    media_dir = data / "media" / stopped["chamber"] / str(sid)
    before = digests(media_dir)
    assert before
    url = f"{service.base}/sessions/{sid}/index.m3u8"
    original_duration = float((await ffprobe(url))["format"]["duration"])
    original_playlist = await service.get_text(f"/sessions/{sid}/index.m3u8")

    made = await call(
        service, "POST", f"/api/v1/sessions/{sid}/redactions",
        {"start_seconds": 2.5, "end_seconds": 4.0, "reason": "dane osobowe"}, status=201,
    )  # fmt: skip
    assert made["reason"] == "dane osobowe" and made["created_by"] == STAFF[0]
    hidden = made["hidden"]
    assert hidden["start_seconds"] <= 2.5 and hidden["end_seconds"] >= 4.0
    assert hidden["segments"] == 2

    public = await service.get_text(f"/sessions/{sid}/index.m3u8")
    slates = [line for line in public.splitlines() if "/redacted/" in line]
    # A discontinuity before each slate and before the recording resumes.
    assert len(slates) == 2 and public.count("#EXT-X-DISCONTINUITY") == 3
    extinf = re.compile(r"#EXTINF:([\d.]+),")
    assert extinf.findall(public) == extinf.findall(original_playlist)
    removed = sorted(set(original_playlist.splitlines()) - set(public.splitlines()))
    assert len(removed) == 2 and all(line.endswith(".ts") for line in removed)

    # The public copy keeps its length (ffprobe reads it whole), and a slate looks like the
    # recording: same picture size and codecs.
    probe = await ffprobe(url)
    assert abs(float(probe["format"]["duration"]) - original_duration) < 0.01
    # ...and decodes through the slates to its end: as many pictures as the original, give or
    # take the frames a slate rounds to (ffmpeg's own clock ignores EXT-X-DISCONTINUITY, so
    # frames are counted, not its decoded duration).
    staff = basic(STAFF)["Authorization"]
    public_frames = await video_frames(url)
    original_frames = await video_frames(f"{service.base}/sessions/{sid}/original.m3u8", staff)
    assert abs(public_frames - original_frames) <= 2, (public_frames, original_frames)
    slate = await ffprobe(f"{service.base}/sessions/{slates[0].removeprefix('../')}")
    segment = await ffprobe(str(media_dir / removed[0].split("/media/")[1]))
    shape = [(s["codec_name"], s.get("width"), s.get("height")) for s in segment["streams"]]
    assert [(s["codec_name"], s.get("width"), s.get("height")) for s in slate["streams"]] == shape

    # The redacted originals are sealed: staff only, never cached.
    for line in removed:
        path = "/sessions/" + line.removeprefix("../")
        status, _, _ = await get(service, path)
        assert status == 401
        status, cache, body = await get(service, path, auth=STAFF)
        assert status == 200 and cache == "private, no-store" and body
    kept = next(line for line in public.splitlines() if line.endswith(".ts") and "/media/" in line)
    status, cache, _ = await get(service, "/sessions/" + kept.removeprefix("../"))
    assert status == 200 and cache.startswith("public")
    # Staff get the recording as made.
    status, _, _ = await get(service, f"/sessions/{sid}/original.m3u8")
    assert status == 401
    status, cache, body = await get(service, f"/sessions/{sid}/original.m3u8", auth=STAFF)
    assert status == 200 and cache == "private, no-store"
    assert body.decode() == original_playlist

    # Refused ranges change nothing.
    base = f"/api/v1/sessions/{sid}/redactions"
    overlap = await call(
        service, "POST", base, {"start_seconds": 3.5, "end_seconds": 5, "reason": "x"}, status=409
    )
    assert f"overlaps redaction {made['id']}" in overlap["error"]
    reverse = await call(
        service, "POST", base, {"start_seconds": 5, "end_seconds": 4.5, "reason": "x"}, status=400
    )
    assert "must be before" in reverse["error"]
    outside = await call(
        service, "POST", base, {"start_seconds": 1, "end_seconds": 999, "reason": "x"}, status=400
    )
    assert "outside the recording" in outside["error"]
    no_reason = await call(
        service, "POST", base, {"start_seconds": 5, "end_seconds": 6}, status=400
    )
    assert "reason is required" in no_reason["error"]
    listed = await call(service, "GET", base)
    assert [r["id"] for r in listed["redactions"]] == [made["id"]]
    assert await service.get_text(f"/sessions/{sid}/index.m3u8") == public

    # Lifting it shows the original again.
    await call(service, "DELETE", f"{base}/{made['id']}")
    assert await service.get_text(f"/sessions/{sid}/index.m3u8") == original_playlist
    await call(service, "DELETE", f"{base}/{made['id']}", status=404)

    # Nothing recorded was changed, and the slates live outside the media folders.
    assert digests(media_dir) == before
    assert list((data / "redacted" / str(sid)).rglob("slate-*.ts"))
    actions = [a[0] for a in await audit_actions(service, sid) if a[0].startswith("redaction.")]
    assert actions == ["redaction.add", "redaction.delete"]


async def test_operators_and_the_public_may_not_edit_the_record(service: Service) -> None:
    stopped = await record(service)
    sid = stopped["id"]
    marker = stopped["markers"][1]["id"]
    item = stopped["agenda"][0]["id"]
    base = f"/api/v1/sessions/{sid}"
    requests: list[tuple[str, str, Any]] = [
        ("PATCH", f"{base}/markers/{marker}", {"offset_seconds": 1.0}),
        ("POST", f"{base}/markers", {"kind": "item_start", "offset_seconds": 2, "title": "X"}),
        ("DELETE", f"{base}/markers/{marker}", None),
        ("PATCH", f"{base}/items/{item}", {"title": "Inny tytuł"}),
        ("POST", f"{base}/publish", {"published": False}),
        ("GET", f"{base}/redactions", None),
        ("POST", f"{base}/redactions", {"start_seconds": 1, "end_seconds": 2, "reason": "x"}),
        ("DELETE", f"{base}/redactions/1", None),
    ]
    detail = await service.get_json(base)
    vtt = await service.get_text(f"/sessions/{sid}/chapters.vtt")
    playlist = await service.get_text(f"/sessions/{sid}/index.m3u8")
    audited = len(await audit_actions(service, sid))
    for method, path, body in requests:
        anonymous = await call(service, method, path, body, auth=None, status=401)
        assert "authentication required" in anonymous["error"]
        operator = await call(service, method, path, body, auth=OPERATOR, status=403)
        assert "role operator" in operator["error"], (method, path)
        await call(service, method, path, body, auth=("clerk", "wrong"), status=401)
    assert await service.get_json(base) == detail
    assert await service.get_text(f"/sessions/{sid}/chapters.vtt") == vtt
    assert await service.get_text(f"/sessions/{sid}/index.m3u8") == playlist
    assert len(await audit_actions(service, sid)) == audited
    # The same request with staff Basic credentials (no cookie, no CSRF token) works.
    await call(service, "PATCH", f"{base}/items/{item}", {"title": "Inny tytuł"})


def test_the_slate_argv_matches_the_recording_and_never_overwrites() -> None:
    slate = RedactionSlate(1.96, 320, 180, "10/1", profile="high", audio_rate=48000)
    argv = redaction_slate_argv(slate, Path("/data/redacted/1/main/run-0001/.slate-1960.part"))
    assert argv == [
        "ffmpeg",
        "-f", "lavfi", "-i", "color=c=black:s=320x180:r=10/1",
        "-f", "lavfi", "-i", "anullsrc=r=48000:cl=stereo",
        "-filter_complex",
        "[0]drawtext=fontcolor=white:fontsize=15:text=Fragment usunięty:x=(w-tw)/2:y=(h-th)/2[s0]",
        "-map", "[s0]", "-map", "1",
        "-f", "mpegts", "-ar", "48000", "-b:a", "64k", "-c:a", "aac", "-c:v", "libx264",
        "-pix_fmt", "yuv420p", "-preset", "veryfast", "-profile:v", "high", "-t", "1.960",
        "-tune", "stillimage", "/data/redacted/1/main/run-0001/.slate-1960.part",
        "-hide_banner", "-nostdin", "-loglevel", "error", "-n",
    ]  # fmt: skip
    silent = redaction_slate_argv(RedactionSlate(2.0, 640, 360, audio_rate=None), Path("x"))
    assert "anullsrc" not in " ".join(silent) and "-c:a" not in silent
