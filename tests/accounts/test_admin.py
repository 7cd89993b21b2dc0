"""User administration: admin only, create with checks, PATCH semantics, (de)activation, passwords."""

from __future__ import annotations

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.accounts.conftest import PASSWORD, bearer, login_body, unique

USERS = "/api/v1/admin/users"
OTHER_ROLES = ("worker1", "acceptor1", "leader1", "dispatcher1", "supervisor1", "unit-U01")


def _endpoints(user_id: int) -> list[tuple[str, str, dict[str, object] | None]]:
    return [
        ("GET", USERS, None),
        ("POST", USERS, {"username": unique(), "password": PASSWORD, "display_name": "x", "roles": ["worker"]}),
        ("GET", f"{USERS}/{user_id}", None),
        ("PATCH", f"{USERS}/{user_id}", {"display_name": "hacked"}),
        ("POST", f"{USERS}/{user_id}/deactivate", None),
        ("POST", f"{USERS}/{user_id}/activate", None),
        ("POST", f"{USERS}/{user_id}/password", {"password": "new password 1"}),
    ]


async def test_admin_endpoints_are_401_without_a_token_and_403_for_every_other_role(
    client: AsyncTestClient[Litestar], auth_headers, make_user
) -> None:
    victim = await make_user()
    for username in (None, *OTHER_ROLES):
        headers = await auth_headers(username) if username else {}
        for method, path, body in _endpoints(victim["id"]):
            r = await client.request(method, path, json=body, headers=headers)
            assert r.status_code == (403 if username else 401), (username, method, path, r.text)
            if username:
                assert "admin" in r.json()["detail"]
    r = await client.get(f"{USERS}/{victim['id']}", headers=await auth_headers("admin"))
    assert r.json()["display_name"] == "测试用户" and r.json()["active"]


async def test_create_get_and_list(client: AsyncTestClient[Litestar], auth_headers, make_user) -> None:
    admin = await auth_headers("admin")
    tag = unique("lst")
    worker = await make_user(
        roles=["worker"], display_name=f"{tag} 网格员", duty_grid_codes=["DG10000103", "DG10000103"], phone="139 0000"
    )
    staff = await make_user(roles=["unit_staff"], unit_code="U06", display_name=f"{tag} 水务")
    assert worker["duty_grid_codes"] == ["DG10000103"] and worker["phone"] == "139 0000"
    assert staff["unit_code"] == "U06" and staff["roles"] == ["unit_staff"] and staff["created_at"]
    r = await client.get(f"{USERS}/{worker['id']}", headers=admin)
    assert r.status_code == 200 and r.json() == {k: v for k, v in worker.items() if k != "password"}

    r = await client.get(USERS, params={"q": tag}, headers=admin)
    expected = sorted([worker, staff], key=lambda u: u["username"])
    assert [u["id"] for u in r.json()["items"]] == [u["id"] for u in expected]
    by = {
        "role": ("unit_staff", staff),
        "unit_code": ("U06", staff),
    }
    for name, (value, expected) in by.items():
        items = (await client.get(USERS, params={name: value, "q": tag}, headers=admin)).json()["items"]
        assert [u["id"] for u in items] == [expected["id"]], name
    items = (await client.get(USERS, params={"role": "worker", "limit": 1000}, headers=admin)).json()["items"]
    assert all("worker" in u["roles"] for u in items) and len(items) >= 59
    await client.post(f"{USERS}/{staff['id']}/deactivate", headers=admin)
    inactive = (await client.get(USERS, params={"active": "false", "q": tag}, headers=admin)).json()["items"]
    assert [u["id"] for u in inactive] == [staff["id"]]


async def test_list_pages_with_a_cursor(client: AsyncTestClient[Litestar], auth_headers) -> None:
    admin = await auth_headers("admin")
    seen: list[str] = []
    cursor = None
    for _ in range(200):
        params = {"limit": 25, "q": "worker"} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(USERS, params=params, headers=admin)).json()
        seen += [u["username"] for u in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen) and len(seen) == len(set(seen)) and len(seen) >= 59
    r = await client.get(USERS, params={"cursor": "!!"}, headers=admin)
    assert r.status_code == 422
    assert (await client.get(USERS, params={"limit": 0}, headers=admin)).status_code == 422
    assert (await client.get(USERS, params={"role": "king"}, headers=admin)).status_code == 400


