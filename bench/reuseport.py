"""Serve one app with N single-worker uvicorns, each on its own SO_REUSEPORT socket bound to the same port."""

#     python -m bench.reuseport --processes 2 --port 8000 -- grid_mgmt.app:create_app --factory …
#
# `uvicorn --workers N` shares one listening socket: whichever worker wakes first accepts, so a burst of new
# connections can land unevenly (the benchmark saw 46/18 of 64). With one SO_REUSEPORT socket per process the
# kernel spreads new connections over the sockets by a hash of the address pair. The launcher stays in the
# foreground in the same process group as the servers (so killing the group stops everything) and exits
# when any server exits.

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys
import time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.reuseport")
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("uvicorn_args", nargs=argparse.REMAINDER, help="after --: the app and uvicorn options")
    args = p.parse_args(argv)
    rest = [a for a in args.uvicorn_args if a != "--"]
    children: list[subprocess.Popen[bytes]] = []
    socks: list[socket.socket] = []
    for _ in range(args.processes):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        # uvicorn wraps --fd as an AF_UNIX socket, so neither it nor the event loop sets TCP_NODELAY on
        # accepted connections (Nagle + delayed ACK then add ~40 ms per response); Linux copies the
        # listener's TCP_NODELAY to accepted sockets, so set it here.
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.bind((args.host, args.port))
        s.listen(2048)
        socks.append(s)

    def stop(*_: object) -> None:
        for c in children:
            if c.poll() is None:
                c.terminate()

    def stop_and_exit(*_: object) -> None:
        stop()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop_and_exit)
    signal.signal(signal.SIGINT, stop_and_exit)
    for s in socks:
        cmd = [sys.executable, "-m", "uvicorn", *rest, "--fd", str(s.fileno())]
        children.append(subprocess.Popen(cmd, pass_fds=(s.fileno(),)))
        s.close()
    try:
        while all(c.poll() is None for c in children):
            time.sleep(0.2)
    finally:
        stop()
        deadline = time.monotonic() + 10
        for c in children:
            try:
                c.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                c.kill()
    return max((c.returncode or 0) for c in children)


if __name__ == "__main__":
    sys.exit(main())
