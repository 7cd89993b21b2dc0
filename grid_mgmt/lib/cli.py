"""Running one command of a feature's CLI: its coroutine under asyncio, refusals and database errors as exit 1."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from grid_mgmt.settings import Settings, get_settings

EXIT_FAILED = 1


def run_command(
    prog: str,
    args: argparse.Namespace,
    work: Callable[[Settings], Coroutine[Any, Any, int]],
    refused: tuple[type[Exception], ...] = (),
) -> int:
    """`work(settings)`'s exit status; a DomainError, one of `refused` or a database error prints `prog: why` on
    stderr and exits 1 (no traceback for what the user can fix)."""
    import asyncpg
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    from grid_mgmt.lib.errors import DomainError

    try:
        return asyncio.run(work(getattr(args, "settings", None) or get_settings()))
    except DomainError as exc:
        print(f"{prog}: {exc.detail}", file=sys.stderr)
    except refused as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
    except (OSError, asyncpg.PostgresError, OperationalError, InterfaceError, DBAPIError) as exc:
        print(f"{prog}: database error: {exc}", file=sys.stderr)
    return EXIT_FAILED
