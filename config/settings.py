"""Typed, frozen settings loaded from one TOML file; any unknown key or bad value is refused."""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from config.paths import Paths

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")


class ConfigError(Exception):
    """The configuration file cannot be used; the message names the key and what to fix."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Model):
    """Where the HTTP gateway listens and where data lives."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    data_dir: str = "./var"


class SiteSettings(_Model):
    """How the site shows things to people."""

    # Every time shown to people (pages, feeds, vote lists, downloads' names, the console) is
    # in this IANA time zone; inside, all times are UTC.
    time_zone: str = "Europe/Warsaw"

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as 'Europe/Warsaw'"
            ) from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        """The time zone for display."""
        return ZoneInfo(self.time_zone)


class RecordingSettings(_Model):
    """How capture is cut into segments, scheduled and supervised."""

    segment_seconds: Annotated[float, Field(gt=0, le=30)] = 2.0
    preroll_seconds: Annotated[float, Field(ge=0, le=3600)] = 60.0
    overrun_limit_minutes: Annotated[float, Field(gt=0, le=24 * 60)] = 240.0
    misfire_grace_seconds: Annotated[float, Field(gt=0, le=24 * 3600)] = 3600.0
    stop_timeout_seconds: Annotated[float, Field(gt=0, le=120)] = 10.0
    restart_backoff_initial_seconds: Annotated[float, Field(gt=0, le=60)] = 0.25
    restart_backoff_max_seconds: Annotated[float, Field(gt=0, le=600)] = 1.0
    healthy_reset_seconds: Annotated[float, Field(gt=0, le=3600)] = 30.0
    stall_timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 6.0
    # A closed part (wyłączenie jawności) is recorded for the sealed archive unless this is false:
    # then the cameras stop when it begins and start again when it ends.
    record_closed_parts: bool = True

    @model_validator(mode="after")
    def _backoff_order(self) -> RecordingSettings:
        if self.restart_backoff_max_seconds < self.restart_backoff_initial_seconds:
            raise ValueError(
                "restart_backoff_max_seconds must be at least restart_backoff_initial_seconds"
            )
        return self


class StorageSettings(_Model):
    """Free-space limits for the data directory; recordings are never deleted to make room."""

    warn_free_gb: Annotated[float, Field(ge=0)] = 20.0
    min_free_gb: Annotated[float, Field(ge=0)] = 2.0
    check_every_seconds: Annotated[float, Field(gt=0, le=300)] = 5.0

    @model_validator(mode="after")
    def _order(self) -> StorageSettings:
        if self.warn_free_gb < self.min_free_gb:
            raise ValueError("warn_free_gb must be at least min_free_gb")
        return self


class BackupSettings(_Model):
    """Where `obrady backup` copies the archive, and when the status warns that it is stale."""

    # A local folder, or any rclone remote ("name:path" from rclone.conf, or a connection
    # string such as ":sftp,host=backup.example,user=obrady:/srv/obrady"). None: no default,
    # `obrady backup --to` must name one.
    destination: str | None = None
    # Database snapshots kept in the backup (the media are never deleted from it).
    keep_databases: Annotated[int, Field(ge=1, le=10000)] = 30
    # The status, /metrics and the console warn when the last good backup is older than this
    # (a day, and an hour for the nightly run itself).
    warn_after_hours: Annotated[float, Field(gt=0, le=24 * 365)] = 25.0


class MonitoringSettings(_Model):
    """When a source that still delivers packets counts as frozen or silent."""

    frozen_after_seconds: Annotated[float, Field(gt=0, le=3600)] = 6.0
    frozen_difference: Annotated[float, Field(ge=0, le=255)] = 0.5
    silent_below_db: Annotated[float, Field(le=0, ge=-200)] = -50.0
    silent_after_seconds: Annotated[float, Field(gt=0, le=3600)] = 6.0
    # A stretch of video or audio missing from the recording longer than this is listed in the
    # session's continuity, and the recording is not complete.
    hole_threshold_seconds: Annotated[float, Field(gt=0, le=60)] = 0.5
    # The off-air monitor: obrady plays each chamber's public live URL as a viewer would (libvlc)
    # and reports when what the public receives is not playing, frozen, black or silent.
    offair: bool = True


