"""A real RTSP server standing in for an IP camera (GStreamer's gst-rtsp-server, system Python).

Run with /usr/bin/python3, which has Debian's python3-gi; the project's venv does not:

    /usr/bin/python3 tests/cameras/rtsp_camera.py --port 8554 --video h264 --audio pcma

Prints exactly one line, ``READY rtsp://127.0.0.1:PORT/PATH``, once the server listens, and
exits with status 0 on SIGTERM or SIGINT. With ``--frame-times`` it also prints, for every video
frame and audio buffer the moment its source makes it, ``MADE video|audio EPOCH_SECONDS``: the
camera's own clock of its media, what a clock in the picture would show, to the microsecond.

With ``--clock-code`` every frame carries the wall clock at which it was made as the clock code
that recorder/ffmpeg.py's synthetic source draws (37 black/white cells, epoch milliseconds), so
a recording can be read back with `read_clock_code`. With ``--clicks`` the sound is silence with
a 20 ms tone burst starting at every whole second of the wall clock; its pitch names the second
(see CLICK_HZ). ``--video none`` leaves only the sound: a microphone system's own stream.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import threading
import time

import gi
from marks import CLICK_AMPLITUDE, CLICK_HZ, CLICK_SECONDS

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

HOST = "127.0.0.1"

# The clock code, as recorder/ffmpeg.py draws and reads it (clock_code_cells, clock_code_layout;
# this script runs under the system Python, which cannot import the project): CLOCK_CODE_CELLS
# squares in a row one square from the top-left corner: 1, 0, the 32 bits of epoch ms mod 2**32
# (most significant first), their even parity, 0, 1. Video-range black and white.
CLOCK_CODE_CELLS = 37
CLOCK_CODE_BITS = 32
BLACK, WHITE = 16, 235

AUDIO_BUFFER_SECONDS = 0.020

# Baseline profile, one keyframe a second: what a cheap IP camera sends. SPS/PPS are repeated
# in-band (config-interval) so a client joining the shared stream can decode at once.
VIDEO_ENCODERS = {
    "h264": (
        "x264enc tune=zerolatency speed-preset=ultrafast threads=1 key-int-max={fps} bitrate={kbps}"
        " ! video/x-h264,profile=baseline"
        " ! rtph264pay name=pay0 pt=96 config-interval=-1"
    ),
    # A camera that sends B-frames (main profile, two between references): its frames arrive
    # in decoding order, not in the order they are shown.
    "h264-bframes": (
        "x264enc speed-preset=ultrafast threads=1 bframes=2 b-adapt=false key-int-max={fps}"
        " bitrate={kbps} ! video/x-h264,profile=main"
        " ! rtph264pay name=pay0 pt=96 config-interval=-1"
    ),
    "h265": (
        "x265enc tune=zerolatency speed-preset=ultrafast key-int-max={fps} bitrate={kbps}"
        " ! video/x-h265,profile=main"
        " ! rtph265pay name=pay0 pt=96 config-interval=-1"
    ),
}

# G.711 is 8 kHz mono by definition; AAC cameras commonly send 48 kHz mono.
AUDIO_RATES = {"aac": 48000, "pcma": 8000, "pcmu": 8000}

AUDIO_ENCODERS = {
    "aac": (
        "audio/x-raw,rate=48000,channels=1 ! voaacenc bitrate=64000 ! rtpmp4gpay name=pay1 pt=97"
    ),
    "pcma": "audio/x-raw,rate=8000,channels=1 ! alawenc ! rtppcmapay name=pay1",
    "pcmu": "audio/x-raw,rate=8000,channels=1 ! mulawenc ! rtppcmupay name=pay1",
}


def pipeline_description(args: argparse.Namespace) -> str:
    """The gst-launch description of the camera's media: pay0 is video, pay1 (if any) audio;
    without video, pay0 is the audio."""
    caps = f"video/x-raw,width={args.width},height={args.height},framerate={args.fps}/1"
    if args.clock_code:
        # Frames come from this script (ClockFeeder), each stamped as it is made.
        picture = f"appsrc name=vsrc is-live=true format=time do-timestamp=false caps={caps}"
        picture += ",format=I420"
    elif args.pattern == "smpte":
        # A moving wall clock, so every frame differs and latency can be read off the picture.
        picture = "videotestsrc name=vsrc is-live=true pattern=smpte ! {caps} ! clockoverlay"
        picture += ' time-format="%H:%M:%S" font-desc="Sans 14" shaded-background=true'
    elif args.pattern == "black":
        picture = "videotestsrc name=vsrc is-live=true pattern=black ! {caps}"
    else:
        # Frozen: the same picture in every frame, as a hung camera sends. Not "smpte": its
        # corner of snow changes every frame (about 4 luma levels mean difference).
        picture = "videotestsrc name=vsrc is-live=true pattern=smpte75 ! {caps}"
    kbps = max(100, args.width * args.height * args.fps // 20_000)
    if args.clock_code:
        # The cells must survive the camera's own encoder: enough bits for sharp edges.
        kbps = max(kbps, 400)
    video = ""
    if args.video != "none":
        video = (
            picture.format(caps=caps)
            + " ! videoconvert ! video/x-raw,format=I420 ! "
            + VIDEO_ENCODERS[args.video].format(fps=args.fps, kbps=kbps)
        )
    if args.audio == "none":
        return f"( {video} )"
    encoder = AUDIO_ENCODERS[args.audio]
    if video == "":
        encoder = encoder.replace("name=pay1", "name=pay0")
    if args.clicks:
        rate = AUDIO_RATES[args.audio]
        audio = (
            f"appsrc name=asrc is-live=true format=time do-timestamp=false"
            f" caps=audio/x-raw,format=S16LE,layout=interleaved,rate={rate},channels=1"
            f" ! audioconvert ! {encoder}"
        )
    else:
        wave = "silence" if args.silent else "sine freq=440 volume=0.3"
        audio = (
            f"audiotestsrc name=asrc is-live=true wave={wave} samplesperbuffer=400"
            f" ! audioconvert ! audioresample ! {encoder}"
        )
    return f"( {video} {audio} )"


def clock_code_cells(millis: int) -> list[int]:
    """The cells (0 black, 1 white) that stamp `millis` (epoch milliseconds)."""
    value = millis % 2**CLOCK_CODE_BITS
    bits = [(value >> (CLOCK_CODE_BITS - 1 - i)) & 1 for i in range(CLOCK_CODE_BITS)]
    return [1, 0, *bits, sum(bits) % 2, 0, 1]


def clock_code_square(width: int) -> int:
    """The side of a cell (and the margin) in a picture `width` px wide."""
    return max(2, min(16, width // (CLOCK_CODE_CELLS + 2)) // 2 * 2)


def still_picture(args: argparse.Namespace) -> bytes:
    """One I420 frame of the chosen test pattern: the background under the clock code."""
    pattern = {"smpte": "smpte", "black": "black", "frozen": "smpte75"}[args.pattern]
    pipeline = Gst.parse_launch(
        f"videotestsrc num-buffers=1 pattern={pattern}"
        f" ! video/x-raw,format=I420,width={args.width},height={args.height}"
        " ! appsink name=out"
    )
    pipeline.set_state(Gst.State.PLAYING)
    sample = pipeline.get_by_name("out").emit("pull-sample")
    buffer = sample.get_buffer()
    frame = buffer.extract_dup(0, buffer.get_size())
    pipeline.set_state(Gst.State.NULL)
    return bytes(frame)


class ClockFeeder:
    """Feeds one media's appsrc elements in real time: frames stamped with the clock code of
    the wall time they are made at, and sound with a click at every whole second. Both are
    timed on one reference pair (wall clock, pipeline running time) taken when the media
    starts playing, so a frame made at wall time W and the sample played at W carry the same
    timestamp."""

    def __init__(self, args: argparse.Namespace, background: bytes | None) -> None:
        self.args = args
        self.background = background
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        self._reference: tuple[float, float, int] | None = None  # (monotonic, wall, running ns)
        self._threads: list[threading.Thread] = []

    def start(self, video: object | None, audio: object | None) -> None:
        """Start a feeding thread for each appsrc given."""
        if video is not None:
            self._threads.append(threading.Thread(target=self._feed_video, args=(video,)))
        if audio is not None:
            self._threads.append(threading.Thread(target=self._feed_audio, args=(audio,)))
        for thread in self._threads:
            thread.daemon = True
            thread.start()

    def stop(self) -> None:
        """Stop feeding (the media is being torn down)."""
        self.stopped.set()

    def _reference_of(self, element: object) -> tuple[float, float, int] | None:
        """(monotonic, wall, running time) at one moment, once the media plays."""
        with self._lock:
            if self._reference is None:
                clock = element.get_clock()  # type: ignore[attr-defined]
                if clock is None or element.get_state(0)[1] != Gst.State.PLAYING:  # type: ignore[attr-defined]
                    return None
                running = clock.get_time() - element.get_base_time()  # type: ignore[attr-defined]
                self._reference = (time.monotonic(), time.time(), running)
            return self._reference

    def _wait_reference(self, element: object) -> tuple[float, float, int] | None:
        while not self.stopped.is_set():
            reference = self._reference_of(element)
            if reference is not None:
                return reference
            time.sleep(0.005)
        return None

    def _sleep_until(self, reference: tuple[float, float, int], wall: float) -> bool:
        """Sleep until the wall time `wall` (on the monotonic clock); False if stopped."""
        mono0, wall0, _ = reference
        delay = mono0 + (wall - wall0) - time.monotonic()
        return not self.stopped.wait(delay) if delay > 0 else not self.stopped.is_set()

    @staticmethod
    def _running(reference: tuple[float, float, int], wall: float) -> int:
        _, wall0, running0 = reference
        return running0 + round((wall - wall0) * Gst.SECOND)

    def _push(self, element: object, data: bytes, pts: int, duration: int) -> bool:
        buffer = Gst.Buffer.new_wrapped(data)
        buffer.pts = pts
        buffer.dts = pts
        buffer.duration = duration
        flow = element.emit("push-buffer", buffer)  # type: ignore[attr-defined]
        return bool(flow == Gst.FlowReturn.OK)

    def _feed_video(self, element: object) -> None:
        reference = self._wait_reference(element)
        if reference is None or self.background is None:
            return
        args = self.args
        width, height, fps = args.width, args.height, args.fps
        square = clock_code_square(width)
        frame_ns = Gst.SECOND // fps
        luma = width * height
        chroma = luma // 4
        # Frames on the wall clock's grid of 1/fps: frame n is made at n / fps.
        n = math.ceil(reference[1] * fps)
        while True:
            made = n / fps
            if not self._sleep_until(reference, made):
                return
            frame = bytearray(self.background)
            cells = clock_code_cells(round(made * 1000))
            strip = b"".join(bytes([WHITE if c else BLACK]) * square for c in cells)
            for row in range(square, 2 * square):
                at = row * width + square
                frame[at : at + len(strip)] = strip
            # Grey cells: no colour under the code (the reader looks at luma only).
            half = square // 2
            for plane in (luma, luma + chroma):
                for row in range(half, 2 * half):
                    at = plane + row * (width // 2) + half
                    frame[at : at + len(strip) // 2] = bytes([128]) * (len(strip) // 2)
            if not self._push(element, bytes(frame), self._running(reference, made), frame_ns):
                return
            n += 1

    def _feed_audio(self, element: object) -> None:
        reference = self._wait_reference(element)
        if reference is None:
            return
        rate = AUDIO_RATES[self.args.audio]
        samples = round(rate * AUDIO_BUFFER_SECONDS)
        length = round(rate * CLICK_SECONDS)
        # Buffers on the wall clock's grid: buffer k holds samples made from k * samples / rate.
        k = math.ceil(reference[1] * rate / samples)
        while True:
            first = k * samples  # wall time of the buffer's first sample, in samples
            if not self._sleep_until(reference, (first + samples) / rate):
                return  # a live source hands over its samples once it has made them
            pcm = bytearray(2 * samples)
            second = first // rate
            for s in (second, second + 1):
                hz = CLICK_HZ[s % len(CLICK_HZ)]
                start = s * rate
                for i in range(max(start, first), min(start + length, first + samples)):
                    phase = 2 * math.pi * hz * (i - start) / rate
                    value = round(CLICK_AMPLITUDE * 32767 * math.sin(phase))
                    at = 2 * (i - first)
                    pcm[at : at + 2] = value.to_bytes(2, "little", signed=True)
            pts = self._running(reference, first / rate)
            if not self._push(element, bytes(pcm), pts, samples * Gst.SECOND // rate):
                return
            k += 1


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options of the camera."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/cam")
    parser.add_argument("--video", choices=[*sorted(VIDEO_ENCODERS), "none"], default="h264")
    parser.add_argument("--audio", choices=[*sorted(AUDIO_ENCODERS), "none"], default="aac")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=180)
    parser.add_argument("--fps", type=int, default=10)
    parser.add_argument("--pattern", choices=["smpte", "black", "frozen"], default="smpte")
    parser.add_argument("--silent", action="store_true", help="send silence instead of a tone")
    parser.add_argument(
        "--frame-times", action="store_true", help="print when each frame and buffer is made"
    )
    parser.add_argument(
        "--flash-seconds",
        type=float,
        default=0.0,
        help="every so many seconds make one white frame and print when (MADE flash EPOCH)",
    )
    parser.add_argument(
        "--clock-code", action="store_true", help="stamp each frame with the wall clock's code"
    )
    parser.add_argument(
        "--clicks", action="store_true", help="silence with a click at every whole second"
    )
    args = parser.parse_args(argv)
    if not args.path.startswith("/"):
        parser.error("--path must start with '/'")
    if args.video == "none" and args.audio == "none":
        parser.error("--video none needs an --audio")
    if args.clock_code and args.width < (CLOCK_CODE_CELLS + 2) * 8:
        parser.error(f"--clock-code needs a --width of at least {(CLOCK_CODE_CELLS + 2) * 8}")
    if args.clock_code and args.video == "none":
        parser.error("--clock-code needs video")
    if args.clicks and args.audio == "none":
        parser.error("--clicks needs audio")
    return args


def flasher(every: float, width: int, height: int) -> object:
    """A media-configure handler that turns one frame white every `every` seconds and prints
    when it was captured by its timestamp (``MADE flash EPOCH``): a moment a recording can be
    checked against."""
    # Luma samples along a row near the bottom, where the SMPTE bars have black: a frame is
    # the white one only if every sample is bright.
    row = int(height * 0.9)
    samples = [row * width + width * k // 16 for k in range(1, 16)]

    def configure(_factory: object, media: GstRtspServer.RTSPMedia) -> None:
        vsrc = media.get_element().get_by_name("vsrc")
        usual = vsrc.get_property("pattern")
        pending = [False]

        def flash() -> bool:
            pending[0] = True
            vsrc.set_property("pattern", "white")
            return GLib.SOURCE_CONTINUE

        def probe(_pad: object, info: Gst.PadProbeInfo) -> object:
            if pending[0]:
                buffer = info.get_buffer()
                if min(buffer.extract_dup(at, 1)[0] for at in samples) >= 200:
                    # The moment its timestamp says it was captured, on the wall clock: what a
                    # camera's sensor clock (and its RTCP reports) would say. On a busy machine
                    # the test pattern is made late, with the timestamp it should have had.
                    clock = vsrc.get_clock()
                    made = time.time()
                    if clock is not None and buffer.pts != Gst.CLOCK_TIME_NONE:
                        lag = clock.get_time() - (vsrc.get_base_time() + buffer.pts)
                        made -= lag / Gst.SECOND
                    os.write(1, f"MADE flash {made:.6f}\n".encode())
                    pending[0] = False
                    vsrc.set_property("pattern", usual)
            return Gst.PadProbeReturn.OK

        vsrc.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, probe)
        GLib.timeout_add(int(every * 1000), flash)

    return configure


def main(argv: list[str]) -> int:
    """Serve the camera until SIGTERM or SIGINT."""
    args = parse_args(argv)
    Gst.init(None)
    loop = GLib.MainLoop()

    description = pipeline_description(args)
    # The server builds the pipeline only when a client asks; build it once now so a missing
    # plugin fails here with its name rather than as a bare "503" in the client.
    try:
        Gst.parse_launch(description)
    except GLib.Error as exc:
        print(f"cannot build the camera pipeline: {exc.message}", file=sys.stderr, flush=True)
        return 1

    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(description)
    # One pipeline for every client, as a camera has one sensor.
    factory.set_shared(True)
    # Without this, each new client's PLAY seeks the shared test pipeline to 0 and resets the
    # timestamps of every client already watching ("Non-monotonous DTS" in ffmpeg).
    factory.set_publish_clock_mode(GstRtspServer.RTSPPublishClockMode.CLOCK_AND_OFFSET)

    if args.frame_times:

        def made(kind: str) -> object:
            def probe(_pad: object, _info: object) -> object:
                # One write of a short line is atomic: the video and audio threads both print.
                os.write(1, f"MADE {kind} {time.time():.6f}\n".encode())
                return Gst.PadProbeReturn.OK

            return probe

        def configure(_factory: object, media: GstRtspServer.RTSPMedia) -> None:
            bin_ = media.get_element()
            for name, kind in (("vsrc", "video"), ("asrc", "audio")):
                element = bin_.get_by_name(name)
                if element is not None:
                    element.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, made(kind))

        factory.connect("media-configure", configure)

    if args.flash_seconds > 0:
        factory.connect("media-configure", flasher(args.flash_seconds, args.width, args.height))
    if args.clock_code or args.clicks:
        background = still_picture(args) if args.clock_code else None

        def feed(_factory: object, media: GstRtspServer.RTSPMedia) -> None:
            bin_ = media.get_element()
            feeder = ClockFeeder(args, background)
            video = bin_.get_by_name("vsrc") if args.clock_code else None
            audio = bin_.get_by_name("asrc") if args.clicks else None
            feeder.start(video, audio)
            media.connect("unprepared", lambda _media: feeder.stop())

        factory.connect("media-configure", feed)

    server = GstRtspServer.RTSPServer()
    server.set_address(HOST)
    server.set_service(str(args.port))
    server.get_mount_points().add_factory(args.path, factory)
    # attach() creates and binds the listening socket; 0 means it could not (e.g. port taken).
    if server.attach(None) == 0:
        print(f"cannot listen on {HOST}:{args.port}", file=sys.stderr, flush=True)
        return 1

    def quit_loop() -> bool:
        loop.quit()
        return GLib.SOURCE_REMOVE

    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, quit_loop)

    print(f"READY rtsp://{HOST}:{server.get_bound_port()}{args.path}", flush=True)
    loop.run()

    # Close client connections so their media pipelines are torn down before exit.
    server.client_filter(lambda _server, _client: GstRtspServer.RTSPFilterResult.REMOVE)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
