"""An open-loop HTTP/1.1 load: request i leaves at start + i / rate on keep-alive raw asyncio connections."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

TIMEOUT_S = 60.0  # longest wait for a free connection, and for an answer


@dataclass
class Sent:
    i: int
    due: float  # time.time() the request was scheduled for
    at: float  # time.time() when it was written (later than `due` while every connection was busy)
    status: int
    ms: float  # from the scheduled send time to the whole answer (waiting for a free connection included)
    body: Any = None  # the decoded JSON answer
    error: str = ""


def post_json(path: str, host: str, body: dict[str, Any], headers: dict[str, str]) -> bytes:
    """The bytes of a POST with a JSON body (built before the run, so that sending costs no encoding)."""
    data = json.dumps(body, separators=(",", ":")).encode()
    head = [f"POST {path} HTTP/1.1", f"Host: {host}", "Content-Type: application/json", f"Content-Length: {len(data)}"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + data


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    status = int((await reader.readline()).split()[1])
    length, chunked = 0, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        k, _, v = line.decode("latin-1").partition(":")
        k = k.strip().lower()
        if k == "content-length":
            length = int(v.strip())
        elif k == "transfer-encoding" and "chunked" in v.lower():
            chunked = True
    if not chunked:
        return status, await reader.readexactly(length) if length else b""
    parts = []
    while size := int((await reader.readline()).strip() or b"0", 16):
        parts.append(await reader.readexactly(size))
        await reader.readline()
    await reader.readline()
    return status, b"".join(parts)


async def _run(base: str, requests: list[bytes], rate: float, connections: int) -> tuple[list[Sent], float]:
    parts = urlsplit(base)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    opened = 0

    async def one(i: int, due: float, request: bytes) -> Sent:
        nonlocal opened
        wall_due = wall0 + (due - start)
        at = time.time()
        conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            if idle.empty() and opened < connections:
                opened += 1
                try:
                    conn = await asyncio.open_connection(host, port)
                except OSError:
                    opened -= 1
                    raise
            else:
                conn = await asyncio.wait_for(idle.get(), TIMEOUT_S)
            at = time.time()
            conn[1].write(request)
            status, data = await asyncio.wait_for(_answer(conn[0]), TIMEOUT_S)
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:  # TimeoutError is an OSError
            if conn is not None:  # dropped: the next request opens a new one
                opened -= 1
                conn[1].close()
            ms = (time.perf_counter() - due) * 1e3
            return Sent(i, wall_due, at, 0, ms, None, f"{type(exc).__name__}: {exc}")
        idle.put_nowait(conn)
        ms = (time.perf_counter() - due) * 1e3
        error = "" if status < 400 else data[:200].decode(errors="replace")
        try:
            return Sent(i, wall_due, at, status, ms, json.loads(data) if data else None, error)
        except ValueError:
            return Sent(i, wall_due, at, status, ms, None, data[:200].decode(errors="replace"))

    start, lag = time.perf_counter() + 0.1, 0.0
    wall0 = time.time() + (start - time.perf_counter())
    tasks = []
    for i, request in enumerate(requests):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        lag = max(lag, -delay)
        tasks.append(asyncio.create_task(one(i, due, request)))
    sent = list(await asyncio.gather(*tasks))
    while not idle.empty():
        idle.get_nowait()[1].close()
    return sent, lag


def run(base: str, requests: list[bytes], *, rate: float, connections: int = 64) -> tuple[list[Sent], float]:
    """Send `requests` at `rate` per second whatever the answers (at most `connections` open); (answers, worst
    lateness of a send in seconds: how far the client fell behind its schedule)."""
    if not base.startswith("http://127.0.0.1:"):
        raise ValueError(f"load stays on 127.0.0.1, got {base}")
    try:
        import uvloop

        return uvloop.run(_run(base, requests, rate, connections))
    except ImportError:
        return asyncio.run(_run(base, requests, rate, connections))
