"""Process helpers shared by the local servers and the supervisor: free ports, liveness, ownership files."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from grid_mgmt.runner.probe import say

START_TIMEOUT = 60.0
"""Seconds a local server gets to answer after it was started."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pid_alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return not any(line.startswith("State:") and "Z" in line.split()[1] for line in status.splitlines())


def owner_alive(root: Path) -> bool:
    """Whether another live process started the server in `root` (it will stop it; we only borrow it)."""
    try:
        pid = int((root / "owner.pid").read_text().strip())
    except (OSError, ValueError):
        return False
    return pid != os.getpid() and pid_alive(pid)


def claim(root: Path) -> None:
    (root / "owner.pid").write_text(f"{os.getpid()}\n")


def release(root: Path) -> None:
    with contextlib.suppress(OSError, ValueError):
        if int((root / "owner.pid").read_text().strip()) == os.getpid():
            (root / "owner.pid").unlink()


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class Child:
    """A named child process running in its own process group (so we decide when and how it stops)."""

    name: str
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid


def die_with_parent() -> Callable[[], None] | None:
    """A preexec function asking Linux to SIGTERM the child when we die (prctl PR_SET_PDEATHSIG)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None

    def preexec() -> None:
        prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    return preexec


def spawn(name: str, cmd: Sequence[str], env: Mapping[str, str]) -> Child:
    """Start `cmd` as a child in a new session; it gets SIGTERM if this process dies."""
    process = subprocess.Popen(
        list(cmd), env=dict(env), stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=die_with_parent()
    )
    return Child(name, process)


def stop_children(children: Sequence[Child], timeout: float = 15.0) -> None:
    """SIGTERM every child's process group, wait up to `timeout` seconds, then SIGKILL what is left."""
    for child in children:
        if child.process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for child in children:
        try:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"{child.name} did not stop within {timeout:.0f} s; killing it")
    for child in children:  # the group may hold grandchildren (uvicorn workers) even after the leader exited
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.process.wait(timeout=5)
