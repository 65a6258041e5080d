"""Every public link works behind the shipped proxies: a resident's crawl of the whole public
site through the real nginx (config/nginx.conf) and Varnish (config/varnish.vcl), during a live
session and after it, finds no answer that is an error (a download still being made says so, as
intended), and no address that leaks the machine behind the proxy."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import re
import time
import xml.etree.ElementTree as ET
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

import aiohttp
from conftest import (
    STAFF,
    SYNTHETIC_SOURCE,
    free_port,
    record_two_items,
    start_service,
    stop_service,
    wait_for,
)
from servers import client_tls, start_nginx, start_varnish, terminate

from config.settings import Settings

# The address residents use (live.public_url): every absolute link obrady writes must be under
# it; the crawler reads it as the proxy it is crawling.
PUBLIC = "https://transmisja.example.test"
# More addresses than the site has, so a crawl that reaches the bound has found a loop.
LIMIT = 400
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
PLAYER = "*/*"
# What a resident's browser sends (through the TLS terminator in front of the cache).
PUBLIC_HOST = urlsplit(PUBLIC).netloc
TEXT_TYPES = ("text/", "json", "xml", "mpegurl", "calendar")
HLS_URI = re.compile(r'URI="([^"]+)"')
# A download the control port is still making answers 202 with Retry-After (a page that
# reloads itself); a resident's browser comes back until it is there.
DOWNLOAD_MADE_WITHIN = 120.0
WITHDRAWN = r"is withdrawn|<title>Nagranie wycofane"


def kind_of(path: str, content_type: str) -> str:
    """What a resident's browser or player fetched, by its address (and type for pages)."""
    rules = (
        (r"^/static/", "static"),
        (r"^/live/[^/]+/p/", "live part"),
        (r"^/live/[^/]+/s/", "live segment"),
        (r"^/live/.*\.m3u8$", "live playlist"),
        (r"^/sessions/\d+/.*\.m3u8$", "recorded playlist"),
        (r"^/sessions/\d+/(media|redacted)/", "recorded segment"),
        (r"\.mp4$", "download"),
        (r"\.vtt$", "webvtt"),
        (r"^/feeds/", "feed"),
        (r"^/sessions/\d+/votes", "votes"),
        (r"^/embed/", "embed"),
        (r"^/oembed$", "oembed"),
        (r"^/api/", "api"),
    )
    for pattern, kind in rules:
        if re.search(pattern, path):
            return kind
    return "page" if content_type.startswith("text/html") else "other"


class Links(HTMLParser):
    """Every address an HTML page leads a browser or a player to."""

    ATTRIBUTES = {
        "a": ("href",),
        "link": ("href",),
        "script": ("src",),
        "img": ("src",),
        "source": ("src",),
        "track": ("src",),
        "iframe": ("src",),
        # The players' sources and captions (static/player.js reads them).
        "video": ("src", "data-src", "data-captions"),
        "input": ("data-base",),
    }

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []  # (address, how a browser gets there)
        self._textarea = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value for name, value in attrs if value is not None}
        for name in self.ATTRIBUTES.get(tag, ()):
            if name in values:
                how = PLAYER if tag in ("video", "source", "track") else BROWSER
                self.found.append((values[name], how))
        if tag == "meta" and values.get("property", "").startswith("og:"):
            content = values.get("content", "")
            if content.startswith(("/", "http")):
                self.found.append((content, BROWSER))
        if tag == "form" and values.get("method", "get").lower() == "get" and "action" in values:
            # The search box, as a resident fills it in.
            self.found.append((values["action"] + "?q=sesja", BROWSER))
        if "data-chamber" in values and tag in ("video", "p"):
            # What the live page's script asks every second.
            self.found.append((f"/api/v1/chambers/{values['data-chamber']}/now", PLAYER))
        if tag == "textarea":
            self._textarea = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = False

    def handle_data(self, data: str) -> None:
        if self._textarea and "<" in data:
            # The embed code to paste: its frame is a link too.
            inner = Links()
            inner.feed(data)
            self.found += inner.found


