"""Fixtures for the runner tests: a var directory the cluster user can reach, the suite's database and Redis."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from grid_mgmt.runner.probe import ServiceError, probe_postgres, probe_redis
from grid_mgmt.settings import Settings


@pytest.fixture
def var_dir() -> Iterator[Path]:
    """A fresh var directory under the temp dir, searchable by everyone (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="grid-runner-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def suite_settings() -> Settings:
    """The settings the suite runs with (GRID_DATABASE_URL / GRID_REDIS_URL from `make test`, or defaults)."""
    return Settings()


@pytest.fixture(scope="session")
def suite_redis_url(suite_settings: Settings) -> str:
    """The suite's Redis; the test is skipped when it does not answer."""
    try:
        probe_redis(suite_settings.redis_url)
    except ServiceError as exc:
        pytest.skip(f"no Redis for the suite: {exc}")
    return suite_settings.redis_url


@pytest.fixture(scope="session")
def suite_database_url(suite_settings: Settings) -> str:
    """The suite's PostgreSQL; the test is skipped when it does not answer."""
    try:
        probe_postgres(suite_settings.database_url)
    except ServiceError as exc:
        pytest.skip(f"no PostgreSQL for the suite: {exc}")
    return suite_settings.database_url
