"""The unchanged arq worker (workers.settings.WorkerSettings) without its cron sweeps, for the worker benchmarks."""

from __future__ import annotations

from typing import Any

from workers import settings

#: What arq reads from the real WorkerSettings (its class __dict__: every job function, the codec, max_jobs,
#: timeouts, Redis), with no cron jobs: on the bench database the recovery sweeps would route the historical base
#: cases (reported, routed_at NULL) and flag the deadlines of the intake benchmark's leftover cases — work that is
#: not the one measured, done to rows of other benchmarks. A dict, because arq reads a class's own __dict__ only.
WorkerSettings: dict[str, Any] = {k: v for k, v in vars(settings.WorkerSettings).items() if not k.startswith("__")}
WorkerSettings["cron_jobs"] = []