class LiveSettings(_Model):
    """The public live playlist."""

    playlist_segments: Annotated[int, Field(ge=3, le=60)] = 15
    # Low-Latency HLS: the live segment is also published in parts of at most this length.
    part_target_seconds: Annotated[float, Field(ge=0.1, le=1.0)] = 0.2
    gateway_port: Annotated[int, Field(ge=0, le=65535)] = 0
    # How many gateway processes share gateway_port (each uses up to a core).
    gateway_processes: Annotated[int, Field(ge=1, le=16)] = 1
    # `obrady serve` starts the gateway itself and restarts it when it exits. false: the gateway
    # runs as a service of its own (`obrady gateway`, the Debian package's obrady-gateway unit),
    # so viewers keep the live URL while the control service restarts.
    run_gateway: bool = True
    break_slate: bool = True
    # The address residents use (e.g. "https://transmisja.example.pl", through the cache): the
    # off-air monitor watches the live stream there (default: this machine's own gateway), and
    # feeds, embed codes and oEmbed take absolute addresses from it, never from the Host header
    # (unset: relative addresses, no oEmbed).
    public_url: Annotated[str | None, Field(pattern=r"^https?://[^\s/]+(/[^\s]*)?$")] = None
    # From this many minutes before a session's scheduled start the live URL shows "Transmisja
    # rozpocznie się o godz. 10.00" (0: nothing before the start).
    announce_minutes: Annotated[int, Field(ge=0, le=24 * 60)] = 30

    @model_validator(mode="after")
    def _gateway_processes_need_serve(self) -> LiveSettings:
        if not self.run_gateway and self.gateway_processes > 1:
            raise ValueError(
                "gateway_processes > 1 needs run_gateway = true (`obrady serve` starts the "
                "copies); a gateway run as a service of its own is one process"
            )
        return self


class ConsoleSettings(_Model):
    """The operator console: how long a login lasts, its cookie, and the council's term."""

    login_hours: Annotated[float, Field(gt=0, le=24 * 14)] = 12.0
    # "auto": the cookie is Secure when the request came over HTTPS (directly, or through a
    # proxy that says X-Forwarded-Proto: https); true/false force it.
    secure_cookies: Literal["auto", "true", "false"] = "auto"
    # The council's term of office (kadencja) whose councillors the console lists and votes use.
    term: Annotated[str, Field(min_length=1, max_length=40)] = "2024-2029"
    # Failed sign-ins for one user name within 15 minutes before it must wait.
    max_failed_logins: Annotated[int, Field(ge=1, le=1000)] = 10
    # Failed sign-ins (any names) from one client address within 15 minutes before it must wait.
    max_failed_logins_per_address: Annotated[int, Field(ge=1, le=10_000)] = 30
    # Password checks (argon2, 64 MiB each) running at once; as many again times four may wait,
    # more get 429 with Retry-After. Bounds what anonymous requests can make the process hold.
    password_checks_at_once: Annotated[int, Field(ge=1, le=16)] = 2


class PreflightSettings(_Model):
    """The operator's checks before a session: camera previews, audio meters, test recordings."""

    # A camera's pre-flight ffmpeg stops after this long without a request from the console.
    idle_seconds: Annotated[float, Field(gt=0, le=3600)] = 30.0
    preview_every_seconds: Annotated[float, Field(ge=0.5, le=60)] = 2.0
    preview_width: Annotated[int, Field(ge=160, le=1920)] = 640
    meter_every_seconds: Annotated[float, Field(ge=0.05, le=2)] = 0.2
    # Test recordings kept per chamber (the oldest is deleted when a new one starts).
    keep_test_recordings: Annotated[int, Field(ge=1, le=100)] = 10


class ExportSettings(_Model):
    """MP4 downloads, remuxed in the background below capture and the live edge."""

    # At most this many exports' ffmpeg at once; the rest wait in line.
    max_running: Annotated[int, Field(ge=1, le=16)] = 2


