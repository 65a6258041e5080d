"""The shipped Prometheus alerting rules (config/prometheus-alerts.yml), checked with Prometheus's
own promtool (Debian's prometheus package): the file is valid, each alert fires on the series that
should raise it and stays quiet on healthy ones, and every metric the rules name is in the
/metrics of a running obrady, with the labels their messages use."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import Service, wait_for
from prometheus_client.parser import text_string_to_metric_families
from servers import ROOT

from streaming.services.backup import backup

RULES = ROOT / "config" / "prometheus-alerts.yml"
TEMPLATE = re.compile(r"\{\{\s*\$labels\.(\w+)\s*\}\}")
METRIC = re.compile(r"\bobrady_[a-z0-9_]+\b")

TARGET = {"job": "obrady", "instance": "127.0.0.1:8080"}
CAMERA = {"chamber": "sala-obrad", "session": "7", "camera": "glowna", **TARGET}
GB = 1_000_000_000


def promtool() -> str:
    """promtool's path; the test fails (never skips) without it."""
    found = shutil.which("promtool")
    if found is None:
        pytest.fail(
            "promtool is not installed: apt-get install --no-install-recommends prometheus "
            "(Debian's prometheus package provides it; make test installs it)"
        )
    return found


def rules() -> list[dict[str, Any]]:
    """Every rule of the file."""
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in doc["groups"] for rule in group["rules"]]


def alerts() -> dict[str, dict[str, Any]]:
    """The alerting rules by name."""
    return {rule["alert"]: rule for rule in rules() if "alert" in rule}


def series(name: str, labels: dict[str, str], **more: str) -> str:
    """A series in promtool's notation: name{label="value",...}."""
    inner = ",".join(f'{k}="{v}"' for k, v in {**labels, **more}.items())
    return f"{name}{{{inner}}}"


@dataclass
class Case:
    """Input series (promtool's expanding notation, one value every 15 s), and the labels of
    each alert expected at eval_time (none: the alert must stay quiet)."""

    alert: str
    inputs: dict[str, str]
    eval_time: str
    fires: list[dict[str, str]] = field(default_factory=list)
    why: str = ""


AGE = series("obrady_capture_last_segment_age_seconds", CAMERA)
SEGMENTS = series("obrady_capture_segments_total", CAMERA)
DROPPED = series("obrady_capture_frames_dropped_total", CAMERA)
FAILING = series("obrady_backup_failing", TARGET)
BACKUP_AGE = series("obrady_backup_age_seconds", TARGET)
ROOM = {"chamber": "sala-obrad", **TARGET}

