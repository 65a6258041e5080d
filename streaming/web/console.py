"""The operator console at /console: a page shell whose script drives the JSON API.

Everything the console shows lives on the server, so a reload or a second operator's browser
shows the same session, item, break and votes. The page carries the login's CSRF token for
the script to send with every change.
"""

from __future__ import annotations

import json
from html import escape
from urllib.parse import quote

from aiohttp import web

from streaming.auth.access import LOGIN, PERMISSIONS, identify
from streaming.keys import ARCHIVE, SETTINGS
from streaming.web.i18n import lang_of, page, text

routes = web.RouteTableDef()


@routes.get("/console")
async def console_page(request: web.Request) -> web.StreamResponse:
    """The console, or the sign-in form first."""
    user = await identify(request, request.app[ARCHIVE])
    login = request.get(LOGIN)
    if user is None or login is None:
        raise web.HTTPSeeOther("/login?next=" + quote(request.path_qs, safe="/?=&"))
    if user.role not in PERMISSIONS["console.view"]:
        raise web.HTTPForbidden(text="Brak dostępu / no access")
    lang = lang_of(request)
    settings = request.app[SETTINGS]
    config = {
        "lang": lang,
        "user": {"name": user.name, "role": user.role},
        "may": sorted(a for a, roles in PERMISSIONS.items() if user.role in roles),
        "chambers": [
            {
                "id": c.id,
                "name": c.name,
                "cameras": [{"id": cam.id, "name": cam.name or cam.id} for cam in c.camera_list],
            }
            for c in settings.chambers
        ],
        "term": settings.console.term,
    }
    # Inside <script> nothing is unescaped: keep "<" out of it as a JSON escape instead.
    config_json = json.dumps(config, ensure_ascii=False).replace("<", "\\u003c")
    head = (
        f'<meta name="csrf-token" content="{escape(login.csrf_token)}">\n'
        f'<script type="application/json" id="console-config">'
        f"{config_json}</script>\n"
    )
    body = f"""
<form method="post" action="/logout" class="signout">
<input type="hidden" name="csrf_token" value="{escape(login.csrf_token)}">
<span>{escape(user.name)} ({escape(user.role)})</span>
<button type="submit">{text(lang, "sign_out")}</button>
</form>
<div id="console" data-lang="{lang}"><p>…</p></div>
"""
    return page(
        request,
        text(lang, "console"),
        body,
        head=head,
        scripts=("/static/hls.min.js", "/static/console.js"),
    )
