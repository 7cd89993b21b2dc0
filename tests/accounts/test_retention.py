"""The nightly purge of dead refresh tokens: expired or ended more than a day ago go, nothing live or still
recognisable as reused does."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import create_async_engine

from grid_mgmt.accounts.retention import purge_sessions
from grid_mgmt.accounts.tokens import hash_refresh_token
from tests.accounts.conftest import login_body

REFRESH = "/api/v1/auth/refresh"


async def test_dead_refresh_tokens_go_and_live_or_rotated_ones_stay(
    client: AsyncTestClient[Litestar], make_user, pg, database_url: str
) -> None:
    user = await make_user()
    first = await login_body(client, user["username"])
    second = (await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})).json()  # first: rotated
    other = await login_body(client, user["username"])
    ended = await login_body(client, user["username"])
    assert (await client.post("/api/v1/auth/logout", json={"refresh_token": ended["refresh_token"]})).status_code == 204
    rows = {r["id"]: r for r in await pg.fetch("SELECT * FROM refresh_token WHERE user_id = $1", user["id"])}
    assert len(rows) == 4
    # the other login's token expired two days ago; the logout was an hour ago
    await pg.execute(
        "UPDATE refresh_token SET expires_at = now() - interval '2 days' WHERE user_id = $1 AND revoked_at IS NULL "
        "AND family_id <> (SELECT family_id FROM refresh_token WHERE user_id = $1 ORDER BY id LIMIT 1)",
        user["id"],
    )
    await pg.execute(
        "UPDATE refresh_token SET expires_at = now() - interval '1 hour', revoked_at = now() - interval '1 hour' "
        "WHERE user_id = $1 AND expires_at <= now() AND expires_at > now() - interval '1 day'",
        user["id"],
    )
    engine = create_async_engine(database_url)
    try:
        assert await purge_sessions(engine, batch=1) >= 1
    finally:
        await engine.dispose()
    left = {
        r["token_hash"] for r in await pg.fetch("SELECT token_hash FROM refresh_token WHERE user_id = $1", user["id"])
    }
    # the rotated first token (a replay must still be found out as reuse), its live successor, the recent logout
    kept = {hash_refresh_token(t["refresh_token"]) for t in (first, second, ended)}
    assert left == kept
    assert await pg.fetchval("SELECT count(*) FROM refresh_token WHERE expires_at < now() - interval '1 day'") == 0
    r = await client.post(REFRESH, json={"refresh_token": other["refresh_token"]})
    assert r.status_code == 401 and "unknown, expired or revoked" in r.json()["detail"]


def test_the_purge_is_a_nightly_cron_job() -> None:
    from workers.settings import WorkerSettings

    assert any(c.name == "accounts.purge_sessions" for c in WorkerSettings.cron_jobs)
