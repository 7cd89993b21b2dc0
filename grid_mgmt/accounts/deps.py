"""Wiring of the accounts feature: its lifespan resources (token codec, principal cache) and the service provider."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import NamedDependency

from grid_mgmt.accounts.middleware import STATE_KEY, Authenticator
from grid_mgmt.accounts.principals import PrincipalCache
from grid_mgmt.accounts.service import AccountService
from grid_mgmt.accounts.tokens import TokenCodec
from grid_mgmt.settings import Settings

log = logging.getLogger(__name__)
SERVICE_KEY = "accounts"


@asynccontextmanager
async def account_resources(app: Litestar) -> AsyncIterator[None]:
    """After the shared resources (engine, redis, settings): the authenticator and its invalidation listener."""
    settings: Settings = app.state.settings
    if not settings.jwt_secret:
        log.warning("GRID_JWT_SECRET is not set: access tokens are signed with an insecure development key")
    elif len(settings.jwt_secret) < 32:
        log.warning("GRID_JWT_SECRET is shorter than 32 characters: use 32+ random bytes")
    cache = PrincipalCache(app.state.engine, settings.auth_cache_seconds, app.state.redis)
    authenticator = Authenticator(TokenCodec.from_settings(settings), cache)
    app.state[STATE_KEY] = authenticator
    app.state[SERVICE_KEY] = AccountService(
        app.state.engine, settings, redis=app.state.redis, cache=cache, codec=authenticator.codec
    )
    await cache.start()
    try:
        yield
    finally:
        await cache.stop()


def provide_accounts(state: State) -> AccountService:
    """The account service of this app (the CLI builds its own with the same constructor)."""
    service: AccountService = state[SERVICE_KEY]
    return service


Accounts = NamedDependency[AccountService]
"""A handler parameter `accounts: Accounts` receives the AccountService."""
