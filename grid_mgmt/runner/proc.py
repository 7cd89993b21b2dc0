"""Process helpers shared by the local servers and the supervisor: free ports, liveness, ownership files."""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

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
