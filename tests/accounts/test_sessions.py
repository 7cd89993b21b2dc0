"""Login, refresh rotation with reuse detection, logout, the login throttle, and /me."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from grid_mgmt.accounts.rules import BAD_CREDENTIALS, AuthFailed
from grid_mgmt.accounts.service import AccountService
from grid_mgmt.accounts.throttle import LoginThrottle
from grid_mgmt.accounts.tokens import TokenCodec
from grid_mgmt.db.engine import make_engine
from grid_mgmt.settings import Settings
from tests.accounts.conftest import PASSWORD, bearer, login_body, unique

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/auth/me"


async def test_login_answers_tokens_and_the_user(client: AsyncTestClient[Litestar], make_user, pg) -> None:
    user = await make_user(
        roles=["worker"], duty_grid_codes=["DG10000101"], district_code="420323", phone="13800000000"
    )
    body = await login_body(client, user["username"])
    assert body["token_type"] == "bearer" and body["expires_in"] == 15 * 60
    assert body["access_token"].count(".") == 2 and len(body["refresh_token"]) >= 43
    me = body["user"]
    assert me["id"] == user["id"] and me["roles"] == ["worker"] and me["duty_grid_codes"] == ["DG10000101"]
    assert me["district_code"] == "420323" and "password" not in me and "password_hash" not in me
    r = await client.get(ME, headers=bearer(body["access_token"]))
    assert r.status_code == 200, r.text
    assert r.json() == me
    stored = await pg.fetchval("SELECT token_hash FROM refresh_token WHERE user_id = $1", user["id"])
    assert stored is not None and body["refresh_token"] not in stored  # only the hash is stored


async def test_every_login_failure_is_the_same_401(
    client: AsyncTestClient[Litestar], make_user, auth_headers, settings: Settings
) -> None:
    user = await make_user()
    inactive = await make_user()
    r = await client.post(f"/api/v1/admin/users/{inactive['id']}/deactivate", headers=await auth_headers("admin"))
    assert r.status_code == 200, r.text
    attempts = [
        {"username": user["username"], "password": "wrong password"},
        {"username": unique("nobody"), "password": PASSWORD},
        {"username": inactive["username"], "password": PASSWORD},
        {"username": "", "password": ""},
    ]
    answers = []
    for attempt in attempts:
        r = await client.post(LOGIN, json=attempt)
        assert r.status_code == 401, (attempt, r.text)
        answers.append(r.json())
    assert all(a == {"status_code": 401, "detail": BAD_CREDENTIALS} for a in answers), answers
    redis = Redis.from_url(settings.redis_url)
    try:  # the empty username is shared by every run: forget its failure
        assert await redis.delete(LoginThrottle.key("", "testclient")) == 1
    finally:
        await redis.aclose()


async def test_login_needs_both_fields(client: AsyncTestClient[Litestar]) -> None:
    r = await client.post(LOGIN, json={"username": "admin"})
    assert r.status_code == 400 and "password" in r.text


async def test_refresh_rotates_and_reuse_ends_that_login_only(client: AsyncTestClient[Litestar], make_user) -> None:
    user = await make_user()
    first = await login_body(client, user["username"])
    other_device = await login_body(client, user["username"])
    r = await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"] and second["user"]["id"] == user["id"]
    assert (await client.get(ME, headers=bearer(second["access_token"]))).status_code == 200
    assert (await client.get(ME, headers=bearer(first["access_token"]))).status_code == 200  # still in its lifetime

    r = await client.post(REFRESH, json={"refresh_token": second["refresh_token"]})  # the device goes on
    assert r.status_code == 200, r.text
    third = r.json()

    r = await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})  # replayed: someone copied it
    assert r.status_code == 401 and "already used" in r.json()["detail"]
    # that login's chain has ended, its newest token too (whoever holds it), and every access token died at once
    assert (await client.post(REFRESH, json={"refresh_token": third["refresh_token"]})).status_code == 401
    for session in (third, other_device):
        r = await client.get(ME, headers=bearer(session["access_token"]))
        assert r.status_code == 401 and "revoked" in r.json()["detail"]
    # the other device's login goes on: it refreshes and is back
    r = await client.post(REFRESH, json={"refresh_token": other_device["refresh_token"]})
    assert r.status_code == 200, r.text
    assert (await client.get(ME, headers=bearer(r.json()["access_token"]))).status_code == 200
    await login_body(client, user["username"])  # the password still works


async def test_a_phone_that_lost_the_answer_sends_the_old_token_again_once(
    client: AsyncTestClient[Litestar], make_user, pg
) -> None:
    user = await make_user()
    first = await login_body(client, user["username"])
    r = await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 200, r.text
    lost = r.json()  # the answer never reached the phone
    r = await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})  # its retry, seconds later
    assert r.status_code == 200, r.text
    retried = r.json()
    assert retried["refresh_token"] not in (first["refresh_token"], lost["refresh_token"])
    assert (await client.get(ME, headers=bearer(retried["access_token"]))).status_code == 200
    live = await pg.fetchval("SELECT count(*) FROM refresh_token WHERE user_id = $1 AND revoked_at IS NULL", user["id"])
    assert live == 1  # the lost token was replaced, not added to
    # only once: the same old token a third time is reuse, and that login ends
    r = await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 401 and "already used" in r.json()["detail"]
    assert (await client.post(REFRESH, json={"refresh_token": retried["refresh_token"]})).status_code == 401


async def test_the_replaced_token_showing_up_later_ends_the_login(client: AsyncTestClient[Litestar], make_user) -> None:
    """Who held the token the retry replaced (a thief replayed the old one within the window, or the phone had the
    answer after all) is found out when it is used: the login ends, the retry's tokens too."""
    user = await make_user()
    first = await login_body(client, user["username"])
    held = (await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})).json()
    copied = await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert copied.status_code == 200, copied.text
    copied_refresh = copied.json()["refresh_token"]
    r = await client.post(REFRESH, json={"refresh_token": copied_refresh})  # the copier goes on …
    assert r.status_code == 200, r.text
    copier = r.json()
    r = await client.post(REFRESH, json={"refresh_token": held["refresh_token"]})  # … until the holder refreshes
    assert r.status_code == 401 and "already used" in r.json()["detail"]
    assert (await client.get(ME, headers=bearer(copier["access_token"]))).status_code == 401
    assert (await client.post(REFRESH, json={"refresh_token": copier["refresh_token"]})).status_code == 401