class TranscriptionSettings(_Model):
    """Captions and transcripts: the Whisper model (a CTranslate2 folder, never downloaded) and
    how much of the machine recognition may take."""

    # No model folder: recordings are not transcribed (everything else works as before).
    model_dir: str | None = None
    language: Annotated[str, Field(pattern=r"^[a-z]{2,3}$")] = "pl"
    cpu_threads: Annotated[int, Field(ge=1, le=64)] = 2
    compute_type: Literal["int8", "int8_float32", "float32", "int16"] = "int8"
    beam_size: Annotated[int, Field(ge=1, le=10)] = 5
    # Whisper's retries at higher temperatures when a window's text looks wrong: the full list
    # recognises best; [0.0, 0.5] is about 40% faster (bench/wer.py; README figures).
    temperatures: Annotated[
        list[Annotated[float, Field(ge=0, le=1)]], Field(min_length=1, max_length=10)
    ] = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    # Added to the recognition thread's nice value (and its decoding ffmpeg's): on a busy machine
    # captions lag first, before downloads (recorder/priority.py, CAPTIONS).
    nice: Annotated[int, Field(ge=0, le=19)] = 19
    vad: bool = True
    max_stretch_seconds: Annotated[float, Field(ge=30, le=3600)] = 600.0
    # Live captions: while a session runs, its newest sound is recognised in windows of about
    # this many seconds and shown on the live page, labelled automatic. When recognition falls
    # further behind than live_max_lag_seconds it skips to the newest sound (the gap is filled
    # by the recognition after the session).
    live: bool = True
    live_window_seconds: Annotated[float, Field(ge=5, le=120)] = 15.0
    live_max_lag_seconds: Annotated[float, Field(ge=30, le=3600)] = 90.0
    # After a session with live captions only the rest is recognised, so the transcript is
    # whole minutes after the end; then the whole recording is heard again, which recognises
    # better than windows of a running session (bench/wer.py --live-window), replacing the
    # automatic lines (never the corrected ones).
    refine_after_live: bool = True

    @model_validator(mode="after")
    def _lag_above_window(self) -> TranscriptionSettings:
        if self.live_max_lag_seconds < 2 * self.live_window_seconds:
            raise ValueError(
                f"live_max_lag_seconds ({self.live_max_lag_seconds:g}) must be at least twice "
                f"live_window_seconds ({self.live_window_seconds:g})"
            )
        return self

    @property
    def model_path(self) -> Path | None:
        """The model folder as an absolute path, or None when transcription is off."""
        if self.model_dir is None:
            return None
        return Path(self.model_dir).expanduser().resolve()


# libx264's presets, fastest first: each step costs more CPU for a smaller file at the same
# crf (bench/transcode.py measures three of them).
X264Preset = Literal[
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"
]


class TranscodingSettings(_Model):
    """How a camera that browsers cannot play (H.265) is re-encoded to H.264, and at what bitrate
    any converted audio is made: quality, a bitrate cap, the CPU it may take (the preset) and
    the largest picture and frame rate kept. Keyframes follow recording.segment_seconds."""

    # x264's speed/size trade; faster presets keep real time on a smaller CPU (bench/transcode.py).
    preset: X264Preset = "veryfast"
    # Constant quality (x264 CRF: lower is better and bigger; 23 is x264's own default)...
    crf: Annotated[float, Field(ge=0, le=51)] = 23
    # ...never above this bitrate (kilobits per second), measured over buffer_seconds.
    max_kbps: Annotated[int, Field(ge=100, le=50_000)] = 3000
    buffer_seconds: Annotated[float, Field(ge=0.1, le=10)] = 1.0
    # A taller picture is scaled down to this height (aspect kept); a smaller one is kept.
    max_height: Annotated[int, Field(ge=144, le=2160)] = 1080
    # Constant output frame rate: a faster camera's extra frames are dropped, a slower one's
    # repeated, so the encoder has the same work every second.
    fps: Annotated[int, Field(ge=1, le=60)] = 25
    # Audio converted to AAC (G.711 cameras, the chamber's own sound).
    audio_kbps: Annotated[int, Field(ge=32, le=320)] = 128

    @field_validator("max_kbps", "audio_kbps", mode="before")
    @classmethod
    def _whole_kbps(cls, value: object) -> object:
        if isinstance(value, str):
            raise ValueError(
                f"give kilobits per second as a whole number without units, e.g. 2500 for "
                f"2.5 Mbit/s (got {value!r})"
            )
        return value


