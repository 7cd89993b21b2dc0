"""Small shared helpers: paths, the console, DSN forms, machine facts, result rows."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from rich.console import Console

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results"
console = Console(highlight=False, width=None if sys.stdout.isatty() else 180)


def slug(label: str) -> str:
    """A label as a file-name part: "intake, 2 procs" → "intake-2-procs"."""
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


async def fetchval(dsn: str, sql: str, *args: Any) -> Any:
    """One value from the database on a connection of its own."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


def app_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    """The environment of an app process (API or worker) against the bench database and `redis_url`."""
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "GRID_DATABASE_URL": database_url,
        "GRID_REDIS_URL": redis_url,
        "GRID_DEBUG": "0",
        **extra,
    }


def sqlalchemy_url(url: str) -> str:
    """Any postgres URL → the SQLAlchemy asyncpg form the app and Alembic use."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {url}")


def plain_dsn(url: str) -> str:
    """The SQLAlchemy form → what asyncpg and psql accept."""
    return sqlalchemy_url(url).replace("postgresql+asyncpg://", "postgresql://", 1)


@dataclass
class Row:
    """One line of the results table."""

    benchmark: str
    target: str
    measured: str
    passed: bool | None  # None: no target (reference figure) or not run
    notes: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        return {True: "pass", False: "MISS", None: "—"}[self.passed]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["verdict"] = self.verdict
        return d


def _cmd(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "?"
    m = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    return m.group(1).strip() if m else (platform.processor() or "?")


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "-"


def machine() -> dict[str, Any]:
    mem_total_kb = 0
    try:
        m = re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())
        mem_total_kb = int(m.group(1)) if m else 0
    except OSError:
        pass
    return {
        "nproc": _cmd(["nproc"]) or str(os.cpu_count()),
        "cpu_model": _cpu_model(),
        "mem_gib": round(mem_total_kb / 1024 / 1024, 1),
        "free_g": _cmd(["free", "-g"]),
        "kernel": platform.release(),
        "os": _cmd(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "python": sys.version.split()[0],
        "packages": {
            d: _version(d)
            for d in (
                "litestar",
                "uvicorn",
                "uvloop",
                "httptools",
                "asyncpg",
                "shapely",
                "msgspec",
                "sqlalchemy",
                "numpy",
            )
        },
    }


async def postgres_facts(dsn: str) -> dict[str, str]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        out = {"version": str(await conn.fetchval("SHOW server_version"))}
        try:
            out["postgis"] = str(await conn.fetchval("SELECT postgis_lib_version()"))
        except asyncpg.PostgresError:
            out["postgis"] = "-"
        for name in (
            "shared_buffers",
            "work_mem",
            "maintenance_work_mem",
            "max_wal_size",
            "synchronous_commit",
            "max_connections",
            "wal_level",
            "fsync",
            "max_worker_processes",
            "max_parallel_workers",
        ):
            out[name] = str(await conn.fetchval(f"SHOW {name}"))
        return out
    finally:
        await conn.close()
