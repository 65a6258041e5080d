"""Configuration: the demo and the documented example load; bad files are refused by key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from config.settings import ConfigError, load_settings, parse_settings

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = """
[[chambers]]
id = "sala"
name = "Sala"
[chambers.source]
kind = "rtsp"
url = "rtsp://127.0.0.1:8554/cam"
"""


def test_embedded_demo_loads() -> None:
    settings = load_settings()
    assert settings.server.port == 8080
    assert settings.server.host == "127.0.0.1"
    assert settings.chambers[0].camera_list[0].source.kind == "synthetic"
    assert settings.demo is not None and settings.demo.session is not None
    assert settings.demo.session.start_in_seconds <= 10


def test_example_documents_every_key_and_loads() -> None:
    settings = load_settings(ROOT / "config" / "example.toml")
    assert [c.id for c in settings.chambers] == ["sala-obrad", "sala-komisji"]
    text = (ROOT / "config" / "example.toml").read_text()
    sections = (
        settings.server,
        settings.recording,
        settings.live,
        settings.storage,
        settings.monitoring,
        settings.exports,
        settings.transcription,
    )
    for section in sections:
        for key in type(section).model_fields:
            assert f"\n{key} = " in text, f"example.toml does not document {key}"


def test_defaults_fill_what_is_left_out() -> None:
    settings = parse_settings(MINIMAL)
    assert settings.recording.segment_seconds == 2
    source = settings.chambers[0].source
    assert source is not None and source.kind == "rtsp"
    assert (source.video, source.audio) == ("auto", "auto")
    assert settings.live.gateway_port == 0 and settings.storage.min_free_gb == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (MINIMAL + "\n[recording]\nsegment_secs = 2\n", "recording.segment_secs: unknown key"),
        (MINIMAL + "\n[recording]\nsegment_seconds = 0\n", "recording.segment_seconds"),
        (MINIMAL + '\n[server]\nport = "x"\n', "server.port"),
        (MINIMAL.replace("rtsp://127.0.0.1:8554/cam", "http://cam"), "chambers.0.source.url"),
        (MINIMAL.replace('id = "sala"', 'id = "Sala Obrad"'), "chambers.0.id"),
        ("[server]\nport = 80\n", "chambers: required key is missing"),
        (MINIMAL + MINIMAL, "used twice"),
        ("chambers = [", "not valid TOML"),
        (MINIMAL.replace('kind = "rtsp"', 'kind = "webcam"'), "chambers.0.source"),
    ],
)
def test_bad_configuration_is_refused_naming_the_key(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_settings(text, "bad.toml")
    assert expected in str(err.value)
    assert str(err.value).startswith("bad.toml")


def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streaming", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_config_cli(tmp_path: Path) -> None:
    ok = run_cli("check-config", str(ROOT / "config" / "example.toml"))
    assert ok.returncode == 0, ok.stderr
    assert "OK" in ok.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(MINIMAL + "\n[live]\nplaylist_segments = 1\n")
    result = run_cli("check-config", str(bad))
    assert result.returncode == 2
    assert "live.playlist_segments" in result.stderr
    missing = run_cli("check-config", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2 and "not found" in missing.stderr


def test_serve_with_a_bad_config_exits_before_starting(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(MINIMAL + "\n[server]\nport = 0\n")
    result = run_cli("serve", "--config", str(bad), "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 2
    assert "server.port" in result.stderr
    assert not (tmp_path / "data").exists()


def test_user_add_cli(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    added = run_cli(
        "user",
        "add",
        "anna",
        "--role",
        "operator",
        "--password-stdin",
        "--data-dir",
        data,
        stdin="correct horse\n",
    )
    assert added.returncode == 0, added.stderr
    again = run_cli(
        "user",
        "add",
        "anna",
        "--role",
        "staff",
        "--password-stdin",
        "--data-dir",
        data,
        stdin="another one\n",
    )
    assert again.returncode == 1 and "already exists" in again.stderr
    short = run_cli(
        "user",
        "add",
        "bob",
        "--role",
        "staff",
        "--password-stdin",
        "--data-dir",
        data,
        stdin="abc\n",
    )
    assert short.returncode == 2 and "8 characters" in short.stderr
    from archive.index import ArchiveIndex
    from streaming.auth.passwords import verify_password

    index = ArchiveIndex(tmp_path / "data" / "obrady.sqlite3")
    user = index.get_user("anna")
    index.close()
    assert user is not None and user.role == "operator"
    assert user.password_hash.startswith("$argon2")
    assert verify_password(user.password_hash, "correct horse")


def test_a_hardware_alsa_input_cannot_feed_several_cameras() -> None:
    two = """
[[chambers]]
id = "sala"
name = "Sala"
[chambers.audio]
kind = "alsa"
device = "hw:1,0"
[[chambers.cameras]]
id = "a"
[chambers.cameras.source]
kind = "synthetic"
[[chambers.cameras]]
id = "b"
[chambers.cameras.source]
kind = "synthetic"
"""
    with pytest.raises(ConfigError, match="dsnoop"):
        parse_settings(two)
    parse_settings(two.replace('"hw:1,0"', '"chamber_mics"'))  # a dsnoop PCM is shareable
    one = two.split('[[chambers.cameras]]\nid = "b"')[0]
    parse_settings(one)  # one camera may open the hardware device itself


def test_site_time_zone_defaults_to_warsaw_and_refuses_unknown_zones() -> None:
    assert parse_settings(MINIMAL).site.zone.key == "Europe/Warsaw"
    chosen = parse_settings('[site]\ntime_zone = "America/New_York"\n' + MINIMAL)
    assert chosen.site.zone.key == "America/New_York"
    with pytest.raises(ConfigError, match="site.time_zone.*unknown time zone 'Mars/Olympus'"):
        parse_settings('[site]\ntime_zone = "Mars/Olympus"\n' + MINIMAL)