async def test_duplicate_username_is_409(client: AsyncTestClient[Litestar], auth_headers, make_user) -> None:
    user = await make_user()
    for name in (user["username"], user["username"].upper(), "admin"):
        body = {"username": name, "password": PASSWORD, "display_name": "dup", "roles": ["worker"]}
        r = await client.post(USERS, json=body, headers=await auth_headers("admin"))
        assert r.status_code == 409, r.text
        assert "taken" in r.json()["detail"] and r.json()["extra"]["field"] == "username"


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ({"username": ""}, 422, "username must be 2–64"),
        ({"username": "x" * 65}, 422, "username must be 2–64"),
        ({"username": "张三"}, 422, "username must be"),
        ({"username": "a b"}, 422, "username must be"),
        ({"password": "short"}, 422, "at least 8"),
        ({"password": "p" * 257}, 422, "at most 256"),
        ({"username": "samename1", "password": "SameName1"}, 422, "not be the username"),
        ({"roles": []}, 422, "at least one role"),
        ({"roles": ["king"]}, 400, "roles"),
        ({"roles": "worker"}, 400, "roles"),
        ({"roles": ["unit_staff"]}, 422, "unit_staff users need a unit_code"),
        ({"roles": ["unit_staff"], "unit_code": "NOPE"}, 422, "no unit with code 'NOPE'"),
        ({"unit_code": "NOPE"}, 422, "no unit with code"),
        ({"district_code": "999999"}, 422, "no district with code '999999'"),
        ({"district_code": "420323100"}, 422, "no district"),
        ({"duty_grid_codes": ["DG10000101"]}, 422, "duty_grid_codes are for workers only"),
        ({"roles": ["worker"], "duty_grid_codes": ["DG-NOPE"]}, 422, "no duty grid with code DG-NOPE"),
        ({"display_name": "   "}, 422, "display_name"),
        ({"display_name": "名" * 101}, 422, "display_name"),
        ({"phone": "call me"}, 422, "phone"),
        ({"display_name": None}, 400, "display_name"),
        ({"password": None}, 400, "password"),
    ],
)
async def test_bad_input_is_refused_with_a_clear_message(
    client: AsyncTestClient[Litestar], auth_headers, cleanup, change, status, words
) -> None:
    body = {"username": unique(), "password": PASSWORD, "display_name": "新用户", "roles": ["acceptor"], **change}
    cleanup.append(str(body["username"]))
    r = await client.post(USERS, json=body, headers=await auth_headers("admin"))
    assert r.status_code == status, r.text
    assert words in r.text, r.text


async def test_patch_changes_only_what_is_sent(client: AsyncTestClient[Litestar], auth_headers, make_user) -> None:
    admin = await auth_headers("admin")
    user = await make_user(roles=["worker"], phone="13900000000", duty_grid_codes=["DG10000104"])
    body = await login_body(client, user["username"])
    headers = bearer(body["access_token"])

    r = await client.patch(f"{USERS}/{user['id']}", json={"display_name": "改名"}, headers=admin)
    assert r.status_code == 200, r.text
    after = r.json()
    assert (
        after["display_name"] == "改名"
        and after["phone"] == "13900000000"
        and after["duty_grid_codes"] == ["DG10000104"]
    )
    assert (await client.get("/api/v1/auth/me", headers=headers)).status_code == 200  # no scope change: token lives

    r = await client.patch(f"{USERS}/{user['id']}", json={}, headers=admin)
    assert r.status_code == 200 and r.json() == after
    r = await client.patch(f"{USERS}/{user['id']}", json={"phone": None, "duty_grid_codes": []}, headers=admin)
    assert r.json()["phone"] is None and r.json()["duty_grid_codes"] == [] and r.json()["display_name"] == "改名"
    assert (await client.get("/api/v1/auth/me", headers=headers)).status_code == 200

    r = await client.patch(f"{USERS}/{user['id']}", json={"roles": ["unit_staff"]}, headers=admin)
    assert r.status_code == 422 and "unit_code" in r.json()["detail"]
    r = await client.patch(f"{USERS}/{user['id']}", json={"roles": ["unit_staff"], "unit_code": "U07"}, headers=admin)
    assert r.status_code == 200 and r.json()["roles"] == ["unit_staff"] and r.json()["unit_code"] == "U07"
    r = await client.get("/api/v1/auth/me", headers=headers)  # role change: the old token lies about roles now
    assert r.status_code == 401 and "revoked" in r.json()["detail"]
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": body["refresh_token"]})
    assert r.status_code == 200 and r.json()["user"]["roles"] == ["unit_staff"]  # the session survives

    r = await client.patch(f"{USERS}/{user['id']}", json={"unit_code": None}, headers=admin)
    assert r.status_code == 422  # unit staff need a unit
    r = await client.patch(f"{USERS}/{user['id']}", json={"display_name": None}, headers=admin)
    assert r.status_code == 400
    r = await client.patch(f"{USERS}/{user['id']}", json={"duty_grid_codes": ["DG10000104"]}, headers=admin)
    assert r.status_code == 422 and "workers only" in r.json()["detail"]