async def test_no_retry_after_the_window_or_when_it_is_off(
    client: AsyncTestClient[Litestar], make_user, pg, settings: Settings
) -> None:
    user = await make_user()
    first = await login_body(client, user["username"])
    second = (await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})).json()
    # the rotation happened a minute ago (both rows of it move together: they were written in one transaction)
    await pg.execute(
        "UPDATE refresh_token SET created_at = created_at - interval '61 s' WHERE family_id = (SELECT family_id "
        "FROM refresh_token WHERE user_id = $1 LIMIT 1) AND revoked_at IS NULL",
        user["id"],
    )
    await pg.execute(
        "UPDATE refresh_token SET revoked_at = revoked_at - interval '61 s' WHERE user_id = $1 AND revoked_at IS NOT "
        "NULL",
        user["id"],
    )
    r = await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 401 and "already used" in r.json()["detail"]
    assert (await client.post(REFRESH, json={"refresh_token": second["refresh_token"]})).status_code == 401

    other = await make_user()
    engine = make_engine(settings)
    try:
        strict = AccountService(engine, replace(settings, refresh_retry_s=0))
        one = await login_body(client, other["username"])
        await strict.refresh(one["refresh_token"])
        with pytest.raises(AuthFailed, match="already used"):
            await strict.refresh(one["refresh_token"])
    finally:
        await engine.dispose()


async def test_a_refreshed_token_stays_in_its_login(client: AsyncTestClient[Litestar], make_user, pg) -> None:
    """Each refresh row carries the family of the login it descends from; two logins are two families."""
    user = await make_user()
    one, two = await login_body(client, user["username"]), await login_body(client, user["username"])
    token = one["refresh_token"]
    for _ in range(3):
        r = await client.post(REFRESH, json={"refresh_token": token})
        assert r.status_code == 200, r.text
        token = r.json()["refresh_token"]
    rows = await pg.fetch("SELECT id, family_id FROM refresh_token WHERE user_id = $1 ORDER BY id", user["id"])
    assert len(rows) == 5
    families = {r["family_id"] for r in rows}
    assert len(families) == 2 and all(f in {r["id"] for r in rows} for f in families)
    assert sum(r["family_id"] == r["id"] for r in rows) == 2  # each login's first row heads its family
    assert two["refresh_token"] != token


async def test_unknown_refresh_token_is_401(client: AsyncTestClient[Litestar]) -> None:
    r = await client.post(REFRESH, json={"refresh_token": "x" * 43})
    assert r.status_code == 401 and "log in again" in r.json()["detail"]


async def test_logout_ends_the_session(client: AsyncTestClient[Litestar], make_user) -> None:
    user = await make_user()
    body = await login_body(client, user["username"])
    other = await login_body(client, user["username"])
    r = await client.post(LOGOUT, json={"refresh_token": body["refresh_token"]})
    assert r.status_code == 204, r.text
    r = await client.post(REFRESH, json={"refresh_token": body["refresh_token"]})
    assert r.status_code == 401 and "already used" not in r.json()["detail"]  # a logout is no theft
    assert (await client.post(REFRESH, json={"refresh_token": other["refresh_token"]})).status_code == 200
    assert (await client.post(LOGOUT, json={"refresh_token": body["refresh_token"]})).status_code == 204  # idempotent
    assert (await client.post(LOGOUT, json={})).status_code == 422


