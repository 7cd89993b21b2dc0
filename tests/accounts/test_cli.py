"""`grid-mgmt users …` run as a real process against the test database."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from grid_mgmt.accounts import cli as users_cli
from grid_mgmt.cli import build_parser
from grid_mgmt.settings import Settings
from tests.accounts.conftest import bearer, login_body, unique


async def _cli(settings: Settings, *args: str, stdin: bytes = b"") -> tuple[int, str, str]:
    env = {**os.environ, "GRID_DATABASE_URL": settings.database_url, "GRID_REDIS_URL": settings.redis_url}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "grid_mgmt.cli",
        "users",
        *args,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def test_users_is_a_grid_mgmt_command() -> None:
    args = build_parser().parse_args(["users", "deactivate", "someone"])
    assert args.username == "someone" and callable(args.func)


async def test_create_list_deactivate_activate_set_password(
    client: AsyncTestClient[Litestar], settings: Settings, pg, cleanup: list[str]
) -> None:
    name = unique("cli")
    cleanup.append(name)
    code, out, err = await _cli(
        settings,
        "create",
        name,
        "--role",
        "worker",
        "--display-name",
        "命令行",
        "--duty-grid",
        "DG10000201",
        "--district",
        "420323",
        "--password",
        "cli password 1",
    )
    assert code == 0, err
    assert name in out and "worker" in out
    row = await pg.fetchrow("SELECT id, active, display_name FROM app_user WHERE username = $1", name)
    assert row["active"] and row["display_name"] == "命令行"
    body = await login_body(client, name, "cli password 1")
    assert body["user"]["duty_grid_codes"] == ["DG10000201"]

    code, out, err = await _cli(settings, "list", "-q", name)
    assert code == 0 and name in out and "active" in out, err
    code, out, _ = await _cli(settings, "list", "--role", "unit_staff", "--unit", "U06")
    assert "unit-U06" in out and "worker1 " not in out

    code, out, err = await _cli(settings, "deactivate", name)
    assert code == 0, err
    assert not await pg.fetchval("SELECT active FROM app_user WHERE id = $1", row["id"])
    assert (await client.get("/api/v1/auth/me", headers=bearer(body["access_token"]))).status_code == 401
    code, out, _ = await _cli(settings, "list", "--inactive", "-q", name)
    assert name in out and "inactive" in out

    code, _, err = await _cli(settings, "activate", name)
    assert code == 0, err
    code, _, err = await _cli(settings, "set-password", name, "--password", "cli password 2")
    assert code == 0, err
    await login_body(client, name, "cli password 2")


async def test_refusals_exit_1_with_the_reason(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    async def run(*args: str) -> tuple[int, str]:  # in a thread of this process: its own event loop, like the CLI
        code = await asyncio.to_thread(users_cli.main, list(args), settings)
        return code, capsys.readouterr().err

    code, err = await run("create", "admin", "--role", "admin", "--password", "whatever 123")
    assert code == 1 and "taken" in err
    code, err = await run("create", unique("cli"), "--role", "worker", "--password", "short")
    assert code == 1 and "at least 8" in err
    code, err = await run("create", unique("cli"), "--role", "unit_staff", "--password", "long enough")
    assert code == 1 and "unit_code" in err
    code, err = await run("create", unique("cli"), "--role", "worker", "--unit", "NOPE", "--password", "long enough")
    assert code == 1 and "no unit with code 'NOPE'" in err
    code, err = await run("deactivate", unique("nobody"))
    assert code == 1 and "no user named" in err
    code, err = await run("create", unique("cli"), "--role", "king")
    assert code == 2 and "invalid choice" in err
    code, err = await run("list", "--active", "--inactive")
    assert code == 2 and "not allowed with" in err


async def test_password_is_asked_for_when_not_given(
    settings: Settings, client: AsyncTestClient[Litestar], cleanup: list[str]
) -> None:
    name = unique("cli")
    cleanup.append(name)
    code, _, err = await _cli(settings, "create", name, "--role", "acceptor", stdin=b"typed secret 1\ntyped secret 1\n")
    assert code == 0, err
    await login_body(client, name, "typed secret 1")
    code, _, err = await _cli(settings, "set-password", name, stdin=b"one password\nanother one\n")
    assert code == 1 and "differ" in err