def _with_default_transcoding(raw: dict[str, object]) -> dict[str, object]:
    """The raw settings with each RTSP camera's [transcoding] filled in key by key from the
    top-level [transcoding] (a camera's own keys win); unchanged if that section is invalid,
    so its error is reported once, under its own name."""
    default = raw.get("transcoding", {})
    if not isinstance(default, dict) or not default:
        return raw
    try:
        TranscodingSettings.model_validate(default)
    except ValidationError:
        return raw

    def fill(source: object) -> object:
        if not isinstance(source, dict) or source.get("kind") != "rtsp":
            return source
        own = source.get("transcoding", {})
        if not isinstance(own, dict):
            return source
        return {**source, "transcoding": {**default, **own}}

    chambers = raw.get("chambers")
    if not isinstance(chambers, list):
        return raw
    filled = []
    for chamber in chambers:
        if isinstance(chamber, dict):
            chamber = dict(chamber)
            if "source" in chamber:
                chamber["source"] = fill(chamber["source"])
            cameras = chamber.get("cameras")
            if isinstance(cameras, list):
                chamber["cameras"] = [
                    {**c, "source": fill(c["source"])}
                    if isinstance(c, dict) and "source" in c
                    else c
                    for c in cameras
                ]
        filled.append(chamber)
    return {**raw, "chambers": filled}


class SyntheticSource(_Model):
    """A simulated chamber: a test picture with a burned-in clock and a tone, made by ffmpeg."""

    kind: Literal["synthetic"]
    width: Annotated[int, Field(ge=64, le=3840)] = 1280
    height: Annotated[int, Field(ge=64, le=2160)] = 720
    fps: Annotated[int, Field(ge=1, le=60)] = 25
    tone_hz: Annotated[int, Field(ge=20, le=20000)] = 440
    label: str = "obrady demo"
    # Stamp the wall-clock milliseconds into each frame as a row of black and white squares,
    # for latency measurement (bench/glass.py reads them back in the browser).
    clock_code: bool = False
    # A sound file (WAV, MP3, ...) played in a loop instead of the tone: a simulated chamber
    # where someone speaks (the captions tests use Polish speech from espeak-ng).
    sound_file: str | None = None

    @field_validator("sound_file")
    @classmethod
    def _sound_file_exists(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).expanduser().is_file():
            raise ValueError(f"sound_file {value!r} is not a file: give the path of a sound file")
        return value

    @model_validator(mode="after")
    def _clock_code_fits(self) -> SyntheticSource:
        # 39 squares' room (37 and a margin each side) of at least 8 px: recorder/ffmpeg.py.
        if self.clock_code and self.width < 312:
            raise ValueError("clock_code needs a width of at least 312 (37 squares of 8 px)")
        return self


class RtspSource(_Model):
    """An IP camera (or encoder) pulled over RTSP; H.264 video is copied, not re-encoded."""

    kind: Literal["rtsp"]
    url: str
    transport: Literal["tcp", "udp"] = "tcp"
    video: Literal["auto", "copy", "h264"] = "auto"
    audio: Literal["auto", "copy", "aac", "none"] = "auto"
    timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 5.0
    # How this camera is re-encoded when it is (video = "h264", or "auto" finding H.265): the
    # top-level [transcoding], with any key given here taking its place.
    transcoding: TranscodingSettings = TranscodingSettings()

    @field_validator("url")
    @classmethod
    def _rtsp_url(cls, value: str) -> str:
        if not re.match(r"^rtsps?://[^\s/]+", value):
            raise ValueError(
                "must be an rtsp:// or rtsps:// URL, e.g. rtsp://10.0.0.20:554/stream1"
            )
        return value


