"""Fixtures of the calendar tests: an engine on the test database and the API with the calendar routes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from grid_mgmt.db.engine import make_engine
from grid_mgmt.settings import Settings
from grid_mgmt.sla.calendar import invalidate

DAYS = "/api/v1/calendar/days"


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(settings)
    invalidate()
    try:
        yield engine
    finally:
        invalidate()
        await engine.dispose()


@pytest.fixture
def calendar_client(app: Litestar, client: AsyncTestClient[Litestar]) -> AsyncTestClient[Litestar]:
    """The session's client (create_app lists the calendar routes)."""
    return client
