"""arq jobs: sla (stub, being written)."""

from __future__ import annotations

from arq.cron import CronJob
from arq.worker import Function

FUNCTIONS: list[Function] = []
CRON: list[CronJob] = []