Source = Annotated[SyntheticSource | RtspSource, Field(discriminator="kind")]


def _check_slug(value: str) -> str:
    if not SLUG.match(value):
        raise ValueError(
            "must be a short slug of lowercase letters, digits and '-', e.g. 'sala-obrad'"
        )
    return value


class RtspAudio(_Model):
    """Chamber audio from the microphone system's own network stream (its audio track is used)."""

    kind: Literal["rtsp"]
    url: str
    transport: Literal["tcp", "udp"] = "tcp"
    timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 5.0
    # Opened and encoded once for every RTSP camera of the chamber (recorder/audiohub.py);
    # false: each camera's ffmpeg opens it and encodes it itself.
    shared: bool = True

    _url = field_validator("url")(RtspSource._rtsp_url.__func__)  # type: ignore[attr-defined]


class AlsaAudio(_Model):
    """Chamber audio from a line input of this machine (ALSA device, e.g. "hw:1,0")."""

    kind: Literal["alsa"]
    device: str
    channels: Annotated[int, Field(ge=1, le=8)] = 2
    sample_rate: Annotated[int, Field(ge=8000, le=192000)] = 48000
    # Opened once (only one process may open a hw: device) and encoded once for every RTSP
    # camera of the chamber (recorder/audiohub.py); false: each camera's ffmpeg opens it.
    shared: bool = True


AudioSource = Annotated[RtspAudio | AlsaAudio, Field(discriminator="kind")]


class PushDestination(_Model):
    """An external platform the chamber's program is pushed to (the city's YouTube channel)."""

    name: str
    url: str

    @field_validator("url")
    @classmethod
    def _rtmp_url(cls, value: str) -> str:
        if not re.match(r"^rtmps?://[^\s/]+/\S+", value):
            raise ValueError(
                "must be an rtmp:// or rtmps:// URL with its path and stream key, "
                "e.g. rtmp://a.rtmp.youtube.com/live2/xxxx-xxxx"
            )
        return value


class CameraSettings(_Model):
    """One camera of a chamber; every camera is recorded on its own."""

    id: str
    name: str = ""
    source: Source

    _slug = field_validator("id")(_check_slug)


class ChamberSettings(_Model):
    """One room that is recorded: its cameras (or one source), its program camera, its audio."""

    id: str
    name: str
    source: Source | None = None
    cameras: list[CameraSettings] = []
    program: str | None = None
    audio: AudioSource | None = None
    push: list[PushDestination] = []

    _slug = field_validator("id")(_check_slug)

    @model_validator(mode="after")
    def _cameras(self) -> ChamberSettings:
        if (self.source is None) == (not self.cameras):
            raise ValueError(
                "give either [chambers.source] (one camera) or [[chambers.cameras]] (several)"
            )
        ids = [camera.id for camera in self.camera_list]
        if len(set(ids)) != len(ids):
            raise ValueError(f"camera ids must be unique in a chamber, got {ids}")
        if self.program is not None and self.program not in ids:
            raise ValueError(f"program {self.program!r} is not one of the cameras {ids}")
        own = [c.id for c in self.camera_list if not isinstance(c.source, RtspSource)]
        if not (isinstance(self.audio, AlsaAudio) and self.audio.shared):
            own = ids  # without the audio hub every camera's capture opens the chamber audio
        if (
            isinstance(self.audio, AlsaAudio)
            and len(ids) > 1
            and own
            and re.match(r"^(plug)?hw:", self.audio.device)
        ):
            # Only RTSP cameras share the chamber sound's hub (recorder/audiohub.py), which alone
            # opens the device; any other camera opens it itself, and a hardware device opens
            # once.
            raise ValueError(
                f"audio device {self.audio.device!r} can be opened by one capture only, and in "
                f"this chamber cameras {own} open it themselves (only RTSP cameras share the "
                "chamber sound, with audio.shared = true): make them RTSP cameras, or define an "
                "ALSA dsnoop device over it (e.g. 'chamber_mics' in /etc/asound.conf) and name "
                "that, or use a network audio stream"
            )
        return self

    @property
    def camera_list(self) -> list[CameraSettings]:
        """The chamber's cameras; a single [chambers.source] is the camera "main"."""
        if self.source is not None:
            return [CameraSettings(id="main", name=self.name, source=self.source)]
        return list(self.cameras)

    @property
    def default_program(self) -> str:
        """The camera that goes live until an operator switches."""
        return self.program or self.camera_list[0].id

    def camera(self, camera_id: str) -> CameraSettings:
        """The camera with this id; KeyError if there is none."""
        for camera in self.camera_list:
            if camera.id == camera_id:
                return camera
        raise KeyError(camera_id)


