"""The order of sacrifice (recorder/priority.py) on real processes: each kind of background work
that obrady starts runs at its level while it runs (its nice value in /proc/<pid>/stat, its
session's autogroup, its I/O class as `ionice -p` reads it), down to the threads CTranslate2
starts for captions; capture's own one-shots stay at the service's level."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import config_text, free_port, wait_for
from helpers import thread_ticks

from archive.records import Segment, Session
from config.settings import (
    MonitoringSettings,
    PreflightSettings,
    PushDestination,
    TranscriptionSettings,
    parse_settings,
)
from recorder.analysis import SegmentAnalyzer
from recorder.oneshot import run_ffmpeg
from recorder.preflight import ChamberPreflight
from recorder.priority import (
    ANALYSIS,
    CAPTIONS,
    CAPTURE,
    EXPORTS,
    ORDER,
    PREFLIGHT,
    PUSH,
    SLATES,
    Priority,
    autogroup_nice_of,
    nice_of,
    spawn,
)
from recorder.push import ProgramPusher
from recorder.transcribe import Recording, Transcriber
from recorder.whisper_model import assemble_model
from streaming.services.slates import make_slates

ROOT = Path(__file__).resolve().parents[2]
IONICE = shutil.which("ionice")
# What `ionice -p` prints for each I/O class.
IO_SHOWN = {"normal": "none: prio 0", "low": "best-effort: prio 7", "idle": "idle"}


def children(match: str) -> list[int]:
    """Running child processes of this test whose command line holds `match`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[1]) == os.getpid() and match in cmdline:
            found.append(int(entry))
    return found


async def child(match: str, timeout: float = 20) -> int:
    """The one running process of this test whose command line holds `match` (waited for)."""

    async def one() -> int | None:
        found = children(match)
        assert len(found) <= 1, f"more than one process matches {match!r}: {found}"
        return found[0] if found else None

    pid = await wait_for(one, timeout, f"a process running {match!r}", interval=0.02)
    return await exec_done(pid)


def program_of(pid: int) -> str:
    with open(f"/proc/{pid}/comm", encoding="utf-8") as handle:
        return handle.read().strip()


async def exec_done(pid: int, program: str = "ffmpeg") -> int:
    """pid, once `nice` and `ionice` have set its level and exec'd the program itself (the
    kernel names the process after it a moment after the parent may go on)."""

    async def done() -> int | None:
        return pid if program_of(pid) == program else None

    return await wait_for(done, 10, f"{pid} to become {program}", interval=0.01)


def io_class_of(pid: int) -> str:
    assert IONICE is not None
    return subprocess.run(
        [IONICE, "-p", str(pid)], capture_output=True, text=True, check=True, timeout=10
    ).stdout.strip()


async def assert_level(pid: int, priority: Priority) -> None:
    """The process runs at the level: its nice value and I/O class (set before the program
    itself began), and its session's share (set by obrady as soon as the process exists)."""
    assert nice_of(pid) == priority.nice, (pid, program_of(pid), priority)
    if IONICE is not None:
        assert io_class_of(pid) == IO_SHOWN[priority.io], (pid, priority)
    if autogroup_nice_of(pid) is None:
        return  # a kernel without autogroup scheduling
    # A session of its own, at the same level: under autogroup scheduling a nice value counts
    # only within its session.
    assert os.getsid(pid) == pid

    async def settled() -> bool:
        return autogroup_nice_of(pid) == priority.nice

    await wait_for(settled, 2, f"the autogroup of {pid} at {priority}", interval=0.01)


# --- the levels ---------------------------------------------------------------------------------


def test_the_levels_keep_the_order_of_sacrifice() -> None:
    # Most expendable first: captions, then downloads, then the staff's work, then pushes;
    # capture keeps the service's level.
    nice = [p.nice for p in ORDER]
    assert nice == sorted(nice, reverse=True)
    assert ORDER[0] is CAPTIONS and ORDER[-1] is CAPTURE
    assert CAPTIONS.nice > EXPORTS.nice > max(PREFLIGHT.nice, SLATES.nice, ANALYSIS.nice)
    assert ANALYSIS.nice > PUSH.nice > CAPTURE.nice == 0 and not CAPTURE.lowered
    # I/O: captions give way to downloads, downloads to everything else.
    assert (CAPTIONS.io, EXPORTS.io, CAPTURE.io) == ("idle", "low", "normal")
    # The transcription worker's default is the captions' level.
    assert TranscriptionSettings().nice == CAPTIONS.nice


