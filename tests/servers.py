"""Real servers the tests start: nginx with its RTMP module, standing in for YouTube, and the
shipped nginx and Varnish configurations in front of obrady."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
ROOT = Path(__file__).resolve().parents[1]


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


def nginx_config(workdir: Path, port: int, control: int, viewers: int) -> Path:
    """The shipped site (config/nginx.conf) with a test's ports and folders, inside a minimal
    nginx.conf. Its access log names the upstream of each request ("-" for none)."""
    workdir.mkdir(parents=True, exist_ok=True)
    site = (ROOT / "config" / "nginx.conf").read_text()
    for old, new in (
        ("listen 80;", f"listen 127.0.0.1:{port};"),
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
    workdir: Path, port: int, control: int, viewers: int
) -> asyncio.subprocess.Process:
    """nginx in the foreground with the shipped site on 127.0.0.1:port (stop it with
    terminate); its own messages go to workdir/error.log."""
    conf = nginx_config(workdir, port, control, viewers)
    return await asyncio.create_subprocess_exec(
        "nginx", "-p", str(workdir), "-c", str(conf), "-g", "daemon off;",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


def varnish_vcl(workdir: Path, control: int, viewers: int) -> Path:
    """The shipped VCL (config/varnish.vcl) with a test's backend ports."""
    workdir.mkdir(parents=True, exist_ok=True)
    vcl = (ROOT / "config" / "varnish.vcl").read_text()
    for old, new in (('.port = "8080";', f'.port = "{control}";'),
                     ('.port = "8081";', f'.port = "{viewers}";')):  # fmt: skip
        assert vcl.count(old) == 1, f"config/varnish.vcl no longer contains {old!r} once"
        vcl = vcl.replace(old, new)
    path = workdir / "obrady.vcl"
    path.write_text(vcl)
    return path


def varnishd_command(port: int, vcl: Path, workdir: Path) -> list[str]:
    """varnishd in the foreground on 127.0.0.1:port with its own working folder (-n). As root,
    `-j none`: the default jail runs the child as the varnish user, which cannot enter a test's
    private (0700) temporary folder."""
    jail = ["-j", "none"] if os.geteuid() == 0 else []
    return ["varnishd", "-F", *jail, "-a", f"127.0.0.1:{port}", "-f", str(vcl),
            "-n", str(workdir), "-s", "malloc,64m"]  # fmt: skip


async def start_varnish(
    workdir: Path, port: int, control: int, viewers: int
) -> asyncio.subprocess.Process:
    """varnishd with the shipped VCL on 127.0.0.1:port, its working folder workdir/varnish
    (for varnishstat -n) and its output in workdir/varnishd.log; stop it with terminate."""
    vcl = varnish_vcl(workdir, control, viewers)
    with (workdir / "varnishd.log").open("ab") as log:
        return await asyncio.create_subprocess_exec(
            *varnishd_command(port, vcl, workdir / "varnish"),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )


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