class DemoSession(_Model):
    """A session the demo schedules at start-up so a newcomer sees the system work."""

    title: str = "Sesja demonstracyjna"
    start_in_seconds: Annotated[float, Field(ge=0, le=3600)] = 5.0
    duration_minutes: Annotated[float, Field(gt=0, le=24 * 60)] = 30.0
    advance_item_every_seconds: Annotated[float, Field(ge=0, le=3600)] = 30.0
    agenda_text: str


class DemoSettings(_Model):
    """What the demo does by itself: an operator account and a scheduled session."""

    operator_name: str = "operator"
    operator_password: str = "demo"
    session: DemoSession | None = None


class Settings(_Model):
    """The whole configuration of one obrady instance."""

    server: ServerSettings = ServerSettings()
    site: SiteSettings = SiteSettings()
    recording: RecordingSettings = RecordingSettings()
    live: LiveSettings = LiveSettings()
    storage: StorageSettings = StorageSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    console: ConsoleSettings = ConsoleSettings()
    preflight: PreflightSettings = PreflightSettings()
    exports: ExportSettings = ExportSettings()
    transcription: TranscriptionSettings = TranscriptionSettings()
    transcoding: TranscodingSettings = TranscodingSettings()
    backup: BackupSettings = BackupSettings()
    chambers: Annotated[list[ChamberSettings], Field(min_length=1)]
    demo: DemoSettings | None = None

    @model_validator(mode="before")
    @classmethod
    def _camera_transcoding(cls, raw: object) -> object:
        return _with_default_transcoding(raw) if isinstance(raw, dict) else raw

    @model_validator(mode="after")
    def _unique_chambers(self) -> Settings:
        seen: set[str] = set()
        for chamber in self.chambers:
            if chamber.id in seen:
                raise ValueError(f"chamber id {chamber.id!r} is used twice; ids must be unique")
            seen.add(chamber.id)
        return self

    def chamber(self, chamber_id: str) -> ChamberSettings:
        """The chamber with this id; KeyError if there is none."""
        for chamber in self.chambers:
            if chamber.id == chamber_id:
                return chamber
        raise KeyError(chamber_id)

    @property
    def data_path(self) -> Path:
        """The data directory as an absolute path."""
        return Path(self.server.data_dir).expanduser().resolve()

    @property
    def paths(self) -> Paths:
        """The named folders and files under the data directory."""
        return Paths(self.data_path)


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        loc = ".".join(str(part) for part in item["loc"] if part not in ("synthetic", "rtsp"))
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key (check its spelling; config/example.toml lists every key)"
        elif item["type"] == "missing":
            message = "required key is missing"
        elif message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        lines.append(f"{loc or '(top level)'}: {message}")
    return "\n".join(lines)


def parse_settings(text: str, source: str = "<config>") -> Settings:
    """Validate TOML text into Settings, or raise ConfigError naming each bad key."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{source}: invalid configuration:\n{_describe(exc)}") from None


def demo_config_text() -> str:
    """The embedded demo configuration, config/demo.toml."""
    return resources.files("config").joinpath("demo.toml").read_text(encoding="utf-8")


def load_settings(path: str | Path | None = None) -> Settings:
    """Load settings from a TOML file, or the embedded demo configuration when path is None."""
    if path is None:
        return parse_settings(demo_config_text(), "config/demo.toml")
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{file}: configuration file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read configuration: {exc}") from None
    return parse_settings(text, str(file))