def test_the_command_runs_through_nice_and_ionice() -> None:
    ffmpeg = ["ffmpeg", "-version"]
    assert CAPTURE.command(ffmpeg) == ffmpeg
    argv = EXPORTS.command(ffmpeg)
    assert argv[-2:] == ffmpeg and argv[1:3] == ["-n", "15"]
    if IONICE is not None:
        assert argv[3:-2] == [IONICE, "-t", "-c", "2", "-n", "7"]
        assert CAPTIONS.command(ffmpeg)[3:-2] == [IONICE, "-t", "-c", "3"]
    assert PUSH.command(ffmpeg)[1:] == ["-n", "2", *ffmpeg]  # no I/O class of its own
    # A program that is not there fails to start as it did without a level.
    assert EXPORTS.command(["no-such-program-here"]) == ["no-such-program-here"]
    with pytest.raises(ValueError, match="0 to 19"):
        Priority("wrong", 20)


@pytest.mark.parametrize("priority", ORDER, ids=lambda p: p.name)
async def test_a_child_runs_at_its_level_from_the_start(priority: Priority) -> None:
    proc = await spawn(priority, ["sleep", "30"])
    try:
        await assert_level(await exec_done(proc.pid, "sleep"), priority)
    finally:
        proc.kill()
        await proc.wait()


async def test_a_missing_program_fails_to_start_as_before() -> None:
    with pytest.raises(FileNotFoundError):
        await spawn(EXPORTS, ["no-such-program-here"])


# --- each kind of work, where obrady starts it --------------------------------------------------


async def lavfi_segments(folder: Path, seconds: int = 4) -> list[Path]:
    """1 s MPEG-TS segments (H.264, AAC) as capture makes them."""
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    proc = await asyncio.create_subprocess_exec(
        "ffmpeg", "-nostdin", "-hide_banner", "-v", "error",
        "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=10",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", str(seconds), "-map", "0:v", "-map", "1:a",
        "-c:v", "libx264", "-preset", "ultrafast", "-g", "10", "-c:a", "aac",
        "-f", "segment", "-segment_time", "1", "-segment_format", "mpegts",
        str(folder / "seg-%06d.ts"),
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode(errors="replace")
    return await asyncio.to_thread(lambda: sorted(folder.glob("seg-*.ts")))


async def test_capture_one_shots_keep_the_service_level(tmp_path: Path) -> None:
    # A probe before capture starts goes through run_ffmpeg at its default level.
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "nullsrc=d=30:r=1"]
    argv += ["-f", "null", "-", "-metadata", "title=obrady-priority-capture"]
    task = asyncio.ensure_future(run_ffmpeg(argv, timeout=60, what="stand in for a probe"))
    try:
        await assert_level(await child("obrady-priority-capture"), CAPTURE)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_redaction_slates_run_at_the_callers_level(tmp_path: Path) -> None:
    settings = parse_settings(config_text(tmp_path / "data", free_port()))
    now = datetime.now(UTC)
    session = Session(7, "sala", "Sesja", "session", now, now, "ended", now, now, "op", "", now)
    run = settings.paths.session_media("sala", 7) / "main" / "run-0001"
    first = (await lavfi_segments(run, 2))[0]
    # An hour-long slate takes ffmpeg long enough to be looked at.
    segment = Segment(1, 1, 1, "run-0001", "main", 7, "sala", 0, first.name, 0.0, 3600.0, now,
                      first.stat().st_size, None, 0, 0)  # fmt: skip
    for priority in (SLATES, EXPORTS):
        task = asyncio.ensure_future(make_slates(settings, session, [segment], priority=priority))
        try:
            await assert_level(await child("color=c="), priority)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await wait_for(lambda: asyncio.sleep(0, not children("color=c=")), 10, "slate gone")


async def test_segment_analysis_runs_at_its_level(tmp_path: Path) -> None:
    segments = await lavfi_segments(tmp_path / "media")
    async with SegmentAnalyzer(MonitoringSettings()) as analyzer:
        analyzer.submit((1, "main"), "sala", segments[0], 1.0)
        await assert_level(await child("astats=metadata=1"), ANALYSIS)


