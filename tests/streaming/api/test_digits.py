"""Numbers in paths and queries are ASCII digits: "²" (a digit to str.isdigit(), not to int())
and "٣" (an Arabic-Indic three, which int() reads) are refused on every route that takes a
number with a 4xx that says what to fix (JSON on the API and the downloads), never a 500."""

from __future__ import annotations

import re
from urllib.parse import quote

from conftest import Service

# A digit to str.isdigit() that int() refuses; a digit of another script that int() reads.
ODD = ("²", "٣")
# Path parameters that are numbers, and stand-ins for those that are not.
NUMBERS = {"id", "item_id", "line_id", "vote_id", "marker_id", "rid", "cid"}
NAMES = {"chamber": "sala", "camera": "main", "run": "run-{n}", "file": "seg-{n}.ts"}
LIVE_NAMES = {"/p/": "{n}.0.ts", "/s/": "{n}-main.ts"}


def paths_with(canonical: str, odd: str, sid: int) -> list[str]:
    """canonical with odd in each numeric parameter in turn (a real session elsewhere)."""
    params = re.findall(r"{(\w+)}", canonical)
    found = []
    for target in params:
        path = canonical
        for name in params:
            if name in NUMBERS:
                value = odd if name == target else str(sid)
            elif name == "name":
                live = next((v for k, v in LIVE_NAMES.items() if k in canonical), None)
                if live is None:
                    break  # a user's name: not a number
                value = live.format(n=odd if name == target else "1")
            else:
                value = NAMES[name].format(n=odd * 4 if name == target else "0001")
            path = path.replace("{" + name + "}", quote(value))
        else:
            if target in NUMBERS or target in ("name", "run", "file"):
                found.append(path)
    return found


async def test_odd_digits_are_refused_with_a_4xx_on_every_route(service: Service) -> None:
    created = await service.begin(start=False)
    sid = created["id"]
    headers = await service.signed_in()
    asked = []
    routes = sorted(
        {
            (r.method, r.resource.canonical)
            for r in service.app.router.routes()
            if r.resource is not None and r.method != "HEAD" and "{" in r.resource.canonical
        }
    )
    for odd in ODD:
        for method, canonical in routes:
            for path in paths_with(canonical, odd, sid):
                asked.append((method, path))
        asked += [
            ("GET", f"/sessions/{sid}?t={quote(odd)}"),
            ("GET", f"/embed/sessions/{sid}?t={quote(odd)}"),
            ("GET", f"/archive?page={quote(odd)}"),
            ("GET", f"/archive?year={quote(odd * 4)}"),
            ("GET", f"/api/v1/search?q=sesja&limit={quote(odd)}"),
            ("GET", f"/api/v1/search?q=sesja&offset={quote(odd)}"),
            ("GET", f"/api/v1/audit?session_id={quote(odd)}"),
            ("GET", f"/live/sala/index.m3u8?_HLS_msn={quote(odd)}"),
            ("GET", f"/live/sala/index.m3u8?_HLS_msn=1&_HLS_part={quote(odd)}"),
            ("GET", f"/sessions/{quote(odd)}/clip.mp4?start={quote(odd)}"),
            ("GET", "/oembed?url=" + quote(f"{service.base}/sessions/{odd}")),
            ("GET", f"/oembed?url={quote(service.base)}/sessions/{sid}&maxwidth={quote(odd)}"),
        ]
    assert len(asked) > 100
    for method, path in asked:
        async with service.http.request(
            method, service.base + path, headers=headers, json={}
        ) as resp:
            text = await resp.text()
            assert 400 <= resp.status < 500, (method, path, resp.status, text[:300])
            if path.startswith("/api/") or ".mp4" in path or path.startswith("/oembed"):
                assert resp.content_type == "application/json", (method, path, text[:300])
                assert '"error"' in text, (method, path, text[:300])
    # The session, and everything else, is as it was.
    assert (await service.get_json(f"/api/v1/sessions/{sid}"))["state"] == "scheduled"
