"""The `grid-mgmt` command: each capability registers its own subcommands here."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib import import_module

from grid_mgmt.settings import describe

# (module, attribute) of every `register(subparsers)`; a module that is absent is skipped with a note.
REGISTRARS: tuple[str, ...] = (
    "grid_mgmt.runner.cli",
    "grid_mgmt.imports.cli",
    "grid_mgmt.accounts.cli",
    "grid_mgmt.open311.cli",
    "seeds.cli",
)


def _settings(_: argparse.Namespace) -> int:
    for name, default, doc in describe():
        print(f"{name:<32} {default:<48} {doc}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The full parser; exposed for tests and `--help`."""
    parser = argparse.ArgumentParser(prog="grid-mgmt", description="Grid-based urban management backend.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    show = sub.add_parser("settings", help="list the GRID_* environment settings and their defaults")
    show.set_defaults(func=_settings)
    for module_name in REGISTRARS:
        try:
            module = import_module(module_name)
        except ModuleNotFoundError as exc:  # a capability not installed in this build
            if exc.name is None or not module_name.startswith(exc.name):
                raise
            continue
        register: Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None] = module.register
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    return int(func(args))


if __name__ == "__main__":
    sys.exit(main())