def json_strings(doc: Any) -> Iterator[str]:
    """Every string in a JSON document."""
    if isinstance(doc, dict):
        for value in doc.values():
            yield from json_strings(value)
    elif isinstance(doc, list):
        for value in doc:
            yield from json_strings(value)
    elif isinstance(doc, str):
        yield doc


def links_in(kind: str, content_type: str, text: str) -> list[tuple[str, str]]:
    """The addresses in a fetched text body, with the Accept header their consumer sends."""
    if content_type.startswith("text/html"):
        parser = Links()
        parser.feed(text)
        return parser.found
    if "mpegurl" in content_type:
        found = []
        for line in text.splitlines():
            if line.startswith("#EXT-X-PRELOAD-HINT"):
                continue  # a part that does not exist yet: a player blocks on it
            if line.startswith("#"):
                found += [(uri, PLAYER) for uri in HLS_URI.findall(line)]
            elif line.strip():
                found.append((line.strip(), PLAYER))
        return found
    if "json" in content_type:
        strings = list(json_strings(json.loads(text)))
        found = [(s, BROWSER) for s in strings if re.match(r"^(/[^\s<]*|https?://\S+)$", s)]
        for html in (s for s in strings if s.lstrip().startswith("<")):
            found += links_in(kind, "text/html", html)  # oEmbed's html: the frame's source
        return found
    if "calendar" in content_type:
        unfolded = re.sub(r"\r?\n[ \t]", "", text)
        return [(line[4:], BROWSER) for line in unfolded.splitlines() if line.startswith("URL:")]
    if "xml" in content_type:
        found = []
        for element in ET.fromstring(text.encode()).iter():
            for name in ("href", "url", "src"):
                if name in element.attrib:
                    found.append((element.attrib[name], BROWSER))
            tag = element.tag.rsplit("}", 1)[-1]
            if tag in ("link", "guid", "id") and (element.text or "").startswith("http"):
                found.append((element.text or "", BROWSER))
        return found
    return []


# An error that is the intended answer: its status, a pattern of its address, a pattern of
# what it says.
Intended = tuple[int, str, str]


@dataclass
class Visit:
    """One address the crawl fetched, and what it got."""

    url: str
    status: int
    kind: str
    content_type: str
    referrer: str
    note: str = ""  # what the crawl made of it, or the start of an error's body


