"""`grid-mgmt up`: services, migrations, demo data, then the API and one worker until Ctrl-C."""

from __future__ import annotations

import importlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from grid_mgmt.runner import balance
from grid_mgmt.runner.probe import ServiceError, say, tcp_reachable
from grid_mgmt.runner.proc import Child, spawn, stop_children
from grid_mgmt.runner.services import Services, ensure_services
from grid_mgmt.settings import Settings

DEFAULT_APP = "grid_mgmt.app:create_app"
"""The ASGI application factory uvicorn serves."""

WORKER_SETTINGS = "workers.settings.WorkerSettings"
"""The arq worker settings class."""

DEMO_LOGINS = (
    "admin",
    "dispatcher1",
    "acceptor1",
    "supervisor1",
    "leader1",
    "worker1",
    "worker2",
    "unit-<code> (one per handling unit)",
)
"""Shown when seeds.cli.demo_logins() is not available; every demo password is `demo`."""

READY_TIMEOUT = 60.0
"""Seconds the API gets to accept connections before `up` prints its banner anyway."""


class Stop(BaseException):
    """SIGINT or SIGTERM arrived: wind down and exit 0 (a BaseException, so `except Exception` cannot eat it)."""


@dataclass(frozen=True, slots=True)
class UpOptions:
    """What `grid-mgmt up` runs and where."""

    app: str = DEFAULT_APP
    seed: bool = True
    worker: bool = True
    var_dir: Path = Path("var")


def api_command(app: str, host: str, port: int, workers: int) -> list[str]:
    """The command line serving the application factory `app`: uvicorn itself for one process; for several, our
    supervisor dealing connections to them (runner/balance.py), where the platform allows it."""
    if workers > 1 and balance.supported():
        return balance.command(app, host, port, workers)
    cmd = [sys.executable, "-m", "uvicorn", app, "--factory", "--host", host, "--port", str(port)]
    return [*cmd, "--workers", str(max(1, workers))]


def worker_command() -> list[str]:
    """The arq command line running one worker."""
    return [sys.executable, "-m", "arq", WORKER_SETTINGS]


def module_available(target: str) -> bool:
    """Whether the module of `module.path:attr` (or a module path) can be found without importing it."""
    try:
        return importlib.util.find_spec(target.split(":", 1)[0]) is not None
    except (ImportError, ValueError):
        return False


def demo_logins() -> list[tuple[str, ...]]:
    """Demo logins (all with password `demo`) as rows (username, role, what for, …) from seeds.cli.demo_logins().

    Falls back to the fixed list of usernames when the seeds package does not offer it.
    """
    try:
        # imported by name: grid_mgmt must not depend on seeds (import-linter), the list is optional here
        module = importlib.import_module("seeds.cli")
        found: Any = module.demo_logins()
        items = found.items() if isinstance(found, dict) else found
        return [_login_row(item) for item in items]
    except Exception:
        return [(name,) for name in DEMO_LOGINS]


def _login_row(item: Any) -> tuple[str, ...]:
    if isinstance(item, str):
        return (item,)
    if isinstance(item, Iterable):
        return tuple(str(part) for part in item)
    return (str(item),)


def seed_if_empty(services: Services) -> None:
    """Run `python -m grid_mgmt.cli seed --if-empty`; warn and go on when that command does not exist yet."""
    if not module_available("grid_mgmt.cli") or not module_available("seeds.cli"):
        say("warning: no seed command yet (grid_mgmt.cli / seeds.cli missing); starting without demo data")
        return
    say("loading the demo city if the database is empty")
    cmd = [sys.executable, "-m", "grid_mgmt.cli", "seed", "--if-empty"]
    env = {**os.environ, **services.env()}
    process = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    errors: list[str] = []
    try:
        for line in process.stderr:
            sys.stderr.write(line)
            errors.append(line)
        code = process.wait()
    finally:
        if process.poll() is None:  # interrupted by Stop: do not leave the seeding behind
            process.terminate()
            process.wait()
        process.stderr.close()
    if code == 2 and any("invalid choice" in line for line in errors):
        say("warning: `grid-mgmt seed` is not registered yet; starting without demo data")
    elif code != 0:
        raise ServiceError(f"seeding failed (exit {code})")


