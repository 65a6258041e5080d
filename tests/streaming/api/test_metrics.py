"""/metrics in the Prometheus text format: label values that people type come out escaped."""

from __future__ import annotations

from collections.abc import Callable

from conftest import start_service, stop_service
from prometheus_client.parser import text_string_to_metric_families

from config.settings import PushDestination, Settings


async def test_a_label_with_a_newline_quote_and_backslash_is_escaped(
    make_settings: Callable[..., Settings],
) -> None:
    name = 'kanał "miasta"\\zapas\nnowa linia'
    settings = make_settings()
    chamber = settings.chambers[0].model_copy(
        update={"push": [PushDestination(name=name, url="rtmp://127.0.0.1:9/live/klucz")]}
    )
    service = await start_service(settings.model_copy(update={"chambers": [chamber]}))
    try:
        async with service.http.get(service.base + "/metrics") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain")
            text = await resp.text()
    finally:
        await stop_service(service)
    assert 'destination="kanał \\"miasta\\"\\\\zapas\\nnowa linia"' in text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    [sample] = families["obrady_push_up"].samples
    assert sample.labels == {"chamber": "sala", "destination": name}
    assert sample.value == 0.0
    [restarts] = families["obrady_push_restarts"].samples
    assert restarts.name == "obrady_push_restarts_total"
    assert restarts.labels["destination"] == name
    sessions = {s.labels["state"]: s.value for s in families["obrady_sessions"].samples}
    assert sessions == {"live": 0.0, "scheduled": 0.0}