@dataclass
class Crawl:
    """A breadth-first crawl of the public site through one proxy. Addresses under PUBLIC are
    read as addresses of this proxy; any other absolute address is noted, never fetched."""

    http: aiohttp.ClientSession
    base: str
    name: str
    visits: dict[str, Visit] = field(default_factory=dict)
    elsewhere: set[tuple[str, str]] = field(default_factory=set)  # (address, found on)
    downloads: list[str] = field(default_factory=list)

    def _local(self, address: str, page: str) -> str | None:
        absolute = urldefrag(urljoin(page, address.strip())).url
        if absolute.startswith(PUBLIC + "/"):
            return absolute[len(PUBLIC) :]
        if urlsplit(absolute).scheme in ("http", "https"):
            self.elsewhere.add((absolute, page))
        return None

    async def run(self, start: str = "/") -> None:
        # Media first: a live playlist's parts and segments are fetched while it is fresh.
        media: deque[tuple[str, str, str]] = deque()
        rest: deque[tuple[str, str, str]] = deque([(start, BROWSER, "")])
        queued = {start}
        while media or rest:
            assert len(self.visits) < LIMIT, f"{self.name}: more than {LIMIT} addresses"
            path, accept, referrer = (media or rest).popleft()
            visit, text = await self._fetch(path, accept, referrer)
            self.visits[path] = visit
            if text is None:
                continue
            page = PUBLIC + path
            for address, how in links_in(visit.kind, visit.content_type, text):
                local = self._local(address, page)
                if local is None or local in queued:
                    continue
                queued.add(local)
                playlist_child = visit.kind.endswith("playlist")
                (media if playlist_child else rest).append((local, how, path))

    async def _fetch(self, path: str, accept: str, referrer: str) -> tuple[Visit, str | None]:
        headers = {"Accept": accept, "Host": PUBLIC_HOST}
        async with self.http.get(self.base + path, headers=headers, allow_redirects=False) as r:
            content_type = r.headers.get("Content-Type", "")
            kind = kind_of(urlsplit(path).path, content_type)
            visit = Visit(path, r.status, kind, content_type, referrer)
            body = await r.read()
            if r.status in (301, 302, 303, 307, 308):
                return visit, f'<a href="{r.headers.get("Location", "")}">'
            if r.status == 202 and kind == "download" and "Retry-After" in r.headers:
                visit.note = "being made"
                self.downloads.append(path)
            if r.status >= 400:
                visit.note = body[:4000].decode("utf-8", errors="replace")
            if not any(t in content_type for t in TEXT_TYPES) or r.status >= 400:
                return visit, None
            return visit, body.decode("utf-8", errors="replace")

    async def made(self, path: str, deadline: float) -> Visit:
        """Come back to a download until it is made (or the deadline passes): the MP4 itself."""
        while True:
            async with self.http.get(self.base + path, headers={"Accept": BROWSER}) as r:
                body = await r.read()
                if r.status == 202 and time.monotonic() < deadline:
                    await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
                    continue
                visit = Visit(path, r.status, "download", r.headers.get("Content-Type", ""), "")
                if r.status == 200 and body[4:8] != b"ftyp":
                    visit.note = "not an MP4"
            if visit.status == 200 and not visit.note:
                # A resident's browser resumes a broken download with a Range request.
                headers = {"Range": "bytes=100-199"}
                async with self.http.get(self.base + path, headers=headers) as r:
                    part = await r.read()
                    if (r.status, part) != (206, body[100:200]):
                        visit.note = f"Range answered {r.status}, {len(part)} bytes"
            return visit

    def failures(self, intended: tuple[Intended, ...]) -> list[str]:
        """What a resident would have met that is not intended."""
        bad = []
        for v in self.visits.values():
            fine = v.status == 200 or v.note == "being made" or v.status in (301, 302, 303)
            fine = fine or any(
                v.status == status and re.search(path, v.url) and re.search(said, v.note)
                for status, path, said in intended
            )
            if not fine:
                bad.append(
                    f"{v.status} {v.url} ({v.kind}, linked from {v.referrer or '-'}): "
                    + v.note[:200]
                )
        # The site links nowhere else: an absolute address not under live.public_url names the
        # machine behind the proxy, or repeats what a request said (its Host header).
        bad += [f"{address} on {page}" for address, page in sorted(self.elsewhere)]
        return bad

    def kinds(self) -> Counter[str]:
        return Counter(v.kind for v in self.visits.values())


