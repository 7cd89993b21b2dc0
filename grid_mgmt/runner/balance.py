"""`grid-mgmt serve` with several API processes: connections dealt round-robin by a supervisor that restarts them.

How new connections reach the processes decides how evenly they are loaded, because clients (a proxy's pool, a
benchmark's 64) keep their connections open: a process with 38 of 64 connections answers them ~20 % slower than a
process with its fair 32 would, and the slowest hundredth of all answers comes from it.

* `uvicorn --workers N` shares one listening socket; whichever process wakes first accepts every pending
  connection: 46/18, 62/2 and 64/0 were seen.
* One `SO_REUSEPORT` socket per process (`--spread reuseport`): the kernel hashes the address pair, so the split is
  a coin toss per connection: 39/25 and 26/38 were seen.
* The default, `--spread round-robin`: this supervisor accepts every connection on the one listening socket and
  hands it to the processes in turn, over a Unix datagram socket per process (SCM_RIGHTS); 64 connections land
  32/32. The connection is then the process's own: the supervisor is out of the way of requests, and the process
  sees the client's real address (the rate limits key on it).

The supervisor keeps the listening socket and each process's hand-off socket for its whole life: a process that dies
is started again on the same hand-off socket (connections handed to it meanwhile wait there), no connection goes to
a dead process, and while none is alive new connections wait in the listen backlog. A process that keeps dying
within seconds of its start (a bad setting, a missing database driver) stops everything with exit code 1 rather than
looping. SIGTERM / SIGINT stop the processes (uvicorn finishes requests in flight).

Each process is `python -m grid_mgmt.runner.balance child …`: uvicorn's own `Server`, taking its connections from
the hand-off socket (round-robin) or serving its inherited `SO_REUSEPORT` socket (reuseport).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

from grid_mgmt.runner.probe import say
from grid_mgmt.runner.proc import die_with_parent

QUICK_EXIT_S = 10.0
"""A process that exits sooner than this after its start counts towards a crash loop."""
QUICK_EXITS = 5
"""Crash-loop exits in a row (of one process) after which the supervisor gives up."""
STOP_TIMEOUT_S = 30.0
"""Seconds the processes get to finish their requests after SIGTERM before they are killed."""
BACKLOG = 2048
TEND_EVERY_S = 0.2
"""How often the supervisor looks for dead processes."""
ACCEPT_BURST = 256
"""Connections accepted in a row before the supervisor looks at its processes again."""
SPREADS = ("round-robin", "reuseport")


def supported() -> bool:
    """Whether this platform can hand connections to processes (SCM_RIGHTS) and share a port (SO_REUSEPORT)."""
    return hasattr(socket, "SO_REUSEPORT") and hasattr(socket, "send_fds") and sys.platform.startswith("linux")


def command(
    app: str, host: str, port: int, workers: int, extra: Sequence[str] = (), spread: str | None = None
) -> list[str]:
    """The command line of the supervisor serving the application factory `app` with `workers` processes (`spread`:
    how connections reach them; by default GRID_SERVE_SPREAD, else round-robin)."""
    cmd = [sys.executable, "-m", "grid_mgmt.runner.balance", "serve", app, "--host", host, "--port", str(port)]
    return [*cmd, "--workers", str(workers), *(["--spread", spread] if spread else []), *extra]


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
    except OSError:
        sock.close()
        raise
    return sock


@dataclass
class Slot:
    """One API process and what it serves: its own listening socket (reuseport) or its end of a hand-off socket
    (round-robin; `feed` is the supervisor's end). `quick` counts its crash-loop exits in a row."""

    number: int
    sock: socket.socket
    child_args: list[str]
    feed: socket.socket | None = None
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    quick: int = 0
    start_after: float = 0.0

    def start(self) -> None:
        fd = self.sock.fileno()
        how = ["--channel" if self.feed is not None else "--fd", str(fd)]
        cmd = [sys.executable, "-m", "grid_mgmt.runner.balance", "child", *how, *self.child_args]
        self.process = subprocess.Popen(cmd, pass_fds=(fd,), stdin=subprocess.DEVNULL, preexec_fn=die_with_parent())
        self.started = time.monotonic()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def close(self) -> None:
        self.sock.close()
        if self.feed is not None:
            self.feed.close()


class _Stopping(Exception):
    pass


def serve(
    app: str, host: str, port: int, workers: int, child_args: Sequence[str] = (), spread: str = SPREADS[0]
) -> int:
    """Run `workers` API processes on host:port until SIGTERM / SIGINT (0) or a crash loop (1)."""
    try:
        slots, dealer = _open(host, port, workers, [app, *child_args], spread)
    except OSError as exc:
        say(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}")
        return 1

    def on_signal(signum: int, _: FrameType | None) -> None:
        raise _Stopping(signal.Signals(signum).name)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for slot in slots:
            slot.start()
        say(f"serving {app} on {host}:{port} with {workers} processes ({spread})")
        while True:
            if dealer is None:
                time.sleep(TEND_EVERY_S)
            else:
                dealer.deal_for(TEND_EVERY_S)
            for slot in slots:
                if not _tend(slot):
                    return 1
    except _Stopping as stop:
        say(f"{stop}: stopping the API processes")
    finally:
        for s in previous:  # a second Ctrl-C must not cut the stopping short
            signal.signal(s, signal.SIG_IGN)
        if dealer is not None:
            dealer.close()
        _stop(slots)
        for slot in slots:
            slot.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 0


def _open(host: str, port: int, workers: int, args: list[str], spread: str) -> tuple[list[Slot], _Dealer | None]:
    """The processes' slots and, for round-robin, the dealer of the one listening socket (OSError when the port is
    taken, even by a server like this one)."""
    main = listener(host, port, shared=False)
    if spread == "reuseport":
        main.close()
        return [Slot(i + 1, listener(host, port), args) for i in range(workers)], None
    slots = []
    for i in range(workers):
        feed, end = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        feed.setblocking(False)
        slots.append(Slot(i + 1, end, args, feed=feed))
    return slots, _Dealer(main, slots)


class _Dealer:
    """Accepts the connections of the listening socket and hands them to the live processes in turn."""

    def __init__(self, sock: socket.socket, slots: Sequence[Slot]):
        self.sock = sock
        self.slots = slots
        self.next = 0
        sock.setblocking(False)
        self.selector = selectors.DefaultSelector()
        self.selector.register(sock, selectors.EVENT_READ)

    def deal_for(self, seconds: float) -> None:
        """Hand over connections as they come for `seconds`; while no process can take one, leave them queued."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if not self.selector.select(left):
                continue
            for _ in range(ACCEPT_BURST):
                if not any(slot.alive() for slot in self.slots):  # it waits in the backlog; look again shortly
                    time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
                    break
                try:
                    conn, _ = self.sock.accept()
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as exc:  # out of file descriptors, a connection reset before it was accepted
                    say(f"accept failed: {exc}")
                    time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))  # not a busy loop while it lasts
                    break
                with conn:  # our copy closes once the process has its own
                    self._hand(conn)

    def _pick(self) -> Slot | None:
        """The next live process in turn (None when none is alive)."""
        for i in range(len(self.slots)):
            slot = self.slots[(self.next + i) % len(self.slots)]
            if slot.alive():
                self.next = (self.next + i + 1) % len(self.slots)
                return slot
        return None

    def _hand(self, conn: socket.socket) -> None:
        """Give `conn` to the next live process in turn, passing over those whose queue is full; drop it when all
        are."""
        for _ in self.slots:
            slot = self._pick()
            if slot is None:
                break
            assert slot.feed is not None
            try:
                socket.send_fds(slot.feed, [b"c"], [conn.fileno()])
                return
            except (BlockingIOError, InterruptedError):
                continue
        say("no API process can take a new connection now; closing one")

    def close(self) -> None:
        self.selector.close()
        self.sock.close()


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


def _uvicorn_server() -> type[Any]:
    import uvicorn

    class HandedServer(uvicorn.Server):
        """uvicorn serving the connections that arrive on a hand-off socket instead of a listening socket."""

        def __init__(self, config: uvicorn.Config, channel: socket.socket):
            super().__init__(config)
            self.channel = channel
            self.adopting: set[asyncio.Task[Any]] = set()  # the loop keeps only weak references to tasks

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=[])  # the app's lifespan, no listening socket
            config, loop = self.config, asyncio.get_running_loop()
            protocol = functools.partial(
                config.http_protocol_class,  # type: ignore[call-arg]  # uvicorn's protocols take these keywords
                config=config, server_state=self.server_state, app_state=self.lifespan.state,
            )  # fmt: skip  # what uvicorn's create_server gives each connection
            self.channel.setblocking(False)
            loop.add_reader(self.channel.fileno(), self._take, loop, protocol)

        def _take(self, loop: asyncio.AbstractEventLoop, protocol: Any) -> None:
            while True:
                try:
                    _, fds, _, _ = socket.recv_fds(self.channel, 16, 1)
                except (BlockingIOError, InterruptedError):
                    return
                for fd in fds:
                    conn = socket.socket(fileno=fd)
                    if self.should_exit:
                        conn.close()
                    else:
                        task = loop.create_task(loop.connect_accepted_socket(protocol, conn))
                        self.adopting.add(task)
                        task.add_done_callback(functools.partial(self._adopted, conn))

        def _adopted(self, conn: socket.socket, task: asyncio.Task[Any]) -> None:
            self.adopting.discard(task)
            if not task.cancelled() and task.exception() is not None:  # the client left before we took it
                conn.close()

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            asyncio.get_running_loop().remove_reader(self.channel.fileno())
            await super().shutdown(sockets)

    return HandedServer


def child(app: str, log_level: str, access_log: bool, *, fd: int | None = None, channel: int | None = None) -> int:
    """One API process: uvicorn serving the factory `app` on the inherited listening socket `fd`, or on the
    connections handed over the inherited Unix socket `channel`."""
    import uvicorn

    config = uvicorn.Config(app, factory=True, log_level=log_level, access_log=access_log)
    if channel is not None:
        _uvicorn_server()(config, socket.socket(fileno=channel)).run()
    else:
        assert fd is not None
        sock = socket.socket(fileno=fd)  # the family (IPv4 / IPv6) is read from the socket itself
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
            p.add_argument(
                "--spread", choices=SPREADS, default=os.environ.get("GRID_SERVE_SPREAD") or SPREADS[0],
                help="how new connections reach the processes (default: GRID_SERVE_SPREAD, else round-robin)",
            )  # fmt: skip
        else:
            how = p.add_mutually_exclusive_group(required=True)
            how.add_argument("--fd", type=int, help="an inherited listening socket")
            how.add_argument("--channel", type=int, help="an inherited Unix socket connections are handed over")
    args = parser.parse_args(argv)
    if args.role == "child":
        return child(args.app, args.log_level, args.access_log, fd=args.fd, channel=args.channel)
    forwarded = ["--log-level", args.log_level, *([] if args.access_log else ["--no-access-log"])]
    return serve(args.app, args.host, args.port, max(1, args.workers), forwarded, args.spread)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
