"""Quick reachability checks for PostgreSQL and Redis, database creation and the migration revision."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import asyncpg
import redis
from sqlalchemy.engine import URL, make_url

T = TypeVar("T")

CONNECT_TIMEOUT = 1.0
"""Seconds allowed for the TCP connect of a reachability check."""

QUERY_TIMEOUT = 5.0
"""Seconds allowed for logging in and answering the first query."""


class ServiceError(RuntimeError):
    """A database or Redis is unusable; the message says which one, where, and why."""


@dataclass(frozen=True, slots=True)
class PgInfo:
    """What a reachable PostgreSQL server told us."""

    server_version: str
    database_exists: bool
    postgis_available: bool


def say(message: str) -> None:
    """One progress line on stderr (stdout stays free for command output)."""
    print(f"grid-mgmt: {message}", file=sys.stderr, flush=True)


def run_sync(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, even when an event loop is already running here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def redact(url: str) -> str:
    """The URL with its password masked, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


def asyncpg_dsn(url: str | URL) -> str:
    """A SQLAlchemy URL (postgresql+asyncpg://…) as the plain DSN asyncpg and psql accept."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def tcp_reachable(host: str, port: int, timeout: float = CONNECT_TIMEOUT) -> bool:
    """Whether something accepts TCP connections at host:port within `timeout` seconds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _tcp_precheck(host: str | None, port: int, what: str, url: str) -> None:
    if host and not host.startswith("/") and not tcp_reachable(host, port):
        raise ServiceError(f"{what} at {redact(url)}: nothing answers on {host}:{port}")


async def _probe_postgres(url: URL) -> PgInfo:
    try:
        conn = await asyncpg.connect(asyncpg_dsn(url), timeout=QUERY_TIMEOUT)
        exists = True
    except asyncpg.InvalidCatalogNameError:
        conn = await asyncpg.connect(asyncpg_dsn(url.set(database="postgres")), timeout=QUERY_TIMEOUT)
        exists = False
    try:
        row = await conn.fetchrow(
            "SELECT current_setting('server_version') AS version,"
            " EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'postgis') AS postgis",
            timeout=QUERY_TIMEOUT,
        )
    finally:
        await conn.close()
    assert row is not None
    return PgInfo(server_version=str(row["version"]), database_exists=exists, postgis_available=bool(row["postgis"]))


def probe_postgres(url: str) -> PgInfo:
    """Log in and run a query; raise ServiceError saying why when the server is unusable."""
    parsed = make_url(url)
    _tcp_precheck(parsed.host, parsed.port or 5432, "PostgreSQL", url)
    try:
        return run_sync(lambda: _probe_postgres(parsed))
    except Exception as exc:  # any failure means: not usable, say why
        raise ServiceError(f"PostgreSQL at {redact(url)}: {type(exc).__name__}: {exc}") from exc


def quote_ident(name: str) -> str:
    """A PostgreSQL identifier, double-quoted."""
    return '"' + name.replace('"', '""') + '"'


async def _create_database(url: URL) -> bool:
    name = url.database
    if not name:
        raise ServiceError(f"PostgreSQL URL {redact(url.render_as_string())} names no database")
    conn = await asyncpg.connect(asyncpg_dsn(url.set(database="postgres")), timeout=QUERY_TIMEOUT)
    try:
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return False
        try:
            await conn.execute(f"CREATE DATABASE {quote_ident(name)}")
        except asyncpg.DuplicateDatabaseError:
            return False
        return True
    finally:
        await conn.close()


def ensure_database(url: str) -> bool:
    """Create the URL's database when it does not exist; True when it was created."""
    parsed = make_url(url)
    try:
        return run_sync(lambda: _create_database(parsed))
    except Exception as exc:  # any failure means: not usable, say why
        raise ServiceError(f"cannot create database {parsed.database!r} at {redact(url)}: {exc}") from exc


async def _current_revision(url: URL) -> str | None:
    conn = await asyncpg.connect(asyncpg_dsn(url), timeout=QUERY_TIMEOUT)
    try:
        value = await conn.fetchval("SELECT version_num FROM alembic_version LIMIT 1")
    except asyncpg.UndefinedTableError:
        return None
    finally:
        await conn.close()
    return None if value is None else str(value)


def current_revision(url: str) -> str | None:
    """The Alembic revision the database is at, or None when it was never migrated."""
    parsed = make_url(url)
    try:
        return run_sync(lambda: _current_revision(parsed))
    except Exception as exc:  # any failure means: not usable, say why
        raise ServiceError(f"PostgreSQL at {redact(url)}: {type(exc).__name__}: {exc}") from exc


def probe_redis(url: str) -> None:
    """PING the Redis at `url`; raise ServiceError saying why when it does not answer."""
    try:
        parts = urlsplit(url)
        port = parts.port or 6379
    except ValueError as exc:
        raise ServiceError(f"Redis URL {redact(url)} is invalid: {exc}") from exc
    if parts.scheme in ("redis", "rediss"):
        _tcp_precheck(parts.hostname or "localhost", port, "Redis", url)
    client = redis.Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=QUERY_TIMEOUT)
    try:
        if not client.ping():
            raise ServiceError(f"Redis at {redact(url)} did not answer PING")
    except ServiceError:
        raise
    except Exception as exc:  # any failure means: not usable, say why
        raise ServiceError(f"Redis at {redact(url)}: {type(exc).__name__}: {exc}") from exc
    finally:
        client.close()
