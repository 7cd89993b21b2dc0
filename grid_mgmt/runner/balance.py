"""`grid-mgmt serve` with several API processes: one SO_REUSEPORT listening socket per process, restarted on death.

`uvicorn --workers N` shares one listening socket and whichever process wakes first accepts, so a burst of new
connections (a proxy's pool, a benchmark's 16) can land 12/4: one process saturates while the other idles
(measured on Open311's list: 143 req/s with the machine 1.58/2 busy, against 209 req/s and 1.99/2 here). This
supervisor binds one socket per process with SO_REUSEPORT, so the kernel spreads new connections over them by a
hash of the address pair. It keeps the sockets open for its whole life: a process that dies is started again on
the same socket, and connections that arrive meanwhile wait in that socket's backlog instead of being refused. A
process that keeps dying within seconds of its start (a bad setting, a missing database driver) stops everything
with exit code 1 rather than looping. SIGTERM / SIGINT stop the processes (uvicorn finishes requests in flight).

Each process is `python -m grid_mgmt.runner.balance child --fd N …`: uvicorn's own `Server.run(sockets=…)` on the
inherited socket (uvicorn's `--fd` would wrap it as a Unix socket and lose the client's address).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType

from grid_mgmt.runner.probe import say
from grid_mgmt.runner.proc import die_with_parent

QUICK_EXIT_S = 10.0
"""A process that exits sooner than this after its start counts towards a crash loop."""
QUICK_EXITS = 5
"""Crash-loop exits in a row (of one process) after which the supervisor gives up."""
STOP_TIMEOUT_S = 30.0
"""Seconds the processes get to finish their requests after SIGTERM before they are killed."""
BACKLOG = 2048


def supported() -> bool:
    """Whether this platform has SO_REUSEPORT with the kernel spreading connections over the sockets (Linux)."""
    return hasattr(socket, "SO_REUSEPORT") and sys.platform.startswith("linux")


def command(app: str, host: str, port: int, workers: int, extra: Sequence[str] = ()) -> list[str]:
    """The command line of the supervisor serving the application factory `app` with `workers` processes."""
    cmd = [sys.executable, "-m", "grid_mgmt.runner.balance", "serve", app, "--host", host, "--port", str(port)]
    return [*cmd, "--workers", str(workers), *extra]


def listener(host: str, port: int, *, shared: bool = True) -> socket.socket:
    """A listening TCP socket on host:port that other sockets of this user may share (SO_REUSEPORT) when `shared`."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[
        0
    ]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if shared:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # Linux copies it to accepted connections
        sock.bind(address)
        sock.listen(BACKLOG)
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock


@dataclass
class Slot:
    """One API process and the socket it serves; `quick` counts its crash-loop exits in a row."""

    number: int
    sock: socket.socket
    child_args: list[str]
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    quick: int = 0
    start_after: float = 0.0

    def start(self) -> None:
        fd = self.sock.fileno()
        cmd = [sys.executable, "-m", "grid_mgmt.runner.balance", "child", "--fd", str(fd), *self.child_args]
        self.process = subprocess.Popen(cmd, pass_fds=(fd,), stdin=subprocess.DEVNULL, preexec_fn=die_with_parent())
        self.started = time.monotonic()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class _Stopping(Exception):
    pass


def serve(app: str, host: str, port: int, workers: int, child_args: Sequence[str] = ()) -> int:
    """Run `workers` API processes on host:port until SIGTERM / SIGINT (0) or a crash loop (1)."""
    try:
        listener(host, port, shared=False).close()  # fails when anything listens there, a server like us included
        socks = [listener(host, port) for _ in range(workers)]
    except OSError as exc:
        say(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}")
        return 1
    slots = [Slot(i + 1, s, [app, *child_args]) for i, s in enumerate(socks)]

    def on_signal(signum: int, _: FrameType | None) -> None:
        raise _Stopping(signal.Signals(signum).name)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for slot in slots:
            slot.start()
        say(f"serving {app} on {host}:{port} with {workers} processes (SO_REUSEPORT)")
        while True:
            time.sleep(0.2)
            for slot in slots:
                if not _tend(slot):
                    return 1
    except _Stopping as stop:
        say(f"{stop}: stopping the API processes")
    finally:
        for s in previous:  # a second Ctrl-C must not cut the stopping short
            signal.signal(s, signal.SIG_IGN)
        _stop(slots)
        for slot in slots:
            slot.sock.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 0


def _tend(slot: Slot) -> bool:
    """Restart a dead process (after a back-off when it died young); False once it is in a crash loop."""
    if slot.process is None or slot.alive():
        return True
    now = time.monotonic()
    if slot.start_after == 0.0:  # it died since the last look
        returncode = slot.process.returncode
        slot.quick = slot.quick + 1 if now - slot.started < QUICK_EXIT_S else 0
        if slot.quick >= QUICK_EXITS:
            say(
                f"API process {slot.number} exited {QUICK_EXITS} times within {QUICK_EXIT_S:g} s of starting; giving up"
            )
            return False
        delay = min(0.25 * 2**slot.quick, 8.0) if slot.quick else 0.0
        say(f"API process {slot.number} (pid {slot.process.pid}) exited with {returncode}; restarting in {delay:g} s")
        slot.start_after = now + delay
    if now >= slot.start_after:
        slot.start_after = 0.0
        slot.start()
    return True


def _stop(slots: Sequence[Slot]) -> None:
    for slot in slots:
        if slot.alive():
            assert slot.process is not None
            with contextlib.suppress(ProcessLookupError):
                slot.process.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for slot in slots:
        if slot.process is None:
            continue
        try:
            slot.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"API process {slot.number} did not stop within {STOP_TIMEOUT_S:g} s; killing it")
            slot.process.kill()
            slot.process.wait()


def child(fd: int, app: str, log_level: str, access_log: bool) -> int:
    """One API process: uvicorn serving the factory `app` on the inherited listening socket `fd`."""
    import uvicorn

    sock = socket.socket(fileno=fd)  # the family (IPv4 / IPv6) is read from the socket itself
    config = uvicorn.Config(app, factory=True, log_level=log_level, access_log=access_log)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grid_mgmt.runner.balance", description=__doc__)
    sub = parser.add_subparsers(dest="role", required=True)
    for name in ("serve", "child"):
        p = sub.add_parser(name)
        p.add_argument("app", help="the ASGI application factory, module:function")
        p.add_argument("--log-level", default="info")
        p.add_argument("--no-access-log", dest="access_log", action="store_false")
        if name == "serve":
            p.add_argument("--host", default="127.0.0.1")
            p.add_argument("--port", type=int, default=8000)
            p.add_argument("--workers", type=int, default=2)
        else:
            p.add_argument("--fd", type=int, required=True)
    args = parser.parse_args(argv)
    if args.role == "child":
        return child(args.fd, args.app, args.log_level, args.access_log)
    forwarded = ["--log-level", args.log_level, *([] if args.access_log else ["--no-access-log"])]
    return serve(args.app, args.host, args.port, max(1, args.workers), forwarded)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