class _Signals:
    """SIGINT/SIGTERM handling for `up`: the first signal raises Stop and is remembered.

    Some libraries swallow exceptions raised while they run (even BaseException), so every phase boundary
    and every wait loop also calls `check()`; once clean-up has begun, signals are only remembered.
    """

    def __init__(self) -> None:
        self.received: str | None = None
        self.cleaning_up = False
        self.previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        first = self.received is None
        self.received = self.received or signal.Signals(signum).name
        if first and not self.cleaning_up:
            raise Stop(self.received)

    def check(self) -> None:
        """Raise Stop if a signal arrived (and was perhaps swallowed by a library)."""
        if self.received is not None and not self.cleaning_up:
            raise Stop(self.received)

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def _wait_ready(host: str, port: int, children: Sequence[Child], signals: _Signals) -> bool:
    probe_host = "127.0.0.1" if host in ("0.0.0.0", "") else ("::1" if host == "::" else host)
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        signals.check()
        if any(child.process.poll() is not None for child in children):
            return False
        if tcp_reachable(probe_host, port, timeout=0.5):
            return True
        time.sleep(0.2)
    return False


def _banner(settings: Settings, services: Services) -> None:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    base = f"http://{host}:{settings.port}"
    lines = ["", f"  grid-mgmt is up:  {base}/docs", *(f"  {line}" for line in services.describe())]
    rows = demo_logins()
    widths = [max(len(row[i]) for row in rows if len(row) > i) for i in range(max(map(len, rows), default=0))]
    lines.append("  demo logins, every password `demo`:")
    lines += ["    " + "  ".join(f"{cell:<{widths[i]}}" for i, cell in enumerate(row)).rstrip() for row in rows]
    lines += ["  Ctrl-C stops everything.", ""]
    print("\n".join(lines), flush=True)


def _supervise(children: Sequence[Child], signals: _Signals) -> Child:
    """Block until a child exits and return it; a signal raises Stop instead."""
    while True:
        signals.check()
        for child in children:
            if child.process.poll() is not None:
                return child
        time.sleep(0.3)


def run_up(settings: Settings, options: UpOptions = UpOptions()) -> int:
    """Run everything in the foreground; 0 after Ctrl-C/SIGTERM, 1 when something failed or a child died."""
    signals = _Signals()
    services: Services | None = None
    children: list[Child] = []
    try:
        if not module_available(options.app):
            raise ServiceError(f"the API application {options.app} cannot be imported (module missing)")
        services = ensure_services(settings, options.var_dir)
        signals.check()
        from grid_mgmt.db.migrate import upgrade  # Alembic is only needed here

        say("migrating the database to the newest revision")
        upgrade(services.database_url)
        signals.check()
        if options.seed:
            seed_if_empty(services)
            signals.check()
        env = {**os.environ, **services.env(), "PYTHONUNBUFFERED": "1"}
        api_cmd = api_command(options.app, settings.host, settings.port, settings.workers)
        children.append(spawn("api", api_cmd, env))
        if options.worker:
            children.append(spawn("worker", worker_command(), env))
        if not _wait_ready(settings.host, settings.port, children, signals):
            say(f"warning: the API does not answer on port {settings.port} yet")
        _banner(settings, services)
        dead = _supervise(children, signals)
        say(f"{dead.name} exited with code {dead.process.returncode}; stopping everything")
        return 1
    except Stop as stop:
        say(f"{stop}: stopping")
        return 0
    except ServiceError as exc:
        say(f"error: {exc}")
        return 1
    finally:
        signals.cleaning_up = True  # a second Ctrl-C must not interrupt the clean-up
        stop_children(children)
        if services is not None:
            try:
                services.stop()
            except ServiceError as exc:
                say(f"error: {exc}")
        signals.restore()
