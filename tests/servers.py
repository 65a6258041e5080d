"""Real servers the tests start: nginx with its RTMP module, standing in for YouTube."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"


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
