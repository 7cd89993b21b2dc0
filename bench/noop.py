"""`noop`: a bare Litestar app (bench/noop_app.py) under uvicorn, 1 and 2 processes — the "for scale" figure."""

from __future__ import annotations

import os
import random

from bench import procs
from bench.cpu import describe
from bench.http_load import Load, Settings, latency_metrics, measure
from bench.util import RESULTS, ROOT, Row

UVICORN_FLAGS = ("--http", "httptools", "--loop", "uvloop")
POST_BODY = '{"lon": 116.397, "lat": 39.909, "note": "noop"}'


def _get(_: random.Random) -> tuple[str, str, bytes | None]:
    return "GET", "/noop", None


def _post(_: random.Random) -> tuple[str, str, bytes | None]:
    return "POST", "/noop", POST_BODY.encode()


LOADS = {
    "GET": Load("/noop", 'wrk.method = "GET"\n', _get),
    "POST": Load(
        "/noop",
        f'wrk.method = "POST"\nwrk.body = \'{POST_BODY}\'\nwrk.headers["Content-Type"] = "application/json"\n',
        _post,
    ),
}


def run(
    cfg: Settings,
    methods: tuple[str, ...] = ("GET", "POST"),
    workers: tuple[int, ...] = (1, 2),
    variants: bool = True,
    sink: list[Row] | None = None,
) -> list[Row]:
    """N processes served as `grid-mgmt serve` serves the API, for each N and method; with `variants`, GET on
    `uvicorn --workers 2` (one shared socket) too.

    Rows are appended to `sink` (returned) as they are measured, so an interrupted run keeps them."""
    rows: list[Row] = sink if sink is not None else []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    setups: list[tuple[int, bool, tuple[str, ...]]] = [(n, True, methods) for n in workers]
    if variants:
        setups.append((2, False, ("GET",)))
    for n, reuseport, these in setups:
        log = RESULTS / "logs" / f"noop-x{n}{'' if reuseport else '-shared-socket'}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        server = procs.uvicorn(
            "bench.noop_app:create_app", factory=True, workers=n, env=env, log=log, extra=UVICORN_FLAGS,
            ready_path="/noop",
            reuseport=reuseport,
        )  # fmt: skip
        with server as (group, base):
            for method in these:
                label = f"noop {method} ×{n}" + ("" if reuseport else ", uvicorn --workers: one shared socket")
                m = measure(base, LOADS[method], cfg, group.pgid, label)
                res = m["result"]
                notes = [f"p50 {res.p50_ms:.2f} ms", describe(m["cpu"])]
                if n > 1:
                    notes.append(f"connections per process {sorted(m['connections_by_pid'].values(), reverse=True)}")
                if res.errors:
                    notes.append(f"{res.non_2xx} non-2xx, socket errors {res.socket_errors}")
                if len(m["attempts"]) > 1:
                    notes.append(f"measured {len(m['attempts'])}× because of other users' load; kept the quietest")
                if m["tool"] != "wrk":
                    notes.append("Python load generator (wrk missing): client-bound, understates the server")
                rows.append(
                    Row(
                        benchmark=label,
                        target="reference (no target)",
                        measured=f"{res.rps:,.0f} req/s, p99 {res.p99_ms:.2f} ms",
                        passed=None,
                        notes="; ".join(notes),
                        metrics={
                            "processes": n,
                            "method": method,
                            **latency_metrics(res),
                            "errors": res.errors,
                        },
                        details={
                            "cpu": m["cpu"],
                            "top": m["top"],
                            "wrk_output": res.raw,
                            "quiet_before": m["quiet"],
                            "attempts": m["attempts"],
                            "server": " ".join(group.argv[1:]),
                        },
                    )
                )
    return rows
