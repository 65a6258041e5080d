"""Real servers the tests start: nginx with its RTMP module, standing in for YouTube; the
shipped nginx, Varnish and hitch configurations in front of obrady, with a certificate made for
the test run; and an SFTP server to back up to."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
from pathlib import Path

MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
ROOT = Path(__file__).resolve().parents[1]
# The public hostname the shipped configurations name (to be replaced by the city's own).
PUBLIC_HOST = "transmisja.example.pl"


@functools.cache
def certificate() -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and PUBLIC_HOST, and its key: made once per
    test run in a private folder, removed at exit."""
    folder = Path(tempfile.mkdtemp(prefix="obrady-tls-"))
    atexit.register(shutil.rmtree, folder, True)
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "7", "-subj", f"/CN={PUBLIC_HOST}",
         "-addext", f"subjectAltName=DNS:{PUBLIC_HOST},IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key


def client_tls() -> ssl.SSLContext:
    """What a test's HTTP client trusts: the test run's certificate (and nothing else)."""
    return ssl.create_default_context(cafile=str(certificate()[0]))


async def terminate(proc: asyncio.subprocess.Process, timeout: float = 10) -> None:
    """SIGTERM a server the test started, SIGKILL if it lingers; nothing if it has ended."""
    if proc.returncode is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()


class NginxRtmp:
    """nginx accepting RTMP pushes on 127.0.0.1:port and recording each stream to FLV."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port = port
        self.workdir = workdir
        self.records = workdir / "records"
        self._proc: asyncio.subprocess.Process | None = None

    def url(self, key: str = "obrady") -> str:
        """Where to push."""
        return f"rtmp://127.0.0.1:{self.port}/live/{key}"

    def _config(self) -> Path:
        self.records.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "nginx.conf"
        conf.write_text(
            f"""load_module {MODULE};
user root;
worker_processes 1;
pid {self.workdir}/nginx.pid;
error_log {self.workdir}/error.log info;
events {{ worker_connections 64; }}
rtmp {{
    server {{
        listen 127.0.0.1:{self.port};
        application live {{
            live on;
            record all;
            record_path {self.records};
            record_unique on;
        }}
    }}
}}
"""
        )
        return conf

    async def start(self, timeout: float = 15) -> None:
        """Start nginx and wait until it accepts connections."""
        conf = self._config()
        self._proc = await asyncio.create_subprocess_exec(
            "nginx",
            "-p",
            str(self.workdir),
            "-c",
            str(conf),
            "-g",
            "daemon off;",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            if self._proc.returncode is not None:
                err = await self._proc.stderr.read() if self._proc.stderr else b""
                raise RuntimeError(f"nginx exited: {err.decode(errors='replace')}")
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                await writer.wait_closed()
                return
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("nginx did not start listening")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """Stop nginx (fast shutdown), SIGKILL if it lingers; idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None:
            await terminate(proc)

    def recordings(self) -> list[Path]:
        """FLV files nginx has written, oldest first."""
        return sorted(self.records.glob("*.flv"), key=lambda p: p.stat().st_mtime)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def nginx_config(
    workdir: Path, port: int, control: int, viewers: int, http_port: int | None = None
) -> Path:
    """The shipped site (config/nginx.conf) with a test's ports, folders and certificate
    (https on port, the plain-http server on http_port), inside a minimal nginx.conf. Its access
    log names the upstream of each request ("-" for none)."""
    workdir.mkdir(parents=True, exist_ok=True)
    site = (ROOT / "config" / "nginx.conf").read_text()
    for old, new in (
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{port} ssl http2;"),
        ("listen 80;", f"listen 127.0.0.1:{http_port or _free_port()};"),
        (f"/etc/letsencrypt/live/{PUBLIC_HOST}/fullchain.pem", str(certificate()[0])),
        (f"/etc/letsencrypt/live/{PUBLIC_HOST}/privkey.pem", str(certificate()[1])),
        ("/var/www/letsencrypt", str(workdir / "acme")),
        ("server 127.0.0.1:8080;", f"server 127.0.0.1:{control};"),
        ("server 127.0.0.1:8081;", f"server 127.0.0.1:{viewers};"),
        ("/var/cache/nginx/obrady", str(workdir / "cache")),
    ):
        assert old in site, f"config/nginx.conf no longer contains {old!r}"
        site = site.replace(old, new)
    (workdir / "obrady-site.conf").write_text(site)
    conf = workdir / "nginx.conf"
    conf.write_text(
        f"""user root;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log;
events {{ worker_connections 512; }}
http {{
    log_format upstream "$upstream_addr $request_uri";
    access_log {workdir}/access.log upstream;
    client_body_temp_path {workdir}/tmp/body;
    proxy_temp_path {workdir}/tmp/proxy;
    fastcgi_temp_path {workdir}/tmp/fastcgi;
    uwsgi_temp_path {workdir}/tmp/uwsgi;
    scgi_temp_path {workdir}/tmp/scgi;
    include {workdir}/obrady-site.conf;
}}
"""
    )
    (workdir / "tmp").mkdir(parents=True, exist_ok=True)
    return conf


