"""Fallback load generator when wrk is missing: N keep-alive HTTP/1.1 connections on raw asyncio streams."""

# Far slower than wrk per request (it is Python), so on a small machine it competes with the server for
# CPU and understates throughput; results carry a note saying so. Produces a `WrkResult` like bench.wrk.

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import numpy as np

from bench.wrk import WrkResult

RequestFactory = Callable[[random.Random], tuple[str, str, bytes | None]]  # (method, path, body)


async def _conn_loop(
    host: str,
    port: int,
    make: RequestFactory,
    rng: random.Random,
    stop_at: float,
    lat: list[float],
    stats: dict[str, int],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.monotonic() < stop_at:
            method, path, body = make(rng)
            head = f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            if body is not None:
                head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            t0 = time.perf_counter()
            writer.write(head.encode() + b"\r\n" + (body or b""))
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                k, _, v = line.decode("latin-1").partition(":")
                if k.strip().lower() == "content-length":
                    length = int(v.strip())
            if length:
                await reader.readexactly(length)
            lat.append(time.perf_counter() - t0)
            status = int(status_line.split()[1])
            stats["requests"] += 1
            if not 200 <= status < 400:
                stats["non_2xx"] += 1
    except (ConnectionError, asyncio.IncompleteReadError, ValueError, IndexError):
        stats["read_errors"] += 1
    finally:
        writer.close()


async def _run(url: str, make: RequestFactory, duration: float, connections: int, seed: int) -> WrkResult:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    lat: list[float] = []
    stats = {"requests": 0, "non_2xx": 0, "read_errors": 0}
    t0 = time.monotonic()
    stop_at = t0 + duration
    tasks = [
        asyncio.create_task(_conn_loop(host, port, make, random.Random(seed + i), stop_at, lat, stats))
        for i in range(connections)
    ]
    await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=duration + 30)
    wall = time.monotonic() - t0
    arr = np.array(lat) * 1e3 if lat else np.array([float("nan")])
    p = {q: float(np.percentile(arr, q)) for q in (50, 75, 90, 99, 99.9)}
    return WrkResult(
        url=url,
        threads=1,
        connections=connections,
        duration_s=wall,
        requests=stats["requests"],
        rps=stats["requests"] / wall,
        p50_ms=p[50],
        p75_ms=p[75],
        p90_ms=p[90],
        p99_ms=p[99],
        p999_ms=p[99.9],
        mean_ms=float(arr.mean()),
        max_ms=float(arr.max()),
        non_2xx=stats["non_2xx"],
        socket_errors={"connect": 0, "read": stats["read_errors"], "write": 0, "timeout": 0},
        raw="python asyncio load generator (wrk not installed)",
    )


def run(url: str, make: RequestFactory, *, duration: float, connections: int = 64, seed: int = 12345) -> WrkResult:
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"load stays on 127.0.0.1, got {url}")
    try:
        import uvloop

        return uvloop.run(_run(url, make, duration, connections, seed))
    except ImportError:
        return asyncio.run(_run(url, make, duration, connections, seed))