CASES = [
    Case("ObradyDown", {series("up", TARGET): "1x4 0x20"}, "5m", [TARGET], "scrapes fail"),
    Case(
        "ObradyDown",
        {series("up", {"job": "node", "instance": "127.0.0.1:9100"}): "1x20"},
        "5m",
        [{"job": "obrady"}],
        "no obrady target at all (absent)",
    ),
    Case("ObradyDown", {series("up", TARGET): "1x20"}, "5m", [], "scraped"),
    Case("ObradyDown", {series("up", TARGET): "1x4 0 1x20"}, "5m", [], "one failed scrape"),
    Case(
        "ObradyCaptureDown",
        {AGE: "2x4 20+15x10", SEGMENTS: "1+1x4 5x10"},
        "3m",
        [CAMERA],
        "segments stopped coming",
    ),
    Case(
        "ObradyCaptureDown",
        {SEGMENTS: "0x10", series("obrady_capture_up", CAMERA): "1x10"},
        "2m",
        [CAMERA],
        "a camera that never answered: no segment since the capture started",
    ),
    Case(
        "ObradyCaptureDown",
        {AGE: "2x20", SEGMENTS: "1+1x20"},
        "5m",
        [],
        "recording",
    ),
    Case(
        "ObradyCaptureDown",
        {AGE: "2x4 20 35 50 2x10", SEGMENTS: "1+1x4 5 5 5 6+1x10"},
        "3m",
        [],
        "a stall shorter than the rule's 30 s",
    ),
    Case(
        "ObradyCaptureDown",
        {SEGMENTS: "0 0 1+1x10", AGE: "_ _ 2x10"},
        "3m",
        [],
        "a capture starting",
    ),
    Case("ObradyEncoderBehind", {DROPPED: "0x8 12x20"}, "3m", [CAMERA], "frames dropped"),
    Case("ObradyEncoderBehind", {DROPPED: "12x40"}, "10m", [], "none dropped lately"),
    Case(
        "ObradyCaptureBlocked",
        {series("obrady_capture_blocked", TARGET): "0 1x10"},
        "1m",
        [TARGET],
        "disk full",
    ),
    Case("ObradyCaptureBlocked", {series("obrady_capture_blocked", TARGET): "0x10"}, "1m"),
    Case(
        "ObradyDiskLow",
        {series("obrady_disk_free_bytes", TARGET): f"{15 * GB}x40"},
        "8m",
        [TARGET],
        "15 GB free",
    ),
    Case("ObradyDiskLow", {series("obrady_disk_free_bytes", TARGET): f"{50 * GB}x40"}, "8m"),
    Case(
        "ObradyDiskRecordingHoursLow",
        {series("obrady_disk_recording_hours_left", TARGET): "12 10 7.5x20"},
        "3m",
        [TARGET],
        "7.5 h left",
    ),
    Case(
        "ObradyDiskRecordingHoursLow",
        {series("obrady_disk_recording_hours_left", TARGET): "30x20"},
        "3m",
    ),
    Case("ObradyBackupNeverMade", {FAILING: "1x300"}, "70m", [TARGET], "no backup yet"),
    Case(
        "ObradyBackupNeverMade",
        {FAILING: "1x300", BACKUP_AGE: "3600+15x300"},
        "70m",
        [],
        "the last run failed, an earlier one succeeded",
    ),
    Case("ObradyBackupNeverMade", {FAILING: "1x300"}, "50m", [], "not yet an hour"),
    Case(
        "ObradyBackupFailed",
        {FAILING: "0x4 1x20", BACKUP_AGE: "3600+15x24"},
        "2m",
        [TARGET],
        "the last run failed",
    ),
    Case("ObradyBackupFailed", {FAILING: "0x20", BACKUP_AGE: "3600+15x20"}, "2m", [], "good"),
    Case("ObradyBackupFailed", {FAILING: "1x300"}, "70m", [], "never made: the other alert"),
    Case(
        "ObradyBackupTooOld",
        {FAILING: "0x200", BACKUP_AGE: "89000+15x200"},
        "30m",
        [TARGET],
        "older than 25 h",
    ),
    Case("ObradyBackupTooOld", {FAILING: "0x200", BACKUP_AGE: "3600+15x200"}, "30m"),
    Case(
        "ObradyOffAir",
        {
            series("obrady_offair_alarm", ROOM, cause="frozen"): "0 0 1x10",
            series("obrady_offair_alarm", ROOM, cause="edge_still"): "0x12",
        },
        "1m",
        [{**ROOM, "cause": "frozen"}],
        "a frozen picture on air",
    ),
    Case(
        "ObradyOffAir",
        {
            series("obrady_offair_alarm", ROOM, cause="frozen"): "0x12",
            series("obrady_offair_alarm", ROOM, cause="edge_still"): "0x12",
        },
        "1m",
    ),
    Case(
        "ObradyIndexBehind",
        {series("obrady_index_behind_seconds", TARGET): "0x4 310+15x60"},
        "12m",
        [TARGET],
        "the archive 5 minutes behind",
    ),
    Case(
        "ObradyIndexBehind",
        {series("obrady_index_behind_seconds", TARGET): "0x4 400 0x60"},
        "12m",
        [],
        "a short delay",
    ),
]


def render(text: str, labels: dict[str, str]) -> str:
    """An annotation as Prometheus fills it in (the rules use only {{ $labels.name }})."""
    return TEMPLATE.sub(lambda m: labels.get(m.group(1), ""), text)


