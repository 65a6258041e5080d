"""The shipped TLS fronts as a resident's browser meets them: nginx (config/nginx.conf) and
hitch in front of Varnish (config/hitch.conf, config/varnish.vcl), with a certificate made for
the test run. https with HTTP/2 and TLS 1.2 or 1.3 only; HSTS and the other security headers on
every answer, errors included; plain http sent to https, but for certbot's challenges; the live
picture and the pages through both."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
from collections.abc import Callable
from pathlib import Path

import aiohttp
from aiohttp import web
from conftest import SYNTHETIC_SOURCE, free_port, start_service, stop_service, wait_for
from servers import (
    PUBLIC_HOST,
    certificate,
    client_tls,
    start_hitch,
    start_nginx,
    start_varnish,
    terminate,
)

from config.settings import Settings

SECURITY = {
    "Strict-Transport-Security": "max-age=63072000",
    "X-Content-Type-Options": "nosniff",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


async def http_version(url: str) -> str:
    """The HTTP version curl speaks with url when it offers HTTP/2 (over TLS, ALPN decides)."""
    proc = await asyncio.create_subprocess_exec(
        "curl", "-sS", "--http2", "--cacert", str(certificate()[0]), "-o", "/dev/null",
        "-w", "%{http_version}", url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err
    return out.decode()


async def tls_version(port: int, highest: ssl.TLSVersion) -> str | None:
    """The TLS version agreed with 127.0.0.1:port by a client that offers at most `highest`."""
    context = client_tls()
    context.maximum_version = highest
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    try:
        tls = writer.get_extra_info("ssl_object")
        return None if tls is None else str(tls.version())
    finally:
        writer.close()


async def test_nginx_and_hitch_with_varnish_serve_https_only_with_the_security_headers(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(SYNTHETIC_SOURCE)
    viewers = free_port()
    live = settings.live.model_copy(update={"gateway_port": viewers})
    settings = settings.model_copy(update={"live": live})
    control = settings.server.port
    ports = {name: free_port() for name in ("nginx", "nginx-http", "hitch", "proxy", "http")}
    acme_port = free_port()
    # certbot --standalone stands in for Varnish's challenge backend: a server of the token.
    token = "k6Zr1dPQ-obrady-test"

    async def challenge(_: web.Request) -> web.Response:
        return web.Response(text=f"{token}.key")

    acme_app = web.Application()
    acme_app.router.add_get(f"/.well-known/acme-challenge/{token}", challenge)
    acme = web.AppRunner(acme_app)
    await acme.setup()
    await web.TCPSite(acme, "127.0.0.1", acme_port).start()
    challenges = tmp_path / "nginx" / "acme" / ".well-known" / "acme-challenge"
    challenges.mkdir(parents=True)
    (challenges / token).write_text(f"{token}.key")

    service = await start_service(settings)
    processes = [
        await start_nginx(
            tmp_path / "nginx", ports["nginx"], control, viewers, ports["nginx-http"]
        ),
        await start_varnish(
            tmp_path, free_port(), control, viewers,
            listeners=(f"http=127.0.0.1:{ports['http']}", f"tls=127.0.0.1:{ports['proxy']},PROXY"),
            acme=acme_port,
        ),
        await start_hitch(tmp_path / "hitch", ports["hitch"], ports["proxy"]),
    ]  # fmt: skip
    fronts = {
        "nginx": (f"https://127.0.0.1:{ports['nginx']}", f"http://127.0.0.1:{ports['nginx-http']}"),
        "varnish": (f"https://127.0.0.1:{ports['hitch']}", f"http://127.0.0.1:{ports['http']}"),
    }
    http = aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=20), connector=aiohttp.TCPConnector(ssl=client_tls())
    )
    try:

        async def get(url: str) -> tuple[int, str, dict[str, str]]:
            async with http.get(url, allow_redirects=False) as resp:
                return resp.status, await resp.text(errors="replace"), dict(resp.headers)

        async def up(base: str) -> bool:
            for proc in processes:
                assert proc.returncode is None, "a front exited; see its log in " + str(tmp_path)
            with contextlib.suppress(aiohttp.ClientError, OSError):
                return (await get(base + "/"))[0] == 200
            return False

        for name, (base, _) in fronts.items():
            await wait_for(functools.partial(up, base), 30, f"{name} over https")
        created = await service.begin()
        sid = created["id"]

        for name, (base, plain) in fronts.items():
            # HTTP/2, offered first; TLS 1.3, and 1.2 for older clients.
            assert await http_version(base + "/") == "2", name
            assert await tls_version(ports[name if name == "nginx" else "hitch"],
                                     ssl.TLSVersion.TLSv1_3) == "TLSv1.3", name  # fmt: skip
            assert await tls_version(ports[name if name == "nginx" else "hitch"],
                                     ssl.TLSVersion.TLSv1_2) == "TLSv1.2", name  # fmt: skip

            async def playlist(base: str = base) -> str | None:
                status, text, _ = await get(base + "/live/index.m3u8")
                return text if status == 200 and text.count(".ts") >= 2 else None

            text = await wait_for(playlist, 30, f"the live playlist through {name}")
            segment = "/live/" + [ln for ln in text.splitlines() if ln.endswith(".ts")][-1]
            answers = {
                path: await get(base + path)
                for path in ("/", "/login", f"/sessions/{sid}", "/live/index.m3u8", segment,
                             "/api/v1/sessions", "/no-such-page", f"/embed/sessions/{sid}")
            }  # fmt: skip
            for path, (status, body, headers) in answers.items():
                expected = 404 if path == "/no-such-page" else 200
                assert status == expected, (name, path, status, body[:200])
                for header, value in SECURITY.items():
                    assert headers.get(header) == value, (name, path, header, headers)
            # Signing in is never framed by another site; the embeds are made for BIP's frames.
            assert answers["/login"][2]["X-Frame-Options"] == "DENY", name
            assert "X-Frame-Options" not in answers[f"/embed/sessions/{sid}"][2], name
            assert answers["/"][2]["Referrer-Policy"] == "same-origin", name

            # Plain http: sent to the public https address, but for certbot's challenges.
            status, _, headers = await get(plain + f"/sessions/{sid}?lang=en")
            assert status == 301, (name, status)
            assert headers["Location"] == f"https://{PUBLIC_HOST}/sessions/{sid}?lang=en", name
            status, body, _ = await get(plain + f"/.well-known/acme-challenge/{token}")
            assert (status, body) == (200, f"{token}.key"), (name, status, body[:200])
    finally:
        await http.close()
        for proc in processes:
            await terminate(proc)
        await stop_service(service)
        await acme.cleanup()
