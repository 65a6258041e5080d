"""Secrets stay out of everything obrady says: camera passwords and stream keys never reach the
log, the API or an error message, including the lines of ffmpeg's own that obrady relays.

Two nets, both cheap: any password in a URL's user info (`rtsp://admin:secret@host`) is masked
wherever it appears, configured or not; and each secret of the configuration (camera and audio
passwords, push stream keys and query strings), in the forms it may be printed in, is masked
wherever it appears on its own. `install()` puts the nets on the process's log handlers;
`SECRETS.scrub` and `SECRETS.scrub_json` are for what obrady answers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

MASK = "…"
# Shorter values are too likely to be ordinary words or numbers to mask everywhere.
SHORTEST = 4
_USERINFO = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^\s/:@]*):(?P<password>[^\s/@]*)@", re.I)


class Secrets:
    """The secrets this process must not print."""

    def __init__(self) -> None:
        self._values: list[str] = []

    def add(self, value: str | None) -> None:
        """Never print value (nor its URL-encoded or -decoded forms)."""
        if not value:
            return
        for form in {value, unquote(value), quote(value, safe=""), quote(value)}:
            if len(form) >= SHORTEST and form not in self._values:
                self._values.append(form)
        self._values.sort(key=len, reverse=True)  # the longest first: no half-masked secret

    def add_url(self, url: str, *, path_is_secret: bool = False) -> None:
        """The secrets in a URL: the password of its user info, its query values, and with
        path_is_secret its last path part (an RTMP stream key)."""
        try:
            parts = urlsplit(url)
        except ValueError:
            return
        netloc = parts.netloc
        if "@" in netloc:
            userinfo = netloc.rpartition("@")[0]
            if ":" in userinfo:
                self.add(userinfo.partition(":")[2])
        for _, value in parse_qsl(parts.query, keep_blank_values=False):
            self.add(value)
        if path_is_secret:
            self.add(parts.path.rstrip("/").rpartition("/")[2])

    def clear(self) -> None:
        """Forget every secret (for tests)."""
        self._values.clear()

    def scrub(self, text: str) -> str:
        """text with every secret masked."""
        for value in self._values:  # first: a decoded password may hold "@" or "/"
            if value in text:
                text = text.replace(value, MASK)
        if "://" in text:
            text = _USERINFO.sub(rf"\g<head>:{MASK}@", text)
        return text

    def scrub_json(self, value: Any) -> Any:
        """A JSON-ready value with every string in it scrubbed."""
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {key: self.scrub_json(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.scrub_json(item) for item in value]
        return value


SECRETS = Secrets()


def register(urls: Iterable[str], push_urls: Iterable[str] = ()) -> None:
    """Register the configuration's secrets: sources' URLs, and push URLs (whose last path
    part is the stream key)."""
    for url in urls:
        SECRETS.add_url(url)
    for url in push_urls:
        SECRETS.add_url(url, path_is_secret=True)


class RedactingFilter(logging.Filter):
    """Masks secrets in each record a handler writes, its traceback included."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = SECRETS.scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = SECRETS.scrub(record.exc_text)
        return True


def install(logger: logging.Logger | None = None) -> None:
    """Put the filter on every handler of logger (the root logger by default)."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


def register_settings(chambers: Iterable[Any]) -> None:
    """Register the secrets of the configured chambers (config.settings.ChamberSettings):
    their cameras' and audio's URLs and their push destinations."""
    for chamber in chambers:
        sources = [camera.source for camera in chamber.camera_list]
        if chamber.audio is not None:
            sources.append(chamber.audio)
        register(
            (url for url in (getattr(s, "url", None) for s in sources) if url),
            (push.url for push in chamber.push),
        )
