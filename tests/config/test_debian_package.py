"""The Debian package, the way a city's administrator uses it: `make deb` builds it, `apt
install ./obrady_*.deb` installs it on this machine, obrady then runs as the obrady user with
the packaged configuration and the units' own command lines, a session that was live when the
control service died resumes when it is started again, and `apt remove` and `apt purge` keep
the recordings (purge deletes them only when the administrator says yes).

systemd is not PID 1 here, so the units are checked with `systemd-analyze verify` and their
ExecStart lines are run as their User=, with no new privileges, as systemd would run them.
The test installs and purges the package, so it refuses to run where obrady is installed."""

from __future__ import annotations

import base64
import configparser
import json
import os
import pwd
import shlex
import signal
import subprocess
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port
from helpers import ROOT

pytestmark = pytest.mark.timeout(900)

UNITS = ("obrady.service", "obrady-gateway.service", "obrady-backup.service", "obrady-backup.timer")
SYSTEMD = Path("/lib/systemd/system")
DATA = Path("/var/lib/obrady")
ETC = Path("/etc/obrady")
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
APT_ENV = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}


def run(*argv: str, timeout: float = 300, check: bool = True, **kw: Any) -> str:
    """Run a command; its stdout and stderr together (both in the failure message)."""
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, env=kw.pop("env", APT_ENV), **kw
    )
    out = proc.stdout + proc.stderr
    assert not check or proc.returncode == 0, f"{shlex.join(argv)} exited {proc.returncode}:\n{out}"
    return out


def installed() -> bool:
    proc = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", "obrady"], capture_output=True, text=True
    )
    return "ok installed" in proc.stdout or "config-files" in proc.stdout


def forget_everything() -> None:
    """Leave the machine as the test found it: no package, user, configuration or data."""
    if installed():
        run("apt-get", "purge", "-y", "obrady", check=False)
    subprocess.run(
        ["debconf-communicate", "obrady"], input="PURGE\n", text=True, capture_output=True
    )
    run("rm", "-rf", str(DATA), str(ETC), check=False)
    if subprocess.run(["getent", "passwd", "obrady"], capture_output=True).returncode == 0:
        run("deluser", "--quiet", "obrady", check=False)
    if subprocess.run(["getent", "group", "obrady"], capture_output=True).returncode == 0:
        run("delgroup", "--quiet", "obrady", check=False)


@pytest.fixture(scope="module")
def deb() -> Iterator[Path]:
    """dist/obrady_<version>_<arch>.deb, built by `make deb` from this checkout."""
    if os.geteuid() != 0:
        pytest.fail("the package test installs a .deb: run it as root (make test does)")
    if installed() or DATA.exists() or ETC.exists():
        pytest.fail(
            "obrady is already installed on this machine (or /var/lib/obrady or /etc/obrady is "
            "there): this test installs and purges the package, so run it where obrady is not"
        )
    out = run("make", "-C", str(ROOT), "deb", timeout=600)
    debs = sorted((ROOT / "dist").glob(f"obrady_{VERSION}_*.deb"))
    assert len(debs) == 1, out
    try:
        yield debs[0]
    finally:
        forget_everything()


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((ROOT / "config" / "systemd" / name).read_text())
    return parser