async def test_public_site_crawls_clean_behind_nginx_and_varnish(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(SYNTHETIC_SOURCE)
    viewers = free_port()
    live = settings.live.model_copy(update={"gateway_port": viewers, "public_url": PUBLIC})
    settings = settings.model_copy(update={"live": live})
    control = settings.server.port
    service = await start_service(settings)
    proxies: dict[str, str] = {"nginx": "", "varnish": ""}
    processes = []
    http = aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=30), connector=aiohttp.TCPConnector(ssl=client_tls())
    )
    try:
        for name, start in (("nginx", start_nginx), ("varnish", start_varnish)):
            port = free_port()
            processes.append(await start(tmp_path / name, port, control, viewers))
            # nginx as shipped serves https only; Varnish's plain listener stands for hitch's.
            scheme = "https" if name == "nginx" else "http"
            proxies[name] = f"{scheme}://127.0.0.1:{port}"

        async def up(base: str) -> bool:
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(base + "/") as resp:
                    return resp.status == 200
            return False

        for name, base in proxies.items():
            await wait_for(functools.partial(up, base), 30, f"{name} and the gateway")
        report: list[str] = []

        async def crawl_all(phase: str) -> dict[str, Crawl]:
            crawls = {}
            for name, base in proxies.items():
                crawl = Crawl(http, base, f"{name}, {phase}")
                await crawl.run()
                crawls[name] = crawl
                report.append(
                    f"{crawl.name}: {len(crawl.visits)} {dict(sorted(crawl.kinds().items()))}"
                )
            return crawls

        # A withdrawn recording (410 to the public), a session still to come (no recording
        # yet), then a live session, two agenda items taken up
        # and a vote held.
        withdrawn = await service.begin(title="Sesja wycofana")
        await service.post_json(f"/api/v1/sessions/{withdrawn['id']}/stop")
        await service.post_json(
            f"/api/v1/sessions/{withdrawn['id']}/publish", {"published": False}, auth=STAFF
        )
        coming = await service.begin(start=False, title="Sesja zwołana")
        # Neither is a dead end: nothing public links the withdrawn recording's page (410), and
        # the coming session's page has no player whose playlist would answer 404.
        intended: tuple[Intended, ...] = ()
        council = [{"name": "Anna Nowak", "caucus": "KO"}, {"name": "Jan Lis", "caucus": ""}]
        added = await service.post_json("/api/v1/councillors", {"councillors": council}, status=201)
        session = await record_two_items(service, stop=False)
        choices = {str(c["id"]): "for" for c in added["councillors"]}
        await service.post_json(
            f"/api/v1/sessions/{session['id']}/votes",
            {"subject": "Uchwała budżetowa", "choices": choices},
            status=201,
        )
        during = await crawl_all("live")
        for crawl in during.values():
            bad = crawl.failures(intended)
            assert not bad, f"{crawl.name}:\n" + "\n".join(bad)
            kinds = crawl.kinds()
            for kind in ("page", "live playlist", "live part", "recorded playlist",
                         "recorded segment", "webvtt", "feed", "embed", "oembed",
                         "votes"):  # fmt: skip
                assert kinds[kind] > 0, (crawl.name, kind, kinds)
            # The coming session was met; the withdrawn recording was not, and still says 410.
            assert crawl.visits[f"/sessions/{coming['id']}"].status == 200, crawl.name
            assert f"/sessions/{withdrawn['id']}" not in crawl.visits, crawl.name
            gone = f"{crawl.base}/sessions/{withdrawn['id']}"
            async with http.get(gone, headers={"Accept": BROWSER}) as resp:
                said = await resp.text()
                assert resp.status == 410 and re.search(WITHDRAWN, said), (crawl.name, said[:200])
            # The live player's script reports the viewer (a POST, never cached).
            beacon = {"id": f"crawl-{crawl.name.split(',')[0]}"}
            async with http.post(crawl.base + "/live/sala/viewers", json=beacon) as resp:
                assert resp.status == 204, (crawl.name, resp.status)

        # After it: the whole recording and each item's clip for download.
        await service.post_json(f"/api/v1/sessions/{session['id']}/stop")
        after = await crawl_all("ended")
        deadline = time.monotonic() + DOWNLOAD_MADE_WITHIN
        for crawl in after.values():
            bad = crawl.failures(intended)
            assert not bad, f"{crawl.name}:\n" + "\n".join(bad)
            kinds = crawl.kinds()
            for kind in ("page", "recorded playlist", "recorded segment", "webvtt", "feed",
                         "embed", "oembed", "download"):  # fmt: skip
                assert kinds[kind] > 0, (crawl.name, kind, kinds)
            feeds = {v.url for v in crawl.visits.values() if v.kind == "feed"}
            assert feeds >= {"/feeds/recordings.atom", "/feeds/recordings.rss",
                             "/feeds/sessions.ics"}, feeds  # fmt: skip
            downloads = [v.url for v in crawl.visits.values() if v.kind == "download"]
            assert any(url.endswith("/recording.mp4") for url in downloads), downloads
            assert any(url.endswith("/clip.mp4") for url in downloads), downloads
            for url in downloads:
                made = await crawl.made(url, deadline)
                assert (made.status, made.note) == (200, ""), (crawl.name, made)
                assert made.content_type == "video/mp4", (crawl.name, made)
        print("\n" + "\n".join(report))
    finally:
        await http.close()
        await stop_service(service)
        for process in processes:
            await terminate(process)