def expected(rule: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    """promtool's exp_alerts entry for one alert of `rule` with the series' labels."""
    every = {**labels, **rule.get("labels", {})}
    annotations = {k: render(v, every) for k, v in rule.get("annotations", {}).items()}
    return {"exp_labels": every, "exp_annotations": annotations}


def unit_tests(cases: list[Case]) -> dict[str, Any]:
    """A promtool unit-test file (JSON is YAML) with one test group per case."""
    by_name = alerts()
    return {
        "rule_files": [str(RULES)],
        "evaluation_interval": "15s",
        "tests": [
            {
                "name": f"{case.alert}: {case.why or ('fires' if case.fires else 'quiet')}",
                "interval": "15s",
                "input_series": [{"series": s, "values": v} for s, v in case.inputs.items()],
                "alert_rule_test": [
                    {
                        "eval_time": case.eval_time,
                        "alertname": case.alert,
                        "exp_alerts": [expected(by_name[case.alert], f) for f in case.fires],
                    }
                ],
            }
            for case in cases
        ],
    }


def run_unit_tests(cases: list[Case], path: Path) -> subprocess.CompletedProcess[str]:
    path.write_text(json.dumps(unit_tests(cases), indent=2), encoding="utf-8")
    return subprocess.run(
        [promtool(), "test", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_promtool_accepts_the_rules() -> None:
    done = subprocess.run(
        [promtool(), "check", "rules", str(RULES)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules())} rules found" in done.stdout


def test_every_alert_says_what_to_do_and_is_tested_both_ways() -> None:
    by_name = alerts()
    for name, rule in by_name.items():
        notes = rule.get("annotations", {})
        assert notes.get("summary") and notes.get("description"), name
        assert rule.get("labels", {}).get("severity") in ("warning", "critical"), name
        for text in notes.values():
            # Only {{ $labels.name }}: the expectations below render them exactly.
            assert "{{" not in TEMPLATE.sub("", text), (name, text)
    assert {c.alert for c in CASES} == set(by_name)
    assert {c.alert for c in CASES if c.fires} == set(by_name), "an alert never fires"
    assert {c.alert for c in CASES if not c.fires} == set(by_name), "an alert is never quiet"
    assert {"ObradyCaptureDown", "ObradyDiskRecordingHoursLow", "ObradyDiskLow"} <= set(by_name)
    assert {"ObradyBackupTooOld", "ObradyBackupFailed", "ObradyOffAir"} <= set(by_name)


def test_each_alert_fires_when_it_should_and_only_then(tmp_path: Path) -> None:
    done = run_unit_tests(CASES, tmp_path / "alerts.test.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout, done.stdout

    # The check itself catches a wrong expectation: an off-air alarm that never rang.
    quiet = next(c for c in CASES if c.alert == "ObradyOffAir" and not c.fires)
    wrong = Case("ObradyOffAir", quiet.inputs, "1m", [{**ROOM, "cause": "frozen"}])
    failed = run_unit_tests([wrong], tmp_path / "wrong.test.yml")
    assert failed.returncode != 0, failed.stdout


async def test_every_metric_the_rules_name_is_in_a_running_obradys_metrics(
    watched: Service, tmp_path: Path
) -> None:
    # A live session (captures, the recording rate), the off-air watch, and one good backup.
    await watched.begin()

    async def recording() -> str | None:
        text = await watched.get_text("/metrics")
        ready = "obrady_capture_last_segment_age_seconds{" in text
        return text if ready and "obrady_disk_recording_hours_left " in text else None

    await wait_for(recording, 20, "a recorded segment in /metrics")
    await asyncio.to_thread(backup, watched.settings, str(tmp_path / "backup"))
    text = await watched.get_text("/metrics")

    labels: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
    named = set(METRIC.findall(RULES.read_text(encoding="utf-8")))
    assert named and not named - set(labels), f"not in /metrics: {sorted(named - set(labels))}"

    # The labels each alert's messages use are on the metrics of its expression.
    for name, rule in alerts().items():
        used = set(METRIC.findall(rule["expr"]))
        have = {"job", "instance", *rule.get("labels", {})}
        have |= {label for metric in used for label in labels[metric]}
        wanted = {m for text in rule["annotations"].values() for m in TEMPLATE.findall(text)}
        assert wanted <= have, (name, wanted - have)

    # The unit tests above feed series with the labels the real metrics carry.
    for case in CASES:
        for selector in case.inputs:
            metric, _, rest = selector.partition("{")
            if metric.startswith("obrady_"):
                given = set(re.findall(r'(\w+)="', rest)) - {"job", "instance"}
                assert given == labels[metric], (selector, labels[metric])
