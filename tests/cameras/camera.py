"""Start and stop the RTSP test camera (tests/cameras/rtsp_camera.py) from async tests."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from types import TracebackType

SYSTEM_PYTHON = "/usr/bin/python3"  # has Debian's python3-gi; the project's venv does not
SCRIPT = Path(__file__).with_name("rtsp_camera.py")
STDERR_TAIL = 40


class CameraError(RuntimeError):
    """The camera process did not come up."""


class RtspCamera:
    """A real RTSP server on 127.0.0.1:port serving a test picture (and tone) at /cam; with
    clock_code, each frame shows the wall clock it was made at; with clicks, the sound clicks at
    every whole second; video "none" serves sound only (a microphone system's stream). With
    watched, a viewer (ffmpeg, copying to nowhere) keeps it playing from start() to stop(): a
    real camera encodes before anyone connects, while this one builds its pipeline (and starts
    its encoder) at its first client, which makes that client's stream start late."""

    def __init__(
        self,
        port: int,
        *,
        video: str = "h264",
        audio: str = "aac",
        width: int = 320,
        height: int = 180,
        fps: int = 10,
        pattern: str = "smpte",
        silent: bool = False,
        frame_times: bool = False,
        flash_seconds: float = 0.0,
        clock_code: bool = False,
        clicks: bool = False,
        watched: bool = False,
    ) -> None:
        self.port = port
        self.video = video
        self.audio = audio
        self.width = width
        self.height = height
        self.fps = fps
        self.pattern = pattern
        self.silent = silent
        self.frame_times = frame_times
        # With flash_seconds: one white frame that often; its making is in `made` as "flash".
        self.flash_seconds = flash_seconds
        self.clock_code = clock_code
        self.clicks = clicks
        self.watched = watched
        self._viewer: asyncio.subprocess.Process | None = None
        # With frame_times: (kind, epoch seconds) of every video frame and audio buffer the
        # camera made, in order: the camera's own clock of what it sent.
        self.made: list[tuple[str, float]] = []
        self.url = f"rtsp://127.0.0.1:{port}/cam"
        self._proc: asyncio.subprocess.Process | None = None
        self._drains: list[asyncio.Task[None]] = []
        self._stderr: list[str] = []
        self._ready: asyncio.Future[str] | None = None
        self.returncode: int | None = None  # set by stop(): 0 is a clean exit on SIGTERM

    def argv(self) -> list[str]:
        """The command line that runs this camera."""
        argv = [
            SYSTEM_PYTHON,
            str(SCRIPT),
            "--port",
            str(self.port),
            "--path",
            "/cam",
            "--video",
            self.video,
            "--audio",
            self.audio,
            "--width",
            str(self.width),
            "--height",
            str(self.height),
            "--fps",
            str(self.fps),
            "--pattern",
            self.pattern,
        ]
        if self.silent:
            argv.append("--silent")
        if self.frame_times:
            argv.append("--frame-times")
        if self.flash_seconds > 0:
            argv += ["--flash-seconds", f"{self.flash_seconds:g}"]
        if self.clock_code:
            argv.append("--clock-code")
        if self.clicks:
            argv.append("--clicks")
        return argv

    @property
    def pid(self) -> int | None:
        """The camera server's pid while it runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    @property
    def stderr_tail(self) -> str:
        """The last lines the camera wrote to stderr."""
        return "\n".join(self._stderr[-STDERR_TAIL:])

    async def _drain_stdout(self, stream: asyncio.StreamReader) -> None:
        async for raw in stream:
            line = raw.decode("utf-8", "replace").strip()
            if line.startswith("MADE "):
                words = line.split(" ")
                self.made.append((words[1], float(words[2])))
            elif line.startswith("READY ") and self._ready is not None and not self._ready.done():
                self._ready.set_result(line.split(" ", 1)[1])

    async def _drain_stderr(self, stream: asyncio.StreamReader) -> None:
        async for raw in stream:
            self._stderr.append(raw.decode("utf-8", "replace").rstrip())
            del self._stderr[:-STDERR_TAIL]

    async def start(self, timeout: float = 20) -> None:
        """Spawn the camera and wait until it listens; raise CameraError (with its stderr)."""
        if self._proc is not None:
            raise CameraError("camera already started")
        self._ready = asyncio.get_running_loop().create_future()
        self._proc = await asyncio.create_subprocess_exec(
            *self.argv(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        assert self._proc.stdout is not None and self._proc.stderr is not None
        self._drains = [
            asyncio.create_task(self._drain_stdout(self._proc.stdout)),
            asyncio.create_task(self._drain_stderr(self._proc.stderr)),
        ]
        exited = asyncio.create_task(self._proc.wait())
        try:
            done, _ = await asyncio.wait(
                {self._ready, exited}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if self._ready in done:
                url = self._ready.result()
                if url != self.url:
                    raise CameraError(f"camera announced {url}, expected {self.url}")
                if self.watched:
                    await self._watch(timeout)
                return
            if exited in done:
                # Let the stderr drain catch the last words before quoting them.
                await asyncio.wait(self._drains, timeout=2)
                raise CameraError(
                    f"camera exited with {self._proc.returncode} before READY:\n{self.stderr_tail}"
                )
            raise CameraError(f"camera not READY after {timeout:g} s:\n{self.stderr_tail}")
        except BaseException:
            await self.stop()
            raise
        finally:
            exited.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await exited

    async def _watch(self, timeout: float) -> None:
        """Start the viewer and wait until media reach it."""
        self._viewer = await asyncio.create_subprocess_exec(
            "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-nostats",
            "-rtsp_transport", "tcp", "-i", self.url, "-map", "0", "-c", "copy",
            "-f", "null", "-progress", "pipe:1", "-",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        stdout = self._viewer.stdout
        assert stdout is not None

        async def playing() -> None:
            async for raw in stdout:
                key, _, value = raw.decode("ascii", "replace").strip().partition("=")
                if key == "out_time_us" and value.isdigit() and int(value) > 0:
                    return
            raise CameraError("the camera's viewer stopped before any media came")

        try:
            await asyncio.wait_for(playing(), timeout)
        except TimeoutError:
            raise CameraError(f"no media reached the camera's viewer in {timeout:g} s") from None
        # From here on nobody reads the viewer's progress: let it go to waste, not block.
        self._drains.append(asyncio.create_task(self._discard(stdout)))

    @staticmethod
    async def _discard(stream: asyncio.StreamReader) -> None:
        while await stream.read(65536):
            pass

    async def _stop_viewer(self, timeout: float) -> None:
        viewer, self._viewer = self._viewer, None
        if viewer is None or viewer.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            viewer.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(viewer.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                viewer.kill()
            await asyncio.wait_for(viewer.wait(), timeout)

    async def stop(self, timeout: float = 10) -> None:
        """SIGTERM, wait up to timeout, then SIGKILL; safe to call twice or before start."""
        await self._stop_viewer(timeout)
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), timeout)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await asyncio.wait_for(proc.wait(), timeout)
            self.returncode = proc.returncode
        drains, self._drains = self._drains, []
        if drains:
            # The pipes close when the process is gone; do not hang on a stray grandchild.
            _, pending = await asyncio.wait(drains, timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*drains, return_exceptions=True)

    async def __aenter__(self) -> RtspCamera:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
