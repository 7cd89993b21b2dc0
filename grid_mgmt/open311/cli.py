"""The `grid-mgmt open311-key` command: make (the key is printed once), list and revoke Open311 api keys."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the service pulls in litestar and sqlalchemy: only load them when a command runs
    from grid_mgmt.open311.schemas import Open311KeyRead
    from grid_mgmt.open311.service import KeyService

from grid_mgmt.lib.cli import run_command
from grid_mgmt.settings import Settings

EXIT_OK, EXIT_FAILED = 0, 1
PROG = "grid-mgmt open311-key"
Action = Callable[["KeyService", argparse.Namespace], Awaitable[int]]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `open311-key create NAME | list | revoke ID-OR-NAME` to the `grid-mgmt` command."""
    parser = subparsers.add_parser(
        "open311-key",
        help="manage the api keys of Open311 clients (create, list, revoke)",
        description="Api keys of Open311 GeoReport v2 clients in GRID_DATABASE_URL. Only a key's sha256 is stored: "
        "`create` prints the key once. Exit codes: 0 done, 1 refused (the message says why), 2 usage error.",
    )
    sub = parser.add_subparsers(dest="open311_command", metavar="ACTION", required=True)
    create = sub.add_parser("create", help="make a key and print it (only now)")
    create.add_argument("name", help="who uses it: the client application or its operator")
    create.set_defaults(func=_runner(_create))
    show = sub.add_parser("list", help="list the keys (id, name, first characters, active, last use)")
    show.set_defaults(func=_runner(_list))
    revoke = sub.add_parser("revoke", help="revoke a key: posting with it answers 403")
    revoke.add_argument("key", help="the key's id, or its name when exactly one key has it")
    revoke.set_defaults(func=_runner(_revoke))


def _runner(action: Action) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        return run_command(PROG, args, lambda settings: _with_service(settings, action, args))

    return run


async def _with_service(settings: Settings, action: Action, args: argparse.Namespace) -> int:
    from grid_mgmt.db.engine import make_engine
    from grid_mgmt.open311.service import KeyService

    engine = make_engine(settings)
    try:
        return await action(KeyService(engine), args)
    finally:
        await engine.dispose()


def _line(key: Open311KeyRead) -> str:
    used = key.last_used_at.isoformat(timespec="seconds") if key.last_used_at else "never used"
    state = "active" if key.active else "revoked"
    return f"{key.id:>6}  {key.key_prefix}…  {state:<8} {used:<26} {key.name}"


async def _create(keys: KeyService, args: argparse.Namespace) -> int:
    made = await keys.create(args.name)
    print(f"created {_line(made)}")
    print(f"api_key: {made.key}")
    print("keep it now: it is not stored and cannot be shown again")
    return EXIT_OK


async def _list(keys: KeyService, _: argparse.Namespace) -> int:
    after: int | None = None
    while True:
        page = await keys.list_keys(after, 1000)
        for key in page:
            print(_line(key))
        if len(page) < 1000:
            return EXIT_OK
        after = page[-1].id


async def _revoke(keys: KeyService, args: argparse.Namespace) -> int:
    from grid_mgmt.lib.errors import NotFound

    target = str(args.key).strip()
    if target.isdigit():
        key_id = int(target)
    else:
        named = await keys.named(target)
        if len(named) != 1:
            many = f"{len(named)} keys are named {target!r}: revoke one by its id" if named else ""
            raise NotFound(many or f"no key is named {target!r}")
        key_id = named[0].id
    print(f"revoked {_line(await keys.revoke(key_id))}")
    return EXIT_OK
