"""Configuration: the demo and the documented example load; bad files are refused by key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from config.settings import (
    ConfigError,
    RtspSource,
    TranscodingSettings,
    load_settings,
    parse_settings,
)

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
        settings.transcoding,
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
        (
            MINIMAL + "\n[live]\ngateway_port = 8081\ngateway_processes = 2\nrun_gateway = false\n",
            "gateway_processes > 1 needs run_gateway = true",
        ),
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


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can write into another user's folder")
def test_root_is_refused_in_a_data_folder_that_belongs_to_a_user(tmp_path: Path) -> None:
    """As in the Debian package, where /var/lib/obrady belongs to obrady: what root wrote there
    (a database, an account) the services could not open."""
    data = tmp_path / "data"
    data.mkdir()
    os.chown(data, 65534, 65534)  # nobody
    result = run_cli("user", "add", "x", "--role", "admin", "--password-stdin",
                     "--data-dir", str(data), stdin="long-enough\n")  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "belongs to the user nobody: run this as that user" in result.stderr
    assert "runuser -u nobody -- obrady user" in result.stderr
    assert list(data.iterdir()) == []


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
    # RTSP cameras share the chamber sound's hub, which alone opens the device.
    rtsp = two.replace('kind = "synthetic"', 'kind = "rtsp"\nurl = "rtsp://192.0.2.5/s"')
    parse_settings(rtsp)
    with pytest.raises(ConfigError, match="dsnoop"):
        parse_settings(rtsp.replace('device = "hw:1,0"', 'device = "hw:1,0"\nshared = false'))


def test_site_time_zone_defaults_to_warsaw_and_refuses_unknown_zones() -> None:
    assert parse_settings(MINIMAL).site.zone.key == "Europe/Warsaw"
    chosen = parse_settings('[site]\ntime_zone = "America/New_York"\n' + MINIMAL)
    assert chosen.site.zone.key == "America/New_York"
    with pytest.raises(ConfigError, match="site.time_zone.*unknown time zone 'Mars/Olympus'"):
        parse_settings('[site]\ntime_zone = "Mars/Olympus"\n' + MINIMAL)


TWO_CAMERAS = """
[[chambers]]
id = "sala"
name = "Sala"
[[chambers.cameras]]
id = "glowna"
[chambers.cameras.source]
kind = "rtsp"
url = "rtsp://10.0.0.20/h265"
[chambers.cameras.source.transcoding]
max_height = 720
crf = 26
[[chambers.cameras]]
id = "mownica"
[chambers.cameras.source]
kind = "rtsp"
url = "rtsp://10.0.0.21/h265"
"""


def test_transcoding_defaults_and_a_camera_overrides_single_keys() -> None:
    settings = parse_settings(MINIMAL)
    source = settings.chambers[0].source
    assert isinstance(source, RtspSource)
    assert source.transcoding == settings.transcoding == TranscodingSettings()
    assert (source.transcoding.preset, source.transcoding.max_kbps) == ("veryfast", 3000)

    settings = parse_settings('[transcoding]\npreset = "faster"\ncrf = 24\n' + TWO_CAMERAS)
    glowna, mownica = (camera.source for camera in settings.chambers[0].camera_list)
    assert isinstance(glowna, RtspSource) and isinstance(mownica, RtspSource)
    # The camera's own keys win; the rest come from [transcoding], not from the built-in defaults.
    assert (glowna.transcoding.preset, glowna.transcoding.crf) == ("faster", 26)
    assert glowna.transcoding.max_height == 720
    assert mownica.transcoding == TranscodingSettings(preset="faster", crf=24)

    # A simulated chamber is encoded by its own rules; [transcoding] does not reach it.
    synthetic = MINIMAL.replace(
        'kind = "rtsp"\nurl = "rtsp://127.0.0.1:8554/cam"', 'kind = "synthetic"'
    )
    settings = parse_settings('[transcoding]\npreset = "faster"\n' + synthetic)
    assert settings.chambers[0].camera_list[0].source.kind == "synthetic"


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (
            'preset = "fastest"',
            "transcoding.preset: Input should be 'ultrafast', 'superfast', 'veryfast'",
        ),
        (
            'max_kbps = "2.5M"',
            "transcoding.max_kbps: give kilobits per second as a whole number without units, "
            "e.g. 2500 for 2.5 Mbit/s (got '2.5M')",
        ),
        ('audio_kbps = "128k"', "transcoding.audio_kbps: give kilobits per second"),
        ("max_kbps = 2500.5", "transcoding.max_kbps"),
        ("max_kbps = 50", "transcoding.max_kbps: Input should be greater than or equal to 100"),
        ("crf = 52", "transcoding.crf: Input should be less than or equal to 51"),
        ("fps = 0", "transcoding.fps"),
        ("max_height = 100", "transcoding.max_height"),
        ("bitrate = 2500", "transcoding.bitrate: unknown key"),
    ],
)
def test_bad_transcoding_is_refused_once_naming_the_key(section: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_settings(f"[transcoding]\n{section}\n" + TWO_CAMERAS, "bad.toml")
    message = str(err.value)
    assert expected in message
    # Reported under [transcoding] only, not again under every camera that inherits it.
    assert "chambers.0" not in message, message


def test_a_camera_s_bad_transcoding_key_is_refused_under_the_camera() -> None:
    text = TWO_CAMERAS.replace("crf = 26", 'preset = "placebo"')
    with pytest.raises(ConfigError) as err:
        parse_settings(text, "bad.toml")
    assert "chambers.0.cameras.0.source.transcoding.preset: Input should be" in str(err.value)
