"""A real RTSP server standing in for an IP camera (GStreamer's gst-rtsp-server, system Python).

Run with /usr/bin/python3, which has Debian's python3-gi; the project's venv does not:

    /usr/bin/python3 tests/cameras/rtsp_camera.py --port 8554 --video h264 --audio pcma

Prints exactly one line, ``READY rtsp://127.0.0.1:PORT/PATH``, once the server listens, and
exits with status 0 on SIGTERM or SIGINT. With ``--frame-times`` it also prints, for every video
frame and audio buffer the moment its source makes it, ``MADE video|audio EPOCH_SECONDS``: the
camera's own clock of its media, what a clock in the picture would show, to the microsecond.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

HOST = "127.0.0.1"

# Baseline profile, one keyframe a second: what a cheap IP camera sends. SPS/PPS are repeated
# in-band (config-interval) so a client joining the shared stream can decode at once.
VIDEO_ENCODERS = {
    "h264": (
        "x264enc tune=zerolatency speed-preset=ultrafast threads=1 key-int-max={fps} bitrate={kbps}"
        " ! video/x-h264,profile=baseline"
        " ! rtph264pay name=pay0 pt=96 config-interval=-1"
    ),
    "h265": (
        "x265enc tune=zerolatency speed-preset=ultrafast key-int-max={fps} bitrate={kbps}"
        " ! video/x-h265,profile=main"
        " ! rtph265pay name=pay0 pt=96 config-interval=-1"
    ),
}

# G.711 is 8 kHz mono by definition; AAC cameras commonly send 48 kHz mono.
AUDIO_ENCODERS = {
    "aac": (
        "audio/x-raw,rate=48000,channels=1 ! voaacenc bitrate=64000 ! rtpmp4gpay name=pay1 pt=97"
    ),
    "pcma": "audio/x-raw,rate=8000,channels=1 ! alawenc ! rtppcmapay name=pay1",
    "pcmu": "audio/x-raw,rate=8000,channels=1 ! mulawenc ! rtppcmupay name=pay1",
}


def pipeline_description(args: argparse.Namespace) -> str:
    """The gst-launch description of the camera's media: pay0 is video, pay1 (if any) audio."""
    if args.pattern == "smpte":
        # A moving wall clock, so every frame differs and latency can be read off the picture.
        picture = "videotestsrc name=vsrc is-live=true pattern=smpte ! {caps} ! clockoverlay"
        picture += ' time-format="%H:%M:%S" font-desc="Sans 14" shaded-background=true'
    elif args.pattern == "black":
        picture = "videotestsrc name=vsrc is-live=true pattern=black ! {caps}"
    else:
        # Frozen: the same picture in every frame, as a hung camera sends. Not "smpte": its
        # corner of snow changes every frame (about 4 luma levels mean difference).
        picture = "videotestsrc name=vsrc is-live=true pattern=smpte75 ! {caps}"
    caps = f"video/x-raw,width={args.width},height={args.height},framerate={args.fps}/1"
    kbps = max(100, args.width * args.height * args.fps // 20_000)
    video = (
        picture.format(caps=caps)
        + " ! videoconvert ! video/x-raw,format=I420 ! "
        + VIDEO_ENCODERS[args.video].format(fps=args.fps, kbps=kbps)
    )
    if args.audio == "none":
        return f"( {video} )"
    wave = "silence" if args.silent else "sine freq=440 volume=0.3"
    audio = (
        f"audiotestsrc name=asrc is-live=true wave={wave} samplesperbuffer=400"
        f" ! audioconvert ! audioresample ! {AUDIO_ENCODERS[args.audio]}"
    )
    return f"( {video} {audio} )"


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options of the camera."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/cam")
    parser.add_argument("--video", choices=sorted(VIDEO_ENCODERS), default="h264")
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
    args = parser.parse_args(argv)
    if not args.path.startswith("/"):
        parser.error("--path must start with '/'")
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