async def start_nginx(
    workdir: Path, port: int, control: int, viewers: int, http_port: int | None = None
) -> asyncio.subprocess.Process:
    """nginx in the foreground with the shipped site: https on 127.0.0.1:port (trusted by
    client_tls()), plain http on http_port; stop it with terminate. Its own messages go to
    workdir/error.log."""
    conf = nginx_config(workdir, port, control, viewers, http_port)
    return await asyncio.create_subprocess_exec(
        "nginx", "-p", str(workdir), "-c", str(conf), "-g", "daemon off;",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


def varnish_vcl(workdir: Path, control: int, viewers: int, acme: int | None = None) -> Path:
    """The shipped VCL (config/varnish.vcl) with a test's backend ports."""
    workdir.mkdir(parents=True, exist_ok=True)
    vcl = (ROOT / "config" / "varnish.vcl").read_text()
    for old, new in (('.port = "8080";', f'.port = "{control}";'),
                     ('.port = "8081";', f'.port = "{viewers}";'),
                     ('.port = "8888";', f'.port = "{acme or _free_port()}";')):  # fmt: skip
        assert vcl.count(old) == 1, f"config/varnish.vcl no longer contains {old!r} once"
        vcl = vcl.replace(old, new)
    path = workdir / "obrady.vcl"
    path.write_text(vcl)
    return path


def varnishd_command(
    port: int, vcl: Path, workdir: Path, listeners: tuple[str, ...] = ()
) -> list[str]:
    """varnishd in the foreground on 127.0.0.1:port with its own working folder (-n), and the
    extra listeners given (as `-a` takes them). As root, `-j none`: the default jail runs the
    child as the varnish user, which cannot enter a test's private (0700) temporary folder."""
    jail = ["-j", "none"] if os.geteuid() == 0 else []
    extra = [arg for listener in listeners for arg in ("-a", listener)]
    return ["varnishd", "-F", *jail, "-a", f"127.0.0.1:{port}", *extra, "-f", str(vcl),
            "-n", str(workdir), "-s", "malloc,64m", "-p", "feature=+http2"]  # fmt: skip


async def start_varnish(
    workdir: Path,
    port: int,
    control: int,
    viewers: int,
    listeners: tuple[str, ...] = (),
    acme: int | None = None,
) -> asyncio.subprocess.Process:
    """varnishd with the shipped VCL on 127.0.0.1:port (and the extra listeners), its working
    folder workdir/varnish (for varnishstat -n) and its output in workdir/varnishd.log; stop it
    with terminate."""
    vcl = varnish_vcl(workdir, control, viewers, acme)
    with (workdir / "varnishd.log").open("ab") as log:
        return await asyncio.create_subprocess_exec(
            *varnishd_command(port, vcl, workdir / "varnish", listeners),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )


def hitch_config(workdir: Path, port: int, backend: int) -> Path:
    """The shipped hitch configuration (config/hitch.conf) with a test's ports and the test
    run's certificate."""
    workdir.mkdir(parents=True, exist_ok=True)
    cert, key = certificate()
    pem = workdir / "hitch.pem"
    pem.write_text(cert.read_text() + key.read_text())
    conf = (ROOT / "config" / "hitch.conf").read_text()
    for old, new in (('frontend = "[*]:443"', f'frontend = "[127.0.0.1]:{port}"'),
                     ('backend = "[127.0.0.1]:6086"', f'backend = "[127.0.0.1]:{backend}"'),
                     ('pem-file = "/etc/hitch/obrady.pem"', f'pem-file = "{pem}"')):  # fmt: skip
        assert conf.count(old) == 1, f"config/hitch.conf no longer contains {old!r} once"
        conf = conf.replace(old, new)
    path = workdir / "hitch.conf"
    path.write_text(conf)
    return path


async def start_hitch(workdir: Path, port: int, backend: int) -> asyncio.subprocess.Process:
    """hitch with the shipped configuration: TLS on 127.0.0.1:port with the test run's
    certificate, to Varnish's PROXY listener on backend; its output in workdir/hitch.log. Stop
    it with terminate."""
    path = hitch_config(workdir, port, backend)
    user = ["--user", "nobody", "--group", "nogroup"] if os.geteuid() == 0 else []
    with (workdir / "hitch.log").open("ab") as log:
        return await asyncio.create_subprocess_exec(
            "hitch", "--config", str(path), *user,
            stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip


SSHD = "/usr/sbin/sshd"


class SftpServer:
    """OpenSSH's sshd on 127.0.0.1:port with its own host key, serving SFTP to one client key
    (as root: the tests run as root, as CI does); `remote(path)` names a folder on it the way
    rclone takes it."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port = port
        self.workdir = workdir
        self.client_key = workdir / "client_key"
        self._proc: asyncio.subprocess.Process | None = None

    def remote(self, path: Path) -> str:
        """An rclone connection string for path on this server (no rclone.conf needed)."""
        return (
            f":sftp,host=127.0.0.1,port={self.port},user=root,key_file={self.client_key},"
            f"known_hosts_file={self.workdir / 'known_hosts'}:{path}"
        )

    async def _keygen(self, path: Path) -> None:
        proc = await asyncio.create_subprocess_exec(
            "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)
        )
        assert await asyncio.wait_for(proc.wait(), 30) == 0, f"ssh-keygen {path} failed"

    async def __aenter__(self) -> SftpServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        host_key = self.workdir / "host_key"
        await self._keygen(host_key)
        await self._keygen(self.client_key)
        (self.workdir / "authorized_keys").write_text((self.workdir / "client_key.pub").read_text())
        host_pub = (self.workdir / "host_key.pub").read_text().split()
        (self.workdir / "known_hosts").write_text(
            f"[127.0.0.1]:{self.port} {host_pub[0]} {host_pub[1]}\n"
        )
        config = self.workdir / "sshd_config"
        config.write_text(
            f"""Port {self.port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {self.workdir / "sshd.pid"}
AuthorizedKeysFile {self.workdir / "authorized_keys"}
StrictModes no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
Subsystem sftp internal-sftp
"""
        )
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege-separation folder
        with (self.workdir / "sshd.log").open("wb") as errors:
            self._proc = await asyncio.create_subprocess_exec(
                SSHD,
                "-D",
                "-e",
                "-f",
                str(config),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=errors,
            )
        deadline = asyncio.get_running_loop().time() + 15
        while True:  # ready when it greets a connection
            assert self._proc.returncode is None, (self.workdir / "sshd.log").read_text()
            with contextlib.suppress(OSError):
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                try:
                    banner = await asyncio.wait_for(reader.readline(), 5)
                finally:
                    writer.close()
                if banner.startswith(b"SSH-2.0"):
                    return self
            assert asyncio.get_running_loop().time() < deadline, "sshd did not start"
            await asyncio.sleep(0.1)

    async def __aexit__(self, *exc: object) -> None:
        if self._proc is not None:
            await terminate(self._proc)
