"""The local PostgreSQL/PostGIS cluster and redis-server really start, answer, and stop; URL choice rules."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import pytest
import redis

from grid_mgmt.runner.pg_cluster import ensure_system_user, start_local_postgres, traversable_by
from grid_mgmt.runner.probe import ServiceError, asyncpg_dsn, tcp_reachable
from grid_mgmt.runner.proc import free_port, pid_alive
from grid_mgmt.runner.redis_server import start_local_redis
from grid_mgmt.runner.services import ensure_services
from grid_mgmt.settings import Settings


async def _postgis_version(database_url: str) -> str:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        return str(await conn.fetchval("SELECT postgis_full_version()"))
    finally:
        await conn.close()


async def test_local_postgis_and_redis_start_answer_and_stop(var_dir: Path) -> None:
    services = ensure_services(Settings(), var_dir, force_local=True)
    try:
        assert services.database_source == services.redis_source == "local"
        assert services.postgres is not None and services.redis is not None
        assert (var_dir / "pg" / "data" / "PG_VERSION").exists()
        assert services.database_url.endswith("/grid_mgmt")
        assert "POSTGIS=" in await _postgis_version(services.database_url)
        client = redis.Redis.from_url(services.redis_url)
        assert client.ping()
        client.close()
        pg_pid, redis_pid = services.postgres.postmaster_pid(), services.redis.pid
        pg_port, redis_port = services.postgres.port, services.redis.port
        assert pg_pid is not None and pid_alive(pg_pid) and pid_alive(redis_pid)
    finally:
        services.stop()
    assert not pid_alive(pg_pid)
    assert not pid_alive(redis_pid)
    assert not tcp_reachable("127.0.0.1", pg_port) and not tcp_reachable("127.0.0.1", redis_port)
    services.stop()  # a second stop is harmless


def test_existing_cluster_is_reused_without_initdb(var_dir: Path) -> None:
    first = start_local_postgres(var_dir / "pg")
    first.stop()
    version_file = var_dir / "pg" / "data" / "PG_VERSION"
    created = version_file.stat().st_mtime_ns
    second = start_local_postgres(var_dir / "pg")
    try:
        assert version_file.stat().st_mtime_ns == created
        assert second.postmaster_pid() is not None
    finally:
        second.stop()


def test_servers_of_a_live_owner_are_borrowed_not_stopped(var_dir: Path) -> None:
    pg = start_local_postgres(var_dir / "pg")
    rs = start_local_redis(var_dir / "redis")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        for root in (pg.root, rs.root):
            (root / "owner.pid").write_text(f"{other.pid}\n")  # as if another `grid-mgmt up` had started them
        borrowed_pg = start_local_postgres(var_dir / "pg")
        borrowed_rs = start_local_redis(var_dir / "redis")
        assert (borrowed_pg.port, borrowed_rs.port) == (pg.port, rs.port)
        assert not borrowed_pg.owned and not borrowed_rs.owned
        borrowed_pg.stop()
        borrowed_rs.stop()
        assert tcp_reachable("127.0.0.1", pg.port) and tcp_reachable("127.0.0.1", rs.port)
    finally:
        other.kill()
        other.wait()
        pg.owned = rs.owned = True
        rs.stop()
        pg.stop()
    assert not tcp_reachable("127.0.0.1", pg.port) and not tcp_reachable("127.0.0.1", rs.port)


def test_servers_left_by_a_dead_owner_are_adopted(var_dir: Path) -> None:
    rs = start_local_redis(var_dir / "redis")
    (rs.root / "owner.pid").write_text("999999999\n")
    adopted = start_local_redis(var_dir / "redis")
    assert adopted.owned and adopted.port == rs.port
    adopted.stop()
    assert not pid_alive(rs.pid)
    assert rs.process is not None and rs.process.wait(timeout=5) == 0


def test_configured_database_that_does_not_answer_fails_fast_and_clearly(var_dir: Path) -> None:
    port = free_port()
    settings = Settings(database_url=f"postgresql+asyncpg://postgres@127.0.0.1:{port}/grid_mgmt")
    started = time.monotonic()
    with pytest.raises(ServiceError, match=f"127.0.0.1:{port}"):
        ensure_services(settings, var_dir)
    assert time.monotonic() - started < 5
    assert not (var_dir / "pg").exists()


def test_configured_redis_that_does_not_answer_fails_and_stops_what_was_started(
    var_dir: Path, suite_database_url: str
) -> None:
    settings = Settings(database_url=suite_database_url, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(ServiceError, match="Redis"):
        ensure_services(settings, var_dir)


def test_configured_services_are_used_as_given(var_dir: Path, suite_database_url: str, suite_redis_url: str) -> None:
    with ensure_services(Settings(database_url=suite_database_url, redis_url=suite_redis_url), var_dir) as services:
        assert services.database_url == suite_database_url and services.redis_url == suite_redis_url
        assert services.postgres is None and services.redis is None
        assert services.env() == {"GRID_DATABASE_URL": suite_database_url, "GRID_REDIS_URL": suite_redis_url}
    assert not (var_dir / "pg").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the cluster user only exists when we run as root")
def test_private_directories_are_detected_for_the_cluster_user(var_dir: Path) -> None:
    user = ensure_system_user()
    private = var_dir / "private"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    assert traversable_by(var_dir, user)
    assert not traversable_by(private / "var" / "pg", user)


def test_free_port_is_free() -> None:
    port = free_port()
    assert not tcp_reachable("127.0.0.1", port)


def test_unreachable_defaults_fall_back_to_local_servers(var_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from grid_mgmt.runner import services as services_module

    db_default = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/grid_mgmt"
    redis_default = f"redis://127.0.0.1:{free_port()}/0"
    monkeypatch.setattr(services_module, "DEFAULT_DATABASE_URL", db_default)
    monkeypatch.setattr(services_module, "DEFAULT_REDIS_URL", redis_default)
    monkeypatch.delenv("GRID_DATABASE_URL", raising=False)
    monkeypatch.delenv("GRID_REDIS_URL", raising=False)
    settings = Settings(database_url=db_default, redis_url=redis_default)
    started = time.monotonic()
    with ensure_services(settings, var_dir) as services:
        assert (services.database_source, services.redis_source) == ("local", "local")
        assert services.database_url != db_default and services.redis_url != redis_default
    assert time.monotonic() - started < 30


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: only then does the cluster run as another user")
def test_cluster_moves_to_the_temp_dir_when_its_user_cannot_reach_var(var_dir: Path) -> None:
    private = var_dir / "home"
    private.mkdir()
    private.chmod(0o700)  # like /root, where CI may clone the repository
    pg = start_local_postgres(private / "var" / "pg")
    try:
        assert pg.root.parent.parent == Path(tempfile.gettempdir())
        assert pg.root.name == "pg" and pg.postmaster_pid() is not None
    finally:
        pg.stop()
        shutil.rmtree(pg.root.parent, ignore_errors=True)
