"""Project-local redis-server without persistence, on a free port."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from grid_mgmt.runner.probe import ServiceError, probe_redis, say
from grid_mgmt.runner.proc import START_TIMEOUT, claim, free_port, owner_alive, pid_alive, release, tail


@dataclass
class LocalRedis:
    """A redis-server without persistence under `root`, started by us or borrowed from a live owner."""

    root: Path
    port: int
    pid: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    owned: bool = True

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        """SHUTDOWN NOSAVE and wait (kill when it hangs); nothing when we only borrowed it."""
        if not self.owned:
            return
        if pid_alive(self.pid):
            client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1, socket_timeout=5)
            with contextlib.suppress(redis.RedisError):
                client.shutdown(nosave=True)
            client.close()
            self._wait_or_kill()
        (self.root / "redis.pid").unlink(missing_ok=True)
        release(self.root)

    def _wait_or_kill(self) -> None:
        if self.process is not None:
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
            return
        deadline = time.monotonic() + 10
        while pid_alive(self.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid_alive(self.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


def _running_redis(root: Path) -> LocalRedis | None:
    """The redis-server a previous run left in `root` (pidfile "pid port"), if it still answers."""
    try:
        pid_text, port_text = (root / "redis.pid").read_text().split()[:2]
        pid, port = int(pid_text), int(port_text)
    except (OSError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        cmdline = b""
    if b"redis-server" not in cmdline or not pid_alive(pid):
        return None
    local = LocalRedis(root=root, port=port, pid=pid)
    try:
        probe_redis(local.url)
    except ServiceError:
        say(f"stopping an unresponsive local redis-server (pid {pid})")
        os.kill(pid, signal.SIGKILL)
        return None
    return local


def start_local_redis(root: Path) -> LocalRedis:
    """Start redis-server (no persistence) under `root` on a free port; wait until it answers PING."""
    binary = shutil.which("redis-server") or ("/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else "")
    if not binary:
        raise ServiceError("redis-server not found; run scripts/install.sh as root, or set GRID_REDIS_URL")
    root.mkdir(parents=True, exist_ok=True)
    running = _running_redis(root)
    if running is not None:
        running.owned = not owner_alive(root)
        if running.owned:
            claim(root)
        say(f"using the local redis-server already running in {root} (port {running.port})")
        return running
    claim(root)
    log = root / "redis.log"
    for attempt in range(3):
        port = free_port()
        cmd = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        cmd += ["--dir", str(root.resolve()), "--logfile", str(log.resolve()), "--daemonize", "no"]
        process = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        (root / "redis.pid").write_text(f"{process.pid} {port}\n")
        local = LocalRedis(root=root, port=port, pid=process.pid, process=process)
        deadline = time.monotonic() + START_TIMEOUT
        while process.poll() is None and time.monotonic() < deadline:
            try:
                probe_redis(local.url)
                return local
            except ServiceError:
                time.sleep(0.1)
        local.stop()
        if "in use" not in tail(log) or attempt == 2:
            raise ServiceError(f"local redis-server did not start (log {log}):\n{tail(log)}")
        claim(root)
    raise AssertionError("unreachable")
