"""The `grid-mgmt users` command: create, list, deactivate, activate and set passwords, via the account service."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, get_args

from grid_mgmt.accounts.schemas import Role, UserCreate, UserRead

if TYPE_CHECKING:  # the service pulls in litestar, sqlalchemy and redis: only load them when a command runs
    from grid_mgmt.accounts.service import AccountService

from grid_mgmt.lib.cli import run_command
from grid_mgmt.settings import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
PROG = "grid-mgmt users"
Action = Callable[["AccountService", argparse.Namespace], Awaitable[int]]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `users create|list|deactivate|activate|set-password` to the `grid-mgmt` command."""
    parser = subparsers.add_parser(
        "users",
        help="manage user accounts (create, list, deactivate, activate, set-password)",
        description="Manage the users of GRID_DATABASE_URL. Exit codes: 0 done, 1 refused (the message says why), "
        "2 usage error. Changes reach running API processes at once via Redis, at the latest after "
        "GRID_AUTH_CACHE_SECONDS.",
    )
    sub = parser.add_subparsers(dest="users_command", metavar="ACTION", required=True)

    create = sub.add_parser("create", help="create a user")
    create.add_argument("username")
    create.add_argument(
        "--role",
        dest="roles",
        action="append",
        choices=get_args(Role),
        required=True,
        help="a role (repeat for several)",
    )
    create.add_argument("--display-name", help="the name shown to others (default: the username)")
    create.add_argument("--unit", dest="unit_code", help="unit code (required for unit_staff)")
    create.add_argument("--district", dest="district_code", help="6-digit district code")
    create.add_argument("--phone")
    create.add_argument(
        "--duty-grid",
        dest="duty_grid_codes",
        action="append",
        default=[],
        help="a duty grid a worker patrols (repeatable)",
    )
    _password_argument(create)
    create.set_defaults(func=_runner(_create))

    show = sub.add_parser("list", help="list users")
    show.add_argument("--role", choices=get_args(Role))
    show.add_argument("--unit", dest="unit_code")
    state = show.add_mutually_exclusive_group()
    state.add_argument("--active", dest="active", action="store_const", const=True, help="only active users")
    state.add_argument("--inactive", dest="active", action="store_const", const=False, help="only deactivated users")
    show.add_argument("-q", dest="q", help="part of the username, display name or phone")
    show.add_argument("--limit", type=int, default=1000, help="at most this many (default 1000)")
    show.set_defaults(func=_runner(_list))

    for name, action, text in (
        ("deactivate", _deactivate, "deactivate a user: every session and access token ends"),
        ("activate", _activate, "activate a user again"),
    ):
        one = sub.add_parser(name, help=text)
        one.add_argument("username")
        one.set_defaults(func=_runner(action))

    password = sub.add_parser("set-password", help="set a user's password: every session and access token ends")
    password.add_argument("username")
    _password_argument(password)
    password.set_defaults(func=_runner(_set_password))


def _password_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--password", help="the password (default: asked for, without echo)")


class _Refused(Exception):
    """A command-line problem found before the service is asked (exit code 1)."""


def _ask_password(args: argparse.Namespace) -> str:
    if args.password is not None:
        return str(args.password)
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise _Refused("the two passwords differ")
    return first


def _runner(action: Action) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        return run_command(PROG, args, lambda settings: _with_service(settings, action, args), refused=(_Refused,))

    return run


async def _with_service(settings: Settings, action: Action, args: argparse.Namespace) -> int:
    from redis.asyncio import Redis

    from grid_mgmt.accounts.service import AccountService
    from grid_mgmt.db.engine import make_engine

    engine = make_engine(settings)
    redis = Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=2)
    try:
        return await action(AccountService(engine, settings, redis=redis), args)
    finally:
        await redis.aclose()
        await engine.dispose()


def _line(user: UserRead) -> str:
    state = "active" if user.active else "inactive"
    return (
        f"{user.id:>6}  {user.username:<24} {','.join(user.roles):<24} {user.unit_code or '-':<10} "
        f"{state:<8} {user.display_name}"
    )


async def _create(accounts: AccountService, args: argparse.Namespace) -> int:
    password = _ask_password(args)
    fields: dict[str, Any] = {
        "username": args.username,
        "password": password,
        "display_name": args.display_name or args.username,
        "roles": args.roles,
        "unit_code": args.unit_code,
        "district_code": args.district_code,
        "phone": args.phone,
        "duty_grid_codes": args.duty_grid_codes,
    }
    user = await accounts.create_user(UserCreate(**fields))
    print(f"created {_line(user)}")
    return EXIT_OK


async def _list(accounts: AccountService, args: argparse.Namespace) -> int:
    cursor: str | None = None
    shown = 0
    while shown < args.limit:
        page = await accounts.list_users(
            limit=min(args.limit - shown, accounts.settings.max_page_size),
            cursor=cursor,
            role=args.role,
            unit_code=args.unit_code,
            active=args.active,
            q=args.q,
        )
        for user in page.items:
            print(_line(user))
        shown += len(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    return EXIT_OK


async def _deactivate(accounts: AccountService, args: argparse.Namespace) -> int:
    user = await accounts.find_user(args.username)
    print(f"deactivated {_line(await accounts.set_active(user.id, False))}")
    return EXIT_OK


async def _activate(accounts: AccountService, args: argparse.Namespace) -> int:
    user = await accounts.find_user(args.username)
    print(f"activated {_line(await accounts.set_active(user.id, True))}")
    return EXIT_OK


async def _set_password(accounts: AccountService, args: argparse.Namespace) -> int:
    user = await accounts.find_user(args.username)
    await accounts.set_password(user.id, _ask_password(args))
    print(f"password set for {user.username}; every session of the user has ended")
    return EXIT_OK


def main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    """Run `users` on its own (`python -m grid_mgmt.accounts.cli`, tests: with their `settings`); the exit code."""
    parser = argparse.ArgumentParser(prog="grid-mgmt")
    register(parser.add_subparsers(dest="command"))
    try:
        args = parser.parse_args(["users", *(sys.argv[1:] if argv is None else argv)])
    except SystemExit as exc:
        return int(exc.code or 0)
    args.settings = settings
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