async def test_an_rtmp_push_runs_at_its_level(tmp_path: Path) -> None:
    segments = await lavfi_segments(tmp_path / "media")
    # Nothing listens there: ffmpeg reads its input first, then fails to connect and ends.
    url = f"rtmp://127.0.0.1:{free_port()}/live/priority-test"
    async with ProgramPusher("sala", PushDestination(name="test", url=url)) as pusher:
        pusher.submit(1, segments[0])
        await assert_level(await child("priority-test"), PUSH)


async def test_preflight_monitors_and_test_recordings_run_at_their_level(tmp_path: Path) -> None:
    settings = parse_settings(config_text(tmp_path / "data", free_port()))
    chamber = ChamberPreflight(settings.chambers[0], tmp_path / "preflight", PreflightSettings())
    try:
        await chamber.touch({})
        monitor = chamber.monitors[settings.chambers[0].camera_list[0].id]
        await wait_for(lambda: asyncio.sleep(0, monitor.pid), 20, "the monitor's ffmpeg")
        assert monitor.pid is not None
        await assert_level(await exec_done(monitor.pid), PREFLIGHT)
        await monitor.stop()
        test = chamber.start_test(monitor.camera.id, 30, False, "op")
        await assert_level(await child(str(test.path)), PREFLIGHT)
    finally:
        await chamber.close()


@pytest.fixture(scope="module")
def model_dir() -> Path:
    """Whisper base, assembled from its pinned PyPI packages (no download) and verified."""
    return assemble_model(ROOT / ".cache" / "whisper-base")


@pytest.fixture
def speech(tmp_path: Path) -> Recording:
    """A minute of Polish speech (espeak-ng) as 1 s segments."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed (apt-get install espeak-ng)")
    words = "Podjęcie uchwały w sprawie zmiany budżetu miasta. " * 20
    raw = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "pl", "-s", "150", "-w", str(raw), words],
                   check=True, capture_output=True, timeout=60)  # fmt: skip
    folder = tmp_path / "media"
    folder.mkdir()
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(raw), "-c:a", "aac", "-f", "segment",
         "-segment_time", "1", "-segment_format", "mpegts", str(folder / "seg-%06d.ts")],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    files = sorted(folder.glob("seg-*.ts"))
    # Listed many times over: the decoding ffmpeg runs long enough to be looked at.
    return Recording(tuple((path, 1.0) for path in files) * 5)


async def test_captions_run_at_the_lowest_level_down_to_ctranslate2_threads(
    model_dir: Path, speech: Recording
) -> None:
    # transcription.nice's default; greedy, without retries: it stops soon when cancelled.
    transcriber = Transcriber(model_dir, cpu_threads=2, beam_size=1, temperatures=(0.0,))
    assert transcriber.nice == CAPTIONS.nice
    loop_thread = threading.get_native_id()
    task = asyncio.ensure_future(transcriber.transcribe_async(speech))
    try:
        # The ffmpeg that decodes the sound.
        await assert_level(await child("pcm_s16le", timeout=60), CAPTIONS)
        # Then recognition: the threads that work for it (CTranslate2's, started by the worker
        # thread) are at the captions' level; the event loop's thread is not lowered.
        await wait_for(lambda: asyncio.sleep(0, not children("pcm_s16le")), 60, "decoding done")
        start = thread_ticks()

        def worked() -> tuple[int, dict[int, int]]:
            now = thread_ticks()
            ticks = {
                tid: spent - start.get(tid, (0, 0))[0]
                for tid, (spent, _) in now.items()
                if tid != loop_thread
            }
            lowered = sum(t for tid, t in ticks.items() if now[tid][1] == CAPTIONS.nice)
            others = {tid: t for tid, t in ticks.items() if now[tid][1] != CAPTIONS.nice and t}
            return lowered, others

        # Two seconds of CPU at the captions' level (100 ticks a second).
        await wait_for(lambda: asyncio.sleep(0, worked()[0] >= 200), 60, "recognition at work")
        assert not task.done(), "the recognition ended before it could be looked at"
        lowered, others = worked()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await transcriber.close()
    # Threads started before it (numpy's, asyncio's) may do a little of the work.
    assert sum(others.values()) <= lowered / 20, (others, lowered)
    assert nice_of(os.getpid()) == 0 == nice_of(loop_thread)