async def test_unknown_user_is_404(client: AsyncTestClient[Litestar], auth_headers) -> None:
    admin = await auth_headers("admin")
    for method, path, body in _endpoints(2**31 - 1)[2:]:
        r = await client.request(method, path, json=body, headers=admin)
        assert r.status_code == 404, (method, path, r.text)
        assert "no user with id" in r.json()["detail"]


async def test_deactivation_ends_everything_until_activated(
    client: AsyncTestClient[Litestar], auth_headers, make_user, pg
) -> None:
    admin = await auth_headers("admin")
    user = await make_user()
    body = await login_body(client, user["username"])
    r = await client.post(f"{USERS}/{user['id']}/deactivate", headers=admin)
    assert r.status_code == 200 and r.json()["active"] is False
    assert (await client.get("/api/v1/auth/me", headers=bearer(body["access_token"]))).status_code == 401
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": body["refresh_token"]})
    assert r.status_code == 401
    r = await client.post("/api/v1/auth/login", json={"username": user["username"], "password": PASSWORD})
    assert r.status_code == 401
    live = await pg.fetchval("SELECT count(*) FROM refresh_token WHERE user_id = $1 AND revoked_at IS NULL", user["id"])
    assert live == 0
    r = await client.post(f"{USERS}/{user['id']}/activate", headers=admin)
    assert r.status_code == 200 and r.json()["active"] is True
    await login_body(client, user["username"])


async def test_an_admin_cannot_lock_themself_out(client: AsyncTestClient[Litestar], auth_headers, pg) -> None:
    admin = await auth_headers("admin")
    me = (await client.get("/api/v1/auth/me", headers=admin)).json()
    r = await client.post(f"{USERS}/{me['id']}/deactivate", headers=admin)
    assert r.status_code == 409 and "yourself" in r.json()["detail"]
    r = await client.patch(f"{USERS}/{me['id']}", json={"roles": ["supervisor"]}, headers=admin)
    assert r.status_code == 409
    assert await pg.fetchval("SELECT active AND 'admin' = ANY(roles) FROM app_user WHERE id = $1", me["id"])
    assert (await client.get("/api/v1/auth/me", headers=admin)).status_code == 200


async def test_set_password_ends_every_session(client: AsyncTestClient[Litestar], auth_headers, make_user) -> None:
    admin = await auth_headers("admin")
    user = await make_user()
    body = await login_body(client, user["username"])
    r = await client.post(f"{USERS}/{user['id']}/password", json={"password": "short"}, headers=admin)
    assert r.status_code == 422
    r = await client.post(f"{USERS}/{user['id']}/password", json={"password": user["username"]}, headers=admin)
    assert r.status_code == 422 and "username" in r.json()["detail"]
    r = await client.post(f"{USERS}/{user['id']}/password", json={"password": "brand new pass"}, headers=admin)
    assert r.status_code == 200, r.text
    assert (await client.get("/api/v1/auth/me", headers=bearer(body["access_token"]))).status_code == 401
    assert (await client.post("/api/v1/auth/refresh", json={"refresh_token": body["refresh_token"]})).status_code == 401
    r = await client.post("/api/v1/auth/login", json={"username": user["username"], "password": PASSWORD})
    assert r.status_code == 401
    await login_body(client, user["username"], "brand new pass")
