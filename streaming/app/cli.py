"""The `obrady` command: serve, gateway, check-config, verify, backup, restore, user add."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import pwd
import sys

from pydantic import ValidationError

from archive.db import ArchiveError
from archive.index import ArchiveIndex, Conflict
from config.settings import ConfigError, Settings, load_settings
from recorder import redact

log = logging.getLogger("obrady")


def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="TOML configuration (default: the embedded demo, config/demo.toml)",
    )
    parser.add_argument("--data-dir", metavar="DIR", help="override server.data_dir")


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="obrady", description="Records and transmits city council sessions."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the service (capture, scheduler, gateway)")
    _add_config(serve)
    serve.add_argument("--host", help="override server.host")
    serve.add_argument("--port", type=int, help="override server.port")

    gateway = sub.add_parser(
        "gateway", help="serve only the viewers' side (HLS, pages); `serve` starts it itself"
    )
    _add_config(gateway)
    gateway.add_argument("--host", help="override server.host")
    gateway.add_argument("--port", type=int, help="override live.gateway_port")

    check = sub.add_parser("check-config", help="validate a configuration file and exit")
    check.add_argument("file", nargs="?", metavar="FILE")
    _add_config(check)

    verify = sub.add_parser("verify", help="check recorded files against their SHA-256 manifests")
    which = verify.add_mutually_exclusive_group(required=True)
    which.add_argument("session", type=int, nargs="?", metavar="SESSION")
    which.add_argument("--all", action="store_true", help="every session, and the database")
    _add_config(verify)

    back = sub.add_parser(
        "backup", help="copy what is new in the archive to a folder or an rclone remote"
    )
    back.add_argument(
        "--to",
        metavar="DEST",
        help="a folder, or an rclone remote such as 'name:path' (default: backup.destination)",
    )
    _add_config(back)

    restore = sub.add_parser(
        "restore", help="rebuild the archive in an empty data folder from a backup"
    )
    restore.add_argument("source", metavar="SOURCE", help="the backup's folder or rclone remote")
    _add_config(restore)

    index = sub.add_parser("index", help="the archive's index (its database)")
    index_sub = index.add_subparsers(dest="index_command", required=True)
    rebuild = index_sub.add_parser(
        "rebuild", help="make a lost database again from the media folders and their records"
    )
    _add_config(rebuild)

    user = sub.add_parser("user", help="manage accounts")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    add = user_sub.add_parser("add", help="create an account")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=["operator", "staff", "admin"])
    add.add_argument(
        "--password-stdin",
        action="store_true",
        required=True,
        help="read the password from standard input (first line)",
    )
    _add_config(add)
    return parser


def _settings(args: argparse.Namespace, config: str | None) -> Settings:
    settings = load_settings(config)
    overrides: dict[str, object] = {}
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = args.data_dir
    if getattr(args, "host", None):
        overrides["host"] = args.host
    if getattr(args, "port", None) is not None:
        overrides["port"] = args.port
    if overrides:
        try:
            server = settings.server.model_validate({**settings.server.model_dump(), **overrides})
        except ValidationError as exc:
            problems = "; ".join(
                f"--{'-'.join(str(p) for p in e['loc']).replace('_', '-')}: {e['msg']}"
                for e in exc.errors()
            )
            raise ConfigError(f"bad command-line option: {problems}") from None
        settings = settings.model_copy(update={"server": server})
    _refuse_root_in_a_users_data(settings, args)
    return settings


def _refuse_root_in_a_users_data(settings: Settings, args: argparse.Namespace) -> None:
    """root working in a data folder that belongs to a user (the Debian package's obrady)
    would leave files that user's services cannot open."""
    data = settings.data_path
    if os.geteuid() != 0 or not data.is_dir() or (uid := data.stat().st_uid) == 0:
        return
    try:
        owner = pwd.getpwuid(uid).pw_name
    except KeyError:
        owner = str(uid)
    raise ConfigError(
        f"{data} belongs to the user {owner}: run this as that user "
        f"(runuser -u {owner} -- obrady {args.command} ...), so that what obrady writes there "
        "stays readable by its services"
    )


def _banner(settings: Settings, config: str | None) -> str:
    base = f"http://{settings.server.host}:{settings.server.port}"
    lines = [
        "",
        f"obrady is running ({config or 'embedded demo: config/demo.toml'})",
        f"  data:         {settings.data_path}",
        f"  home:         {base}/",
        f"  live page:    {base}/live",
        f"  live HLS:     {base}/live/index.m3u8   (e.g. open it in VLC)",
        *(
            [
                f"  viewers:      http://{settings.server.host}:{settings.live.gateway_port}/live"
                "   (the separate viewers' gateway)"
            ]
            if settings.live.gateway_port
            else []
        ),
        f"  API:          {base}/api/v1/sessions   (OpenAPI: {base}/api/v1/openapi.json)",
    ]
    if settings.demo is not None:
        d = settings.demo
        lines += [
            f"  operator:     user {d.operator_name!r}, password {d.operator_password!r}"
            " (HTTP Basic)",
            f"                e.g. curl -u {d.operator_name}:{d.operator_password} -X POST "
            f"{base}/api/v1/sessions/1/stop",
        ]
        if d.session is not None:
            lines.append(
                f"  demo session: starts {d.session.start_in_seconds:g} s after start-up; "
                f"agenda items advance every {d.session.advance_item_every_seconds:g} s"
            )
    lines.append("Stop with Ctrl-C (recording sessions resume at the next start).")
    return "\n".join(lines)


def serve(args: argparse.Namespace) -> int:
    """Run the service until interrupted."""
    from streaming.app.service import create_app
    from streaming.app.sites import serve_service

    settings = _settings(args, args.config)
    app = create_app(settings)

    def started() -> None:
        print(_banner(settings, args.config), flush=True)

    # Not web.run_app: its site would answer aiohttp's own refusals in plain text.
    asyncio.run(serve_service(app, settings.server.host, settings.server.port, started))
    return 0


def gateway(args: argparse.Namespace) -> int:
    """Run the viewers' gateway until interrupted."""
    from streaming.app.gateway import run_gateway
    from streaming.services.gateway_process import SETTINGS_ENV

    raw = os.environ.get(SETTINGS_ENV)
    if raw:
        settings = Settings.model_validate_json(raw)
    else:
        settings = _settings(
            argparse.Namespace(data_dir=args.data_dir, host=args.host), args.config
        )
    port = args.port or settings.live.gateway_port
    if not port:
        print("obrady: set live.gateway_port or --port for the gateway", file=sys.stderr)
        return 2
    # The live routes' fast path in front of aiohttp, on uvloop (streaming/hls/fast.py).
    run_gateway(
        settings, settings.server.host, port, reuse_port=settings.live.gateway_processes > 1
    )
    return 0


def check_config(args: argparse.Namespace) -> int:
    """Validate a configuration and print what it sets up."""
    path = args.file or args.config
    settings = load_settings(path)
    chambers = ", ".join(
        f"{c.id} (cameras: {', '.join(f'{cam.id}={cam.source.kind}' for cam in c.camera_list)})"
        for c in settings.chambers
    )
    print(f"{path or 'config/demo.toml'}: OK; chambers: {chambers}; data: {settings.data_path}")
    return 0


def user_add(args: argparse.Namespace) -> int:
    """Create an account with a password read from standard input."""
    from streaming.auth.passwords import hash_password

    settings = _settings(args, args.config)
    password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < 8:
        print("obrady: the password must have at least 8 characters", file=sys.stderr)
        return 2
    index = ArchiveIndex(settings.paths.database)
    try:
        index.add_user(args.name, args.role, hash_password(password))
    except Conflict as exc:
        print(f"obrady: {exc}", file=sys.stderr)
        return 1
    finally:
        index.close()
    print(f"user {args.name!r} added with role {args.role}")
    return 0


def _verify_session(settings: Settings, index: ArchiveIndex, session_id: int) -> bool:
    """Re-hash every segment of a session against the index and the manifest; print what
    was found; True when all match."""
    from archive.integrity import verify_files

    session = index.get_session(session_id)
    indexed = {s.rel_path: s.sha256 for s in index.all_segments(session.id)}
    session_dir = settings.paths.session_media(session.chamber, session.id)
    report = verify_files(session_dir, indexed)
    for problem in report.problems:
        print(f"session {session.id}: {problem}", file=sys.stderr)
    if not indexed and report.ok:
        print(f"session {session.id}: no recorded segments to verify")
        return True
    if report.ok:
        print(f"session {session.id}: OK, {report.checked} segment(s) match the manifest")
        return True
    print(
        f"session {session.id}: {len(report.problems)} problem(s) in {len(indexed)} segment(s)",
        file=sys.stderr,
    )
    return False


def verify(args: argparse.Namespace) -> int:
    """Re-hash the segments of one session (or, with --all, of every session, after checking
    the database itself); exit 1 on any missing or changed file."""
    settings = _settings(args, args.config)
    if not settings.paths.database.is_file():
        print(f"obrady: no archive database at {settings.paths.database}", file=sys.stderr)
        return 1
    index = ArchiveIndex(settings.paths.database)
    try:
        if not args.all:
            return 0 if _verify_session(settings, index, args.session) else 1
        result = index.integrity_check()
        if result != "ok":
            print(f"database: integrity check failed: {result}", file=sys.stderr)
        else:
            print("database: OK (SQLite integrity check)")
        ids = index.session_ids()
        bad = [sid for sid in ids if not _verify_session(settings, index, sid)]
    finally:
        index.close()
    if bad or result != "ok":
        print(
            f"{len(bad)} of {len(ids)} session(s) have problems"
            + ("" if result == "ok" else "; the database is damaged"),
            file=sys.stderr,
        )
        return 1
    print(f"all {len(ids)} session(s) verified")
    return 0


def backup(args: argparse.Namespace) -> int:
    """Copy what is new in the archive (database snapshot, media, manifests)."""
    from streaming.services.backup import backup as run_backup

    settings = _settings(args, args.config)
    report = run_backup(settings, args.to)
    print(
        f"backup to {report.destination}: done in {report.seconds:.1f} s; "
        f"{report.files_copied} file(s), {report.bytes_copied} byte(s) copied; "
        f"{report.segments} segment(s) in the backup; database {report.database}"
    )
    return 0


def restore(args: argparse.Namespace) -> int:
    """Rebuild the archive from a backup into an empty data folder."""
    from streaming.services.backup import restore as run_restore

    settings = _settings(args, args.config)
    report = run_restore(settings, args.source)
    print(
        f"restored {report.sessions} session(s) and {report.segments} segment(s) into "
        f"{settings.data_path} from {report.source} (database {report.database}) in "
        f"{report.seconds:.1f} s"
    )
    if report.recovered_segments:
        print(
            f"  {report.recovered_segments} segment(s) finished after the database snapshot "
            "were indexed from the media"
        )
    for session_id in report.live_sessions:
        print(
            f"  session {session_id} was recording when the backup was made: it resumes when "
            "obrady starts; stop it in the console if it has ended"
        )
    config = f" --config {args.config}" if args.config else ""
    print(f"Check it with: obrady verify --all{config} --data-dir {settings.data_path}")
    return 0


def index_rebuild(args: argparse.Namespace) -> int:
    """Rebuild a lost database from the media folders."""
    from streaming.services.records import rebuild_index

    settings = _settings(args, args.config)
    report = rebuild_index(settings)
    print(
        f"rebuilt {settings.paths.database}: {report.sessions} session(s) "
        f"({report.from_records} from their records), {report.segments} segment(s), "
        f"{report.sound_holes} sound hole(s) in {report.seconds:.1f} s"
    )
    if report.without_record:
        ids = ", ".join(map(str, report.without_record))
        print(
            f"  no record beside the media of session(s) {ids}: rebuilt from the media alone "
            "(title from the folder, no agenda, votes or transcript)"
        )
    print(
        "  accounts are not kept beside the media: create them again with `obrady user add`;"
        " the media checks run again when obrady starts"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `obrady` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    redact.install()  # no camera password or stream key in the log
    # APScheduler logs every job run at INFO; obrady logs what matters itself.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    try:
        if args.command == "serve":
            return serve(args)
        if args.command == "gateway":
            return gateway(args)
        if args.command == "check-config":
            return check_config(args)
        if args.command == "verify":
            return verify(args)
        if args.command == "backup":
            return backup(args)
        if args.command == "restore":
            return restore(args)
        if args.command == "index" and args.index_command == "rebuild":
            return index_rebuild(args)
        if args.command == "user" and args.user_command == "add":
            return user_add(args)
    except ConfigError as exc:
        print(f"obrady: {exc}", file=sys.stderr)
        return 2
    except ArchiveError as exc:
        print(f"obrady: {exc}", file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
