"""Decide which PostgreSQL/PostGIS and Redis to use: the configured ones, the local defaults, or our own."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Literal

from sqlalchemy.engine import make_url

from grid_mgmt.runner.pg_cluster import LocalPostgres, start_local_postgres
from grid_mgmt.runner.probe import ServiceError, ensure_database, probe_postgres, probe_redis, redact, say
from grid_mgmt.runner.redis_server import LocalRedis, start_local_redis
from grid_mgmt.settings import Settings

DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/grid_mgmt"
"""The database tried when GRID_DATABASE_URL is not set (same default as grid_mgmt.settings)."""

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
"""The Redis tried when GRID_REDIS_URL is not set (same default as grid_mgmt.settings)."""

Source = Literal["configured", "default", "local"]


@dataclass
class Services:
    """The database and Redis to use, and the local servers started for them (stopped by `stop`)."""

    database_url: str
    redis_url: str
    database_source: Source
    redis_source: Source
    postgres: LocalPostgres | None = field(default=None, repr=False)
    redis: LocalRedis | None = field(default=None, repr=False)

    def env(self) -> dict[str, str]:
        """Environment variables that point child processes at these services."""
        return {"GRID_DATABASE_URL": self.database_url, "GRID_REDIS_URL": self.redis_url}

    def describe(self) -> list[str]:
        """One line per service: where it is and why it was chosen."""
        why = {"configured": "from the environment", "default": "local default", "local": "started locally"}
        return [
            f"database  {redact(self.database_url)}  ({why[self.database_source]})",
            f"redis     {redact(self.redis_url)}  ({why[self.redis_source]})",
        ]

    def stop(self) -> None:
        """Stop the local servers this object started (Redis first); safe to call twice."""
        errors: list[str] = []
        for server in (self.redis, self.postgres):
            if server is None:
                continue
            try:
                server.stop()
            except Exception as exc:  # keep stopping the others
                errors.append(f"{type(server).__name__}: {exc}")
        self.redis = None
        self.postgres = None
        if errors:
            raise ServiceError("stopping local services failed: " + "; ".join(errors))

    def __enter__(self) -> Services:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _configured(name: str, value: str, default: str) -> bool:
    return f"GRID_{name}" in os.environ or value != default


def _choose_database(
    settings: Settings, var_dir: Path, force_local: bool, pg_settings: Mapping[str, str] | None
) -> tuple[str, Source, LocalPostgres | None]:
    url = settings.database_url
    if not force_local and _configured("DATABASE_URL", url, DEFAULT_DATABASE_URL):
        info = probe_postgres(url)  # raises: a configured database must work
        if not info.postgis_available:
            raise ServiceError(f"PostgreSQL at {redact(url)} has no PostGIS extension available (install PostGIS)")
        return url, "configured", None
    if not force_local:
        try:
            info = probe_postgres(url)
        except ServiceError as exc:
            say(f"no usable default PostgreSQL ({exc}); starting a local one")
        else:
            if info.postgis_available:
                return url, "default", None
            say(f"PostgreSQL at {redact(url)} lacks PostGIS; starting a local one")
    database = make_url(url).database or "grid_mgmt"
    local = start_local_postgres(var_dir / "pg", pg_settings)
    return local.url(database), "local", local


def _choose_redis(settings: Settings, var_dir: Path, force_local: bool) -> tuple[str, Source, LocalRedis | None]:
    url = settings.redis_url
    if not force_local and _configured("REDIS_URL", url, DEFAULT_REDIS_URL):
        probe_redis(url)
        return url, "configured", None
    if not force_local:
        try:
            probe_redis(url)
        except ServiceError as exc:
            say(f"no usable default Redis ({exc}); starting a local one")
        else:
            return url, "default", None
    local = start_local_redis(var_dir / "redis")
    return local.url, "local", local


def ensure_services(
    settings: Settings,
    var_dir: Path = Path("var"),
    *,
    force_local: bool = False,
    create_database: bool = True,
    pg_settings: Mapping[str, str] | None = None,
) -> Services:
    """Find or start PostgreSQL (with PostGIS available) and Redis.

    GRID_DATABASE_URL / GRID_REDIS_URL (or non-default values in `settings`) are used as given and must work.
    Otherwise the defaults on 127.0.0.1 are used when they answer, else a cluster under `var_dir/pg` and a
    redis-server under `var_dir/redis` are started on free ports. `force_local` skips straight to the latter.
    `pg_settings` are extra postgresql.conf settings for a started cluster. The database is created when
    missing; PostGIS itself is enabled by the first migration.
    """
    db_url, db_source, postgres = _choose_database(settings, var_dir, force_local, pg_settings)
    services = Services(db_url, "", db_source, "local", postgres=postgres)
    try:
        services.redis_url, services.redis_source, services.redis = _choose_redis(settings, var_dir, force_local)
        if create_database and ensure_database(db_url):
            say(f"created database {make_url(db_url).database}")
    except BaseException:
        services.stop()
        raise
    return services
