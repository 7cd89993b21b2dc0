"""Diagnostic wrappers around the real app (bench only; the app itself is untouched)."""

# `create_app()` is `grid_mgmt.app.create_app()` plus, depending on the environment:
#
# * BENCH_PROFILE=<path>: cProfile over the worker's event-loop thread from startup to shutdown, written to
#   <path>.<pid>.prof (use one worker; the profiler inflates absolute times, read the proportions);
# * BENCH_GC_LOG=<path>: every garbage collection's generation and pause recorded with `gc.callbacks`,
#   written to <path>.<pid>.json at shutdown (the benchmark keeps those of its measured window);
# * BENCH_GC_FREEZE=1: once the grid index is fresh, `gc.collect(); gc.freeze()` — the index (≈ 300,000
#   objects for the 100,000-grid city) moves to the permanent generation, so full collections stop
#   traversing it. This is the change the benchmark suggests for the app.

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import gc
import json
import os
import time
from typing import Any

from litestar import Litestar

from grid_mgmt.app import create_app as create_real_app


class _GcLog:
    """Every collection as (unix time at its end, generation, pause in ms)."""

    def __init__(self) -> None:
        self.started: float | None = None
        self.events: list[tuple[float, int, float]] = []
        self.frozen: int | None = None

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
        elif self.started is not None:
            ms = (time.perf_counter() - self.started) * 1e3
            self.events.append((time.time(), int(info["generation"]), round(ms, 3)))
            self.started = None

    def dump(self) -> dict[str, Any]:
        return {"frozen_objects": self.frozen, "tracked_objects": len(gc.get_objects()), "events": self.events}


def create_app() -> Litestar:
    app = create_real_app()
    target = os.environ.get("BENCH_PROFILE")
    if target:
        prof = cProfile.Profile()

        def start_profile() -> None:
            prof.enable()

        def dump_profile() -> None:
            prof.disable()
            prof.dump_stats(f"{target}.{os.getpid()}.prof")

        app.on_startup.append(start_profile)
        app.on_shutdown.append(dump_profile)

    gc_path = os.environ.get("BENCH_GC_LOG")
    log = _GcLog()
    if gc_path:
        gc.callbacks.append(log)

        def dump_gc() -> None:
            with contextlib.suppress(OSError), open(f"{gc_path}.{os.getpid()}.json", "w") as f:
                json.dump(log.dump(), f)

        app.on_shutdown.append(dump_gc)

    if os.environ.get("BENCH_GC_FREEZE") == "1":
        tasks: list[asyncio.Task[None]] = []

        async def freeze_when_fresh(app: Litestar) -> None:
            locator = app.state.get("locator")
            deadline = time.monotonic() + 120
            while locator is not None and not locator.fresh and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
            gc.collect()
            gc.freeze()
            log.frozen = gc.get_freeze_count()

        def start_freeze(app: Litestar) -> None:
            tasks.append(asyncio.get_running_loop().create_task(freeze_when_fresh(app)))

        app.on_startup.append(start_freeze)
    return app
