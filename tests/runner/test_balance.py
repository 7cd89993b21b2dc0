"""`grid-mgmt serve` with several processes (runner/balance.py): connections dealt in turn (or by SO_REUSEPORT), each
process sees the client's real address, a killed process is replaced, SIGTERM stops all, a crash loop gives up."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from grid_mgmt.runner import balance
from grid_mgmt.runner.proc import free_port, pid_alive
from grid_mgmt.runner.up import api_command
from tests.runner.test_runner_up import children_of

HERE = Path(__file__).parent
APP = "tests.runner.runner_fake_app:create_app"

pytestmark = pytest.mark.skipif(not balance.supported(), reason="handing connections to processes is Linux-only")


def who(port: int) -> tuple[int, str] | None:
    """(process id, client address) from a fresh connection, None while nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/who", timeout=2) as r:
            pid, client = r.read().decode().split()
            return int(pid), client
    except OSError:
        return None


def children(pid: int) -> set[int]:
    return set(children_of(pid))


def wait_for(predicate, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"not within {timeout} s")


def kept_open(port: int, count: int) -> tuple[list[socket.socket], list[int]]:
    """`count` keep-alive connections opened at once, and the process id that answered on each."""
    conns = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(count)]
    pids = []
    for c in conns:
        c.sendall(b"GET /who HTTP/1.1\r\nHost: x\r\n\r\n")
    for c in conns:
        answer = b""
        while not (found := re.search(rb"(\d+) 127\.0\.0\.1", answer)):  # the body, maybe chunked
            chunk = c.recv(4096)
            assert chunk, answer
            answer += chunk
        pids.append(int(found.group(1)))
    return conns, pids


@pytest.fixture(params=balance.SPREADS)
def served(request: pytest.FixtureRequest) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(HERE.parent.parent)}
    cmd = balance.command(APP, "127.0.0.1", port, 2, spread=request.param)
    proc = subprocess.Popen([*cmd, "--no-access-log", "--log-level", "warning"], env=env)
    try:
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in children(proc.pid):
            os.kill(pid, signal.SIGKILL)


def test_several_processes_use_the_balanced_server_and_one_uvicorn() -> None:
    assert api_command("a:b", "127.0.0.1", 8000, 2)[1:4] == ["-m", "grid_mgmt.runner.balance", "serve"]
    assert api_command("a:b", "127.0.0.1", 8000, 1)[1:3] == ["-m", "uvicorn"]


def test_both_processes_answer_with_the_clients_address_and_a_dead_one_is_replaced(served) -> None:  # type: ignore[no-untyped-def]
    proc, port = served
    wait_for(lambda: who(port))
    seen = {}
    for _ in range(60):  # new connections dealt in turn, or spread by a hash of the address pair
        answer = who(port)
        assert answer is not None
        seen[answer[0]] = answer[1]
    assert set(seen) == children(proc.pid) and len(seen) == 2
    assert set(seen.values()) == {"127.0.0.1"}  # not a Unix-socket placeholder: rate limits key on it

    victim = min(seen)
    os.kill(victim, signal.SIGKILL)
    replaced = wait_for(lambda: len(children(proc.pid) - {victim}) == 2 and children(proc.pid) - set(seen))
    new_pid = next(iter(replaced))
    wait_for(lambda: any((who(port) or (0,))[0] == new_pid for _ in range(20)))  # it serves the freed socket
    assert proc.poll() is None

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert not any(pid_alive(p) for p in (*seen, new_pid))
    assert who(port) is None


def test_a_port_in_use_is_a_clear_error() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run([*balance.command(APP, "127.0.0.1", port, 2)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in r.stderr


def test_a_process_that_keeps_dying_at_start_stops_the_server() -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(HERE.parent.parent)}
    cmd = balance.command("tests.runner.runner_fake_app:broken_app", "127.0.0.1", port, 2)
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert "giving up" in r.stderr
    assert who(port) is None


def test_a_second_server_on_the_same_port_is_refused_not_sharing_it(served) -> None:  # type: ignore[no-untyped-def]
    proc, port = served
    wait_for(lambda: who(port))
    r = subprocess.run([*balance.command(APP, "127.0.0.1", port, 2)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "cannot listen" in r.stderr
    assert proc.poll() is None and len(children(proc.pid)) == 2


def test_connections_kept_open_are_dealt_evenly_and_a_dead_process_gets_none() -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(HERE.parent.parent)}
    proc = subprocess.Popen([*balance.command(APP, "127.0.0.1", port, 2), "--log-level", "warning"], env=env)
    try:
        wait_for(lambda: who(port))
        one_by_one = [who(port) for _ in range(10)]
        assert all(one_by_one[i][0] != one_by_one[i + 1][0] for i in range(9)), one_by_one  # type: ignore[index]
        conns, pids = kept_open(port, 64)  # as a benchmark's (or a proxy's) pool opens them: all at once
        counts = sorted(pids.count(p) for p in set(pids))
        assert counts == [32, 32], counts  # SO_REUSEPORT's hash gave 39/25 and 26/38
        victim = pids[0]
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: victim not in children(proc.pid) and len(children(proc.pid)) == 2)
        more, pids_after = kept_open(port, 8)
        assert victim not in pids_after and set(pids_after) <= children(proc.pid)
        for c in (*conns, *more):
            c.close()
    finally:
        proc.kill()
        proc.wait()
        for pid in children(proc.pid):
            os.kill(pid, signal.SIGKILL)


def test_clients_that_reset_at_once_harm_no_process(served) -> None:  # type: ignore[no-untyped-def]
    import struct

    proc, port = served
    wait_for(lambda: who(port))
    before = children(proc.pid)
    for _ in range(40):  # connect and reset (RST) before a process has taken the connection
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    answers = {who(port) for _ in range(10)}
    assert None not in answers and {pid for pid, _ in answers} <= before  # type: ignore[misc]
    assert children(proc.pid) == before
