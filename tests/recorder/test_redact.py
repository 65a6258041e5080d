"""Camera passwords and stream keys never reach the log or the API, in any form ffmpeg or
obrady may print them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import free_port, rtsp_source, start_service, stop_service, wait_for

from config.settings import Settings
from recorder.redact import SECRETS, RedactingFilter, install, register

PASSWORD = "s3cr3t+p@ss/word"
ENCODED = "s3cr3t%2Bp%40ss%2Fword"
KEY = "abcd-1234-efgh-5678"


@pytest.fixture(autouse=True)
def secrets() -> Iterator[None]:
    SECRETS.clear()
    yield
    SECRETS.clear()


def test_passwords_in_any_url_are_masked_even_unconfigured() -> None:
    text = "rtsp://admin:hunter22@10.0.0.5:554/stream1: Connection refused; rtmp://u:p4ss@x/y"
    assert SECRETS.scrub(text) == (
        "rtsp://admin:…@10.0.0.5:554/stream1: Connection refused; rtmp://u:…@x/y"
    )
    # A URL without a password, and text without a URL, are left alone.
    assert SECRETS.scrub("rtsp://10.0.0.5/s and user:name@host") == (
        "rtsp://10.0.0.5/s and user:name@host"
    )


def test_configured_secrets_are_masked_wherever_and_however_they_appear() -> None:
    register(
        [f"rtsp://admin:{ENCODED}@cam.local/s?token=tok-9876"],
        [f"rtmp://a.rtmp.youtube.com/live2/{KEY}"],
    )
    for shown in (PASSWORD, ENCODED, KEY, "tok-9876"):
        clean = SECRETS.scrub(f"ffmpeg said: [{shown}] failed")
        assert clean == "ffmpeg said: […] failed", (shown, clean)
    # In JSON-ready answers, nested anywhere.
    answer: Any = {"captures": [{"last_error": f"auth {PASSWORD}", "n": 3}], "ok": [KEY, 1]}
    assert SECRETS.scrub_json(answer) == {
        "captures": [{"last_error": "auth …", "n": 3}],
        "ok": ["…", 1],
    }
    # Short values would mask ordinary words: they are not registered on their own.
    register(["rtsp://u:ab@h/s"])
    assert SECRETS.scrub("about abc") == "about abc"


def test_the_filter_masks_messages_arguments_and_tracebacks() -> None:
    register([f"rtsp://admin:{ENCODED}@cam/s"])  # as configured; ffmpeg may print it decoded
    logger = logging.getLogger("obrady-test-redact")
    logger.propagate = False
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Keep()
    logger.addHandler(handler)
    try:
        install(logger)
        install(logger)  # once is enough: not twice on the same handler
        assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1
        logger.warning("argv: %s", ["ffmpeg", "-i", f"rtsp://admin:{PASSWORD}@cam/s"])
        try:
            raise OSError(f"cannot open rtsp://x:{PASSWORD}@cam/s")
        except OSError:
            logger.exception("capture failed")
    finally:
        logger.removeHandler(handler)
    assert records and all(PASSWORD not in r and ENCODED not in r for r in records), records
    assert "rtsp://admin:…@cam/s" in records[0]
    assert "OSError: cannot open rtsp://x:…@cam/s" in records[1]


async def test_a_camera_password_is_in_no_log_line_and_no_answer(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    """A camera that refuses the connection: ffmpeg's errors name its URL, and obrady relays
    them to the log and to the status; neither shows the password."""
    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(RedactingFilter())
    url = f"rtsp://admin:{ENCODED}@127.0.0.1:{free_port()}/cam"
    service = await start_service(make_settings(rtsp_source(url)))
    try:
        await service.begin()

        async def failed() -> dict[str, Any] | None:
            status = await service.status()
            captures = status["captures"]
            return status if captures and captures[0]["last_error"] else None

        status = await wait_for(failed, 30, "the capture to report the camera's error")
        # ffmpeg's own message, URL and all, with the password masked.
        assert "rtsp://admin:…@127.0.0.1" in status["captures"][0]["last_error"], status
        text = str(status)
        assert PASSWORD not in text and ENCODED not in text, text
    finally:
        await stop_service(service)
    logged = "\n".join(caplog.messages)
    assert "rtsp://admin:…@127.0.0.1" in logged, logged  # the URL is there, masked
    assert PASSWORD not in logged and ENCODED not in logged
