"""Child processes of the benchmark: each in its own process group, all killed on exit, Ctrl-C or failure."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import httpx

#: Every process group we started and have not reaped yet (pgid -> its leader).
_GROUPS: dict[int, subprocess.Popen[Any]] = {}
#: Every process group id we ever started (for CPU accounting after the group is gone).
STARTED: set[int] = set()


def _kill_group(pgid: int, grace: float = 5.0) -> None:
    """SIGTERM the group, wait up to `grace` seconds, then SIGKILL whatever is left."""
    leader = _GROUPS.get(pgid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _group_alive(pgid, leader):
        time.sleep(0.05)
    if _group_alive(pgid, leader):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        if leader is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                leader.wait(timeout=5)
    _GROUPS.pop(pgid, None)


def _group_alive(pgid: int, leader: subprocess.Popen[Any] | None) -> bool:
    if leader is not None:
        leader.poll()  # reaps the leader once it exits
    return any(_pgid_of(p) == pgid and _state_of(p) not in (None, "Z") for p in _all_pids())


def _all_pids() -> list[int]:
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm may contain spaces and parentheses: split after the last ')'
    head, _, tail = raw.rpartition(")")
    return [head.split("(", 1)[1], *tail.split()]


def _pgid_of(pid: int) -> int | None:
    f = _stat_fields(pid)
    return int(f[3]) if f else None


def _state_of(pid: int) -> str | None:
    f = _stat_fields(pid)
    return f[1] if f else None


def kill_all() -> None:
    """Kill every process group we started (called at exit and on signals)."""
    for pgid in list(_GROUPS):
        _kill_group(pgid)


def _on_signal(signum: int, _frame: Any) -> None:
    # Turn SIGTERM/SIGHUP into an exception so `finally` blocks run and the groups get killed.
    raise SystemExit(128 + signum)


def install_handlers() -> None:
    atexit.register(kill_all)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    # Ctrl-C → KeyboardInterrupt even when started with SIGINT ignored (a background job of a script).
    signal.signal(signal.SIGINT, signal.default_int_handler)


class Group:
    """A process started in a new session (its own process group); `stop()` kills the whole group."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        name: str,
        env: dict[str, str] | None = None,
        cwd: str | Path | None = None,
        log: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log
        self._log: IO[bytes] | None = open(log, "wb") if log else None  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT if self._log else subprocess.DEVNULL,
            start_new_session=True,
        )
        self.pgid = self.proc.pid
        _GROUPS[self.pgid] = self.proc
        STARTED.add(self.pgid)

    def pids(self) -> list[int]:
        """Live members of the group (the uvicorn supervisor and its workers, for instance)."""
        return [p for p in _all_pids() if _pgid_of(p) == self.pgid and _state_of(p) not in (None, "Z")]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.pgid in _GROUPS:
            _kill_group(self.pgid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        if self._log:
            self._log.close()
            self._log = None

    def tail(self, n: int = 30) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-n:])

    def __enter__(self) -> Group:
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop()


def run(argv: Sequence[str], *, timeout: float, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command to completion in its own process group, killed (whole group) after `timeout` s."""
    proc = subprocess.Popen(
        list(argv),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    _GROUPS[proc.pid] = proc
    STARTED.add(proc.pid)
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:
        _kill_group(proc.pid)
        proc.communicate()
        raise
    _GROUPS.pop(proc.pid, None)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, group: Group, timeout: float = 30.0) -> None:
    """Poll `url` until it answers (any status), the process dies, or `timeout` passes."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if not group.alive():
            raise RuntimeError(f"{group.name} exited with {group.proc.returncode}:\n{group.tail()}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError as exc:
            last = exc
            time.sleep(0.1)
    raise RuntimeError(f"{group.name} did not answer {url} within {timeout:.0f} s ({last}):\n{group.tail()}")


@contextlib.contextmanager
def uvicorn(
    target: str,
    *,
    workers: int,
    env: dict[str, str],
    log: Path,
    factory: bool = False,
    extra: Sequence[str] = (),
    ready_path: str = "/",
    ready_timeout: float = 60.0,
    reuseport: bool = True,
) -> Iterator[tuple[Group, str]]:
    """Serve the factory `target` on a free 127.0.0.1 port; yields (group, base_url); killed on exit. As
    `grid-mgmt serve` does (grid_mgmt/runner/balance.py: one SO_REUSEPORT socket per process), or with `reuseport`
    False as `uvicorn --workers N` (one shared socket; `extra` uvicorn flags apply only there)."""
    port = free_port()
    quiet = ["--no-access-log", "--log-level", "warning"]
    if reuseport and workers > 1:
        from grid_mgmt.runner import balance

        argv = [*balance.command(target, "127.0.0.1", port, workers), *quiet]
        name = f"grid-mgmt serve {target} x{workers}"
    else:
        common = [*quiet, *(["--factory"] if factory else []), *extra]
        argv = [sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port),
                "--workers", str(workers), *common]  # fmt: skip
        name = f"uvicorn {target} x{workers}"
    group = Group(argv, name=name, env=env, cwd=Path(__file__).resolve().parent.parent, log=log)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(base + ready_path, group, timeout=ready_timeout)
        yield group, base
    finally:
        group.stop()


@contextlib.contextmanager
def redis_server(log: Path, timeout: float = 10.0) -> Iterator[tuple[Group, str]]:
    """A private, memory-only redis-server on a free 127.0.0.1 port; yields (group, redis URL); killed on exit."""
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    group = Group(argv, name=f"redis-server :{port}", log=log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if not group.alive():
                raise RuntimeError(f"redis-server exited with {group.proc.returncode}:\n{group.tail()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not answer on port {port} within {timeout:.0f} s")
            time.sleep(0.05)
        yield group, f"redis://127.0.0.1:{port}/0"
    finally:
        group.stop()