def get(url: str, auth: tuple[str, str] | None = None, body: Any = None) -> tuple[int, Any]:
    """GET (or POST a JSON body to) url; the status and the decoded JSON or text."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            status, raw = resp.status, resp.read()
            kind = resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        status, raw, kind = exc.code, exc.read(), exc.headers.get("Content-Type", "")
    return status, json.loads(raw) if "json" in kind else raw.decode()


def log_of(proc: subprocess.Popen[str]) -> str:
    return LOGS[proc.pid].read_text(errors="replace")


def wait_until_up(url: str, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"exited {proc.returncode}:\n{log_of(proc)}"
        try:
            if get(url)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout} s")


LOGS: dict[int, Path] = {}


def start_as_unit(name: str, port: int, logs: Path) -> subprocess.Popen[str]:
    """The unit's ExecStart, as its User= and Group=, in its WorkingDirectory=, with no new
    privileges and the unit's umask; only the port is the test's own (--port). Its output
    goes to a file in logs (the journal's part)."""
    service = unit(name)["Service"]
    argv = shlex.split(service["ExecStart"]) + ["--port", str(port)]
    user = service["User"]
    assert service["Group"] == user
    log = logs / f"{name}-{len(LOGS)}.log"
    with log.open("w") as output:
        proc = subprocess.Popen(
            [
                "setpriv", "--reuid", user, "--regid", user, "--init-groups", "--no-new-privs",
                "sh", "-c", f'umask {service["UMask"]} && exec "$@"', "obrady", *argv,
            ],
            cwd=service["WorkingDirectory"],
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
    LOGS[proc.pid] = log
    return proc


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> int:
    """Stop as systemd does (KillMode=mixed: the signal to the main process alone)."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout=float(unit("obrady.service")["Service"]["TimeoutStopSec"]))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        raise


def as_obrady(*argv: str, stdin: str | None = None) -> str:
    return run("runuser", "-u", "obrady", "--", *argv, input=stdin)


def test_the_units_run_obrady_as_its_own_user_in_a_sandbox() -> None:
    for name in ("obrady.service", "obrady-gateway.service", "obrady-backup.service"):
        service = unit(name)["Service"]
        assert service["User"] == "obrady", name
        assert "/etc/obrady/obrady.toml" in service["ExecStart"], name
        for setting in ("NoNewPrivileges", "PrivateTmp", "ProtectHome", "RestrictSUIDSGID"):
            assert service[setting] == "yes", (name, setting)
        assert service["CapabilityBoundingSet"] == "", name
        assert service["ProtectSystem"] in ("strict", "full"), name
    control = unit("obrady.service")["Service"]
    assert control["Restart"] == "on-failure"
    assert control["ReadWritePaths"] == str(DATA)
    assert control["KillMode"] == "mixed"  # obrady stops its own ffmpeg, finishing segments
    assert unit("obrady-gateway.service")["Service"]["Restart"] == "always"
    timer = unit("obrady-backup.timer")
    assert timer["Timer"]["OnCalendar"].startswith("*-*-*")
    assert timer["Timer"]["Persistent"] == "true"
    packaged = tomllib.loads((ROOT / "config" / "obrady.toml").read_text())
    assert packaged["server"]["data_dir"] == str(DATA)
    assert packaged["live"]["run_gateway"] is False  # the gateway has its own unit


def test_the_package_installs_runs_as_obrady_and_keeps_the_recordings(
    deb: Path, tmp_path: Path
) -> None:
    info = run("dpkg-deb", "--field", str(deb), "Version", "Depends")
    assert f"Version: {VERSION}" in info
    for needed in ("ffmpeg", "libvlc5", "rclone", "python3 (>= 3.11)"):
        assert needed in info, (needed, info)
    assert "/etc/obrady/obrady.toml" in run("dpkg-deb", "--info", str(deb), "conffiles")

    # Installed on a machine without it, with its dependencies from the archive.
    out = run("apt-get", "install", "-y", "--no-install-recommends", str(deb))
    assert "Setting up obrady" in out, out
    account = pwd.getpwnam("obrady")
    assert account.pw_uid < 1000 and account.pw_shell.endswith("nologin"), account
    assert DATA.stat().st_uid == account.pw_uid and DATA.stat().st_mode & 0o777 == 0o700
    config = ETC / "obrady.toml"
    assert config.stat().st_uid == 0 and config.stat().st_gid == account.pw_gid
    assert config.stat().st_mode & 0o777 == 0o640  # may hold camera and push passwords
    assert Path("/usr/bin/obrady").resolve() == Path("/opt/venvs/obrady/bin/obrady")
    units = [str(SYSTEMD / name) for name in UNITS]
    run("systemd-analyze", "verify", *units)
    assert "OK" in as_obrady("obrady", "check-config", str(config))
    # The captions model, made in a clone (make model), is checked with the package's Python
    # as the operations guide says.
    run("/opt/venvs/obrady/bin/python", "-m", "recorder.whisper_model", "--check",
        str(ROOT / ".cache" / "whisper-base"))  # fmt: skip
    for name in UNITS:
        assert (SYSTEMD / name).read_text() == (ROOT / "config/systemd" / name).read_text()
        documentation = unit(name)["Unit"]["Documentation"].removeprefix("file:")
        assert Path(documentation).is_file(), (name, documentation)  # the guide, uncompressed

    control_port, gateway_port = free_port(), free_port()
    base = f"http://127.0.0.1:{control_port}"
    control = start_as_unit("obrady.service", control_port, tmp_path)
    gateway = start_as_unit("obrady-gateway.service", gateway_port, tmp_path)
    try:
        wait_until_up(base + "/api/v1/status", control)
        wait_until_up(f"http://127.0.0.1:{gateway_port}/live", gateway)
        for proc in (control, gateway):
            status_lines = Path(f"/proc/{proc.pid}/status").read_text().splitlines()
            assert f"Uid:\t{account.pw_uid}\t{account.pw_uid}" in "\n".join(status_lines)
        # The packaged configuration leaves the gateway to its own unit (live.run_gateway).
        children = [
            p.parent.name
            for p in Path("/proc").glob("[0-9]*/stat")
            if p.exists()
            and p.read_text().rsplit(")", 1)[-1].split()[1] == str(control.pid)
            and b"gateway" in (p.parent / "cmdline").read_bytes()
        ]
        assert children == [], children
        database = DATA / "obrady.sqlite3"
        assert database.stat().st_uid == account.pw_uid
        assert database.stat().st_mode & 0o777 == 0o600

        # The first accounts, made as the administrator is told to (as the obrady user).
        as_obrady(
            "obrady", "user", "add", "op", "--role", "operator", "--password-stdin",
            "--config", str(config), stdin="operator-password\n",
        )  # fmt: skip
        operator = ("op", "operator-password")
        at = datetime.now(UTC) + timedelta(hours=1)
        status, created = get(
            base + "/api/v1/sessions",
            operator,
            {
                "title": "Sesja z pakietu",
                "scheduled_start": at.isoformat(),
                "scheduled_end": (at + timedelta(hours=1)).isoformat(),
                "agenda_text": "1. Otwarcie.\n2. Zamknięcie.\n",
            },
        )
        assert status == 201, created
        sid = created["id"]
        status, body = get(f"{base}/api/v1/sessions/{sid}/start", operator, {})
        assert status == 200, body
        assert get(f"{base}/api/v1/sessions/{sid}")[1]["state"] == "live"

        # The control service dies (systemd restarts it: Restart=on-failure); the session that
        # was live is live again, and the gateway kept serving meanwhile.
        assert stop(control, signal.SIGKILL) == -signal.SIGKILL
        assert get(f"http://127.0.0.1:{gateway_port}/live")[0] == 200
        control = start_as_unit("obrady.service", control_port, tmp_path)
        wait_until_up(base + "/api/v1/status", control)
        session = get(f"{base}/api/v1/sessions/{sid}")[1]
        assert session["state"] == "live", (session, log_of(control))
        status, body = get(f"{base}/api/v1/sessions/{sid}/stop", operator, {})
        assert status == 200, body
    finally:
        codes = [stop(proc) for proc in (control, gateway)]
    assert codes == [0, 0], codes  # SIGTERM: both stop cleanly within TimeoutStopSec
    # Nothing the services wrote belongs to anyone else, or is readable by others.
    for path in DATA.rglob("*"):
        assert path.stat().st_uid == account.pw_uid, path
        assert path.stat().st_mode & 0o077 == 0 or path.is_symlink(), path
    recorded = sorted(p.relative_to(DATA) for p in DATA.rglob("*") if p.is_file())
    assert Path("obrady.sqlite3") in recorded

    # Removing the package keeps the data and the configuration, and says so.
    out = run("apt-get", "remove", "-y", "obrady")
    assert "stay in /var/lib/obrady" in out, out
    assert not Path("/opt/venvs/obrady").exists()
    assert sorted(p.relative_to(DATA) for p in DATA.rglob("*") if p.is_file()) == recorded
    assert config.exists()

    # Purging asks first; without an answer (non-interactive) the recordings stay.
    out = run("apt-get", "purge", "-y", "obrady")
    assert "kept every recording" in out, out
    assert sorted(p.relative_to(DATA) for p in DATA.rglob("*") if p.is_file()) == recorded
    assert not config.exists()

    # Installed again, it uses them; purged with the answer "yes", they are deleted.
    run("apt-get", "install", "-y", "--no-install-recommends", str(deb))
    assert (DATA / "obrady.sqlite3").exists()
    run(
        "debconf-set-selections",
        input="obrady obrady/purge-recordings boolean true\n",
    )
    out = run("apt-get", "purge", "-y", "obrady")
    assert "deleting every recording" in out, out
    assert not DATA.exists()
