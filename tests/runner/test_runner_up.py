"""`grid-mgmt up` end to end (stand-in app, and the real one once it exists), `with-services`, subcommands."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from grid_mgmt.runner.cli import register
from grid_mgmt.runner.probe import asyncpg_dsn, quote_ident, run_sync
from grid_mgmt.runner.proc import free_port, pid_alive
from grid_mgmt.runner.up import module_available

HERE = Path(__file__).parent
RUNNER = [sys.executable, "-m", "grid_mgmt.runner"]


def children_of(pid: int) -> list[int]:
    """Process ids whose parent is `pid` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


async def _drop_database(url: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(make_url(url).set(database="postgres")))
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {quote_ident(make_url(url).database or '')} WITH (FORCE)")
    finally:
        await conn.close()


@pytest.fixture
def throwaway_database_url(suite_database_url: str) -> Iterator[str]:
    """A database name on the suite's server that does not exist yet (`up` must create it); dropped after."""
    url = make_url(suite_database_url).set(database=f"grid_test_up_{uuid.uuid4().hex[:10]}")
    text = url.render_as_string(hide_password=False)
    yield text
    run_sync(lambda: _drop_database(text))


@dataclass
class UpProcess:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_until_serving(self, path: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"up exited early:\n{self.output()}"
            if http_ok(f"http://127.0.0.1:{self.port}{path}"):
                return
            time.sleep(0.3)
        pytest.fail(f"nothing served {path} within {timeout:.0f} s:\n{self.output()}")

    def wait_for_output(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            assert time.monotonic() < deadline and self.process.poll() is None, f"no {text!r}:\n{self.output()}"
            time.sleep(0.1)

    def children(self) -> list[int]:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the worker may still be starting when the API answers
            found = children_of(self.process.pid)
            if len(found) >= 2:
                return found
            time.sleep(0.2)
        pytest.fail(f"expected api and worker children:\n{self.output()}")


class StartUp(Protocol):
    def __call__(self, *extra: str) -> UpProcess: ...


@pytest.fixture
def start_up(throwaway_database_url: str, suite_redis_url: str, var_dir: Path, tmp_path: Path) -> Iterator[StartUp]:
    started: list[UpProcess] = []

    def start(*extra: str) -> UpProcess:
        port = free_port()
        log = tmp_path / f"up-{len(started)}.log"
        env = {
            **os.environ,
            "GRID_DATABASE_URL": throwaway_database_url,
            "GRID_REDIS_URL": suite_redis_url,
            "GRID_PORT": str(port),
            "GRID_HOST": "127.0.0.1",
            "GRID_WORKERS": "1",
            "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        }
        with log.open("wb") as out:
            process = subprocess.Popen(
                [*RUNNER, "up", "--no-seed", "--var-dir", str(var_dir), *extra],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        up = UpProcess(process, port, log)
        started.append(up)
        return up

    yield start
    for up in started:
        if up.process.poll() is None:
            up.process.kill()
            up.process.wait()


def test_up_serves_until_sigint_then_stops_everything(start_up: StartUp) -> None:
    up = start_up("--app", "runner_fake_app:create_app")
    up.wait_until_serving("/health")
    up.wait_for_output("grid-mgmt is up")
    children = up.children()
    up.process.send_signal(signal.SIGINT)
    assert up.process.wait(timeout=60) == 0, up.output()
    assert not [pid for pid in children if pid_alive(pid)], up.output()
    output = up.output()
    assert "migrating the database" in output and "/docs" in output and "worker1" in output


def test_up_stops_cleanly_when_signalled_during_setup(start_up: StartUp) -> None:
    up = start_up("--app", "runner_fake_app:create_app")
    up.wait_for_output("migrating the database")
    up.process.send_signal(signal.SIGTERM)
    assert up.process.wait(timeout=60) == 0, up.output()
    assert "SIGTERM: stopping" in up.output()
    assert children_of(up.process.pid) == []


def test_up_stops_everything_and_fails_when_a_child_dies(start_up: StartUp) -> None:
    up = start_up("--app", "runner_fake_app:create_app")
    up.wait_until_serving("/health")
    children = up.children()
    worker = next(pid for pid in children if b"arq" in Path(f"/proc/{pid}/cmdline").read_bytes())
    os.kill(worker, signal.SIGKILL)
    assert up.process.wait(timeout=60) == 1, up.output()
    assert "worker exited" in up.output()
    assert not [pid for pid in children if pid_alive(pid)], up.output()


@pytest.mark.skipif(not module_available("grid_mgmt.app"), reason="grid_mgmt.app (the API) is not written yet")
def test_up_serves_the_real_api(start_up: StartUp) -> None:
    up = start_up()
    up.wait_until_serving("/docs")
    up.process.send_signal(signal.SIGTERM)
    assert up.process.wait(timeout=60) == 0, up.output()


def test_up_without_the_app_fails_clearly(var_dir: Path) -> None:
    result = subprocess.run(
        [*RUNNER, "up", "--app", "no_such_module_xyz:create_app", "--var-dir", str(var_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "no_such_module_xyz:create_app cannot be imported" in result.stderr


def test_with_services_exports_urls_and_passes_the_exit_code(
    var_dir: Path, suite_database_url: str, suite_redis_url: str
) -> None:
    script = "import os, sys; print(os.environ['GRID_DATABASE_URL'], os.environ['GRID_REDIS_URL']); sys.exit(3)"
    env = {**os.environ, "GRID_DATABASE_URL": suite_database_url, "GRID_REDIS_URL": suite_redis_url}
    result = subprocess.run(
        [*RUNNER, "with-services", "--var-dir", str(var_dir), "--", sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 3, result.stderr
    assert result.stdout.split() == [suite_database_url, suite_redis_url]


def test_with_services_needs_a_command() -> None:
    result = subprocess.run([*RUNNER, "with-services", "--"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "needs a command" in result.stderr


def test_register_adds_the_subcommands_with_funcs() -> None:
    parser = argparse.ArgumentParser(prog="grid-mgmt")
    register(parser.add_subparsers(dest="command", required=True))
    cases = {
        ("up", "--port", "9001", "--no-seed"): "cmd_up",
        ("serve",): "cmd_serve",
        ("worker",): "cmd_worker",
        ("db", "upgrade", "--wait", "5"): "cmd_db_upgrade",
        ("db", "current"): "cmd_db_current",
        ("with-services", "--", "pytest", "-x"): "cmd_with_services",
    }
    for argv, name in cases.items():
        args = parser.parse_args(list(argv))
        assert args.func.__name__ == name
    assert parser.parse_args(["with-services", "--", "pytest", "-x"]).command[-2:] == ["pytest", "-x"]
    with pytest.raises(SystemExit):
        parser.parse_args(["db"])


def test_db_upgrade_and_current(throwaway_database_url: str) -> None:
    env = {**os.environ, "GRID_DATABASE_URL": throwaway_database_url}
    upgrade = subprocess.run([*RUNNER, "db", "upgrade"], capture_output=True, text=True, env=env, timeout=120)
    assert upgrade.returncode == 0, upgrade.stderr
    assert "created the database" in upgrade.stderr and "database at revision" in upgrade.stdout
    current = subprocess.run([*RUNNER, "db", "current"], capture_output=True, text=True, env=env, timeout=60)
    assert current.returncode == 0, current.stderr
    revision = upgrade.stdout.split()[-1]
    assert current.stdout.split() == ["current", revision, "head", revision]
