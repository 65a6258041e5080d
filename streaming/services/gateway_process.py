"""Runs the viewers' gateway as child processes of `obrady serve`; restarts them when they exit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from typing import Self

from config.settings import Settings
from recorder.lifecycle import TaskSet
from recorder.supervisor import interrupt_when_parent_dies

log = logging.getLogger(__name__)

SETTINGS_ENV = "OBRADY_GATEWAY_SETTINGS"


WORKER_ENV = "OBRADY_GATEWAY_WORKER"


def _worker() -> int:
    """Which of the gateway processes this is (they share the port)."""
    return int(os.environ.get(WORKER_ENV, "0"))


def gateway_command(settings: Settings, worker: int = 0) -> tuple[list[str], dict[str, str]]:
    """How `obrady serve` starts gateway process number `worker`: argv, and the exact settings
    in the environment."""
    env = dict(os.environ)
    env[SETTINGS_ENV] = settings.model_dump_json()
    env[WORKER_ENV] = str(worker)
    return [sys.executable, "-m", "streaming", "gateway"], env


class GatewayProcess:
    """Keeps the gateway process running: restarts it (with back-off) whenever it exits;
    `async with gateway:` runs it until the block is left."""

    def __init__(
        self, argv: list[str], env: dict[str, str], *, max_backoff_seconds: float = 5.0
    ) -> None:
        self._argv = argv
        self._env = env
        self._max_backoff = max_backoff_seconds
        self._proc: asyncio.subprocess.Process | None = None
        self._stopping = asyncio.Event()
        self.restarts = 0
        self._tasks = TaskSet("gateway process")

    async def __aenter__(self) -> Self:
        self._tasks.spawn(self.run(), name=f"gateway-{self._env.get(WORKER_ENV, 0)}")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
        await self._tasks.close()

    @property
    def pid(self) -> int | None:
        """The gateway's pid while it runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    async def run(self) -> None:
        """Run and restart the gateway until stop()."""
        backoff = 0.25
        while not self._stopping.is_set():
            began = time.monotonic()
            self._proc = await asyncio.create_subprocess_exec(
                *self._argv,
                stdin=asyncio.subprocess.DEVNULL,
                env=self._env,
                start_new_session=True,
                preexec_fn=interrupt_when_parent_dies,
            )
            code = await self._proc.wait()
            if self._stopping.is_set():
                break
            if time.monotonic() - began > 30:
                backoff = 0.25
            self.restarts += 1
            log.error("gateway process exited (code %s); restarting in %.2f s", code, backoff)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(backoff):
                    await self._stopping.wait()
            backoff = min(backoff * 2, self._max_backoff)

    async def stop(self) -> None:
        """Stop the gateway (SIGTERM, then SIGKILL after 10 s)."""
        self._stopping.set()
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(10):
                await proc.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
