"""Subcommands up, serve, worker, db and with-services for the `grid-mgmt` command."""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from types import FrameType

from grid_mgmt.runner.pg_cluster import FAST_PG_SETTINGS
from grid_mgmt.runner.probe import ServiceError, current_revision, ensure_database, probe_postgres, redact, say
from grid_mgmt.runner.services import ensure_services
from grid_mgmt.runner.up import DEFAULT_APP, UpOptions, api_command, run_up, worker_command
from grid_mgmt.settings import Settings, get_settings

Handler = Callable[[argparse.Namespace], int]


def _reporting_errors(func: Handler) -> Handler:
    """Turn a ServiceError into one clear line and exit code 1 instead of a traceback."""

    @wraps(func)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except ServiceError as exc:
            say(f"error: {exc}")
            return 1

    return wrapper


def _settings(args: argparse.Namespace) -> Settings:
    """The settings from the environment, with --host/--port/--workers applied."""
    overrides = {name: getattr(args, name) for name in ("host", "port", "workers") if getattr(args, name, None)}
    return dataclasses.replace(get_settings(), **overrides)


def _add_server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to bind (default GRID_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default GRID_PORT or 8000)")
    parser.add_argument("--workers", type=int, help="API processes (default GRID_WORKERS or 1)")
    parser.add_argument("--app", default=DEFAULT_APP, help=f"ASGI application factory (default {DEFAULT_APP})")


@_reporting_errors
def cmd_up(args: argparse.Namespace) -> int:
    """Everything in the foreground for a laptop: services, migrations, demo data, API, worker."""
    options = UpOptions(app=args.app, seed=not args.no_seed, worker=not args.no_worker, var_dir=args.var_dir)
    return run_up(_settings(args), options)


def _exec(cmd: list[str]) -> int:
    """Replace this process with `cmd` (signals then reach it directly, e.g. as PID 1 in a container)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(cmd[0], cmd)


def cmd_serve(args: argparse.Namespace) -> int:
    """Only the API (GRID_WORKERS processes), against GRID_DATABASE_URL / GRID_REDIS_URL (used by the container)."""
    settings = _settings(args)
    return _exec(api_command(args.app, settings.host, settings.port, settings.workers))


def cmd_worker(args: argparse.Namespace) -> int:
    """Only one arq worker, against GRID_DATABASE_URL / GRID_REDIS_URL."""
    return _exec(worker_command())


@_reporting_errors
def cmd_db_upgrade(args: argparse.Namespace) -> int:
    """Create the database if missing and migrate it to `--revision` (default head)."""
    url = get_settings().database_url
    deadline = time.monotonic() + args.wait
    while True:
        try:
            info = probe_postgres(url)
            break
        except ServiceError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(1.0)
    if not info.database_exists and ensure_database(url):
        say(f"created the database at {redact(url)}")
    from grid_mgmt.db.migrate import upgrade

    upgrade(url, args.revision)
    print(f"database at revision {current_revision(url)}")
    return 0


@_reporting_errors
def cmd_db_current(args: argparse.Namespace) -> int:
    """Print the database's migration revision and the newest one in the code."""
    from grid_mgmt.db.migrate import head_revision

    url = get_settings().database_url
    print(f"current {current_revision(url) or '(none)'}  head {head_revision()}")
    return 0


@_reporting_errors
def cmd_with_services(args: argparse.Namespace) -> int:
    """Run a command with GRID_DATABASE_URL / GRID_REDIS_URL set; stop what was started for it afterwards."""
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        say("error: with-services needs a command, e.g. grid-mgmt with-services -- pytest")
        return 2
    pg_settings = None if args.durable else FAST_PG_SETTINGS
    with ensure_services(get_settings(), args.var_dir, pg_settings=pg_settings) as services:
        for line in services.describe():
            say(line)
        try:
            process = subprocess.Popen(command, env={**os.environ, **services.env()})
        except OSError as exc:
            say(f"error: cannot run {command[0]}: {exc}")
            return 127

        def forward(signum: int, frame: FrameType | None) -> None:
            process.send_signal(signum)

        # Ctrl-C reaches the child from the terminal; we stay alive to clean up after it.
        previous = {signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN)}
        previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, forward)
        try:
            code = process.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    return code if code >= 0 else 128 - code


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add up, serve, worker, db {upgrade,current} and with-services; each sets func(args) -> exit code."""
    var_help = "directory for the local PostgreSQL cluster and Redis when they must be started (default var)"

    up = subparsers.add_parser("up", help="run everything locally (services, migrations, demo data, API, worker)")
    _add_server_options(up)
    up.add_argument("--no-seed", action="store_true", help="do not load the demo city")
    up.add_argument("--no-worker", action="store_true", help="do not start the arq worker")
    up.add_argument("--var-dir", type=Path, default=Path("var"), help=var_help)
    up.set_defaults(func=cmd_up)

    serve = subparsers.add_parser("serve", help="run only the API (uvicorn)")
    _add_server_options(serve)
    serve.set_defaults(func=cmd_serve)

    worker = subparsers.add_parser("worker", help="run only the arq worker")
    worker.set_defaults(func=cmd_worker)

    db = subparsers.add_parser("db", help="database migrations")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="{upgrade,current}")
    db_upgrade = db_sub.add_parser("upgrade", help="create the database if missing and migrate it")
    db_upgrade.add_argument("--revision", default="head", help="target revision (default head)")
    db_upgrade.add_argument("--wait", type=float, default=0.0, help="seconds to wait for the database to answer")
    db_upgrade.set_defaults(func=cmd_db_upgrade)
    db_current = db_sub.add_parser("current", help="show the database's revision and the newest one")
    db_current.set_defaults(func=cmd_db_current)

    with_services = subparsers.add_parser(
        "with-services",
        help="run a command with GRID_DATABASE_URL/GRID_REDIS_URL set, starting local servers if needed",
        description="Example: grid-mgmt with-services -- pytest -x",
    )
    with_services.add_argument("--var-dir", type=Path, default=Path("var"), help=var_help)
    with_services.add_argument(
        "--durable", action="store_true", help="keep fsync on in a started cluster (off by default: test data)"
    )
    with_services.add_argument("command", nargs=argparse.REMAINDER, help="the command and its arguments")
    with_services.set_defaults(func=cmd_with_services)
