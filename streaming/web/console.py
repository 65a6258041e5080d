"""The operator console at /console: a page shell whose script drives the JSON API.

Everything the console shows lives on the server, so a reload or a second operator's browser
shows the same session, item, break and votes. The page carries the login's CSRF token for
the script to send with every change, and the words of the script in the page's language.
"""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from streaming.auth.access import LOGIN, PERMISSIONS, identify
from streaming.keys import ARCHIVE, CLOCK, SETTINGS
from streaming.services.backup import backup_status
from streaming.web.i18n import lang_of
from streaming.web.templating import page, words

routes = web.RouteTableDef()


@routes.get("/console")
async def console_page(request: web.Request) -> web.StreamResponse:
    """The console, or the sign-in form first."""
    user = await identify(request, request.app[ARCHIVE])
    login = request.get(LOGIN)
    if user is None or login is None:
        raise web.HTTPSeeOther("/login?next=" + quote(request.path_qs, safe="/?=&"))
    lang = lang_of(request)
    said = words(request, lang)
    if user.role not in PERMISSIONS["console.view"]:
        return page(
            request,
            "error.html",
            title=said.text("site.no_access_title"),
            status=403,
            message=said.text("site.no_access"),
            back=None,
        )
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
        # Times are shown and typed in the site's zone, whatever the browser's own.
        "zone": settings.site.time_zone,
    }
    return page(
        request,
        "console.html",
        title=said.text("site.console"),
        scripts=("/static/hls.min.js", "/static/console.js"),
        csrf_token=login.csrf_token,
        user=user,
        config=config,
        script_words=said.prefixed("console"),
        backup=backup_status(settings, request.app[CLOCK]()),
    )