async def test_logout_everywhere_kills_access_tokens_at_once(client: AsyncTestClient[Litestar], make_user) -> None:
    user = await make_user()
    a = await login_body(client, user["username"])
    b = await login_body(client, user["username"])
    assert (await client.get(ME, headers=bearer(b["access_token"]))).status_code == 200  # cached now
    r = await client.post(LOGOUT, json={"everywhere": True}, headers=bearer(a["access_token"]))
    assert r.status_code == 204, r.text
    for session in (a, b):
        assert (await client.get(ME, headers=bearer(session["access_token"]))).status_code == 401
        assert (await client.post(REFRESH, json={"refresh_token": session["refresh_token"]})).status_code == 401
    fresh = await login_body(client, user["username"])
    assert (await client.get(ME, headers=bearer(fresh["access_token"]))).status_code == 200


async def test_logout_everywhere_with_only_a_refresh_token(client: AsyncTestClient[Litestar], make_user) -> None:
    user = await make_user()
    a = await login_body(client, user["username"])
    b = await login_body(client, user["username"])
    r = await client.post(LOGOUT, json={"refresh_token": a["refresh_token"], "everywhere": True})
    assert r.status_code == 204
    assert (await client.get(ME, headers=bearer(b["access_token"]))).status_code == 401
    r = await client.post(LOGOUT, json={"everywhere": True})
    assert r.status_code == 401


async def test_me_needs_a_valid_token(client: AsyncTestClient[Litestar], make_user, settings: Settings) -> None:
    r = await client.get(ME)
    assert r.status_code == 401 and "Bearer" in r.json()["detail"]
    user = await make_user()
    body = await login_body(client, user["username"])
    codec = TokenCodec.from_settings(settings)
    claims = codec.verify(body["access_token"])
    expired, _ = codec.issue(
        user_id=user["id"],
        roles=claims.roles,
        unit=None,
        district=None,
        token_version=claims.tv,
        now=time.time() - 3600,
    )
    r = await client.get(ME, headers=bearer(expired))
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    token = body["access_token"]
    tampered = token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB")
    r = await client.get(ME, headers=bearer(tampered))
    assert r.status_code == 401 and "signature" in r.json()["detail"]
    foreign = TokenCodec(b"not the server key, 32 bytes long", 900).issue(
        user_id=user["id"], roles=["admin"], unit=None, district=None, token_version=claims.tv
    )[0]
    assert (await client.get(ME, headers=bearer(foreign))).status_code == 401
    ghost, _ = codec.issue(user_id=2**31 - 1, roles=["admin"], unit=None, district=None, token_version=0)
    assert (await client.get(ME, headers=bearer(ghost))).status_code == 401
    for header in ("Basic YWRtaW46ZGVtbw==", "Bearer", "Bearer not-a-jwt", token):
        r = await client.get(ME, headers={"Authorization": header})
        assert r.status_code == 401, header


async def test_public_reads_pass_without_a_token_but_not_with_a_bad_one(client: AsyncTestClient[Litestar]) -> None:
    assert (await client.get("/api/v1/units", params={"limit": 1})).status_code == 200
    bad = bearer("not.a.token")
    assert (await client.get("/api/v1/units", params={"limit": 1}, headers=bad)).status_code == 401
    for path in ("/health", "/docs/openapi.json"):
        assert (await client.get(path, headers=bad)).status_code in (200, 503), path
    r = await client.post(LOGIN, json={"username": "admin", "password": "demo"}, headers=bad)
    assert r.status_code == 200  # a stale header never blocks logging in


async def test_openapi_documents_the_account_routes(client: AsyncTestClient[Litestar]) -> None:
    paths = (await client.get("/docs/openapi.json")).json()["paths"]
    login = paths[LOGIN]["post"]["responses"]
    assert {"200", "401", "429"} <= set(login)
    assert "ErrorRead" in str(login["401"])
    assert {"200", "401"} <= set(paths[ME]["get"]["responses"])
    users = paths["/api/v1/admin/users"]
    assert {"201", "401", "403", "409", "422"} <= set(users["post"]["responses"])
    assert {"200", "401", "403"} <= set(users["get"]["responses"])
    one = paths["/api/v1/admin/users/{user_id}"]
    assert {"200", "401", "403", "404", "409", "422"} <= set(one["patch"]["responses"])
